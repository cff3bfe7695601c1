"""Over the real CLI: rotating the master key re-seals the sealed values of executions too
(SECRET inputs, outputs derived from a secret), and `remove-key` refuses while any value still
needs the old key (issue 11, "Secrets")."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from plait.secrets import MasterKey, read_key_file, write_key_file

PLAIT = str(Path(sys.executable).with_name("plait"))
TOKEN = "tok-Rotate-0123456789"
PASSWORD = "pw-Rotate-Hunter2"


def _plait(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env["PLAIT_HOME"] = str(tmp_path / "home")
    env["PLAIT_SECRET_TOKEN"] = base64.b64encode(TOKEN.encode()).decode()
    return subprocess.run([PLAIT, *args], capture_output=True, text=True, env=env, timeout=120)


def _documents(tmp_path: Path) -> str:
    with closing(sqlite3.connect(tmp_path / "home" / "plait.db")) as conn:
        rows = conn.execute(
            "SELECT document FROM executions UNION ALL SELECT document FROM task_runs"
        ).fetchall()
    return "\n".join(row[0] for row in rows)


def test_rotate_reseal_remove_key_then_restart_and_replay_get_the_real_values(
    tmp_path: Path,
) -> None:
    out, go = tmp_path / "out.txt", tmp_path / "go"
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        f"""
id: rotate
namespace: t
inputs:
  - {{id: pw, type: SECRET}}
tasks:
  - id: header
    type: plait.core.Return
    format: "Bearer {{{{ secret('TOKEN') }}}}:{{{{ inputs.pw | upper }}}}"
  - id: gate
    type: plait.scripts.shell.Commands
    commands:
      - test -f {go}
  - id: send
    type: plait.scripts.shell.Commands
    env:
      HEADER: "{{{{ outputs.header.value }}}}"
      PW: "{{{{ inputs.pw }}}}"
    commands:
      - printf '%s|%s' "$HEADER" "$PW" > {out}
"""
    )
    failed = _plait(tmp_path, "run", str(flow), "-i", f"pw={PASSWORD}", "--json")
    assert failed.returncode != 0
    execution_id = json.loads(failed.stdout)["id"]
    assert json.loads(failed.stdout)["state"] == "FAILED"

    home = tmp_path / "home"
    old = read_key_file(home / "master.key")[0].id
    assert f'"$key":"{old}"' in _documents(tmp_path)
    rotated = _plait(tmp_path, "secrets", "rotate-key")
    assert rotated.returncode == 0, rotated.stderr
    # Rotation re-sealed the executions' values as well: the old key is no longer needed.
    assert f'"$key":"{old}"' not in _documents(tmp_path)
    assert TOKEN not in _documents(tmp_path)
    assert PASSWORD not in _documents(tmp_path)
    removed = _plait(tmp_path, "secrets", "remove-key", old)
    assert removed.returncode == 0, removed.stderr
    assert old not in {k.id for k in read_key_file(home / "master.key")}

    go.touch()
    restarted = _plait(tmp_path, "executions", "restart", execution_id, "--json")
    assert restarted.returncode == 0, restarted.stderr
    assert json.loads(restarted.stdout)["state"] == "SUCCESS"
    assert out.read_text() == f"Bearer {TOKEN}:{PASSWORD.upper()}|{PASSWORD}"

    out.unlink()
    send = next(r for r in json.loads(restarted.stdout)["taskRuns"] if r["taskId"] == "send")
    again = _plait(tmp_path, "executions", "replay", execution_id, "--from", send["id"], "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["state"] == "SUCCESS"
    assert out.read_text() == f"Bearer {TOKEN}:{PASSWORD.upper()}|{PASSWORD}"


def test_remove_key_is_refused_while_execution_values_are_sealed_with_it(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        """
id: refuse
namespace: t
inputs:
  - {id: pw, type: SECRET}
tasks:
  - id: header
    type: plait.core.Return
    format: "Bearer {{ inputs.pw | upper }}"
"""
    )
    done = _plait(tmp_path, "run", str(flow), "-i", f"pw={PASSWORD}", "--json")
    assert done.returncode == 0, done.stderr
    execution_id = json.loads(done.stdout)["id"]
    key_file = tmp_path / "home" / "master.key"
    keys = read_key_file(key_file)
    old = keys[0].id
    # A new primary key put in by hand (the documented path: then `plait secrets reseal`).
    write_key_file(key_file, [MasterKey.generate(), *keys])
    refused = _plait(tmp_path, "secrets", "remove-key", old)
    assert refused.returncode != 0
    # The SECRET input and the output derived from it:
    expected = "still seals 2 value(s) (0 secret(s) of the store, 2 in executions"
    assert expected in refused.stderr, refused.stderr
    assert "plait secrets reseal" in refused.stderr
    assert old in {k.id for k in read_key_file(key_file)}

    resealed = _plait(tmp_path, "secrets", "reseal")
    assert resealed.returncode == 0, resealed.stderr
    assert f'"$key":"{old}"' not in _documents(tmp_path)
    removed = _plait(tmp_path, "secrets", "remove-key", old)
    assert removed.returncode == 0, removed.stderr

    shown = _plait(tmp_path, "executions", "replay", execution_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "SUCCESS"
    assert PASSWORD not in shown.stdout
    assert PASSWORD.upper() not in shown.stdout


def test_foreach_values_and_set_variables_from_a_secret_are_sealed_and_reach_later_tasks(
    tmp_path: Path,
) -> None:
    out, go = tmp_path / "out.txt", tmp_path / "go"
    flow = tmp_path / "flow.yaml"
    flow.write_text(
        f"""
id: loops
namespace: t
inputs:
  - {{id: pw, type: SECRET}}
tasks:
  - id: remember
    type: plait.core.SetVariables
    variables:
      auth: "Bearer {{{{ secret('TOKEN') | lower }}}}"
      nested: {{pw: "{{{{ inputs.pw | upper }}}}"}}
  - id: each
    type: plait.core.ForEach
    values: "{{{{ [secret('TOKEN') | upper, inputs.pw | replace('-', '_'), 'plain'] }}}}"
    tasks:
      - id: write
        type: plait.scripts.shell.Commands
        env:
          V: "{{{{ taskrun.value }}}}"
        commands:
          - printf '%s\\n' "$V" >> {out}
  - id: use
    type: plait.scripts.shell.Commands
    env:
      A: "{{{{ vars.auth }}}}"
      P: "{{{{ vars.nested.pw }}}}"
    commands:
      - test -f {go}
      - printf '%s|%s\\n' "$A" "$P" >> {out}
"""
    )
    done = _plait(tmp_path, "run", str(flow), "-i", f"pw={PASSWORD}", "--json")
    assert json.loads(done.stdout)["state"] == "FAILED", done.stderr  # `use` waits for `go`
    lines = out.read_text().splitlines()
    assert sorted(lines) == sorted([TOKEN.upper(), PASSWORD.replace("-", "_"), "plain"])
    stored = _documents(tmp_path)
    for form in (
        TOKEN,
        TOKEN.upper(),
        TOKEN.lower(),
        PASSWORD,
        PASSWORD.upper(),
        PASSWORD.replace("-", "_"),
    ):
        assert form not in stored, form
    # Sealed, not masked: a restart opens them again for the task that failed.
    assert "******" not in stored
    out.unlink()
    go.touch()
    execution_id = json.loads(done.stdout)["id"]
    again = _plait(tmp_path, "executions", "restart", execution_id, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["state"] == "SUCCESS"
    assert out.read_text().splitlines() == [f"Bearer {TOKEN.lower()}|{PASSWORD.upper()}"]
