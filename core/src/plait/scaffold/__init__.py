"""Scaffolding of plugin distributions (``plait sdk new``) and their reference page."""

from plait.scaffold._new import Names, names_for, new_plugin
from plait.scaffold._reference import reference_page

__all__ = ["Names", "names_for", "new_plugin", "reference_page"]
