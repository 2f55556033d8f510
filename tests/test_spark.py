"""Spark SQL tenants over Spark Connect: validate, plan and drift against a real Spark Connect
server the tests start (applying is tests/test_journaled.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest
from conftest import (DEMO, DEMO_ROWS, Landscape, a_host_nobody_may_reach, fresh_spark_session,
                      landscape_on_spark)

ENVIRONMENT = "environments/dev/environment.yaml"
VIEW = "environments/dev/sales/views/vw_customer_active.yaml"


def objects(spark) -> list[tuple[str, str, str]]:
    return sorted((schema, table.name, table.tableType) for (schema,) in spark.sql("SHOW NAMESPACES").collect()
                  for table in spark.catalog.listTables(schema))


def test_a_plan_against_an_empty_spark_tenant_creates_everything_in_spark_sql(spark_landscape: Landscape,
                                                                              spark) -> None:
    assert spark_landscape.run("validate", "dev").code == 0
    result = spark_landscape.run("plan", "dev", "--format", "json")
    assert result.code == 0, result.output
    [tenant] = json.loads(result.stdout)["tenants"]
    assert tenant["engine"] == "spark"
    creates = {c["object"]: c["statements"] for c in tenant["changes"] if c["action"] == "create"}
    assert creates["sales.customer_master"] == [
        "CREATE SCHEMA IF NOT EXISTS `sales`",
        "CREATE TABLE `sales`.`customer_master` (`id` BIGINT, `name` STRING, `email` STRING, `region` STRING, "
        "`status` STRING DEFAULT 'ACTIVE', `created_at` TIMESTAMP_NTZ) USING parquet "
        "COMMENT 'Customer master data from the ERP'"]   # NOT NULL and the key go; the description is its comment
    assert creates["sales.vw_customer_active"] == [
        "CREATE VIEW `sales`.`vw_customer_active` AS SELECT id, name, email, region, created_at "
        "FROM sales.customer_master WHERE status = 'ACTIVE' AND region = 'EU'"]   # $$REGION_PARAM rendered
    assert objects(spark) == []   # a plan never writes
    # EXPLAIN proved the schemas and tables; the views read tables the plan itself creates, which EXPLAIN
    # cannot see: not proven, and said
    assert tenant["refused"] == [] and tenant["unproven"].startswith("by EXPLAIN"), tenant["unproven"]
    assert "sales.vw_customer_active" in tenant["unproven"] and "sales.customer_master" not in tenant["unproven"]


def test_a_spark_plan_is_proven_by_explain_and_what_spark_refuses_fails_the_plan(spark_landscape: Landscape,
                                                                                  spark) -> None:
    assert spark_landscape.run("apply", "dev", "--yes").code == 0
    spark_landscape.edit(VIEW, "SELECT id,", "SELECT DISTINCT id,")
    proven = json.loads(spark_landscape.run("plan", "dev", "--format", "json").stdout)["tenants"][0]
    assert proven["refused"] == [] and [c["object"] for c in proven["changes"]] == ["sales.vw_customer_active"]
    assert "sales.vw_transaction_detail" in proven["unproven"]   # left in place over the changed view: said
    before = objects(spark)
    spark_landscape.edit(VIEW, "WHERE status", "WHERE status = 'ACTIVE' GROUP BY id HAVING status")   # Spark refuses
    refused = spark_landscape.run("plan", "dev")
    assert refused.code == 1, refused.output
    # Spark's class and its words; what its quotes hold is hidden widest first (disclosure), so no value shows
    assert "! would fail at apply: sales.vw_customer_active: [MISSING_AGGREGATION] The non-aggregating expression " \
           '"..." if you do not care which of the values within a group is returned.' in refused.stdout
    assert refused.stdout.count("SQLSTATE: 42803\n") == 1, refused.output   # the reason, not Spark's analysed plan
    assert objects(spark) == before   # EXPLAIN runs nothing


def test_a_name_spark_makes_up_never_reaches_a_view_unproven(spark_landscape: Landscape, spark) -> None:
    """Spark refuses a permanent view with an output it named itself when the view is created, which
    EXPLAIN does not reach (CREATE_PERMANENT_VIEW_WITHOUT_ALIAS). An alias list naming an unnamed
    expression is rendered as its alias, so Spark accepts the view; an unnamed expression reaching the
    output through `*` is found by analysing the query (its columns' metadata) and fails the plan."""
    assert spark_landscape.run("apply", "dev", "--yes").code == 0
    listed = "environments/dev/sales/views/vw_count_by_region.yaml"
    spark_landscape.write(listed, "kind: View\nschema: sales\nname: vw_count_by_region\nsql: |\n"
                          "  SELECT n, count(*) AS regions FROM (SELECT region, count(id) FROM sales.customer_master "
                          "GROUP BY region) AS per (region, n) GROUP BY n\n")
    applied = spark_landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert [f.name for f in spark.table("sales.vw_count_by_region").schema.fields] == ["n", "regions"]

    spark_landscape.write(listed, "kind: View\nschema: sales\nname: vw_count_by_region\nsql: |\n"
                          "  SELECT * FROM (SELECT region, count(id) FROM sales.customer_master GROUP BY region) AS per\n")
    before = objects(spark)
    refused = spark_landscape.run("plan", "dev")
    assert refused.code == 1, refused.output
    assert "! would fail at apply: sales.vw_count_by_region: [CREATE_PERMANENT_VIEW_WITHOUT_ALIAS] Spark refuses " \
           "a permanent view whose column count(id) is named by Spark itself" in refused.stdout, refused.output
    assert objects(spark) == before


def test_an_identical_table_made_by_hand_is_adopted_and_a_different_one_is_a_conflict(
        spark_landscape: Landscape, spark) -> None:
    spark.sql("CREATE SCHEMA sales")
    spark.sql("CREATE TABLE sales.customer_master (id BIGINT, name STRING, email STRING, region STRING, "
              "status STRING DEFAULT 'ACTIVE', created_at TIMESTAMP_NTZ) USING parquet")
    spark.sql("CREATE TABLE sales.customer_transactions (id BIGINT) USING parquet")
    spark.sql("CREATE VIEW sales.vw_customer_active AS SELECT id, name, email, region, created_at\n"
              "FROM sales.customer_master WHERE status = 'ACTIVE' AND region = 'EU'")   # laid out otherwise
    changes = {c["object"]: c for c in json.loads(spark_landscape.run("plan", "dev", "--format", "json").stdout)
               ["tenants"][0]["changes"]}
    adopted = "adopting an identical object that the reconciler did not create"
    assert changes["sales.customer_master"]["reason"] == adopted
    assert changes["sales.vw_customer_active"]["reason"] == adopted
    assert changes["sales.customer_transactions"]["conflict"] is True


def test_a_spark_url_without_a_port_is_refused_at_its_line(spark_landscape: Landscape) -> None:
    environment = spark_landscape.path(ENVIRONMENT)
    text = environment.read_text()
    environment.write_text(text.replace(text.split("url: ")[1].split("\n")[0], "sc://localhost"))
    result = spark_landscape.run("validate", "dev")
    assert result.code == 1
    assert (f"{ENVIRONMENT}:6:10: error[environment]: a Spark Connect tenant url is sc://host:port"
            in result.stderr), result.stderr


def test_an_endpoint_nobody_listens_on_is_said_at_once(tmp_path: Path) -> None:
    """The Spark Connect client alone retries for ten minutes; the plan says what is wrong now."""
    import socket

    with socket.socket() as probe:   # a port nothing listens on once this is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shutil.copytree(DEMO, tmp_path / "environments")
    environment = tmp_path / ENVIRONMENT
    environment.write_text(environment.read_text().replace("duckdb:///.tenants/dev.duckdb", f"sc://127.0.0.1:{port}"))
    landscape = Landscape(tmp_path)
    landscape.commit("dev on a Spark endpoint that is down")
    result = landscape.run("plan", "dev")
    assert result.code == 1
    assert f"tenant dev: cannot reach sc://127.0.0.1:{port}: Connection refused" in result.stderr


def test_one_landscape_on_duckdb_and_spark_gives_the_same_rows(landscape: Landscape, spark_server: str, spark) -> None:
    landscape.edit(ENVIRONMENT, "    create: true\n", f"    create: true\n  - name: dev-spark\n    url: {spark_server}\n")
    landscape.write("environments/dev/sales/views/vw_weekdays.yaml",   # Spark counts Sunday as 1, DuckDB as 0
                    "kind: View\nname: vw_weekdays\nschema: sales\nstatus: active\nsql: |\n"
                    "  SELECT d, dayofweek(d) AS dow, isodow(d) AS iso, extract(dow FROM d) AS edow\n"
                    "  FROM (VALUES " + ", ".join(f"(DATE '2024-01-{day:02}')" for day in range(7, 14))
                    + ") AS week(d)\n")
    landscape.write("environments/dev/sales/views/vw_channels.yaml",   # outputs each engine names itself
                    "kind: View\nname: vw_channels\nschema: sales\nstatus: active\nsql: |\n"
                    "  SELECT channel, count(*), sum(amount * 2), max(transaction_ts) IS NULL\n"
                    "  FROM sales.customer_transactions GROUP BY channel\n")
    landscape.commit("dev on both engines")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert "Tenant dev-spark (spark)" in result.stdout
    for statement in DEMO_ROWS:
        landscape.sql(statement)
        spark.sql(statement).collect()
    for view in ("vw_customer_active", "vw_transaction_detail", "vw_customer_lifetime_value",
                 "vw_customer_segmentation", "vw_weekdays", "vw_channels"):
        on_duckdb = sorted(tuple(map(str, row)) for row in landscape.sql(f"SELECT * FROM sales.{view}"))
        on_spark = sorted(tuple(map(str, row)) for row in spark.sql(f"SELECT * FROM sales.{view}").collect())
        assert on_duckdb == on_spark, view
        assert on_duckdb, view
    with duckdb.connect(str(landscape.tenant()), read_only=True) as connection:   # named alike: DuckDB's names
        named = [row[0] for row in connection.execute("DESCRIBE sales.vw_channels").fetchall()]
    assert named == ["channel", "count_star()", "sum((amount * 2))", "(max(transaction_ts) IS NULL)"]
    assert [column.name for column in spark.catalog.listColumns("sales.vw_channels")] == named
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_token_comes_from_its_variable_and_is_never_printed(spark_landscape: Landscape, spark_server: str,
                                                              monkeypatch) -> None:
    spark_landscape.edit(ENVIRONMENT, spark_server, f"{spark_server}/;token=env:DBX_TOKEN")
    spark_landscape.commit("a token for the lakehouse")
    monkeypatch.delenv("DBX_TOKEN", raising=False)
    for command in (["plan", "dev"], ["apply", "dev", "--yes"]):
        result = spark_landscape.run(*command)
        assert result.code == 1 and "environment variable DBX_TOKEN is not set" in result.stderr, result.output
    monkeypatch.setenv("DBX_TOKEN", "dapi-the-token-value")
    result = spark_landscape.run("plan", "dev")   # the client sends it; this local server does not check it
    assert result.code == 0, result.output
    assert "dapi-the-token-value" not in result.output


def test_a_pull_request_cannot_send_the_token_to_a_host_it_names(spark_landscape: Landscape, spark_server: str,
                                                                 monkeypatch) -> None:
    spark_landscape.edit(ENVIRONMENT, spark_server, "sc://127.0.0.1:1/;token=env:DBX_TOKEN")
    spark_landscape.commit("the base branch: the lakehouse with its token")
    with a_host_nobody_may_reach() as port:
        spark_landscape.edit(ENVIRONMENT, "127.0.0.1:1/", f"127.0.0.1:{port}/")   # the pull request
        monkeypatch.setenv("DBX_TOKEN", "dapi-never-sent")
        monkeypatch.setenv("RECONCILER_BASE_REF", spark_landscape.repo.head.commit.hexsha)
        result = spark_landscape.run("plan", "dev")
    assert result.code == 1
    assert "tenant dev: this change gives it another url or password" in result.stderr


@pytest.fixture
def spark_without_delta(spark_server_without_delta: str):
    yield from fresh_spark_session(spark_server_without_delta)


def test_a_delta_table_format_on_an_endpoint_without_delta_is_refused_at_plan_time(
        tmp_path: Path, spark_server_without_delta: str, spark_without_delta) -> None:
    """A server without Delta Lake: the plan asks it (EXPLAIN, which runs nothing), blocks every table
    it would make, and apply refuses (exit 3) with nothing written, never failing midway."""
    spark_landscape, spark = landscape_on_spark(tmp_path, spark_server_without_delta), spark_without_delta
    spark_landscape.edit(ENVIRONMENT, "rules:\n", "rules:\n  table_format: delta\n")
    plan = spark_landscape.run("plan", "dev", "--format", "json")
    assert plan.code == 0, plan.output
    changes = {c["object"]: c for c in json.loads(plan.stdout)["tenants"][0]["changes"]}
    assert changes["sales.customer_master"]["conflict"] is True
    assert changes["sales.customer_master"]["statements"] == []
    assert ("table_format is delta, and this Spark endpoint has no delta tables (DATA_SOURCE_NOT_FOUND)"
            in changes["sales.customer_master"]["reason"])
    assert changes["sales.vw_customer_active"]["conflict"] is False   # a view has no table format
    [tenant] = json.loads(plan.stdout)["tenants"]   # what reads a blocked table waits for it: not proven, not refused
    assert tenant["refused"] == [] and "sales.vw_customer_active" in tenant["unproven"]
    applied = spark_landscape.run("apply", "dev", "--yes")
    assert applied.code == 3, applied.output
    assert objects(spark) == []


def test_a_parquet_tenant_plans_a_switch_to_delta_as_a_rebuild(spark_landscape: Landscape, spark) -> None:
    """Tables applied as parquet, then `table_format: delta`: each table's format is read from the
    tenant and the switch is a rebuild."""
    assert spark_landscape.run("apply", "dev", "--yes").code == 0
    spark_landscape.edit(ENVIRONMENT, "rules:\n", "rules:\n  table_format: delta\n")
    changes = {c["object"]: c for c in json.loads(spark_landscape.run("plan", "dev", "--format", "json").stdout)
               ["tenants"][0]["changes"]}
    master = changes["sales.customer_master"]
    assert master["action"] == "replace" and master["reason"].startswith(
        "table format changes from parquet to delta: the table is rebuilt and its rows copied"), master
    spark_landscape.edit(ENVIRONMENT, "rules:\n  table_format: delta\n", "rules:\n  table_format: parquet\n")
    assert spark_landscape.run("plan", "dev", "--detailed-exitcode").code == 0   # parquet is what it has


def test_drift_status_and_the_report_read_a_spark_tenant(spark_landscape: Landscape, spark, tmp_path: Path) -> None:
    """What the other engines' tenants show, a Spark tenant shows: a column added by hand and a table
    nobody declared are drift (exit 2), status counts both against the applied commit, the report
    lists the tenant."""
    assert spark_landscape.run("apply", "dev", "--yes").code == 0
    spark.sql("ALTER TABLE sales.customer_master ADD COLUMN by_hand INT").collect()
    spark.sql("CREATE TABLE sales.scratch (a INT) USING parquet").collect()
    drift = spark_landscape.run("drift", "dev", "--format", "json")
    assert drift.code == 2, drift.output
    [found] = json.loads(drift.stdout)
    assert found["unmanaged"] == ["sales.scratch"]
    # a parquet table cannot drop a column in place: putting it back rebuilds the table, said as a replace
    assert [(c["object"], c["action"]) for c in found["changed"]] == [("sales.customer_master", "replace")]
    assert "by_hand" in found["changed"][0]["reason"]
    status = json.loads(spark_landscape.run("status", "--format", "json").stdout)
    [dev] = [row for row in status["tenants"] if row["environment"] == "dev"]
    assert (dev["applied_commit"], dev["drift"], dev["problem"]) == (
        spark_landscape.repo.head.commit.hexsha[:len(dev["applied_commit"] or "")], 2, None), dev   # a drifted table, an unmanaged one
    assert spark_landscape.run("report", "--out", str(tmp_path / "report")).code == 0
    html = (tmp_path / "report" / "index.html").read_text()
    assert "sales.customer_master" in html and spark_landscape.repo.head.commit.hexsha[:7] in html


def test_a_promotion_into_a_spark_environment_applies_there(landscape: Landscape, spark_server: str, spark) -> None:
    """dev on DuckDB, qa on Spark (schema sales mapped to sales_qa): what `promote` puts on its branch
    plans and applies in the Spark tenant, and qa's first apply and the promoted change both converge."""
    qa = "environments/qa/environment.yaml"
    landscape.edit(qa, "duckdb:///.tenants/qa.duckdb", spark_server)
    landscape.commit("qa on Spark")
    assert landscape.run("apply", "qa", "--yes").code == 0
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "region, created_at",
                   "region, created_at, status")
    landscape.commit("dev: status in the active view")
    assert landscape.run("promote", "dev", "qa").code == 0
    [branch] = [head.name for head in landscape.repo.heads if head.name.startswith("promote/")]
    landscape.repo.git.merge(branch, "--ff-only")
    applied = landscape.run("apply", "qa", "--yes")
    assert applied.code == 0, applied.output
    assert [c.name for c in spark.catalog.listColumns("sales_qa.vw_customer_active")][-1] == "status"
    assert landscape.run("plan", "qa", "--detailed-exitcode").code == 0


