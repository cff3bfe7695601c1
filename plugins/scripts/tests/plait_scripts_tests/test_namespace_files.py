"""``namespaceFiles`` of the script tasks (Kestra's): which namespace files reach the working
directory, where, and what happens to a file already there; and ``plait:///`` URIs in commands
replaced by local copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plait_scripts import ShellCommands
from plait_sdk import UserError
from plait_sdk.testing import TaskHarness

FILES = {"scripts/etl.py": "print(1)", "scripts/lib/util.py": "x = 1", "q.sql": "select 1"}


def harness(tmp_path: Path) -> TaskHarness:
    h = TaskHarness(namespace="company.team", namespace_files=FILES, root=tmp_path / "h")
    h.namespace_files.seed({"shared.txt": "from another namespace"}, namespace="company.shared")
    return h


async def listed(tmp_path: Path, spec: dict[str, Any], work: str = "work") -> list[str]:
    h = harness(tmp_path)
    workdir = tmp_path / work
    workdir.mkdir()
    task = ShellCommands.model_validate({"commands": ["true"], "namespaceFiles": spec})
    await task.run(h.context(working_dir=workdir))
    return sorted(p.relative_to(workdir).as_posix() for p in workdir.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"enabled": True}, ["q.sql", "scripts/etl.py", "scripts/lib/util.py"]),
        ({"enabled": False}, []),
        ({"include": ["scripts/**"]}, ["scripts/etl.py", "scripts/lib/util.py"]),
        ({"include": ["scripts/*"]}, ["scripts/etl.py"]),
        ({"exclude": ["**.py"]}, ["q.sql"]),
        ({"include": ["regex:.*\\.sql"]}, ["q.sql"]),
        (
            {"namespaces": ["company.team", "company.shared"], "folderPerNamespace": True,
             "include": ["shared.txt", "q.sql"]},
            ["company.shared/shared.txt", "company.team/q.sql"],
        ),
    ],
)  # fmt: skip
async def test_the_selected_files_reach_the_working_directory(
    tmp_path: Path, spec: dict[str, Any], expected: list[str]
) -> None:
    assert await listed(tmp_path, spec) == expected


async def test_if_exists_decides_for_a_file_already_there(tmp_path: Path) -> None:
    h = harness(tmp_path)
    for mode, content in (("IGNORE", "mine"), ("OVERWRITE", "select 1"), ("WARN", "select 1")):
        workdir = tmp_path / mode
        workdir.mkdir()
        (workdir / "q.sql").write_text("mine", "utf-8")
        task = ShellCommands.model_validate(
            {"commands": ["true"], "namespaceFiles": {"include": ["q.sql"], "ifExists": mode}}
        )
        ctx = h.context(working_dir=workdir)
        await task.run(ctx)
        assert (workdir / "q.sql").read_text("utf-8") == content, mode
        assert ("replaced q.sql" in ctx.log_text) is (mode == "WARN")
    workdir = tmp_path / "fail"
    workdir.mkdir()
    (workdir / "q.sql").write_text("mine", "utf-8")
    task = ShellCommands.model_validate(
        {"commands": ["true"], "namespaceFiles": {"include": ["q.sql"], "ifExists": "FAIL"}}
    )
    with pytest.raises(UserError, match=r"q\.sql exists in the working directory"):
        await task.run(h.context(working_dir=workdir))


async def test_a_storage_uri_in_a_command_names_a_local_copy(tmp_path: Path) -> None:
    h = TaskHarness(files={"report.csv": b"a,b\n1,2\n"}, root=tmp_path / "h")
    workdir = tmp_path / "work"
    workdir.mkdir()
    uri = h.uri("report.csv")
    task = ShellCommands.model_validate(
        {"commands": [f"cat {uri}", f"test {uri} = {workdir}/report.csv"]}
    )
    ctx = h.context(working_dir=workdir)
    out = await task.run(ctx)
    assert out.exit_code == 0
    assert ctx.messages("INFO") == ["a,b", "1,2"]
