"""Delta tables on Spark: the statements a plan makes and the restore points a journaled run takes.

This machine's Spark has no Delta Lake (its jars come from Maven, which is out of reach), so what
the plan would run on a Delta table is checked as text: golden cases under tests/cases/delta/<case>/,
each a `case.yaml` (the environment's `table_format`, the table as the folder declares it, the table
as the tenant has it, its format and properties, and the formats the endpoint lacks) and the
`expected.txt` it plans: each change, its statements and row checks, and the restore point the
journaled protocol takes of each table (a copy, or a version of the table's own history). The real
Spark server checks what it can: a Delta table_format on an endpoint without Delta is refused at
plan time (tests/test_spark.py).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import Landscape

from reconciler.apply.journaled import journal
from reconciler.desired import column_types
from reconciler.desired.render import render
from reconciler.engines.catalog import HISTORY_POINT, Before, from_restore_point
from reconciler.engines.spark import COMPILER, SparkAdapter, foreign_commits
from reconciler.model import ObjectKey
from reconciler.planning.environment import Workspace
from reconciler.planning.tenant import Counts, draft
from reconciler.state import CatalogRecord, ColumnState, LiveObject, LiveState, stable_hash

CASES = Path(__file__).parent / "cases" / "delta"
UPDATE = bool(os.environ.get("RECONCILER_UPDATE_GOLDEN"))


def planned(root: Path, case: dict) -> str:
    landscape = Landscape(root)
    rules = f"\n    rules: {{table_format: {case['table_format']}}}" if case.get("table_format") else ""
    landscape.write("environments/dev/environment.yaml",
                    f"name: dev\ndialect: spark\ntenants:\n  - name: dev\n    url: sc://spark.invalid:15002{rules}\n")
    landscape.write("environments/dev/sales/orders.yaml", case["table"])
    workspace = Workspace(root)
    loaded = workspace.load("dev")
    [tenant] = loaded.environment.tenants
    desired = render(loaded, tenant)
    key = ObjectKey("sales", "orders")
    live = LiveState({}, {}, frozenset({"sales"}), unavailable_formats=tuple(
        (name, "DATA_SOURCE_NOT_FOUND") for name in case.get("unavailable", ())))
    if "live" in case:
        columns = tuple(ColumnState(name, column_types.engine_type(kind, "spark"), nullable, default)
                        for name, kind, nullable, default in case["live"]["columns"])
        found = LiveObject(key, "Table", columns, table_format=case["live"]["format"],
                           properties=tuple(sorted(case["live"].get("properties", {}).items())))
        definition = {"kind": "Table", "columns": [c.to_json() for c in columns], "primary_key": [],
                      "description": ""}
        record = CatalogRecord(key, "Table", stable_hash(definition), json.dumps(definition), "[]", None, None, "r")
        live = LiveState({key: found}, {key: record}, live.schemas, unavailable_formats=live.unavailable_formats)
    adapter = SparkAdapter(tenant, root)
    drafted = draft(adapter, desired, live)   # the tenant holds no rows: every count it asks is 0
    compiled = drafted.compile(Counts(dict.fromkeys(drafted.questions.tables, 0),
                                      dict.fromkeys(drafted.questions.queries, 0)))
    changes = compiled.plan(Counts(checks=dict.fromkeys(compiled.questions.checks, 0))).changes
    lines = []
    for change in changes:
        lines.append(f"{change.action} {change.object}{' (blocked)' if change.conflict else ''}"
                     f"{' (loses data)' if change.data_loss else ''}: {change.reason}")
        lines += [f"  {statement}" for statement in change.statements]
        lines += [f"  check: {check.query} -- {check.problem}" for check in change.checks]
    for before in journal(changes, live, "spark", lambda found, rewritten: "a copy" if rewritten else
                          f"{HISTORY_POINT}of its history", adapter.definition):
        lines.append(f"journal: {before.key} {before.kind}" + (f", restored from {before.restore_point}"
                                                                 if before.restore_point else ""))
        if before.kind == "Table":
            lines.append(f"  re-created by: {before.definition}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_a_delta_plan_matches_its_golden_statements(tmp_path: Path, case: Path) -> None:
    actual = planned(tmp_path, yaml.safe_load((case / "case.yaml").read_text()))
    if UPDATE:
        (case / "expected.txt").write_text(actual)
    assert actual == (case / "expected.txt").read_text()


def test_a_restore_in_a_tables_history_is_refused_when_another_writer_committed_since() -> None:
    """Restoring to the journaled version would undo any commit made since: only the run's own kinds
    of commit (schema changes in place, a RESTORE of an earlier attempt) may be undone."""
    history = [{"version": 7, "operation": "WRITE", "userName": "etl", "timestamp": "2026-11-30 01:00:00"},
               {"version": 6, "operation": "ADD COLUMNS", "userName": "ci", "timestamp": "2026-11-30 00:59:00"},
               {"version": 5, "operation": "CREATE TABLE", "userName": "ci", "timestamp": "2026-11-29 10:00:00"}]
    assert foreign_commits(history, 5) == ["version 7: WRITE by etl at 2026-11-30 01:00:00"]
    assert foreign_commits(history[1:], 5) == []
    assert foreign_commits(history, 7) == []


def test_a_table_comes_back_from_its_copy_as_it_was_defined() -> None:
    """A table a run dropped is re-created as it was (NOT NULL, defaults, format, properties), then
    filled from the copy; a journal of an older release, which kept no definition, from the copy alone."""
    found = LiveObject(ObjectKey("sales", "orders"), "Table",
                       (ColumnState("id", "INT", False, None), ColumnState("status", "STRING", True, "'NEW'")),
                       table_format="delta", properties=(("delta.columnMapping.mode", "name"),))
    before = Before(0, found.key, "Table", (("id", "INT", False, None), ("status", "STRING", True, "'NEW'")),
                    COMPILER.create_table(found.key, found), "sales__orders__r1")
    assert from_restore_point("spark", before) == [
        "CREATE TABLE `sales`.`orders` (`id` INT NOT NULL, `status` STRING DEFAULT 'NEW') USING delta "
        "TBLPROPERTIES ('delta.columnMapping.mode' = 'name')",
        "INSERT INTO `sales`.`orders` (`id`, `status`) SELECT `id`, `status` FROM "
        "`_reconciler_backup`.`sales__orders__r1`"]
    older = Before(0, found.key, "Table", (("id", "INT"), ("status", "STRING")), None, "sales__orders__r1")
    assert from_restore_point("spark", older) == [
        "CREATE TABLE `sales`.`orders` USING parquet AS SELECT * FROM `_reconciler_backup`.`sales__orders__r1`"]
    assert Before(0, found.key, "Table", restore_point=f"{HISTORY_POINT}12").version == 12
    assert before.version is None