def test_check_runs_on_a_spark_tenant_reads_only_and_is_confined_by_the_policy(spark_landscape: Landscape,
                                                                              spark) -> None:
    """`reconciler check` on a Spark tenant (issue 29: exit 70, the session had no `read_only`): a row
    made by hand that breaks a check fails it (exit 1) and the audit records the check; the tenant's
    objects and rows are as they were. Spark has no read-only transaction: what confines a check
    there is the policy at validate, which refuses a function that reaches beyond its inputs."""
    master = "environments/dev/sales/customer_master.yaml"
    spark_landscape.edit(master, "  - {name: name, type: VARCHAR}",
                         "  - {name: name, type: VARCHAR, checks: [not_null]}")
    assert spark_landscape.run("apply", "dev", "--yes").code == 0
    spark.sql("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'a@x', 'EU', 'ACTIVE', NULL), "
              "(2, NULL, 'b@x', 'US', 'ACTIVE', NULL)").collect()
    def tenant() -> tuple:   # the user's schemas: the audit record goes to `_reconciler`
        return ([found for found in objects(spark) if not found[0].startswith("_reconciler")],
                sorted(map(tuple, spark.sql("SELECT * FROM sales.customer_master").collect())))
    before = tenant()

    result = spark_landscape.run("check", "dev")

    assert result.code == 1, result.output
    assert "FAIL sales.customer_master: not_null(name): failed (1 offending row)" in result.stdout
    assert tenant() == before
    last = json.loads(spark_landscape.run("history", "dev", "--format", "json").stdout)[-1]
    assert (last["operation"], last["outcome"]) == ("check", "failed")

    spark_landscape.edit(master, "primary_key: [id]", "primary_key: [id]\nchecks:\n  - {name: sneaky, sql: "
                         "\"SELECT id FROM sales.customer_master WHERE reflect('java.lang.System', 'exit', 1) IS NULL\"}")
    refused = spark_landscape.run("check", "dev")
    assert refused.code == 1 and "error[function]: check sneaky: reflect()" in refused.stderr, refused.output
    assert "Traceback" not in refused.output
