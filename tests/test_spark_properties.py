"""A Spark table's properties, on a real Spark Connect server (issue 29): the ones its table format asks for
(Delta's column mapping and column defaults) are the reconciler's, so a hand edit of one is drift that
`plan` and `drift` show and the next apply sets back, in place where Delta can and by a rebuild where it
cannot; every other property is a DBA's, left alone, and carried over to the new table a rebuild makes
(or, where it cannot be, the rebuild is refused naming it). Also a restore point of a Delta run killed
before its cleanup (break 7). Every verdict is read through the test's own Spark session.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import DEMO_ROWS, Landscape, landscape_on_spark
from test_delta import read_back
from test_journaled import RECONCILER

from reconciler.engines.spark import COMPILER, SparkAdapter
from reconciler.model import ObjectKey, Tenant

ENVIRONMENT = "environments/dev/environment.yaml"
MASTER = "environments/dev/sales/customer_master.yaml"
CUSTOMERS = ObjectKey("sales", "customer_master")
MAPPING = "delta.columnMapping.mode"


def on_spark(tmp_path: Path, request, table_format: str) -> tuple[Landscape, object]:
    """The demo applied to the test server with `table_format`, its rows in it; and a session of the test's."""
    url = request.getfixturevalue("delta_server" if table_format == "delta" else "spark_server")
    spark = request.getfixturevalue("spark")
    landscape = landscape_on_spark(tmp_path, url)
    landscape.edit(ENVIRONMENT, "rules:\n", f"rules:\n  table_format: {table_format}\n")
    landscape.commit(f"dev on {table_format}")
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    for statement in DEMO_ROWS:
        spark.sql(statement).collect()
    return landscape, spark


def properties(spark, table: str = "sales.customer_master") -> dict[str, str]:
    return {row.key: row.value for row in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}


def change_of(landscape: Landscape, key: ObjectKey = CUSTOMERS) -> dict:
    plan = landscape.run("plan", "dev", "--format", "json")
    assert plan.code == 0, plan.output
    [change] = [c for t in json.loads(plan.stdout)["tenants"] for c in t["changes"] if c["object"] == str(key)]
    return change


