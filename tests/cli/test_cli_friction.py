"""What a newcomer meets first, over the real `plait` command: quiet failures, ids, kv, kill,
secrets on argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PLAIT = str(Path(sys.executable).with_name("plait"))
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120.0

FAILING = (
    "id: fails\nnamespace: test\ntasks:\n"
    "  - {id: x, type: plait.core.Fail, errorMessage: not today}\n"
)
SLEEPING = (
    "id: sleeps\nnamespace: test\ntasks:\n  - {id: nap, type: plait.core.Sleep, duration: PT300S}\n"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {**os.environ, "PLAIT_HOME": str(tmp_path / "home"), "COLUMNS": "80"}
    out.pop("PLAIT_MASTER_KEY", None)
    return out


def plait(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLAIT, *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _flow(tmp_path: Path, text: str, name: str = "flow.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _ids(env: dict[str, str]) -> list[str]:
    return [e["id"] for e in json.loads(plait(env, "executions", "list", "--json").stdout)]


def test_run_quiet_prints_the_error_line_of_a_failure(tmp_path: Path, env: dict[str, str]) -> None:
    done = plait(env, "run", "-q", _flow(tmp_path, FAILING))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == "error: task 'x' failed: not today"
    quiet_success = plait(env, "run", "-q", str(ROOT / "examples" / "hello.yaml"))
    assert quiet_success.returncode == 0
    assert "error" not in quiet_success.stderr


def test_ids_are_listed_whole_and_a_unique_prefix_is_enough(
    tmp_path: Path, env: dict[str, str]
) -> None:
    flow = _flow(tmp_path, FAILING)
    for _ in range(2):
        plait(env, "run", "-q", flow)
    first, second = _ids(env)
    listed = plait(env, "executions", "list")
    assert listed.returncode == 0
    assert first in listed.stdout  # 80 columns, whole ids
    assert second in listed.stdout
    common = first[: next(i for i, (a, b) in enumerate(zip(first, second, strict=True)) if a != b)]
    unique = first[: len(common) + 1]
    # replay last: the execution it creates may share the prefix (ids start with the time).
    for command in (("show",), ("logs",), ("restart", "-q"), ("replay", "-q")):
        if command[0] == "replay":
            assert first in plait(env, "executions", "show", unique).stdout
            assert "not today" in plait(env, "executions", "logs", unique.upper()).stdout
            ambiguous = plait(env, "executions", "show", common)
            assert ambiguous.returncode == 1
            assert f"execution id prefix '{common}' is ambiguous" in ambiguous.stderr
            assert first in ambiguous.stderr
            assert second in ambiguous.stderr
        done = plait(env, "executions", *command, unique)
        assert "no execution" not in done.stderr, done.stderr
        assert "ambiguous" not in done.stderr, done.stderr
    missing = plait(env, "executions", "show", "zzzz")
    assert missing.returncode == 1
    assert "no execution with id zzzz" in missing.stderr


def test_kv_get_prints_numbers_as_given(env: dict[str, str]) -> None:
    for value, shown in (("42", "42"), ("4.5", "4.5"), ("-7", "-7")):
        assert plait(env, "kv", "set", "--type", "NUMBER", "ns", "n", "--", value).returncode == 0
        assert plait(env, "kv", "get", "ns", "n").stdout.strip() == shown


def test_a_secret_value_on_argv_is_refused_with_one_clear_line(env: dict[str, str]) -> None:
    done = plait(env, "secrets", "set", "ns", "TOKEN", "s3cret-value")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "never taken from the command line" in lines[0]
    assert "prompt" in lines[0]
    assert "stdin" in lines[0]
    assert "s3cret-value" not in done.stderr
    assert plait(env, "secrets", "set", "ns", "TOKEN", stdin="s3cret-value\n").returncode == 0


def _start_sleeping(
    tmp_path: Path, env: dict[str, str], name: str
) -> tuple[subprocess.Popen[bytes], str]:
    before = set(_ids(env))
    process = subprocess.Popen(
        [PLAIT, "run", _flow(tmp_path, SLEEPING, name)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        found = [
            e
            for e in json.loads(plait(env, "executions", "list", "--json").stdout)
            if e["id"] not in before and e["state"] == "RUNNING"
        ]
        if found:
            return process, found[0]["id"]
        time.sleep(0.2)
    process.kill()
    raise AssertionError("the execution never started")


def test_kill_says_it_was_requested_and_wait_prints_the_end(
    tmp_path: Path, env: dict[str, str]
) -> None:
    process, execution_id = _start_sleeping(tmp_path, env, "a.yaml")
    try:
        done = plait(env, "executions", "kill", execution_id[:20])
        assert done.returncode == 0, done.stderr
        assert f"kill requested for {execution_id} (RUNNING)" in done.stderr
        assert process.wait(timeout=TIMEOUT) == 1
    finally:
        process.kill()
    process, execution_id = _start_sleeping(tmp_path, env, "b.yaml")
    try:
        done = plait(env, "executions", "kill", "--wait", execution_id)
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip().splitlines()[-1] == f"{execution_id}: KILLED"
    finally:
        process.kill()
        process.wait()


def test_the_readme_lists_only_folders_that_exist() -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    table = readme.split("## What is here", 1)[1].split("\n\n", 2)[1]
    for path in re.findall(r"^\| `([^`]+)/`", table, flags=re.M):
        if "<" not in path:
            assert (ROOT / path).is_dir(), path
