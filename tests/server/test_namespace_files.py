"""Namespace files over the API at Kestra's paths, against a live server: upload, content,
directory, stats, search, delete; refused paths, the size limit and token scopes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import aiohttp
from live_server import PLAIT, LiveServer, call

BASE = "/namespaces/company.team/files"


def form(content: bytes, name: str = "fileContent") -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field(name, content, filename="upload.bin")
    return data


async def test_upload_read_list_stat_search_and_delete(live: LiveServer) -> None:
    one = await call(
        live, "POST", BASE, params={"path": "/scripts/etl.py"}, data=form(b"print(1)\n")
    )
    assert one == {"path": "/scripts/etl.py", "version": 1}
    two = await call(live, "POST", BASE, params={"path": "/scripts/etl.py"}, data=form(b"v2"))
    assert two["version"] == 2
    await call(live, "POST", BASE, params={"path": "/top.txt"}, data=form(b"top"))
    assert await call(live, "GET", BASE, params={"path": "/scripts/etl.py"}) == "v2"
    root = await call(live, "GET", f"{BASE}/directory")
    assert [(e["fileName"], e["type"]) for e in root["results"]] == [
        ("scripts", "Directory"),
        ("top.txt", "File"),
    ]
    every = await call(live, "GET", f"{BASE}/directory", params={"recursive": "true"})
    assert [e["path"] for e in every["results"]] == ["/scripts/etl.py", "/top.txt"]
    stats = await call(live, "GET", f"{BASE}/stats", params={"path": "/scripts/etl.py"})
    assert (stats["type"], stats["size"], stats["version"]) == ("File", 2, 2)
    folder = await call(live, "GET", f"{BASE}/stats", params={"path": "/scripts"})
    assert folder["type"] == "Directory"
    found = await call(live, "GET", f"{BASE}/search", params={"q": "etl"})
    assert [e["path"] for e in found["results"]] == ["/scripts/etl.py"]
    gone = await call(live, "DELETE", BASE, params={"path": "/scripts"})
    assert gone == {"deleted": ["/scripts/etl.py"]}
    await call(live, "GET", BASE, params={"path": "/scripts/etl.py"}, expect=404)
    await call(live, "DELETE", BASE, params={"path": "/scripts"}, expect=404)
    await call(live, "DELETE", BASE, params={"path": "/"}, expect=400)


async def test_unsafe_paths_are_refused_with_a_400_naming_the_reason(live: LiveServer) -> None:
    for path, reason in (
        ("/../etc/passwd", "'..'"),
        ("a/%2e%2e/b", "'..'"),
        ("C:/x", "relative"),
        ("a\x00b", "control characters"),
        ("a\x1bb", "control characters"),
    ):
        refused = await call(live, "POST", BASE, params={"path": path}, data=form(b"x"), expect=400)
        assert reason in refused["message"], refused
    await call(live, "GET", BASE, params={"path": "../x"}, expect=400)
    await call(live, "GET", f"{BASE}/directory", params={"path": "a/../.."}, expect=400)


async def test_a_body_without_the_file_part_or_not_multipart_is_refused(
    live: LiveServer,
) -> None:
    await call(live, "POST", BASE, params={"path": "/x"}, data=form(b"x", "other"), expect=400)
    await call(live, "POST", BASE, params={"path": "/x"}, json={"a": 1}, expect=415)


async def test_scoped_tokens_see_only_their_namespace(live: LiveServer) -> None:
    await call(live, "POST", BASE, params={"path": "/secret.txt"}, data=form(b"s"))
    scoped = await call(
        live, "POST", "/tokens", expect=201,
        json={"name": "nsf", "role": "editor", "namespace": "company.other"},
    )  # fmt: skip
    token = scoped["token"]
    await call(live, "GET", BASE, params={"path": "/secret.txt"}, token=token, expect=404)
    await call(live, "POST", BASE, params={"path": "/x"}, data=form(b"x"), token=token, expect=404)
    own = "/namespaces/company.other/files"
    await call(live, "POST", own, params={"path": "/mine.txt"}, data=form(b"m"), token=token)
    assert await call(live, "GET", own, params={"path": "/mine.txt"}, token=token) == "m"
    viewer = await call(
        live, "POST", "/tokens", expect=201, json={"name": "nsf-viewer", "role": "viewer"}
    )
    await call(
        live, "POST", BASE, params={"path": "/v"}, data=form(b"v"),
        token=viewer["token"], expect=403,
    )  # fmt: skip


def plait(live: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAIT_")}
    env["PLAIT_HOME"] = str(live.home.parent / "client-home")  # never the server's own
    env.update(PLAIT_SERVER=live.url, PLAIT_TOKEN=live.token or "")
    return subprocess.run(
        [str(PLAIT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


async def test_the_cli_uploads_lists_and_deletes_through_the_server(
    live: LiveServer, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / "sql").mkdir(parents=True)
    (project / "sql" / "q.sql").write_text("select 1", "utf-8")
    (project / "main.py").write_text("print(1)", "utf-8")
    done = plait(live, "namespace", "files", "upload", "company.cli", str(project), "app")
    assert done.returncode == 0, done.stderr
    assert "uploaded company.cli:/app/sql/q.sql (version 1)" in done.stdout
    done = plait(live, "namespace", "files", "list", "company.cli", "--json")
    rows = json.loads(done.stdout)
    assert [(r["path"], r["size"], r["version"]) for r in rows] == [
        ("app/main.py", 8, 1),
        ("app/sql/q.sql", 8, 1),
    ]
    got = await call(live, "GET", "/namespaces/company.cli/files", params={"path": "/app/main.py"})
    assert got == "print(1)"
    done = plait(live, "namespace", "files", "delete", "company.cli", "app/sql")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "deleted company.cli:/app/sql/q.sql"
    done = plait(live, "namespace", "files", "delete", "company.cli", "app/sql")
    assert done.returncode == 1
    assert "HTTP 404" in done.stderr
    done = plait(live, "namespace", "files", "upload", "company.cli", str(project), "../up")
    assert done.returncode == 1
    assert "'..'" in done.stderr
    assert "Traceback" not in done.stderr
