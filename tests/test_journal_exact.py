"""Exact means exact (issue 29, break 4), on a real Spark Connect server: a compensation brings back a
table's properties and its comments with its rows and says "as it was before" only once it compared
them, and Spark keeps the YAML's descriptions as comments, so `plan` and `drift` see a hand edit of one.
Every verdict is read through the test's own Spark session.
"""

from __future__ import annotations

import json

from conftest import Landscape
from test_journaled import ENVIRONMENT, MASTER, applied, outcomes  # noqa: F401 - a fixture

LEDGER = "environments/dev/sales/ledger.yaml"


def ledger(name: str = "ledger", amount: str = "DECIMAL(10,2)", renamed_from: str | None = None) -> str:
    renamed = f"renamed_from: {renamed_from}\n" if renamed_from else ""
    return (f"kind: Table\nname: {name}\nschema: sales\n{renamed}description: What was booked\nstatus: active\n"
            f"columns:\n  - {{name: id, type: BIGINT}}\n"
            f"  - {{name: amount, type: \"{amount}\", description: in euros}}\n  - {{name: note, type: VARCHAR}}\n")


def described(spark, table: str) -> dict:
    """A table as SHOW TBLPROPERTIES and the analyzer show it: properties, table comment, column comments,
    column types, rows."""
    spark.sql(f"REFRESH TABLE {table}").collect()
    fields = spark.table(table).schema.fields
    return {"properties": dict(tuple(row) for row in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()),
            "comment": spark.catalog.getTable(table).description,
            "column comments": {f.name: f.metadata["comment"] for f in fields if f.metadata.get("comment")},
            "columns": [(f.name, f.dataType.simpleString()) for f in fields],
            "rows": sorted(tuple(row) for row in spark.sql(f"SELECT * FROM {table}").collect())}


def test_a_compensated_retype_and_rename_bring_back_properties_and_comments_and_verify_them(applied: Landscape,
                                                                                             spark) -> None:
    """sales.ledger, its comments from the YAML and two properties set by a DBA, is retyped (a rebuild)
    and renamed, and a view the run makes over it fails on Spark (`regexp_full_match`, DuckDB's): the
    compensation re-creates the table from its restore point with both properties, the table comment and
    the column comment, checks them, and only then says the tenant is as it was. The old code brought the
    rows and types back, lost the rest, and said the same."""
    applied.write(LEDGER, ledger())
    assert applied.run("apply", "dev", "--yes").code == 0
    spark.sql("INSERT INTO sales.ledger VALUES (1, 10.50, 'a'), (2, NULL, 'b')").collect()
    spark.sql("ALTER TABLE sales.ledger SET TBLPROPERTIES ('owner_team' = 'finance', 'retention.days' = '90')"
              ).collect()
    before = described(spark, "sales.ledger")
    assert before["comment"] == "What was booked" and before["column comments"] == {"amount": "in euros"}
    assert {"owner_team": "finance", "retention.days": "90"}.items() <= before["properties"].items()
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0   # a DBA's properties are not drift

    applied.edit(ENVIRONMENT, "rules:", "allow_functions: [regexp_full_match]\nrules:")   # DuckDB's, not Spark's
    applied.write(LEDGER, ledger("ledger_v2", "DECIMAL(14,2)", renamed_from="ledger"))
    applied.write("environments/dev/sales/views/vw_ledger.yaml",
                  "kind: View\nname: vw_ledger\nschema: sales\nstatus: active\nsql: |\n"
                  "  SELECT id, note FROM sales.ledger_v2 WHERE regexp_full_match(note, '[a-z]+')\n")
    result = applied.run("apply", "dev", "--yes")

    assert result.code == 1, result.output
    assert "View sales.vw_ledger: apply failed" in result.stderr
    assert "compensated from its journal" in result.stderr and "the tenant is as it was before the run" in result.stderr
    assert described(spark, "sales.ledger") == before
    assert {t.name for t in spark.catalog.listTables("sales")} >= {"ledger"}
    assert not {"ledger_v2", "vw_ledger"} & {t.name for t in spark.catalog.listTables("sales")}
    assert outcomes(applied)[-1] == "failed"


