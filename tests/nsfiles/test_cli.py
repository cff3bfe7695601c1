"""``plait namespace files`` on the local home: upload (a file, a folder), list, delete, and
refused paths as one clear error."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result
from plait.cli import cli


def plait(home: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--home", str(home)], catch_exceptions=False)


def test_upload_list_and_delete_in_the_local_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = tmp_path / "hello.py"
    script.write_text("print('hi')\n", "utf-8")
    done = plait(home, "namespace", "files", "upload", "company.team", str(script), "scripts/")
    assert done.exit_code == 0, done.output
    assert done.stdout == "uploaded company.team:/scripts/hello.py (version 1)\n"
    done = plait(home, "namespace", "files", "upload", "company.team", str(script), "scripts/")
    assert "(version 2)" in done.stdout
    listed = json.loads(plait(home, "namespace", "files", "list", "company.team", "--json").stdout)
    assert [(r["path"], r["size"], r["version"]) for r in listed] == [("scripts/hello.py", 12, 2)]
    assert listed[0]["updated"].endswith("+00:00")
    done = plait(home, "namespace", "files", "delete", "company.team", "/scripts/hello.py")
    assert done.stdout == "deleted company.team:/scripts/hello.py\n"
    assert (
        json.loads(plait(home, "namespace", "files", "list", "company.team", "--json").stdout) == []
    )


def test_unsafe_destinations_and_namespaces_are_one_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = tmp_path / "x.txt"
    script.write_text("x", "utf-8")
    for namespace, destination, reason in (
        ("company.team", "../escape.txt", "'..'"),
        ("company.team", "a\x07b", "control characters"),
        ("company.team", "C:/x", "relative"),
        ("../company", "x.txt", "invalid namespace"),
    ):
        done = plait(home, "namespace", "files", "upload", namespace, str(script), destination)
        assert done.exit_code == 1
        assert reason in done.output
        assert "Traceback" not in done.output
    done = plait(home, "namespace", "files", "delete", "company.team", "/")
    assert done.exit_code == 1
    assert "refusing to delete the whole namespace" in done.output
