"""Generate ``registry/catalogue.json`` and its JSON Schema from the installed distributions.

``python -m plait.catalogue registry`` writes both; ``--check`` writes nothing and exits 1 when
either is missing or stale, or when the catalogue does not validate against the schema: CI runs
it (``make docs-check``) so the committed catalogue is always the packages' own metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from plait.catalogue._build import SCHEMA_FILE, CatalogueError, build_catalogue
from plait.catalogue._model import catalogue_json_schema
from plait.catalogue._search import CATALOGUE_FILE
from plait.plugins import PluginHost


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def generate(host: PluginHost) -> dict[str, str]:
    """File name -> content of the generated files."""
    return {
        CATALOGUE_FILE: render(build_catalogue(host).dump()),
        SCHEMA_FILE: render(catalogue_json_schema()),
    }


def schema_problems(catalogue: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    """Where ``catalogue`` breaks ``schema`` (JSON Schema 2020-12), empty when it conforms."""
    import jsonschema  # type: ignore[import-untyped]  # a dev tool: only the check needs it

    validator = jsonschema.Draft202012Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in sorted(validator.iter_errors(catalogue), key=lambda e: list(e.absolute_path))
    ]


def check(target: Path, generated: dict[str, str]) -> list[str]:
    problems = []
    for name, text in generated.items():
        path = target / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: out of date")
    catalogue = target / CATALOGUE_FILE
    if catalogue.is_file():
        on_disk = json.loads(catalogue.read_text(encoding="utf-8"))
        schema = json.loads(generated[SCHEMA_FILE])
        problems += [f"{catalogue}: {p}" for p in schema_problems(on_disk, schema)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plait.catalogue", description=__doc__)
    parser.add_argument("target", type=Path, help="the registry folder")
    parser.add_argument("--check", action="store_true", help="fail when the files are stale")
    args = parser.parse_args(argv)
    try:
        generated = generate(PluginHost.discover())
    except CatalogueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if args.check:
        problems = check(args.target, generated)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run `make docs` to regenerate the catalogue", file=sys.stderr)
            return 1
        return 0
    args.target.mkdir(parents=True, exist_ok=True)
    for name, text in generated.items():
        (args.target / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
