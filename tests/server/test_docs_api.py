"""docs/api.md: its curl calls, exactly as written, against a live server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from live_server import EXAMPLES, ROOT, start_server

DOC = ROOT / "docs" / "api.md"


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.DOTALL)


def test_the_curl_calls_of_docs_api_md_work(tmp_path: Path) -> None:
    blocks = bash_blocks(DOC.read_text("utf-8"))
    assert len(blocks) >= 6
    script = "set -euo pipefail\n" + "\n".join(blocks)
    live = start_server(tmp_path / "home", "--deploy", str(EXAMPLES))
    try:
        assert live.token is not None
        env = {
            **os.environ,
            "PLAIT_URL": live.url,
            "TOKEN": live.token,
            "PLAIT_HOME": str(live.home),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        out = done.stdout
        assert '"revision": 1' in out  # deployed
        assert "Hello Ada!" in out  # run with inputs, logs followed
        assert "event: end\ndata: SUCCESS" in out
        assert '"current": "SUCCESS"' in out
        assert "released (looks good)" in out  # approved
        assert out.count("event: end\ndata: SUCCESS") == 2
        assert '"outputs": {"ref": "refs/heads/main"}' in out  # the signed GitHub webhook
        assert '{"path": "/scripts/etl.py", "version": 1}' in out  # a namespace file uploaded
        assert "hello from a namespace file" in out  # and read back
    finally:
        live.stop()


def test_the_printed_curl_line_starts_an_example(tmp_path: Path) -> None:
    live = start_server(tmp_path / "home", "--deploy", str(EXAMPLES))
    try:
        line = next(x for x in live.lines if x.startswith("try: "))[len("try: ") :]
        assert live.token is not None
        assert live.token in line  # the first start prints the real token in it
        done = subprocess.run(
            ["bash", "-c", line], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert '"current": "SUCCESS"' in done.stdout
        assert "Hello ADA!" in done.stdout
    finally:
        live.stop()