def test_a_hand_edit_of_delta_column_mapping_is_drift_set_back_in_place(tmp_path: Path, request) -> None:
    """A DBA turns column mapping off (`'none'`, which Delta allows and applies by rewriting the files):
    `plan` shows it as drift, the one statement that sets it back in place, and `drift` exits 2 naming the
    property; a DBA's own property is no change. A run that sets it back and then fails a data check is
    compensated by RESTORE over its own SET TBLPROPERTIES (the table as the DBA left it); the next apply
    sets it back, every row and the DBA's property kept, and the plan converges. The old code saw no
    change at all."""
    landscape, spark = on_spark(tmp_path, request, "delta")
    spark.sql("ALTER TABLE sales.customer_master SET TBLPROPERTIES ('owner_team' = 'finance')").collect()
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0   # a DBA's property: no change
    spark.sql(f"ALTER TABLE sales.customer_master SET TBLPROPERTIES ('{MAPPING}' = 'none')").collect()
    edited = read_back(spark, CUSTOMERS)
    assert edited[0] == f"USING delta {MAPPING}=none delta.feature.allowColumnDefaults=supported"

    change = change_of(landscape)
    assert (change["reason"], change["drift"]) == ("table properties changed outside the reconciler (drift)", True)
    assert change["statements"] == [f"ALTER TABLE `sales`.`customer_master` SET TBLPROPERTIES ('{MAPPING}' = 'name')"]
    drift = landscape.run("drift", "dev", "--format", "json")
    assert drift.code == 2, drift.output
    [changed] = json.loads(drift.stdout)[0]["changed"]
    assert [(d["field"], d["before"], d["after"]) for d in changed["details"]] == [
        (f"properties.{MAPPING}", "none", "name")]

    landscape.edit(MASTER, "  - {name: email, type: VARCHAR}",
                   "  - {name: email, type: VARCHAR}\n  - {name: note, type: VARCHAR, checks: [not_null]}")
    failed = landscape.run("apply", "dev", "--yes")
    assert failed.code == 3, failed.output
    assert "1 restored to their version before the run" in failed.stderr, failed.stderr
    assert read_back(spark, CUSTOMERS) == edited

    landscape.edit(MASTER, "\n  - {name: note, type: VARCHAR, checks: [not_null]}", "")
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert read_back(spark, CUSTOMERS) == [f"USING delta {MAPPING}=name delta.feature.allowColumnDefaults=supported",
                                           *edited[1:]]
    assert properties(spark)["owner_team"] == "finance"
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_column_mapping_delta_cannot_set_back_in_place_is_a_rebuild_that_keeps_every_row(tmp_path: Path,
                                                                                            request) -> None:
    """The table made again by hand with column mapping by id, which Delta changes to no other mode in
    place (DELTA_UNSUPPORTED_COLUMN_MAPPING_MODE_CHANGE): the plan rebuilds it (copy, prove, swap) as its
    format asks, rows and all, rather than an ALTER that would fail at apply; then it converges."""
    landscape, spark = on_spark(tmp_path, request, "delta")
    adapter = SparkAdapter(Tenant(name="dev", url=request.getfixturevalue("delta_server")), Path("."))
    with adapter.reading() as session:
        found = session.inspect().object(CUSTOMERS)
    by_id = dataclasses.replace(found, properties=((MAPPING, "id"), ("delta.feature.allowColumnDefaults", "supported")))
    spark.sql("CREATE TABLE default.kept USING parquet AS SELECT * FROM sales.customer_master").collect()
    spark.sql("DROP TABLE sales.customer_master").collect()
    spark.sql(COMPILER.create_table(CUSTOMERS, by_id)).collect()
    spark.sql("INSERT INTO sales.customer_master SELECT * FROM default.kept").collect()
    spark.sql("DROP TABLE default.kept").collect()   # `default` outlives the test
    made = read_back(spark, CUSTOMERS)
    assert made[0] == f"USING delta {MAPPING}=id delta.feature.allowColumnDefaults=supported"

    change = change_of(landscape)
    assert change["drift"] and change["reason"].startswith("table properties changed outside the reconciler (drift)")
    assert change["statements"][0].startswith("CREATE TABLE `sales`.`customer_master__reconciler_rebuild` ")
    assert f"'{MAPPING}' = 'name'" in change["statements"][0]
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert read_back(spark, CUSTOMERS) == [f"USING delta {MAPPING}=name delta.feature.allowColumnDefaults=supported",
                                           *made[1:]]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


