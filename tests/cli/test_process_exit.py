"""The `plait` process itself: it skips the interpreter's teardown, and loses nothing doing so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PLAIT = str(Path(sys.executable).with_name("plait"))


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PLAIT_HOME": str(tmp_path / "home")}


def test_large_output_is_flushed_whole_and_exit_codes_kept(tmp_path: Path) -> None:
    done = subprocess.run(
        [PLAIT, "flows", "schema"], capture_output=True, env=_env(tmp_path), check=False
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout) > 50_000
    assert json.loads(done.stdout)["title"] == "Plait flow"
    failing = tmp_path / "fail.yaml"
    failing.write_text("id: f\nnamespace: t\ntasks:\n  - {id: x, type: plait.core.Fail}\n")
    done = subprocess.run(
        [PLAIT, "run", str(failing), "--json"], capture_output=True, env=_env(tmp_path), check=False
    )
    assert done.returncode == 1
    assert json.loads(done.stdout)["state"] == "FAILED"
    done = subprocess.run([PLAIT, "no-such-command"], capture_output=True, check=False)
    assert done.returncode == 2
    assert b"No such command" in done.stderr


def test_a_reader_that_goes_away_is_not_a_traceback(tmp_path: Path) -> None:
    with subprocess.Popen(
        [PLAIT, "flows", "schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp_path),
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.read(10)
        process.stdout.close()  # `plait flows schema | head -c 10`
        errors = process.stderr.read()
        process.wait(timeout=30)
    assert b"Traceback" not in errors
    assert process.returncode in (0, 1)
