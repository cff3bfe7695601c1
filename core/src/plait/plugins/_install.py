"""Installing and removing plugin distributions in the environment that runs Plait.

``plait plugins install`` runs pip (or ``uv pip`` in an environment made by uv, which has no
pip) for the interpreter running Plait, then loads every plugin in a fresh process. A plugin
that does not load is reported and removed again, with the dependencies the same install brought
in, and any distribution the install upgraded is put back at its previous version: a failed
install leaves the environment as it found it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from plait_sdk import UserError

from plait.plugins._host import ENTRY_POINT_GROUP

#: Distributions Plait itself is made of: never removed by ``plait plugins uninstall``.
PROTECTED = frozenset({"plait", "plait-sdk"})
PROBE_TIMEOUT = 120.0


@dataclass
class InstallResult:
    """What an install did, and how the plugin loaded afterwards."""

    distribution: str
    version: str
    added: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    plugins: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rolled_back: bool = False
    #: Installed before at the same version: a failure then leaves it in place, as it was.
    already_there: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Installer:
    """pip for one interpreter (by default the one running Plait)."""

    python: str = sys.executable
    index_url: str | None = None
    find_links: Path | None = None
    _command: list[str] | None = None

    def pip(self) -> list[str]:
        """The command prefix that runs pip for :attr:`python`."""
        if self._command is None:
            self._command = self._find_pip()
        return list(self._command)

    def _find_pip(self) -> list[str]:
        if self.python == sys.executable and importlib.util.find_spec("pip") is not None:
            return [self.python, "-m", "pip"]
        if self.python != sys.executable and _has_pip(self.python):
            return [self.python, "-m", "pip"]
        uv = shutil.which("uv")
        if uv is not None:
            return [uv, "pip"]
        raise UserError(
            "cannot install plugins: this environment has no pip (python -m ensurepip adds it) "
            "and no uv is on PATH"
        )

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        if self._is_pip():
            full = [*self.pip(), "--disable-pip-version-check", "--no-input", *args]
        else:
            full = [*self.pip(), *args, "--python", self.python]
        return subprocess.run(full, capture_output=True, text=True, check=False)

    def _source_args(self) -> list[str]:
        args = []
        if self.index_url is not None:
            args += ["--index-url", self.index_url]
        if self.find_links is not None:
            if not self.find_links.is_dir():
                raise UserError(f"no such directory: {self.find_links}", field="--find-links")
            args += ["--find-links", str(self.find_links)]
            if self.index_url is None:
                # A directory alone means "from this directory": offline, and nothing else
                # with the same name can be picked from an index instead.
                args.append("--no-index")
        return args

    # -- install -------------------------------------------------------------------------------

    def install(self, spec: str) -> InstallResult:
        """Install ``spec`` (a distribution name, optionally with a version specifier)."""
        name = _requirement(spec)
        sources = self._source_args()
        before = installed()
        proc = self._run("install", *sources, spec)
        if proc.returncode != 0:
            raise UserError(f"could not install {spec}:\n{_tail(proc)}")
        after = installed()
        if name not in after:
            raise UserError(f"the installer reported success but {spec} is not installed")
        result = InstallResult(
            distribution=after[name][0],
            version=after[name][1],
            added={n: v for n, (_, v) in after.items() if n not in before},
            changed={
                n: (before[n][1], v)
                for n, (_, v) in after.items()
                if n in before and before[n][1] != v
            },
        )
        result.already_there = name in before and name not in result.changed
        result.plugins, result.problems = self._probe(name)
        if result.problems:
            self._roll_back(result, before)
        return result

    def _probe(self, name: str) -> tuple[list[dict[str, Any]], list[str]]:
        try:
            proc = subprocess.run(
                [self.python, "-m", "plait.plugins._probe"],
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return [], [f"loading the plugins took longer than {PROBE_TIMEOUT:.0f} s"]
        if proc.returncode != 0:
            return [], [f"loading the plugins crashed the process:\n{_tail(proc)}"]
        try:
            records = json.loads(proc.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return [], [f"loading the plugins printed no report:\n{_tail(proc)}"]
        return judge(records, name)

    def _roll_back(self, result: InstallResult, before: dict[str, tuple[str, str]]) -> None:
        if result.added:
            proc = self._run(*self._uninstall_args(), *sorted(result.added))
            if proc.returncode != 0:
                result.problems.append(f"could not remove it again:\n{_tail(proc)}")
                return
        restore = [f"{before[n][0]}=={old}" for n, (old, _new) in sorted(result.changed.items())]
        if restore:
            proc = self._run("install", *self._source_args(), *restore)
            if proc.returncode != 0:
                result.problems.append(f"could not restore {', '.join(restore)}:\n{_tail(proc)}")
                return
        result.rolled_back = True

    # -- uninstall -----------------------------------------------------------------------------

    def uninstall(self, spec: str) -> tuple[str, str]:
        """Remove an installed plugin distribution; its (name, version)."""
        name = _requirement(spec)
        if name in PROTECTED:
            raise UserError(f"{name} is part of Plait itself, not a plugin", field="NAME")
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise UserError(f"{spec} is not installed", field="NAME") from None
        if not any(ep.group == ENTRY_POINT_GROUP for ep in dist.entry_points):
            raise UserError(
                f"{dist.metadata['Name']} is not a Plait plugin (no '{ENTRY_POINT_GROUP}' "
                "entry point): remove it with pip",
                field="NAME",
            )
        # Read before removal: the metadata is read lazily from the files being removed.
        found = (dist.metadata["Name"], dist.version)
        proc = self._run(*self._uninstall_args(), name)
        if proc.returncode != 0:
            raise UserError(f"could not uninstall {name}:\n{_tail(proc)}")
        return found

    def _is_pip(self) -> bool:
        return self.pip()[:2] == [self.python, "-m"]

    def _uninstall_args(self) -> list[str]:
        # pip asks for confirmation unless told not to; uv pip never asks (and has no -y).
        return ["uninstall", "-y"] if self._is_pip() else ["uninstall"]


def judge(records: list[dict[str, Any]], name: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The plugin records of distribution ``name`` among ``records`` (``plait plugins list
    --json`` rows), and what is wrong: none of them (not a plugin), or one that did not load."""
    mine = [r for r in records if canonicalize_name(r["distribution"]) == canonicalize_name(name)]
    if not mine:
        return [], [f"{name} has no '{ENTRY_POINT_GROUP}' entry point: it is not a plugin"]
    problems = [
        f"{r['name']}: {r['status']}: {'; '.join(r['errors'])}" for r in mine if r["status"] != "ok"
    ]
    return mine, problems


def installed() -> dict[str, tuple[str, str]]:
    """Canonical name -> (name, version) of every distribution visible to this interpreter."""
    found: dict[str, tuple[str, str]] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), (name, dist.version))
    return found


def _requirement(spec: str) -> str:
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as error:
        raise UserError(f"not a distribution name: {error}", field="NAME") from None
    if requirement.url:
        raise UserError("give a distribution name, and --find-links for a folder", field="NAME")
    return canonicalize_name(requirement.name)


def _has_pip(python: str) -> bool:
    probe = [
        python,
        "-c",
        "import importlib.util, sys; sys.exit(not importlib.util.find_spec('pip'))",
    ]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    text = (proc.stderr or "").strip() or (proc.stdout or "").strip()
    return "\n".join(text.splitlines()[-lines:])
