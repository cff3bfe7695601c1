"""The plugin catalogue (registry/): generated, validated against its schema, and searchable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from plait.catalogue import Catalogue, build_catalogue, keywords, load_catalogue, search
from plait.catalogue.__main__ import check, generate
from plait.plugins import PluginHost
from plait_sdk import UserError

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "registry"
PLAIT = Path(sys.executable).parent / "plait"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return generate(PluginHost.discover())


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue(REGISTRY / "catalogue.json")


def test_the_committed_catalogue_is_current_and_valid(generated: dict[str, str]) -> None:
    assert check(REGISTRY, generated) == []


def test_a_stale_or_invalid_catalogue_fails_the_check(
    generated: dict[str, str], tmp_path: Path
) -> None:
    for name, text in generated.items():
        (tmp_path / name).write_text(text)
    data = json.loads(generated["catalogue.json"])
    data["packages"][0]["summary"] = "hand-edited"
    (tmp_path / "catalogue.json").write_text(json.dumps(data))
    assert check(tmp_path, generated) == [f"{tmp_path / 'catalogue.json'}: out of date"]
    data["packages"][0]["tasks"][0]["version"] = 0
    del data["packages"][1]["pluginApi"]
    (tmp_path / "catalogue.json").write_text(json.dumps(data))
    assert check(tmp_path, generated)[1:] == [
        f"{tmp_path / 'catalogue.json'}: packages/0/tasks/0/version: 0 is less than the "
        "minimum of 1",
        f"{tmp_path / 'catalogue.json'}: packages/1: 'pluginApi' is a required property",
    ]
    (tmp_path / "catalogue.schema.json").unlink()
    assert f"{tmp_path / 'catalogue.schema.json'}: missing" in check(tmp_path, generated)


def test_every_package_comes_from_its_metadata(catalogue: Catalogue) -> None:
    by_name = {p.name: p for p in catalogue.packages}
    assert sorted(by_name) == ["plait", "plait-db", "plait-http", "plait-s3", "plait-scripts"]
    http = by_name["plait-http"]
    assert http.summary.startswith("Plait connector: HTTP requests")
    assert http.plugin_api == ">=1.0,<2"
    assert http.plugins == ["http"]
    assert "rest" in http.tags
    request = next(t for t in http.tasks if t.type == "plait.http.Request")
    assert "io.kestra.plugin.core.http.Request" in request.aliases
    assert request.version == 1
    assert request.latest
    assert request.type_schema["x-plait"]["type"] == "plait.http.Request"
    assert [t.type for t in http.triggers] == ["plait.http.Trigger"]
    # Each blueprint under the package that ships it: the core's library (registry/blueprints)
    # and a connector's own, both registered through the hook.
    library = {b.id: b for b in catalogue.blueprints}
    assert len(library) >= 24
    core = library["etl.http-to-postgres"]
    assert (core.package, core.path) == ("plait", "blueprints/etl.http-to-postgres")
    own = library["db.incremental-copy-postgres-to-mariadb"]
    assert (own.package, own.path) == ("plait-db", None)
    for name, package in by_name.items():
        assert package.blueprints == sorted(b.id for b in library.values() if b.package == name)
    assert "db.incremental-copy-postgres-to-mariadb" in by_name["plait-db"].blueprints
    assert "db.incremental-copy-postgres-to-mariadb" not in by_name["plait"].blueprints
    assert http.blueprints == []


def test_a_broken_plugin_stops_the_generation() -> None:
    host = PluginHost.discover(entry_points=False)
    host.records[0].fail("boom")
    with pytest.raises(Exception, match="plugins failed to load: plait \\(core\\): boom"):
        build_catalogue(host)


def test_keywords_are_split_as_backends_write_them() -> None:
    assert keywords("http, rest,api") == ["api", "http", "rest"]
    assert keywords("s3 aws") == ["aws", "s3"]
    assert keywords(None) == []


def test_search_matches_names_tags_types_and_aliases(catalogue: Catalogue) -> None:
    assert [m.package.name for m in search(catalogue, "postgresql")] == ["plait-db"]
    kestra = search(catalogue, "io.kestra.plugin.core.log")
    assert [(m.package.name, m.types) for m in kestra] == [("plait", ["plait.core.Log"])]
    s3 = search(catalogue, "S3")
    assert [m.package.name for m in s3] == ["plait-s3"]
    assert "plait.s3.Upload" in s3[0].types
    assert search(catalogue, "no-such-thing") == []
    assert len(search(catalogue, "")) == len(catalogue.packages)


def test_a_file_that_is_no_catalogue_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "c.json"
    bad.write_text('{"catalogueVersion": 1, "packages": []}')
    with pytest.raises(UserError, match="not a Plait plugin catalogue") as caught:
        load_catalogue(bad)
    assert caught.value.file == str(bad)
    bad.write_text("{")
    with pytest.raises(UserError, match="the catalogue is not JSON"):
        load_catalogue(bad)
    with pytest.raises(UserError, match="cannot read the catalogue"):
        load_catalogue(tmp_path / "missing.json")


def test_plugins_search_command() -> None:
    proc = subprocess.run(
        [str(PLAIT), "plugins", "search", "postgres", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
    )
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["name"] == "plait-db"
    assert row["installed"] == "0.1.0"
