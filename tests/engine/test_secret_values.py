"""Values holding a secret: intact between tasks, sealed at rest, masked where people read.

Issue 11 ("Secrets"): a SECRET input transformed in a template leaked, and an output derived
from a secret reached the next task as the literal ``******``.
"""

from __future__ import annotations

import base64
import textwrap
from pathlib import Path

from backends import Backend
from plait.engine._runner import Runner
from plait.files import LocalStorageBackend
from plait.flows import State
from plait.plugins import PluginHost
from plait.secrets._backends import EnvSecretBackend, SecretResolver
from plait.storage import SqlRepository
from plait.templating import masked_view

from .conftest import SECRETS, Harness, runs

TOKEN = SECRETS["API_TOKEN"]
PASSWORD = "hunter2-Very-Secret"


async def test_transforms_of_a_secret_input_are_masked_like_those_of_secret(
    harness: Harness,
) -> None:
    ex = await harness.run(
        """
        id: transforms
        namespace: t
        inputs:
          - {id: tok, type: SECRET}
        tasks:
          - id: log
            type: plait.core.Log
            message:
              - "{{ inputs.tok | upper }}"
              - "{{ inputs.tok | replace('-', '_') }}"
              - "{{ inputs.tok | lower }}"
              - "{{ secret('API_TOKEN') | upper }}"
          - {id: upper, type: plait.core.Return, format: "{{ inputs.tok | upper }}"}
          - {id: replaced, type: plait.core.Return, format: "{{ inputs.tok | replace('-', '_') }}"}
          - {id: lower, type: plait.core.Return, format: "x{{ inputs.tok.lower() }}x"}
          - {id: sliced, type: plait.core.Return, format: "{{ (inputs.tok ~ '!')[1:] | upper }}"}
          - {id: plain, type: plait.core.Return, format: "{{ inputs.tok | length > 3 }} ok"}
        outputs:
          - {id: out, type: STRING, value: "{{ inputs.tok | upper }}"}
        """,
        {"tok": PASSWORD},
    )
    assert ex.state is State.SUCCESS, ex.error
    forms = [
        PASSWORD,
        PASSWORD.upper(),
        PASSWORD.replace("-", "_"),
        PASSWORD.lower(),
        (PASSWORD + "!")[1:].upper(),
        TOKEN.upper(),
    ]
    stored = await harness.reload(ex)
    logs = await harness.repo.logs(ex.id)
    surfaces = [stored.model_dump_json(), "\n".join(r.message for r in logs), str(ex.error)]
    for surface in surfaces:
        for form in forms:
            assert form not in surface, (form, surface[:300])
    assert [r.message for r in logs if r.task_id == "log"] == ["******"] * 4
    # The tasks themselves got the real values.
    assert runs(ex, "upper")[0].outputs["value"] == PASSWORD.upper()
    assert runs(ex, "lower")[0].outputs["value"] == f"x{PASSWORD.lower()}x"
    assert ex.outputs["out"] == PASSWORD.upper()
    assert masked_view(stored.outputs) == {"out": "******"}


async def test_an_output_holding_a_secret_feeds_later_tasks_intact(harness: Harness) -> None:
    ex = await harness.run(
        """
        id: chain
        namespace: t
        inputs:
          - {id: tok, type: SECRET}
        tasks:
          - id: header
            type: plait.core.Return
            format: "Bearer {{ secret('API_TOKEN') }}"
          - id: data
            type: plait.core.OutputValues
            values:
              nested: {auth: "{{ outputs.header.value }}", list: ["a", "{{ inputs.tok }}"]}
              plain: visible
          - {id: again, type: test.Record, value: "{{ outputs.data.values.nested.auth }}"}
          - id: loop
            type: test.Record
            value: "{% for v in outputs.data.values.nested.list %}{{ v | upper }};{% endfor %}"
          - {id: echo, type: plait.core.Log, message: "{{ outputs.loop.value ?? 'none' }}"}
        """,
        {"tok": PASSWORD},
    )
    assert ex.state is State.SUCCESS, ex.error
    from . import testplugin

    assert testplugin.CALLS["record"] == [f"Bearer {TOKEN}", f"A;{PASSWORD.upper()};"]
    stored = await harness.reload(ex)
    dumped = stored.model_dump_json()
    for form in (TOKEN, PASSWORD, PASSWORD.upper()):
        assert form not in dumped
    values = runs(stored, "data")[0].outputs["values"]
    assert values["plain"] == "visible"  # only what holds a secret is sealed
    assert values["nested"]["list"][0] == "a"
    assert set(values["nested"]["auth"]) == {"$secret", "$key"}
    assert set(values["nested"]["list"][1]) == {"$secret", "$key"}


async def _runner(backend: Backend, tmp_path: Path) -> tuple[Runner, SqlRepository]:
    repo = SqlRepository(backend.url)
    await repo.open()
    environ = {"PLAIT_SECRET_API_TOKEN": base64.b64encode(TOKEN.encode()).decode()}
    runner = Runner(
        repo,
        PluginHost.discover(),
        LocalStorageBackend(tmp_path / "storage"),
        secrets=SecretResolver([("environment", EnvSecretBackend(environ))]).get,
        poll_interval=0.05,
    )
    return runner, repo


async def test_a_script_gets_the_real_value_and_the_database_only_ciphertext(
    backend: Backend, tmp_path: Path
) -> None:
    out = tmp_path / "header.bin"
    runner, repo = await _runner(backend, tmp_path)
    try:
        flow, revision = await runner.deploy(
            textwrap.dedent(
                f"""
                id: script_env
                namespace: t
                tasks:
                  - id: header
                    type: plait.core.Return
                    format: "Bearer {{{{ secret('API_TOKEN') }}}}"
                  - id: shout
                    type: plait.core.Return
                    format: "{{{{ outputs.header.value | upper }}}}"
                  - id: write
                    type: plait.scripts.shell.Commands
                    env:
                      HEADER: "{{{{ outputs.header.value }}}}"
                      LOUD: "{{{{ outputs.shout.value }}}}"
                    commands:
                      - printf '%s|%s' "$HEADER" "$LOUD" > {out}
                      - echo "sent $HEADER"
                """
            )
        )
        ex = await runner.run(flow, revision)
        assert ex.state is State.SUCCESS, ex.error
        assert out.read_bytes() == f"Bearer {TOKEN}|BEARER {TOKEN.upper()}".encode()
        logs = await repo.logs(ex.id)
        assert "sent ******" in [r.message for r in logs]
    finally:
        await repo.close()
    rows = backend.execute("SELECT document FROM task_runs") + backend.execute(
        "SELECT document FROM executions"
    )
    raw = "\n".join(str(r[0]) for r in rows)
    assert "$secret" in raw
    for form in (TOKEN, TOKEN.upper(), "Bearer"):
        assert form not in raw
    logged = "\n".join(str(r[0]) for r in backend.execute("SELECT message FROM logs"))
    assert TOKEN not in logged
    assert TOKEN.upper() not in logged
