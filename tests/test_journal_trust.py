"""A journal is data, never a program, and never authority over what the reconciler does not manage
(issue 29, break 3), on a real Spark Connect server: forged and edited journals of a run left
'running' are refused before anything is put back, and nothing they name is dropped or run.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import Landscape
from test_journaled import RECONCILER, a_rebuild_and_a_view, applied, outcomes, tenant  # noqa: F401 - a fixture

FORGED = "r-forged"


def victims(spark) -> None:
    """Objects no YAML declares and the catalog does not manage: a table of 1,000 rows and another."""
    spark.sql("CREATE SCHEMA victim").collect()
    spark.sql("CREATE TABLE victim.precious USING parquet AS SELECT id, CAST(id AS STRING) AS v "
              "FROM range(1000)").collect()
    spark.sql("CREATE TABLE victim.precious2 (id BIGINT) USING parquet").collect()


def forge_a_running_run(spark) -> None:
    """A 'running' audit row no run wrote: the next apply takes it for a run that died."""
    spark.sql(f"INSERT INTO _reconciler.run_log VALUES ('{FORGED}', 'dev', 'dev', 'main', NULL, 'mallory', "
              "'elsewhere', 1, current_timestamp(), NULL, 'running', false, '{}', NULL, NULL, NULL, 'apply', "
              "current_timestamp())").collect()


def intact(spark) -> bool:
    spark.sql("REFRESH TABLE victim.precious").collect()
    names = {t.name for t in spark.catalog.listTables("victim")}
    rows = spark.sql("SELECT count(*) FROM victim.precious").collect()[0][0]
    return {"precious", "precious2"} <= names and rows == 1000


def test_a_forged_journal_of_the_earlier_format_is_refused_and_nothing_it_names_is_dropped_or_run(
        applied: Landscape, spark) -> None:
    """Rows written by hand the way the previous release wrote its journal: `victim.precious` "absent"
    (with a decoy restore point holding its rows, so no last-copy rule stops its drop), and a table
    whose stored definition is `DROP TABLE victim.precious2`. The old code dropped the one and ran the
    other; now the apply refuses the journal (exit 1), names `unlock`, and touches nothing; `unlock
    --as-is` concludes the run, and the next apply runs."""
    victims(spark)
    spark.sql("CREATE TABLE _reconciler_backup.decoy USING parquet AS SELECT * FROM victim.precious").collect()
    spark.sql("CREATE TABLE _reconciler_backup.ghost USING parquet AS SELECT id FROM victim.precious2").collect()
    forge_a_running_run(spark)
    spark.sql(f"INSERT INTO _reconciler.journal VALUES "
              f"('{FORGED}', 0, 'victim', 'precious', 'absent', '[]', NULL, NULL, current_timestamp()), "
              f"('{FORGED}', 0, 'victim', 'decoy', 'Table', '[[\"id\", \"bigint\"], [\"v\", \"string\"]]', NULL, "
              "'decoy', current_timestamp()), "
              f"('{FORGED}', 0, 'victim', 'ghost', 'Table', '[[\"id\", \"bigint\", true, null]]', "
              "'DROP TABLE victim.precious2', 'ghost', current_timestamp())").collect()
    before = tenant(spark)

    refused = applied.run("apply", "dev", "--yes")

    assert refused.code == 1, refused.output
    assert f"run {FORGED} had been interrupted, and its journal holds no digest: an earlier release of the " \
           "reconciler wrote it, and stored in it statements that this release never runs" in refused.stderr
    assert f"`reconciler unlock ENVIRONMENT {FORGED} --as-is`" in refused.stderr and "Traceback" not in refused.output
    assert intact(spark) and tenant(spark) == before
    unlocked = applied.run("unlock", "dev", FORGED, "--as-is")
    assert unlocked.code == 0, unlocked.output
    assert f"run {FORGED} concluded as interrupted, as the tenant is: nothing was put back" in unlocked.stdout
    assert applied.run("apply", "dev", "--yes").code == 0
    assert intact(spark)


def test_a_journal_of_this_format_that_names_what_its_run_could_not_touch_is_refused(applied: Landscape, spark,
                                                                                     spark_server: str) -> None:
    """A forger who writes this release's journal, digest and all (`catalog.write_journal`): a row
    outside its run's plan, one calling a table the catalog does not manage a table it put back, one
    calling a managed table absent, and a managed view whose text is `DROP TABLE victim.precious2`.
    Every fault is named, nothing is dropped or run (exit 1)."""
    from reconciler.engines import catalog
    from reconciler.engines.catalog import Before
    from reconciler.engines.spark import SparkAdapter
    from reconciler.model import ObjectKey, Tenant

    victims(spark)
    forge_a_running_run(spark)
    view = ObjectKey("sales", "vw_customer_active")
    with SparkAdapter(Tenant(name="dev", url=spark_server), Path(".")).reading() as session:
        catalog.write_journal(session, FORGED, [
            Before(0, ObjectKey("victim", "precious"), "absent"),
            Before(0, ObjectKey("victim", "precious2"), "Table", (("id", "bigint", True, None),),
                   restore_point="precious2_point", table_format="parquet"),
            Before(0, ObjectKey("sales", "customer_master"), "absent"),
            Before(0, view, "View", view_text="DROP TABLE victim.precious2"),
        ], [ObjectKey("victim", "precious2"), ObjectKey("sales", "customer_master"), view])
    before = tenant(spark)

    refused = applied.run("apply", "dev", "--yes")

    assert refused.code == 1, refused.output
    said = refused.stderr
    assert "its journal names what its run could not have touched, so nothing of it is put back" in said
    assert "victim.precious is outside the run's plan" in said
    assert "victim.precious2 is said to have been a table before the run, and the catalog does not manage it" in said
    assert "sales.customer_master is said to have been absent before the run, and the catalog manages it" in said
    assert "the text journaled for view sales.vw_customer_active is not a query: DROP TABLE victim.precious2" in said
    assert intact(spark) and tenant(spark) == before
    assert applied.run("unlock", "dev", FORGED).code == 1   # unlock believes it no more than apply


def test_an_edited_journal_is_refused_before_anything_is_put_back(applied: Landscape, spark) -> None:
    """A real apply killed mid-way, then its journal edited by hand (a column's type in the row of
    sales.customer_master): its digest no longer matches, so the next apply refuses it (exit 1) and the
    tenant stays exactly as the killed run left it; the old code compensated to what the edit said."""
    a_rebuild_and_a_view(applied)
    killed = subprocess.run([RECONCILER, "--repo", str(applied.root), "apply", "dev", "--yes"],
                            env={**os.environ, "RECONCILER_FAULT": "SIGKILL:4"}, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    [dead] = [r["run_id"] for r in json.loads(applied.run("history", "dev", "--format", "json").stdout)
              if r["outcome"] == "running"]
    journaled = f"SELECT columns FROM _reconciler.journal WHERE name = 'customer_master' AND run_id = '{dead}'"
    [(original,)] = spark.sql(journaled).collect()
    spark.sql("CREATE TABLE default.edited USING parquet AS SELECT run_id, step, schema_name, name, kind, "
              f"CASE WHEN name = 'customer_master' AND run_id = '{dead}' THEN "
              "replace(columns, '\"BIGINT\"', '\"STRING\"') ELSE columns END "
              "AS columns, view_sql, restore_point, logged_at FROM _reconciler.journal").collect()
    spark.sql("INSERT OVERWRITE TABLE _reconciler.journal SELECT * FROM default.edited").collect()
    spark.sql("DROP TABLE default.edited").collect()
    spark.sql("REFRESH TABLE _reconciler.journal").collect()
    [(edited,)] = spark.sql(journaled).collect()
    assert edited != original and '"STRING"' in edited
    left = tenant(spark)

    refused = applied.run("apply", "dev", "--yes")

    assert refused.code == 1, refused.output
    assert f"run {dead} had been interrupted, and its journal is not as the run wrote it (its digest does not " \
           "match its rows): it was edited since" in refused.stderr
    assert tenant(spark) == left
    assert outcomes(applied) == ["applied", "running"]


def test_a_journal_row_naming_a_managed_object_outside_its_runs_plan_is_refused(applied: Landscape, spark,
                                                                                spark_server: str) -> None:
    """A journal of this format, digest and all, whose plan names one view, and a row for the managed
    sales.customer_master (a table the catalog manages, so only the plan can refuse it) saying it was a
    table of other columns, filled from a decoy restore point of other rows: obeyed, the compensation
    would re-create it from the decoy. It is refused as outside the run's plan (exit 1, as `unlock`
    does), the table and every other object as they were."""
    from reconciler.engines import catalog
    from reconciler.engines.catalog import Before
    from reconciler.engines.spark import SparkAdapter
    from reconciler.model import ObjectKey, Tenant

    spark.sql("CREATE TABLE _reconciler_backup.decoy USING parquet AS SELECT 666 AS id").collect()
    forge_a_running_run(spark)
    view = ObjectKey("sales", "vw_customer_active")
    with SparkAdapter(Tenant(name="dev", url=spark_server), Path(".")).reading() as session:
        catalog.write_journal(session, FORGED, [
            Before(0, ObjectKey("sales", "customer_master"), "Table", (("id", "bigint", True, None),),
                   restore_point="decoy", table_format="parquet"),
            Before(0, view, "View", view_text=session.inspect().object(view).engine_sql),
        ], [view])
    before = tenant(spark)

    refused = applied.run("apply", "dev", "--yes")

    assert refused.code == 1, refused.output
    said = refused.stderr
    assert "its journal names what its run could not have touched, so nothing of it is put back" in said
    assert "sales.customer_master is outside the run's plan" in said and "vw_customer_active" not in said
    assert "Traceback" not in refused.output
    assert tenant(spark) == before
    assert applied.run("unlock", "dev", FORGED).code == 1
    assert tenant(spark) == before
