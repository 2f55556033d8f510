"""Drift stays exact at 10,000 objects (issue 12): a hand edit of any one object among them is found.

One landscape of 9,000 tables and 1,000 views is applied once to a real DuckDB file; each case
restores that file, edits one object deep inside it by hand, and plans. Whatever a plan skips to be
fast, it must still find exactly that one change.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import Landscape

SCHEMAS, TABLES, VIEWS = 20, 9_000, 1_000


@pytest.fixture(scope="module")
def large(tmp_path_factory) -> tuple[Landscape, Path]:
    root = tmp_path_factory.mktemp("large")
    landscape = Landscape(root)
    landscape.write("environments/dev/environment.yaml", "name: dev\ntenants:\n  - name: dev\n"
                    "    url: duckdb:///.tenants/dev.duckdb\n    create: true\n")
    for number in range(TABLES):
        schema = f"s{number % SCHEMAS:02}"
        landscape.write(f"environments/dev/{schema}/t{number:04}.yaml",
                        f"kind: Table\nname: t{number:04}\nschema: {schema}\nstatus: active\ncolumns:\n"
                        "  - {name: id, type: BIGINT, nullable: false}\n  - {name: label, type: VARCHAR}\n"
                        "primary_key: [id]\n")
    for number in range(VIEWS):
        schema = f"s{number % SCHEMAS:02}"
        landscape.write(f"environments/dev/{schema}/v{number:04}.yaml",
                        f"kind: View\nname: v{number:04}\nschema: {schema}\nstatus: active\n"
                        f"sql: SELECT id, upper(label) AS label FROM {schema}.t{number:04} WHERE id > 0\n")
    landscape.commit("ten thousand objects")
    applied = landscape.run("apply", "dev", "--yes", "--quiet")
    assert applied.code == 0, applied.output
    pristine = root / "pristine.duckdb"
    shutil.copy(landscape.tenant(), pristine)
    return landscape, pristine


EDITS = {
    "a column retyped": ("ALTER TABLE s07.t4327 ALTER COLUMN label TYPE INTEGER",
                         ("s07.t4327", "update", "columns changed outside the reconciler (drift)")),
    "a column added": ("ALTER TABLE s11.t7771 ADD COLUMN note VARCHAR",
                       ("s11.t7771", "update", "drops column note (added outside the reconciler)")),
    "a table dropped": ("DROP TABLE s03.t5123",
                        ("s03.t5123", "create", "missing from the tenant: dropped outside the reconciler (drift)")),
    "a view redefined": ("CREATE OR REPLACE VIEW s15.v0555 AS SELECT id, label FROM s15.t0555",
                         ("s15.v0555", "update", "changed outside the reconciler (drift)")),
    "a table renamed": ("ALTER TABLE s09.t2229 RENAME TO t2229_old",
                        ("s09.t2229", "create", "missing from the tenant: dropped outside the reconciler (drift)")),
}


@pytest.mark.parametrize("edit", EDITS)
def test_one_hand_edit_among_ten_thousand_objects_is_found(large: tuple[Landscape, Path], edit: str) -> None:
    landscape, pristine = large
    shutil.copy(pristine, landscape.tenant())
    statement, (name, action, reason) = EDITS[edit]
    with duckdb.connect(str(landscape.tenant())) as connection:
        connection.execute(statement)
    result = landscape.run("plan", "dev", "--format", "json", "--no-verify")
    assert result.code == 0, result.output
    tenant = json.loads(result.stdout)["tenants"][0]
    assert [(c["object"], c["action"], c["reason"]) for c in tenant["changes"]] == [(name, action, reason)]
    assert tenant["unmanaged"] == (["s09.t2229_old"] if edit == "a table renamed" else [])
