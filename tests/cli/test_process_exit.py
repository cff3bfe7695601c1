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


def _python(code: str, tmp_path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, env=_env(tmp_path), check=True
    )
    return done.stdout.decode().strip()


def test_start_up_runs_without_the_cyclic_collector_then_settles(tmp_path: Path) -> None:
    # The console script turns collection off before the heavy imports...
    seen = _python(
        "import gc, plait.cli\n"
        "plait.cli.main = lambda: print(gc.isenabled())\n"
        "import plait._entry\n"
        "plait._entry.main()\n",
        tmp_path,
    )
    assert seen == "False"
    # ...and the command itself runs with it back on, the imports frozen.
    seen = _python(
        "import gc\n"
        "gc.disable()\n"
        "import plait.cli\n"
        "plait.cli.cli = lambda **kw: print(gc.isenabled(), gc.get_freeze_count() > 0)\n"
        "plait.cli.main()\n",
        tmp_path,
    )
    assert seen == "True True"
    # ...and the local runner turns it back on, start-up frozen, before any work runs.
    seen = _python(
        "import asyncio, gc\n"
        "gc.disable()\n"
        "from plait.local import LocalHome, local_runner\n"
        "async def main():\n"
        "    async with local_runner(LocalHome.resolve(None)):\n"
        "        print(gc.isenabled(), gc.get_freeze_count() > 0)\n"
        "asyncio.run(main())\n",
        tmp_path,
    )
    assert seen == "True True"
    # A process that never turned it off (a library user, the tests) is left alone.
    seen = _python(
        "import gc\n"
        "from plait.runtime import settle_heap\n"
        "settle_heap()\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n",
        tmp_path,
    )
    assert seen == "True 0"