@pytest.mark.parametrize("table_format", ["parquet", "delta"])
def test_a_rebuild_carries_over_the_properties_a_dba_set(tmp_path: Path, request, table_format: str) -> None:
    """A retype (a rebuild on either format) of a table a DBA gave properties: the new table has them too
    (the plan says it carries them over), every row kept, and the plan converges. The old code made the
    new table without them."""
    landscape, spark = on_spark(tmp_path, request, table_format)
    given = {"owner_team": "finance", "retention.days": "90",
             **({"delta.logRetentionDuration": "interval 60 days"} if table_format == "delta" else {})}
    assignments = ", ".join(f"'{name}' = '{value}'" for name, value in given.items())
    spark.sql(f"ALTER TABLE sales.customer_master SET TBLPROPERTIES ({assignments})").collect()
    rows = sorted(tuple(row) for row in spark.sql("SELECT * FROM sales.customer_master").collect())

    landscape.edit(MASTER, "{name: id, type: BIGINT, nullable: false}", "{name: id, type: \"DECIMAL(38,0)\", "
                   "nullable: false}")
    change = change_of(landscape)
    assert change["statements"][0].startswith("CREATE TABLE `sales`.`customer_master__reconciler_rebuild` ")
    carried = change["reason"].partition("; carries over ")[2].split(", ")
    assert {f"table property {name}" for name in given} <= set(carried), change["reason"]   # with Delta's features
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output

    spark.sql("REFRESH TABLE sales.customer_master").collect()
    assert given.items() <= properties(spark).items()
    assert sorted(tuple(row) for row in spark.sql("SELECT * FROM sales.customer_master").collect()) == rows
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_rebuild_that_cannot_carry_a_dba_property_over_is_refused_naming_it(tmp_path: Path, request) -> None:
    """A Delta table with a Delta property a DBA set, switched to parquet (a rebuild): the property means
    nothing on a parquet table, so the rebuild is blocked naming it (exit 3), the table untouched."""
    landscape, spark = on_spark(tmp_path, request, "delta")
    spark.sql("ALTER TABLE sales.customer_master SET TBLPROPERTIES ('delta.logRetentionDuration' = "
              "'interval 60 days')").collect()
    before = read_back(spark, CUSTOMERS)
    landscape.edit(ENVIRONMENT, "rules:\n  table_format: delta\n", "rules:\n  table_format: parquet\n")

    change = change_of(landscape)
    assert change["conflict"] and change["statements"] == []
    assert change["reason"].endswith("cannot be put back: table property delta.logRetentionDuration (Delta's, and "
                                     "the new table is parquet); remove it by hand first, or change the table in "
                                     "place"), change["reason"]   # not its table features: they go with the format
    refused = landscape.run("apply", "dev", "--yes")
    assert refused.code == 3, refused.output
    assert read_back(spark, CUSTOMERS) == before


@pytest.mark.parametrize("cleaner", ["prune-backups", "the next apply"])
def test_a_delta_restore_point_a_run_killed_before_its_cleanup_left_is_listed_and_dropped(
        tmp_path: Path, request, cleaner: str) -> None:
    """Issue 29, break 7, on Delta (tests/test_journaled.py has it on parquet): a retype's restore point is
    a copy; an apply killed after its `applied` row and before its checkpoint and cleanup leaves it listed
    by `backups`, and `prune-backups` or the next apply drops it; the table is as the run left it."""
    landscape, spark = on_spark(tmp_path, request, "delta")
    landscape.edit(MASTER, "{name: id, type: BIGINT, nullable: false}", "{name: id, type: \"DECIMAL(38,0)\", "
                   "nullable: false}")
    killed = subprocess.run([RECONCILER, "--repo", str(landscape.root), "apply", "dev", "--yes"],
                            env={**os.environ, "RECONCILER_FAULT": "SIGKILL@checkpoint"}, capture_output=True,
                            text=True)
    assert killed.returncode == -9, killed.stderr
    history = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    assert [r["outcome"] for r in history] == ["applied", "applied"]
    after = read_back(spark, CUSTOMERS)
    assert after[1] == "id decimal(38,0) NOT NULL"
    [point] = [t.name for t in spark.catalog.listTables("_reconciler_backup")]

    listed = json.loads(landscape.run("backups", "dev", "--format", "json").stdout)
    assert [(b["name"].lower(), b["run_id"], b["row_count"], b["left"]) for b in listed] == [
        (point, history[-1]["run_id"], 4, True)]
    if cleaner == "prune-backups":
        pruned = landscape.run("prune-backups", "dev", "--older-than", "90", "--yes")
        assert pruned.code == 0 and f"dropped dev: {listed[0]['name']}" in pruned.stdout, pruned.output
    else:
        cleaned = landscape.run("apply", "dev", "--yes")
        assert cleaned.code == 0, cleaned.output
        assert f"dropped 1 restore point left in _reconciler_backup by run {history[-1]['run_id']}" in cleaned.output
    assert spark.sql("SHOW TABLES IN _reconciler_backup").collect() == []
    assert json.loads(landscape.run("backups", "dev", "--format", "json").stdout) == []
    assert read_back(spark, CUSTOMERS) == after
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
