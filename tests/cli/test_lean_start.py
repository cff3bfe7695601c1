"""`plait server local` starts lean: it imports its own command, not the others nor rich.

The idle server's memory is mostly what it imported (docs/performance.md, "Idle memory"); the
console script imports a command's module only when that command runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from plait.cli import cli

#: Modules an idle server has no use for (rich: the CLI's display; Alembic and Mako: migrations
#: run in a child process).
UNUSED = [
    "rich",
    "alembic",
    "mako",
    "plait.cli._blueprints",
    "plait.cli._display",
    "plait.cli._executions",
    "plait.cli._flows",
    "plait.cli._remote",
    "plait.cli._run",
    "plait.cli._secrets",
]

# The console script's own path (plait._entry.main, sys.argv) up to the point the server would
# start serving: `serve` is replaced by a report of what was imported by then.
SERVER_START = """
import json, sys
import plait.server

async def report(config, **_):
    print(json.dumps(sorted(name for name in {unused!r} if name in sys.modules)))

plait.server.serve = report
sys.argv = ["plait", "server", "local", "--port", "0", "--home", {home!r}]
from plait._entry import main
main()
"""


def test_server_local_imports_neither_other_commands_nor_rich(tmp_path: Path) -> None:
    code = SERVER_START.format(unused=UNUSED, home=str(tmp_path / "home"))
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PLAIT_CONFIG": ""},
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_every_command_is_still_there() -> None:
    # --help loads them all, and `flows sync` (added with --server by plait.cli._remote) with them.
    runner = CliRunner()
    listed = runner.invoke(cli, ["--help"], catch_exceptions=False)
    assert listed.exit_code == 0
    for name in ["auth", "blueprints", "executions", "flows", "kv", "namespace", "plugins"]:
        assert f"  {name} " in listed.output
    for name in ["run", "run-examples", "sdk", "secrets", "server", "triggers"]:
        assert f"  {name} " in listed.output
    synced = runner.invoke(cli, ["flows", "sync", "--help"], catch_exceptions=False)
    assert synced.exit_code == 0
    assert "--delete" in synced.output
    listing = runner.invoke(cli, ["executions", "list", "--help"], catch_exceptions=False)
    assert listing.exit_code == 0
    assert "--server" in listing.output
