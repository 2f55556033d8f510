"""Delta tables on Spark: the statements a plan makes and the restore points a journaled run takes.

Golden cases under tests/cases/delta/<case>/, each a `case.yaml` (the environment's `table_format`,
the table as the folder declares it, the table as the tenant has it, its format, properties and
rows, and the formats the endpoint lacks), the `expected.txt` it plans (each change, its statements
and row checks, and the restore point the journaled protocol takes of each table: a copy, or a
version of the table's own history) and the `applied.txt` that running them on Delta leaves (the
table as another session reads it back). The statements are golden-tested as text everywhere, and
run on the test Spark server with Delta Lake (`RECONCILER_DELTA_JARS`, fetched by .ci/run): the
live table made as the case says (and read back by the adapter as the case says), its restore
points taken, the checks and statements run, the outcome read back, the plan converged, and the
compensation putting the table back exactly. A Delta table_format on an endpoint without Delta is
refused at plan time (tests/test_spark.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import DEMO_ROWS, Landscape, landscape_on_spark

from reconciler.apply.journaled import compensate, journal
from reconciler.desired import column_types, sql
from reconciler.desired.render import render
from reconciler.engines import catalog
from reconciler.engines.catalog import HISTORY_POINT, Before, from_restore_point
from reconciler.engines.spark import COMPILER, SparkAdapter
from reconciler.engines.spark_catalog import CREATED_DELTA, OWN_OPERATIONS, foreign_commits
from reconciler.model import ObjectKey, Tenant
from reconciler.planning.diff import diff
from reconciler.planning.environment import Workspace
from reconciler.planning.tenant import Counts, draft
from reconciler.sessions import StatementFailed
from reconciler.state import CatalogRecord, ColumnState, DesiredState, LiveObject, LiveState, stable_hash

CASES = Path(__file__).parent / "cases" / "delta"
UPDATE = bool(os.environ.get("RECONCILER_UPDATE_GOLDEN"))


def planned_changes(root: Path, case: dict) -> tuple[list, DesiredState, LiveState, SparkAdapter]:
    """The changes a case plans, against the live table as the case gives it (never read from a tenant)."""
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
    return changes, desired, live, adapter


def planned(root: Path, case: dict) -> str:
    changes, _, live, adapter = planned_changes(root, case)
    lines = []
    for change in changes:
        lines.append(f"{change.action} {change.object}{' (blocked)' if change.conflict else ''}"
                     f"{' (loses data)' if change.data_loss else ''}: {change.reason}")
        lines += [f"  {statement}" for statement in change.statements]
        lines += [f"  check: {check.query} -- {check.problem}" for check in change.checks]
    for before in journal(changes, live, "spark", lambda found, rewritten: "a copy" if rewritten else
                          f"{HISTORY_POINT}of its history"):
        lines.append(f"journal: {before.key} {before.kind}" + (f", restored from {before.restore_point}"
                                                                 if before.restore_point else ""))
        if before.kind == "Table":   # generated from the journal's facts, never stored in it
            lines.append(f"  re-created by: {adapter.definition(before.as_table())}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("case", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_a_delta_plan_matches_its_golden_statements(tmp_path: Path, case: Path) -> None:
    actual = planned(tmp_path, yaml.safe_load((case / "case.yaml").read_text()))
    if UPDATE:
        (case / "expected.txt").write_text(actual)
    assert actual == (case / "expected.txt").read_text()


# -- on Delta Lake ---------------------------------------------------------------------------------
TABLE = ObjectKey("sales", "orders")


def read_back(spark, key: ObjectKey = TABLE) -> list[str]:
    """A table as a session of its own reads it: its format and the properties that decide what alters
    in place, each column (type, NOT NULL, default) and its rows, sorted; `absent` when there is none."""
    name = f"`{key.schema}`.`{key.name}`"
    if not spark.catalog.tableExists(name):
        return ["absent"]
    spark.sql(f"REFRESH TABLE {name}").collect()   # another session wrote it: no stale file listing
    described = {row.col_name: row.data_type for row in spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()}
    properties = sorted(f"{row.key}={row.value}" for row in spark.sql(f"SHOW TBLPROPERTIES {name}").collect()
                        if row.key in ("delta.columnMapping.mode", "delta.feature.allowColumnDefaults"))
    lines = [" ".join([f"USING {described['Provider']}", *properties])]
    lines += [" ".join([field.name, field.dataType.simpleString(), *([] if field.nullable else ["NOT NULL"]),
                        *([f"DEFAULT {field.metadata['CURRENT_DEFAULT']}"] if "CURRENT_DEFAULT" in field.metadata
                          else [])])
              for field in spark.table(name).schema.fields]
    return lines + [repr(tuple(row)) for row in sorted(spark.sql(f"SELECT * FROM {name}").collect())]


def made_as_the_case_says(spark, case: dict) -> None:
    """The live table of a case, made on the server by hand (the reconciler never made it) with its rows;
    its schema in any case (a case's tenant has it)."""
    spark.sql("CREATE SCHEMA sales").collect()
    if "live" not in case:
        return
    found = LiveObject(TABLE, "Table", tuple(ColumnState(*column) for column in case["live"]["columns"]),
                       table_format=case["live"]["format"],
                       properties=tuple(sorted(case["live"].get("properties", {}).items())))
    spark.sql(COMPILER.create_table(TABLE, found)).collect()
    values = ", ".join("(" + ", ".join(sql.literal(value).sql("spark") for value in row) + ")" for row in case["rows"])
    spark.sql(f"INSERT INTO sales.orders VALUES {values}").collect()


@pytest.mark.parametrize("case", sorted(p for p in CASES.iterdir() if p.is_dir()), ids=lambda p: p.name)
def test_a_delta_cases_statements_run_on_delta_and_the_compensation_puts_the_table_back(
        tmp_path: Path, delta_server: str, delta_spark, case: Path) -> None:
    """The case's live table made on Delta is what the adapter reads (columns, format, properties: the
    golden plan is the one this table gets); the restore points the journaled protocol takes (a copy,
    or the version the table is at), the row checks (nothing found) and the statements run; the table
    another session reads back is `applied.txt`, and what the folder declares (the plan converges);
    then compensation puts it back as it was, columns, properties and rows."""
    spec = yaml.safe_load((case / "case.yaml").read_text())
    changes, desired, planned_live, _ = planned_changes(tmp_path, spec)
    made_as_the_case_says(delta_spark, spec)
    before = read_back(delta_spark)
    adapter = SparkAdapter(Tenant(name="dev", url=delta_server), tmp_path)
    with adapter.reading() as session:
        live = session.inspect()
        assert live.unavailable_formats == ()   # this server has Delta: the case's `unavailable` is the plan's own
        assert live.object(TABLE) == planned_live.object(TABLE)
        session.execute(f"CREATE SCHEMA IF NOT EXISTS {catalog.BACKUP_SCHEMA}")
        befores = journal(changes, live, "spark", lambda found, rewritten: adapter.restore_point(
            session, found, "r1", rewritten))
        kinds = [f"journal: {b.key} {b.kind}" + ("" if b.restore_point is None else ", restored from " + (
            f"{HISTORY_POINT}of its history" if b.version is not None else "a copy")) for b in befores]
        assert kinds == [line for line in (case / "expected.txt").read_text().splitlines()
                         if line.startswith("journal: ")]
        for restore_point in befores:   # a run copies just before the statement that first touches the table
            if restore_point.restore_point and restore_point.version is None:
                session.execute(catalog.backup_statements("spark", restore_point.key, restore_point.restore_point,
                                                          "r1", catalog.now())[-1])
        for change in changes:
            assert [session.execute(check.query)[0][0] for check in change.checks] == [0] * len(change.checks)
            for statement in change.statements:
                session.execute(statement)

        applied = "\n".join(read_back(delta_spark)) + "\n"
        if UPDATE:
            (case / "applied.txt").write_text(applied)
        assert applied == (case / "applied.txt").read_text()
        after = session.inspect()
        record = planned_live.record(TABLE) or CatalogRecord(TABLE, "Table", "", "{}", "[]", None, None, "r")
        record = dataclasses.replace(record, content_hash=desired.objects[TABLE].content_hash,
                                     definition_json=json.dumps(desired.objects[TABLE].definition))
        if not any(change.conflict for change in changes):   # a blocked plan runs nothing, and converges on nothing
            converged = dataclasses.replace(after, catalog={TABLE: record})
            assert [c.reason for c in diff(desired, converged) if not c.catalog_only] == []

        compensate(session, "r1", befores)
    assert read_back(delta_spark) == before


# Each way a declared column can differ from a live one, and the ALTER that would make it in place: the
# plan alters in place exactly where Delta accepts that ALTER, on a table made as the reconciler makes
# them (column mapping, column defaults) and on one made without (README: Engines, Spark).
KEPT = ["{name: id, type: INT, nullable: false}", "{name: status, type: STRING}"]
ALTERATIONS = {
    "an added nullable column": ([*KEPT, "{name: note, type: STRING}"], "ADD COLUMN `note` STRING"),
    "an added column with a default": ([*KEPT, "{name: priority, type: INT, default: '3'}"],
                                       "ADD COLUMN `priority` INT DEFAULT 3"),
    "an added NOT NULL column": ([*KEPT, "{name: n, type: INT, nullable: false}"], "ADD COLUMN `n` INT NOT NULL"),
    "a renamed column": ([KEPT[0], "{name: state, type: STRING, renamed_from: status}"],
                         "RENAME COLUMN `status` TO `state`"),
    "a dropped column": (KEPT[:1], "DROP COLUMN `status`"),
    "a default set": ([KEPT[0], "{name: status, type: STRING, default: \"'NEW'\"}"],
                      "ALTER COLUMN `status` SET DEFAULT 'NEW'"),
    "a dropped NOT NULL": (["{name: id, type: INT}", KEPT[1]], "ALTER COLUMN `id` DROP NOT NULL"),
    "a NOT NULL set": ([KEPT[0], "{name: status, type: STRING, nullable: false}"],
                       "ALTER COLUMN `status` SET NOT NULL"),
    "a retyped column": (["{name: id, type: BIGINT, nullable: false}", KEPT[1]], "ALTER COLUMN `id` TYPE BIGINT"),
}


@pytest.mark.parametrize("properties", [CREATED_DELTA, {}], ids=["made by the reconciler", "made without features"])
def test_what_a_plan_alters_in_place_is_what_delta_accepts_in_place(tmp_path: Path, delta_spark,
                                                                     properties: dict) -> None:
    from pyspark.errors import PySparkException

    live = {"format": "delta", "properties": properties, "columns": [["id", "INT", False, None],
                                                                     ["status", "STRING", True, None]]}
    made = COMPILER.create_table(TABLE, LiveObject(TABLE, "Table", tuple(ColumnState(*c) for c in live["columns"]),
                                                   table_format="delta", properties=tuple(properties.items())))
    delta_spark.sql("CREATE SCHEMA sales").collect()
    disagreements = []
    for number, (alteration, (columns, alter)) in enumerate(ALTERATIONS.items()):
        declared = "kind: Table\nname: orders\nschema: sales\nstatus: active\ncolumns:\n" + "".join(
            f"  - {column}\n" for column in columns)
        [change], *_ = planned_changes(tmp_path / str(number), {"table_format": "delta", "live": live,
                                                                "table": declared})
        in_place = not any("__reconciler_rebuild" in statement for statement in change.statements)
        if in_place:   # a table made without the features has them set back first (drift), which Delta allows
            set_back = () if properties else ("ALTER TABLE `sales`.`orders` SET TBLPROPERTIES "
                                              "('delta.columnMapping.mode' = 'name', "
                                              "'delta.feature.allowColumnDefaults' = 'supported')",)
            assert change.statements == (*set_back, f"ALTER TABLE `sales`.`orders` {alter}"), alteration
        delta_spark.sql("DROP TABLE IF EXISTS sales.orders").collect()
        delta_spark.sql(made).collect()
        try:
            delta_spark.sql(f"ALTER TABLE `sales`.`orders` {alter}").collect()
            said = None
        except PySparkException as error:
            said = str(error).strip().splitlines()[0]
        if in_place != (said is None):
            disagreements.append(f"{alteration}: the plan {'alters in place' if in_place else 'rebuilds'}, "
                                 f"Delta {'accepts' if said is None else 'refuses'} {alter} {said or ''}")
    assert disagreements == []


def test_the_commits_a_run_makes_in_place_are_the_ones_a_compensation_restores_over(delta_server: str,
                                                                                     delta_spark) -> None:
    """DESCRIBE HISTORY names each in-place ALTER a plan makes with an operation in OWN_OPERATIONS, and
    OWN_OPERATIONS holds nothing more (what else it held, another writer's commit, would be undone
    unsaid); the restore from history brings back the journaled version, a renamed and a dropped
    column's values with it; another writer's commit since stops it, the table untouched."""
    delta_spark.sql("CREATE SCHEMA sales").collect()
    delta_spark.sql(COMPILER.create_table(TABLE, LiveObject(TABLE, "Table", (
        ColumnState("id", "INT", False, None), ColumnState("status", "STRING", True, None),
        ColumnState("memo", "STRING", True, None)), table_format="delta",
        properties=tuple(CREATED_DELTA.items())))).collect()
    delta_spark.sql("INSERT INTO sales.orders VALUES (1, 'NEW', 'a'), (2, 'SHIPPED', 'b')").collect()
    before = read_back(delta_spark)
    in_place = [ALTERATIONS[alteration][1] for alteration in (   # the renamed column last: the others name it
        "an added nullable column", "a default set", "a dropped NOT NULL", "a renamed column")]
    adapter = SparkAdapter(Tenant(name="dev", url=delta_server), Path("."))
    with adapter.reading() as session:
        journaled = Before(0, TABLE, "Table", restore_point=adapter.restore_point(
            session, session.inspect().object(TABLE), "r1", rewritten=False))   # its version now: no copy
        for alter in [*in_place, "DROP COLUMN `memo`"]:
            session.execute(f"ALTER TABLE `sales`.`orders` {alter}")
        history = [row.asDict() for row in delta_spark.sql("DESCRIBE HISTORY sales.orders").collect()]
        made = {row["operation"] for row in history if row["version"] > journaled.version}
        assert made | {"RESTORE"} == OWN_OPERATIONS
        assert foreign_commits(history, journaled.version, "r1") == []
        adapter.restore_from_history(session, journaled, "r1")
        assert read_back(delta_spark) == before   # the renamed column's values and the dropped one's are back

        session.execute("ALTER TABLE `sales`.`orders` RENAME COLUMN `status` TO `state`")
        delta_spark.sql("INSERT INTO sales.orders VALUES (3, 'LATE', 'c')").collect()   # another writer
        changed = read_back(delta_spark)
        with pytest.raises(StatementFailed, match=r"was written by another since version \d+ \(version \d+: WRITE by "):
            adapter.restore_from_history(session, journaled, "r1")
    assert read_back(delta_spark) == changed


# -- the demo on Delta, through the command line ------------------------------------------------------
ENVIRONMENT = "environments/dev/environment.yaml"
TRANSACTIONS = "environments/dev/sales/customer_transactions.yaml"
DETAIL = "environments/dev/sales/views/vw_transaction_detail.yaml"
SCORING = "environments/dev/integration/df_segment_scoring.yaml"


@pytest.fixture
def delta_landscape(tmp_path: Path, delta_server: str, delta_spark) -> Landscape:
    """The demo with dev on the test server, `rules: {table_format: delta}`, committed."""
    landscape = landscape_on_spark(tmp_path, delta_server)
    landscape.edit(ENVIRONMENT, "rules:\n", "rules:\n  table_format: delta\n")
    landscape.commit("dev on Delta")
    return landscape


def sales(spark) -> dict[str, list[str]]:
    """Every table of the sales schema as `read_back` gives it, and every view's text."""
    return {table.name: read_back(spark, ObjectKey("sales", table.name)) if table.tableType != "VIEW" else
            [spark.sql(f"SHOW CREATE TABLE sales.{table.name}").collect()[0][0]]
            for table in spark.catalog.listTables("sales")}


def test_the_demo_applies_on_delta_and_converges(delta_landscape: Landscape, delta_spark) -> None:
    plan = delta_landscape.run("plan", "dev", "--format", "json")
    assert plan.code == 0, plan.output
    [tenant] = json.loads(plan.stdout)["tenants"]
    assert tenant["refused"] == [] and not any(change["conflict"] for change in tenant["changes"])
    creates = {c["object"]: c["statements"] for c in tenant["changes"]}
    assert creates["sales.customer_master"][-1] == (
        "CREATE TABLE `sales`.`customer_master` (`id` BIGINT NOT NULL, `name` STRING, `email` STRING, `region` STRING, "
        "`status` STRING DEFAULT 'ACTIVE', `created_at` TIMESTAMP_NTZ) USING delta COMMENT 'Customer master data "
        "from the ERP' TBLPROPERTIES ('delta.columnMapping.mode' = 'name', 'delta.feature.allowColumnDefaults' = "
        "'supported')")   # its description is its comment
    applied = delta_landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    for statement in DEMO_ROWS:
        delta_spark.sql(statement).collect()
    assert delta_landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    tables = sales(delta_spark)
    assert tables["customer_master"][:2] == [
        "USING delta delta.columnMapping.mode=name delta.feature.allowColumnDefaults=supported", "id bigint NOT NULL"]
    assert tables["customer_transactions"][0].startswith("USING delta ")
    assert delta_spark.sql("SELECT count(*) FROM sales.vw_customer_segmentation").collect()[0][0] == 2   # EU, active


def test_in_place_changes_on_delta_are_put_back_from_history_or_applied_keeping_every_row(
        delta_landscape: Landscape, delta_spark) -> None:
    """A renamed column, a default, a dropped NOT NULL and an added column, altered in place: a failing
    data check puts the table back with RESTORE to its version before the run (no copy taken), rows
    and all; without it the same change applies, with a dropped column too, and the plan converges."""
    delta_landscape.edit(TRANSACTIONS, "  - {name: channel, type: VARCHAR}\n",
                         "  - {name: channel, type: VARCHAR}\n  - {name: legacy_code, type: VARCHAR}\n")
    assert delta_landscape.run("apply", "dev", "--yes").code == 0
    for statement in DEMO_ROWS:
        delta_spark.sql(statement.replace("sales.customer_transactions VALUES", "sales.customer_transactions (id, "
                                          "customer_id, amount, currency, channel, transaction_ts) VALUES")).collect()
    delta_spark.sql("UPDATE sales.customer_transactions SET legacy_code = 'L' || id").collect()
    before = sales(delta_spark)
    rows = sorted(tuple(row) for row in delta_spark.sql("SELECT * FROM sales.customer_transactions").collect())

    delta_landscape.edit(TRANSACTIONS, "{name: customer_id, type: BIGINT, nullable: false}",
                         "{name: customer_id, type: BIGINT}")
    delta_landscape.edit(TRANSACTIONS, "{name: currency, type: VARCHAR}",
                         "{name: currency, type: VARCHAR, default: \"'EUR'\"}")
    delta_landscape.edit(TRANSACTIONS, "{name: channel, type: VARCHAR}",
                         "{name: sales_channel, type: VARCHAR, renamed_from: channel}")
    delta_landscape.edit(DETAIL, "t.channel,", "t.sales_channel AS channel,")
    delta_landscape.edit(SCORING, "currency, channel,", "currency, sales_channel,")
    delta_landscape.edit(TRANSACTIONS, "  - {name: legacy_code, type: VARCHAR}\n", "  - {name: legacy_code, "
                         "type: VARCHAR}\n  - {name: note, type: VARCHAR, checks: [not_null]}\n")
    plan = delta_landscape.run("plan", "dev", "--format", "json")
    assert plan.code == 0, plan.output
    [tenant] = json.loads(plan.stdout)["tenants"]
    [altered] = [c["statements"] for c in tenant["changes"] if c["object"] == "sales.customer_transactions"]
    assert altered == [f"ALTER TABLE `sales`.`customer_transactions` {alter}" for alter in (
        "RENAME COLUMN `channel` TO `sales_channel`", "ALTER COLUMN `currency` SET DEFAULT 'EUR'",
        "ALTER COLUMN `customer_id` DROP NOT NULL", "ADD COLUMN `note` STRING")]   # in place: no copy, no rebuild
    failed = delta_landscape.run("apply", "dev", "--yes")
    assert failed.code == 3, failed.output
    assert "not_null(note): failed (4 offending rows)" in failed.stderr
    assert "compensated from its journal" in failed.stderr and "1 restored to their version before the run" \
        in failed.stderr, failed.stderr
    assert sales(delta_spark) == before

    delta_landscape.edit(TRANSACTIONS, "{name: note, type: VARCHAR, checks: [not_null]}", "{name: note, type: VARCHAR}")
    delta_landscape.edit(TRANSACTIONS, "  - {name: legacy_code, type: VARCHAR}\n", "")
    [tenant] = json.loads(delta_landscape.run("plan", "dev", "--format", "json").stdout)["tenants"]
    [altered] = [c["statements"] for c in tenant["changes"] if c["object"] == "sales.customer_transactions"]
    assert all(statement.startswith("ALTER TABLE `sales`.`customer_transactions` ") for statement in altered), altered
    applied = delta_landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.customer_transactions")
    assert applied.code == 0, applied.output
    assert delta_landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    assert sales(delta_spark)["customer_transactions"] == [
        "USING delta delta.columnMapping.mode=name delta.feature.allowColumnDefaults=supported",
        "id bigint NOT NULL", "customer_id bigint", "amount decimal(18,2)", "currency string DEFAULT 'EUR'",
        "sales_channel string", "transaction_ts timestamp_ntz", "note string",
        *[repr(row[:5] + row[6:] + (None,)) for row in rows]]   # legacy_code gone, note NULL


def test_a_restore_in_a_tables_history_is_refused_when_another_writer_committed_since() -> None:
    """Restoring to the journaled version would undo any commit made since: only the run's own kinds
    of commit (schema changes in place, a RESTORE of an earlier attempt) may be undone."""
    history = [{"version": 7, "operation": "WRITE", "userName": "etl", "timestamp": "2026-11-30 01:00:00"},
               {"version": 6, "operation": "ADD COLUMNS", "userName": "ci", "timestamp": "2026-11-30 00:59:00"},
               {"version": 5, "operation": "CREATE TABLE", "userName": "ci", "timestamp": "2026-11-29 10:00:00"}]
    assert foreign_commits(history, 5, "r1") == ["version 7: WRITE by etl at 2026-11-30 01:00:00"]
    assert foreign_commits(history[1:], 5, "r1") == []
    assert foreign_commits(history, 7, "r1") == []
    # a commit tagged by the run is its own; one tagged by any other run, or by a forger naming another, is not
    tagged = [{**history[0], "userMetadata": "reconciler run r1"}]
    assert foreign_commits(tagged, 5, "r1") == []
    assert foreign_commits(tagged, 5, "r2") == ["version 7: WRITE by etl at 2026-11-30 01:00:00"]
    assert foreign_commits([{**history[0], "userMetadata": "reconciler run r12"}], 5, "r1") != []
    # a run sets back only what a Delta table is made with (the history lower-cases some names); any
    # other SET TBLPROPERTIES is another writer's
    set_back = {"version": 8, "operation": "SET TBLPROPERTIES", "userName": "ci", "timestamp": "t",
                "operationParameters": {"properties": '{"delta.feature.allowcolumndefaults":"supported"}'}}
    by_hand = {**set_back, "version": 9, "operationParameters": {"properties": '{"owner_team":"finance"}'}}
    assert foreign_commits([set_back], 7, "r1") == []
    assert foreign_commits([set_back, by_hand], 7, "r1") == ["version 9: SET TBLPROPERTIES by ci at t"]


def test_a_table_comes_back_from_its_copy_as_it_was_defined() -> None:
    """A table a run dropped is re-created as the journal's facts say it was (NOT NULL, defaults, format,
    every property a user set, its comment and its columns'), by a statement generated from them, then
    filled from the copy."""
    found = LiveObject(ObjectKey("sales", "orders"), "Table",
                       (ColumnState("id", "INT", False, None), ColumnState("status", "STRING", True, "'NEW'")),
                       table_format="delta", properties=(("delta.columnMapping.mode", "name"), ("team", "it's")),
                       comment="orders, one a row", column_comments=(("status", "where it is"),))
    before = Before.of(0, found.key, found, "sales__orders__r1")
    assert before.as_table() == found
    adapter = SparkAdapter(Tenant(name="dev", url="sc://localhost:1"), Path("."))
    assert from_restore_point("spark", before, adapter.definition(before.as_table())) == [
        "CREATE TABLE `sales`.`orders` (`id` INT NOT NULL, `status` STRING DEFAULT 'NEW' COMMENT 'where it is') "
        "USING delta COMMENT 'orders, one a row' TBLPROPERTIES ('delta.columnMapping.mode' = 'name', "
        "'team' = 'it\\'s')",
        "INSERT INTO `sales`.`orders` (`id`, `status`) SELECT `id`, `status` FROM "
        "`_reconciler_backup`.`sales__orders__r1`"]
    assert Before(0, found.key, "Table", restore_point=f"{HISTORY_POINT}12").version == 12
    assert before.version is None