def test_a_compensation_that_cannot_bring_a_property_back_says_what_differs() -> None:
    """The verification compares every fact the journal holds: a property, a comment, a column's comment
    that differ are each named, with what they are and were."""
    from reconciler.engines.catalog import Before
    from reconciler.model import ObjectKey
    from reconciler.state import ColumnState, LiveObject

    key = ObjectKey("sales", "ledger")
    was = LiveObject(key, "Table", (ColumnState("id", "bigint"), ColumnState("amount", "decimal(10,2)")),
                     table_format="parquet", properties=(("owner", "finance"),), comment="What was booked",
                     column_comments=(("amount", "in euros"),))
    before = Before.of(0, key, was, "point")
    assert before.differences(was) == []
    now = LiveObject(key, "Table", was.columns, table_format="parquet", comment="by hand")
    assert before.differences(now) == [
        "sales.ledger has table properties {}, had {'owner': 'finance'}",
        "sales.ledger has table comment 'by hand', had 'What was booked'",
        "sales.ledger has column comments {}, had {'amount': 'in euros'}"]
    assert before.differences(None) == ["sales.ledger is absent, was Table"]


def test_hand_edits_of_a_table_comment_and_a_column_comment_are_seen_by_plan_and_drift(applied: Landscape,
                                                                                          spark) -> None:
    """Spark keeps the YAML's descriptions as comments: the apply set them, and a hand edit of either is a
    change `plan` shows and `drift` reports (exit 2), which the next apply sets back."""
    applied.edit(MASTER, "  - {name: email, type: VARCHAR}",
                 "  - {name: email, type: VARCHAR, description: where to write}")
    assert applied.run("apply", "dev", "--yes").code == 0
    assert described(spark, "sales.customer_master")["column comments"] == {"email": "where to write"}
    assert described(spark, "sales.customer_master")["comment"] == "Customer master data from the ERP"
    assert applied.run("drift", "dev").code == 0

    spark.sql("COMMENT ON TABLE sales.customer_master IS 'by hand'").collect()
    spark.sql("ALTER TABLE sales.customer_master ALTER COLUMN email COMMENT 'also by hand'").collect()

    plan = applied.run("plan", "dev", "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert "comments changed outside the reconciler (drift)" in plan.stdout
    drift = applied.run("drift", "dev", "--format", "json")
    assert drift.code == 2, drift.output
    [changed] = json.loads(drift.stdout)[0]["changed"]
    assert {(d["field"], d["before"], d["after"]) for d in changed["details"]} == {
        ("comment", "by hand", "Customer master data from the ERP"),
        ("columns.email.comment", "also by hand", "where to write")}
    assert applied.run("apply", "dev", "--yes").code == 0
    assert described(spark, "sales.customer_master")["comment"] == "Customer master data from the ERP"
    assert described(spark, "sales.customer_master")["column comments"] == {"email": "where to write"}
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0


def test_an_adopted_spark_table_keeps_its_comments_as_its_descriptions(applied: Landscape, spark) -> None:
    """A table built by hand with comments, adopted: its YAML carries them as descriptions, so the plan
    that adopts it changes no comment, and the apply leaves them as they were."""
    spark.sql("CREATE TABLE sales.by_hand (id BIGINT COMMENT 'the key', note STRING) USING parquet "
              "COMMENT 'made by hand'").collect()
    adopted = applied.run("adopt", "dev", "--tenant", "dev")
    assert adopted.code == 0, adopted.output
    written = applied.path("environments/dev/sales/by_hand.yaml").read_text()
    assert "description: made by hand" in written and "description: the key" in written
    plan = applied.run("plan", "dev", "--format", "json")
    [change] = [c for t in json.loads(plan.stdout)["tenants"] for c in t["changes"]]
    assert change["reason"] == "adopting an identical object that the reconciler did not create"
    assert applied.run("apply", "dev", "--yes").code == 0
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0
    assert described(spark, "sales.by_hand")["comment"] == "made by hand"
    assert described(spark, "sales.by_hand")["column comments"] == {"id": "the key"}
