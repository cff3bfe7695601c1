"""Dependencies installed once into a cached environment, offline (local wheel / tarball)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from plait_scripts import NodeScript, PythonCommands, PythonScript
from plait_scripts._envs import environment_key, normalise
from plait_sdk import TaskFailure
from plait_sdk.testing import HarnessContext

from ._support import build_npm_tarball, build_wheel, context


def _environments(cache: Path) -> list[Path]:
    return [p for p in cache.iterdir() if p.is_dir()] if cache.exists() else []


def _installs(*contexts: HarnessContext) -> int:
    return sum(m.startswith("installing ") for c in contexts for m in c.messages("INFO"))


def _reuses(*contexts: HarnessContext) -> int:
    return sum(m.startswith("reusing the cached") for c in contexts for m in c.messages("INFO"))


async def test_python_dependencies_are_installed_once_and_reused(
    tmp_path: Path, cache_dir: Path
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    build_wheel(wheels)
    # pip reads its options from the task's env: no index, only the local wheel directory.
    offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels)}
    script = PythonScript.model_validate(
        {
            "dependencies": ["plait-tiny-dep==1.0"],
            "env": offline,
            "script": (
                "import sys, plait_tiny_dep\n"
                "from plait_script import Plait\n"
                "print(plait_tiny_dep.VALUE, sys.prefix)\n"
                "Plait.outputs({'value': plait_tiny_dep.VALUE})"
            ),
        }
    )
    contexts = []
    for _ in range(2):
        work = tmp_path / f"work{len(contexts)}"
        work.mkdir()
        contexts.append(context(work))
    # Two runs at once on an empty cache: the lock lets one build while the other waits.
    outs = await asyncio.gather(*(script.run(c) for c in contexts))
    assert [o.vars for o in outs] == [{"value": 42}] * 2  # the helper works in the venv too
    assert _installs(*contexts) == 1
    assert _reuses(*contexts) == 1
    (venv,) = _environments(cache_dir)
    assert venv.name.startswith("python-")
    for c in contexts:
        assert c.messages("INFO")[-1] == f"42 {venv}"
    ready = venv / ".plait-ready"
    stamp = ready.stat().st_mtime_ns

    # A later run with the same set (other order, other task type) reuses it: no pip at all.
    again = context(tmp_path)
    commands = PythonCommands.model_validate(
        {
            "dependencies": ["  plait-tiny-dep==1.0 ", "plait-tiny-dep==1.0"],
            "env": offline,
            "commands": ["python -c 'import plait_tiny_dep; print(plait_tiny_dep.VALUE)'"],
        }
    )
    await commands.run(again)
    assert (_installs(again), _reuses(again)) == (0, 1)
    assert again.messages("INFO")[-1] == "42"
    assert ready.stat().st_mtime_ns == stamp


async def test_a_failed_install_fails_the_task_and_leaves_no_ready_environment(
    ctx: HarnessContext, tmp_path: Path, cache_dir: Path
) -> None:
    task = PythonScript.model_validate(
        {
            "dependencies": ["plait-no-such-package==9.9"],
            "env": {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)},
            "script": "print('never')",
        }
    )
    with pytest.raises(TaskFailure, match="pip install failed with exit code 1"):
        await task.run(ctx)
    assert "never" not in ctx.messages()
    assert not [e for e in _environments(cache_dir) if (e / ".plait-ready").exists()]


def test_the_cache_key_depends_on_the_set_not_its_order() -> None:
    assert normalise(["b", " a ", "", "a"]) == ["a", "b"]
    assert environment_key("python", "3.11", ["a", "b"]) == environment_key(
        "python", "3.11", ["b", "a", "a"]
    )
    assert environment_key("python", "3.11", ["a"]) != environment_key("python", "3.12", ["a"])


async def test_node_dependencies_are_installed_once_and_reused(
    tmp_path: Path, cache_dir: Path, node: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("npm_config_offline", "true")  # no registry: the tarball is local
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    tarball = build_npm_tarball(tmp_path)
    cjs = NodeScript(
        dependencies=[str(tarball)],
        script="console.log(require('plait-tiny-node'));",
    )
    first = context(tmp_path)
    await cjs.run(first)
    assert first.messages("INFO")[-1] == "42"
    assert _installs(first) == 1
    # an ES module finds the package too (ES modules ignore NODE_PATH)
    esm = NodeScript(
        dependencies=[str(tarball)],
        script="import value from 'plait-tiny-node';\nconsole.log(value + 1);",
    )
    second = context(tmp_path)
    await esm.run(second)
    assert second.messages("INFO")[-1] == "43"
    assert (_installs(second), _reuses(second)) == (0, 1)


async def test_an_unusable_cache_directory_is_a_clean_failure(
    ctx: HarnessContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PLAIT_SCRIPTS_CACHE", str(blocker / "cache"))
    task = PythonScript(dependencies=["anything"], script="print('never')")
    with pytest.raises(TaskFailure, match=r"PLAIT_SCRIPTS_CACHE to a writable directory"):
        await task.run(ctx)
