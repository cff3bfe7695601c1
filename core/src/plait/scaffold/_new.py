"""``plait sdk new``: write a complete, working plugin distribution."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

from plait_sdk import PLUGIN_API_VERSION, UserError
from plait_sdk import __version__ as sdk_version

from plait import __version__ as core_version
from plait.scaffold import _templates as t
from plait.scaffold._reference import reference_page

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")


@dataclass(frozen=True)
class Names:
    """How one plugin is named: distribution ``plait-acme``, module ``plait_acme``, types
    ``acme.Greet``."""

    dist: str
    module: str
    short: str


def names_for(name: str) -> Names:
    """The names of plugin ``name`` (``acme`` or ``plait-acme``), or a clear error."""
    if not _NAME.match(name):
        raise UserError(
            f"invalid plugin name {name!r}: lowercase letters and digits, words separated by "
            "'-' or '_', starting with a letter (for example 'weather' or 'plait-weather')",
            field="NAME",
        )
    short = re.sub(r"^plait[-_]", "", name).replace("-", "_")
    if not short or short in ("core", "plait"):
        raise UserError(f"invalid plugin name {name!r}: taken by Plait itself", field="NAME")
    return Names(dist=f"plait-{short.replace('_', '-')}", module=f"plait_{short}", short=short)


def _api_range() -> str:
    major = int(PLUGIN_API_VERSION.split(".")[0])
    return f">={PLUGIN_API_VERSION},<{major + 1}"


def new_plugin(name: str, directory: Path | None = None) -> Path:
    """Write the distribution of plugin ``name`` into ``directory`` (default: ``./<dist>``).

    Refuses a directory that exists and is not empty; writes everything aside first, so a
    failure leaves nothing half-written. Returns the directory.
    """
    names = names_for(name)
    target = (directory or Path(names.dist)).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} exists and is not empty; choose another --dir", field="--dir")
    values = {
        "dist": names.dist,
        "module": names.module,
        "short": names.short,
        "api_range": _api_range(),
        "sdk_version": _minor(sdk_version),
        "core_version": _minor(core_version),
    }
    files = {
        "pyproject.toml": t.PYPROJECT,
        "README.md": t.README,
        "ci.sh": t.CI,
        ".gitignore": t.GITIGNORE,
        f"src/{names.module}/__init__.py": t.INIT,
        f"src/{names.module}/plugin.py": t.PLUGIN,
        f"src/{names.module}/_tasks.py": t.TASKS,
        f"src/{names.module}/_trigger.py": t.TRIGGER,
        f"src/{names.module}/py.typed": "",
        "tests/test_tasks.py": t.TEST_TASKS,
        "tests/test_trigger.py": t.TEST_TRIGGER,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        staging.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would make a shared checkout private
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(text).substitute(values), encoding="utf-8")
        (staging / "ci.sh").chmod(0o755)
        page = _reference_of(staging / "src", names)
        (staging / "docs").mkdir()
        (staging / "docs" / "reference.md").write_text(page, encoding="utf-8")
        if target.exists():
            target.rmdir()  # empty, checked above
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _reference_of(src: Path, names: Names) -> str:
    """The reference page, from the types just written (imported from the source tree)."""
    from plait.plugins import PluginHost

    sys.path.insert(0, str(src))
    try:
        module = importlib.import_module(f"{names.module}.plugin")
        host = PluginHost.discover(entry_points=False, extra=[module])
        infos = [i for i in host.registry if i.origin.plugin == module.__name__]
        return reference_page(names.dist, infos)
    finally:
        sys.path.remove(str(src))
        for loaded in [m for m in sys.modules if m.split(".")[0] == names.module]:
            del sys.modules[loaded]
