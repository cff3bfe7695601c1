"""The six tasks against real subprocesses, with an in-memory context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from plait_scripts import (
    NodeCommands,
    NodeScript,
    PythonCommands,
    PythonScript,
    ShellCommands,
    ShellScript,
)
from plait_scripts.plugin import TASKS
from plait_sdk import TaskFailure, UserError, type_schema
from plait_sdk.testing import HarnessContext


async def test_python_script_outputs_metrics_logs_and_output_files(ctx: HarnessContext) -> None:
    task = PythonScript.model_validate(
        {
            "script": (
                "import json, sys\n"
                "print('hello')\n"
                "print('careful', file=sys.stderr)\n"
                "open('result.json', 'w').write('[1, 2]')\n"
                "def emit(payload): print('::' + json.dumps(payload) + '::')\n"
                "emit({'outputs': {'count': 2, 'items': ['a', 'b']}})\n"
                "emit({'outputs': {'flag': True}})\n"
                "emit({'metrics': [{'name': 'rows', 'type': 'counter', 'value': 2,"
                " 'tags': {'t': 'x'}}]})\n"
                "emit({'logs': [{'level': 'ERROR', 'message': 'from protocol'}]})\n"
            ),
            "outputFiles": ["*.json", "missing.txt"],
        }
    )
    out = await task.run(ctx)
    assert out.exit_code == 0
    assert out.vars == {"count": 2, "items": ["a", "b"], "flag": True}
    assert list(out.output_files) == ["result.json"]
    assert await ctx.storage.read_bytes(out.output_files["result.json"]) == b"[1, 2]"
    assert ctx.metrics == [("rows", 2.0, "counter", {"t": "x"})]
    assert ctx.messages("INFO") == ["hello"]
    assert "careful" in ctx.messages("WARNING")
    assert "from protocol" in ctx.messages("ERROR")
    assert any("missing.txt" in m for m in ctx.messages("WARNING"))
    assert (out.std_out_line_count, out.std_err_line_count) == (5, 1)
    # the dumped outputs use Kestra's names
    assert set(out.dump()) == {
        "exitCode", "vars", "outputFiles", "stdOutLineCount", "stdErrLineCount"
    }  # fmt: skip
    # the script file was removed from the working directory
    assert [p.name for p in ctx.working_dir.iterdir()] == ["result.json"]


async def test_python_script_can_import_an_input_file(ctx: HarnessContext) -> None:
    task = PythonScript.model_validate(
        {
            "inputFiles": {"helper.py": "def double(x):\n    return 2 * x\n"},
            "script": "import helper\nprint(helper.double(21))",
        }
    )
    await task.run(ctx)
    assert ctx.messages("INFO") == ["42"]


async def test_python_commands_with_before_commands_env_and_failure(ctx: HarnessContext) -> None:
    task = PythonCommands.model_validate(
        {
            "env": {"GREETING": "hi", "COUNT": 3},
            "beforeCommands": ["export FROM_BEFORE=yes"],
            "inputFiles": {
                "main.py": "import os, sys\nprint(os.environ['GREETING'], sys.argv[1],"
                " os.environ['COUNT'], os.environ['FROM_BEFORE'])"
            },
            "commands": "python3 main.py there",
        }
    )
    await task.run(ctx)
    assert ctx.messages("INFO") == ["hi there 3 yes"]


async def test_non_zero_exit_fails_with_the_code_and_the_end_of_stderr(ctx: HarnessContext) -> None:
    task = PythonScript(script="import sys\nprint('working')\n1 / 0")
    with pytest.raises(TaskFailure) as failure:
        await task.run(ctx)
    message = str(failure.value)
    assert message.startswith("the process exited with code 1: ZeroDivisionError: division by zero")
    assert "Traceback" in message
    assert "working" in ctx.messages("INFO")


@pytest.mark.parametrize("interpreter", [["/bin/sh", "-c"], ["bash", "-c"]])
async def test_shell_commands_fail_fast_and_exit_codes(
    ctx: HarnessContext, interpreter: list[str]
) -> None:
    failing = ShellCommands(commands=["echo one", "false", "echo never"], interpreter=interpreter)
    with pytest.raises(TaskFailure, match="exited with code 1"):
        await failing.run(ctx)
    assert "never" not in ctx.messages()
    lenient = ShellCommands(commands=["false", "echo last wins"], fail_fast=False)
    assert (await lenient.run(ctx)).exit_code == 0
    with pytest.raises(TaskFailure, match="exited with code 7: bad thing"):
        await ShellCommands(commands=["echo bad thing >&2", "exit 7"]).run(ctx)


async def test_shell_script_sees_env_and_publishes_vars(ctx: HarnessContext) -> None:
    task = ShellScript.model_validate(
        {
            "env": {"NAME": "plait"},
            "script": (
                'name="$NAME"\necho "hello $name"\necho \'::{"outputs":{"who":"\'$name\'"}}::\'\n'
            ),
        }
    )
    out = await task.run(ctx)
    assert out.vars == {"who": "plait"}
    assert ctx.messages("INFO") == ["hello plait"]


async def test_bash_specific_syntax_with_a_bash_interpreter(ctx: HarnessContext) -> None:
    task = ShellScript(script="arr=(a b c)\necho ${#arr[@]} ${arr[1]}", interpreter=["bash", "-c"])
    await task.run(ctx)
    assert ctx.messages("INFO") == ["3 b"]


async def test_warning_on_std_err_false_logs_stderr_at_info(ctx: HarnessContext) -> None:
    await ShellCommands(commands=["echo progress >&2"], warning_on_std_err=False).run(ctx)
    assert ctx.messages("INFO") == ["progress"]
    assert ctx.messages("WARNING") == []


async def test_secret_looking_env_values_are_masked_in_logs(ctx: HarnessContext) -> None:
    task = ShellCommands.model_validate(
        {
            "env": {"API_TOKEN": "tok-123456", "DB_PASSWORD": "pw-abcdef", "USER_NAME": "alice"},
            "commands": ['echo "token=$API_TOKEN pw=$DB_PASSWORD user=$USER_NAME"'],
        }
    )
    await task.run(ctx)
    assert ctx.messages("INFO") == ["token=****** pw=****** user=alice"]


async def test_plait_secrets_in_the_process_environment_do_not_reach_scripts(
    ctx: HarnessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAIT_SECRET_SHOULD_NOT_LEAK", "x")
    monkeypatch.setenv("PLAIT_MASTER_KEY", "y")
    monkeypatch.setenv("SOME_OTHER_VAR", "visible")
    task = ShellCommands(
        commands=["env | grep -E '^(PLAIT_SECRET|PLAIT_MASTER|SOME_OTHER_VAR|WORKING_DIR)' | sort"]
    )
    await task.run(ctx)
    assert ctx.messages("INFO") == [
        "SOME_OTHER_VAR=visible",
        f"WORKING_DIR={ctx.working_dir}",
    ]


async def test_input_files_inline_and_from_storage(ctx: HarnessContext) -> None:
    uri = await ctx.storage.put("upstream/data.csv", b"a,b\n1,2\n")
    task = ShellCommands.model_validate(
        {
            "inputFiles": {"conf/settings.ini": "x=1\n", "data.csv": uri},
            "commands": ["cat conf/settings.ini data.csv"],
        }
    )
    await task.run(ctx)
    assert ctx.messages("INFO") == ["x=1", "a,b", "1,2"]


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../b", "link/x"])
async def test_input_files_cannot_leave_the_working_directory(
    ctx: HarnessContext, tmp_path: Path, name: str
) -> None:
    (ctx.working_dir / "link").symlink_to(tmp_path)
    task = ShellCommands.model_validate({"inputFiles": {name: "x"}, "commands": ["true"]})
    with pytest.raises(UserError, match="inputFiles"):
        await task.run(ctx)
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "x").exists()


async def test_input_files_as_a_json_string(ctx: HarnessContext) -> None:
    task = ShellCommands.model_validate(
        {"inputFiles": json.dumps({"a.txt": "A"}), "commands": ["cat a.txt"]}
    )
    await task.run(ctx)
    assert ctx.messages("INFO") == ["A"]


async def test_output_files_globs_subdirectories_and_output_dir(ctx: HarnessContext) -> None:
    task = ShellCommands(
        commands=[
            "mkdir -p out/deep",
            "echo 1 > out/a.txt",
            "echo 2 > 'out/deep/b c.txt'",
            "echo 3 > skip.log",
            'echo 4 > "$OUTPUT_DIR/extra.txt"',
        ],
        output_files=["out/**/*.txt"],
    )
    out = await task.run(ctx)
    assert sorted(out.output_files) == ["extra.txt", "out/a.txt", "out/deep/b c.txt"]
    assert out.output_files["out/deep/b c.txt"].endswith("out/deep/b_c.txt")
    assert await ctx.storage.read_bytes(out.output_files["extra.txt"]) == b"4\n"


@pytest.mark.parametrize("pattern", ["../*", "/etc/*"])
async def test_output_file_patterns_cannot_leave_the_working_directory(
    ctx: HarnessContext, pattern: str
) -> None:
    with pytest.raises(UserError, match="outputFiles"):
        await ShellCommands(commands=["true"], output_files=[pattern]).run(ctx)


async def test_container_image_is_accepted_with_a_warning(ctx: HarnessContext) -> None:
    task = ShellCommands.model_validate(
        {
            "commands": ["echo ok"],
            "containerImage": "ubuntu:22.04",
            "taskRunner": {"type": "io.kestra.plugin.core.runner.Process"},
        }
    )
    await task.run(ctx)
    assert any("containerImage" in w for w in ctx.messages("WARNING"))
    assert ctx.messages("INFO") == ["ok"]


async def test_node_script_and_commands(ctx: HarnessContext, node: str) -> None:
    script = NodeScript(
        script=(
            "const fs = require('fs');\n"
            "console.log('node', typeof process.version);\n"
            "console.error('a warning');\n"
            "fs.writeFileSync('n.txt', 'from node');\n"
            "console.log('::' + JSON.stringify({outputs: {n: 7}}) + '::');\n"
        ),
        output_files=["n.txt"],
    )
    out = await script.run(ctx)
    assert out.vars == {"n": 7}
    assert ctx.messages("INFO") == ["node string"]
    assert ctx.messages("WARNING") == ["a warning"]
    assert await ctx.storage.read_bytes(out.output_files["n.txt"]) == b"from node"

    commands = NodeCommands.model_validate(
        {
            "inputFiles": {"main.js": "console.log(`hi ${process.argv[2]}`); process.exit(3);"},
            "commands": ["node main.js you"],
        }
    )
    with pytest.raises(TaskFailure, match="exited with code 3"):
        await commands.run(ctx)
    assert "hi you" in ctx.messages("INFO")


async def test_node_es_module_script(ctx: HarnessContext, node: str) -> None:
    task = NodeScript(
        script="import { basename } from 'node:path';\nconsole.log(basename('/a/b'));"
    )
    await task.run(ctx)
    assert ctx.messages("INFO") == ["b"]


async def test_node_missing_is_a_clean_failure(
    ctx: HarnessContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = NodeScript.model_validate({"script": "1", "env": {"PATH": "/nonexistent"}})
    with pytest.raises(TaskFailure, match=r"Node\.js is not installed"):
        await task.run(ctx)


def test_every_task_is_documented_with_examples_and_kestra_aliases() -> None:
    names = {cls.type_name for cls in TASKS}
    assert names == {
        f"plait.scripts.{lang}.{kind}"
        for lang in ("python", "shell", "node")
        for kind in ("Script", "Commands")
    }
    for cls in TASKS:
        assert cls.aliases == (cls.type_name.replace("plait.", "io.kestra.plugin."),)
        assert cls.examples, cls.type_name
        schema = type_schema(cls)
        assert schema.get("description"), cls.type_name
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{cls.type_name}.{name} has no docstring"
        outputs = schema["x-plait"]["outputs"]["properties"]
        assert set(outputs) >= {"exitCode", "vars", "outputFiles"}
