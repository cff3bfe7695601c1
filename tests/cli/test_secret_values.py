"""Over the real CLI: values holding a secret reach scripts intact, and are never printed or
stored in clear (issue 11, "Secrets"), also across a kill -9 and `plait executions recover`."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from plait.secrets import read_key_file

PLAIT = str(Path(sys.executable).with_name("plait"))
TOKEN = "tok-Secret-0123456789"
PASSWORD = "pw-Hunter2-Secret"
FORMS = [
    TOKEN,
    TOKEN.upper(),
    PASSWORD,
    PASSWORD.upper(),
    PASSWORD.replace("-", "_"),
    base64.b64encode(TOKEN.encode()).decode(),
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env["PLAIT_HOME"] = str(tmp_path / "home")
    env["PLAIT_SECRET_TOKEN"] = base64.b64encode(TOKEN.encode()).decode()
    return env


def _plait(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLAIT, *args], capture_output=True, text=True, env=_env(tmp_path), timeout=120
    )


def _assert_clean(text: str, where: str) -> None:
    for form in FORMS:
        assert form not in text, (where, form, text[:500])


def _home_bytes(tmp_path: Path) -> bytes:
    """Every file of the home but the key (the database with its -wal, storage files...)."""
    found = b""
    for path in sorted((tmp_path / "home").rglob("*")):
        if path.is_file() and path.name != "master.key":
            found += path.read_bytes()
    return found


def test_run_show_json_and_logs_show_masked_while_the_script_gets_the_bytes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.bin"
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        f"""
id: deliver
namespace: t
inputs:
  - {{id: pw, type: SECRET}}
tasks:
  - id: header
    type: plait.core.Return
    format: "Bearer {{{{ secret('TOKEN') }}}}"
  - id: shouted
    type: plait.core.Return
    format: "{{{{ inputs.pw | upper }}}}"
  - id: log
    type: plait.core.Log
    message: "{{{{ inputs.pw | replace('-', '_') }}}}"
  - id: send
    type: plait.scripts.shell.Commands
    env:
      HEADER: "{{{{ outputs.header.value }}}}"
      LOUD: "{{{{ outputs.shouted.value }}}}"
    commands:
      - printf '%s|%s' "$HEADER" "$LOUD" > {out}
      - echo "sending $HEADER"
outputs:
  - {{id: loud, type: STRING, value: "{{{{ outputs.shouted.value }}}}"}}
"""
    )
    done = _plait(tmp_path, "run", str(flow), "-i", f"pw={PASSWORD}", "--json")
    assert done.returncode == 0, done.stderr
    _assert_clean(done.stdout + done.stderr, "run --json")
    shown = json.loads(done.stdout)
    assert shown["outputs"] == {"loud": "******"}
    assert shown["inputs"] == {"pw": "******"}
    assert out.read_bytes() == f"Bearer {TOKEN}|{PASSWORD.upper()}".encode()
    execution_id = shown["id"]
    for args in (("show", execution_id), ("show", execution_id, "--json"), ("logs", execution_id)):
        seen = _plait(tmp_path, "executions", *args)
        assert seen.returncode == 0, seen.stderr
        _assert_clean(seen.stdout + seen.stderr, " ".join(args))
    logs = _plait(tmp_path, "executions", "logs", execution_id).stdout
    assert "sending ******" in logs
    _assert_clean(_home_bytes(tmp_path).decode("latin-1"), "the home's files")


def test_after_kill_9_and_recover_a_later_task_gets_the_real_value(tmp_path: Path) -> None:
    out, started, go = tmp_path / "out.bin", tmp_path / "started", tmp_path / "go"
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        f"""
id: crash
namespace: t
inputs:
  - {{id: pw, type: SECRET}}
tasks:
  - id: header
    type: plait.core.Return
    format: "Bearer {{{{ secret('TOKEN') }}}}:{{{{ inputs.pw | upper }}}}"
  - id: wait
    type: plait.scripts.shell.Commands
    commands:
      - touch {started}
      - while [ ! -f {go} ]; do sleep 0.05; done
  - id: send
    type: plait.scripts.shell.Commands
    env:
      HEADER: "{{{{ outputs.header.value }}}}"
    commands:
      - printf '%s' "$HEADER" > {out}
"""
    )
    process = subprocess.Popen(
        [PLAIT, "run", str(flow), "-i", f"pw={PASSWORD}", "-q"],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert process.poll() is None, "plait run ended early"
            assert time.monotonic() < deadline, "the waiting task never started"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # plait run and its script, at once
        process.wait(timeout=60)
    assert not out.exists()
    _assert_clean(_home_bytes(tmp_path).decode("latin-1"), "the home after the crash")
    go.touch()
    done = _plait(tmp_path, "executions", "recover")
    assert done.returncode == 0, done.stdout + done.stderr
    _assert_clean(done.stdout + done.stderr, "recover")
    assert out.read_bytes() == f"Bearer {TOKEN}:{PASSWORD.upper()}".encode()
    _assert_clean(_home_bytes(tmp_path).decode("latin-1"), "the home after recovery")


def _digest(tmp_path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted((tmp_path / "home").rglob("*")) if p.is_file()}


def test_a_lost_master_key_is_not_silently_replaced(tmp_path: Path) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        "id: f\nnamespace: t\ninputs:\n  - {id: pw, type: SECRET}\ntasks:\n"
        '  - {id: r, type: plait.core.Return, format: "{{ inputs.pw }}"}\n'
    )
    assert _plait(tmp_path, "run", str(flow), "-i", f"pw={PASSWORD}", "-q").returncode == 0
    key_file = tmp_path / "home" / "master.key"
    key_id = read_key_file(key_file)[0].id
    key_file.unlink()
    before = _digest(tmp_path)
    for args in (
        ("run", str(flow), "-i", f"pw={PASSWORD}"),
        ("executions", "recover"),
        ("secrets", "list"),
    ):
        done = _plait(tmp_path, *args)
        assert done.returncode != 0, args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "master key file" in lines[0]
        assert "is missing" in lines[0]
        assert "from a backup" in lines[0]
        assert "PLAIT_MASTER_KEY" in lines[0]
        assert not key_file.exists()
        assert _digest(tmp_path) == before  # nothing written
    assert f"sealed with key {key_id}:" in lines[0]
    # A fresh home (nothing sealed yet) still gets its key on first use.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    env = {**_env(fresh)}
    done = subprocess.run(
        [PLAIT, "run", str(flow), "-i", "pw=x", "-q"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (fresh / "home" / "master.key").exists()
