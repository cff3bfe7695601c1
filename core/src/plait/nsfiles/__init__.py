"""Namespace files (Kestra's): code and data shared by the flows of a namespace, versioned, in
the Plait database."""

from plait.nsfiles._paths import check_namespace, check_path, matcher
from plait.nsfiles._store import FileStat, NamespaceFileStore, ScopedNamespaceFiles

__all__ = [
    "FileStat",
    "NamespaceFileStore",
    "ScopedNamespaceFiles",
    "check_namespace",
    "check_path",
    "matcher",
]
