"""The committed JSON Schemas are generated from the models and describe the demo files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from reconciler.model import json_schemas

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_committed_schema_matches_the_models(name: str) -> None:
    committed = json.loads((ROOT / "schemas" / name).read_text())
    assert committed == json_schemas()[name], "run `reconciler schemas` and commit the result"


def test_demo_files_validate_against_the_committed_schemas() -> None:
    schemas = {name: json.loads((ROOT / "schemas" / name).read_text()) for name in json_schemas()}
    files = sorted((ROOT / "environments").rglob("*.yaml"))
    assert len(files) > 20
    for path in files:
        schema = schemas["environment.schema.json" if path.name == "environment.yaml" else "object.schema.json"]
        jsonschema.validate(yaml.safe_load(path.read_text()), schema)
        first = path.read_text().splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=") and \
            (path.parent / first.split("=", 1)[1]).resolve().is_file()
