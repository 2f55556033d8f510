"""A green plan applies (issue 11): columns are bound with sqlglot against what the landscape declares.

The golden case tests/cases/invalid/columns_that_do_not_bind shows the diagnostics together (a
misspelled column, a misspelled qualified one, an ambiguous one, a data flow inserting into a
column its target lacks, and what reads a view that no longer exposes a column).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, EngineLandscape, Landscape

TRANSACTIONS = "environments/dev/sales/customer_transactions.yaml"
MASTER = "environments/dev/sales/customer_master.yaml"
FLOW = "environments/dev/integration/df_customer_enrichment.yaml"
GENERATOR = ROOT.parent / "shared" / "bench" / "gen_landscape.py"


def test_a_renamed_column_still_read_downstream_fails_the_plan_at_its_line(
        engine_landscape: EngineLandscape) -> None:
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    before = landscape.state()
    landscape.edit(TRANSACTIONS, "{name: amount,", "{name: total, renamed_from: amount,")
    result = landscape.run("plan", "dev")
    assert result.code == 1
    assert ("environments/dev/sales/views/vw_transaction_detail.yaml:9:12: error[column]: column t.amount does "
            "not exist: sales.customer_transactions has no column amount") in result.stderr
    assert "df_segment_scoring.yaml:11:61: error[column]: column amount does not exist" in result.stderr
    assert landscape.state() == before


def test_a_data_flow_inserting_into_a_renamed_column_is_refused(landscape: Landscape) -> None:
    landscape.edit(MASTER, "{name: email, type: VARCHAR}", "{name: mail, type: VARCHAR, renamed_from: email}")
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "SELECT id, name, email,",
                   "SELECT id, name, mail AS email,")
    result = landscape.run("validate", "dev")
    assert result.code == 1
    assert ("environments/dev/integration/df_customer_enrichment.yaml:11:48: error[column]: column email does not "
            "exist in sales.customer_master (did you mean mail?)") in result.stderr, result.stderr
    landscape.edit(FLOW, "(id, name, email,", "(id, name, mail,")
    assert landscape.run("validate", "dev").code == 0


def test_a_data_flow_selecting_fewer_values_than_it_inserts_is_refused(landscape: Landscape) -> None:
    landscape.edit(FLOW, "SELECT id, name, email, region, 'ACTIVE', created_at",
                   "SELECT id, name, email, region, created_at")
    result = landscape.run("validate", "dev")
    assert result.code == 1
    assert ("df_customer_enrichment.yaml:11:21: error[column]: the SELECT gives 5 values for 6 of the columns it "
            "lists") in result.stderr, result.stderr


def test_a_select_star_view_exposes_its_source_columns_to_its_readers(landscape: Landscape) -> None:
    landscape.write("environments/dev/sales/views/vw_all.yaml",
                    "kind: View\nname: vw_all\nschema: sales\nsql: SELECT * FROM sales.customer_master\n")
    landscape.write("environments/dev/sales/views/vw_reads_all.yaml",
                    "kind: View\nname: vw_reads_all\nschema: sales\nsql: SELECT email, nope FROM sales.vw_all\n")
    result = landscape.run("validate", "dev")
    assert result.code == 1
    assert "vw_reads_all.yaml:4:20: error[column]: column nope does not exist in sales.vw_all" in result.stderr
    assert "email" not in result.stderr


@pytest.mark.skipif(not GENERATOR.exists(), reason="the landscape generator lives in ../shared/bench (CI has it)")
def test_no_column_problem_is_invented_in_a_generated_landscape(tmp_path: Path) -> None:
    """CTEs, joins, GROUP BY with aliases, HAVING, CASE: 300 objects a real engine accepts bind cleanly."""
    subprocess.run([sys.executable, str(GENERATOR), "--objects", "300", "--out", str(tmp_path)], check=True,
                   capture_output=True)
    result = subprocess.run([str(Path(sys.executable).parent / "reconciler"), "--repo", str(tmp_path / "landscape"),
                             "validate"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_round_of_a_double_runs_on_postgresql_too(engine_landscape: EngineLandscape) -> None:
    """ROUND(double, n) does not exist in PostgreSQL; rendering for it casts the argument to NUMERIC."""
    landscape = engine_landscape
    landscape.write("environments/dev/sales/metrics.yaml", "kind: Table\nname: metrics\nschema: sales\n"
                    "columns:\n  - {name: id, type: BIGINT}\n  - {name: ratio, type: DOUBLE}\n")
    landscape.write("environments/dev/sales/views/vw_metrics.yaml", "kind: View\nname: vw_metrics\nschema: sales\n"
                    "sql: SELECT id, ROUND(ratio * 1.1, 2) AS r FROM sales.metrics\n")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    landscape.sql("INSERT INTO sales.metrics VALUES (1, 1.2345)")
    assert [float(r) for (r,) in landscape.sql("SELECT r FROM sales.vw_metrics")] == [1.36]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def tenant_bytes_or_catalog(landscape: EngineLandscape):
    """The tenant as bytes (DuckDB) or its catalog's every relation and file (PostgreSQL)."""
    import hashlib

    if landscape.engine == "duckdb":
        return hashlib.sha256(landscape.tenant().read_bytes()).hexdigest()
    return landscape.sql("SELECT c.relname, c.relkind, c.relfilenode FROM pg_class c JOIN pg_namespace n "
                         "ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', "
                         "'pg_toast') ORDER BY 1")


def test_the_plan_is_proven_on_a_shadow_and_a_refused_statement_fails_it(engine_landscape: EngineLandscape) -> None:
    """A function called with arguments the engine refuses: no static check can know; the shadow run does, at plan time."""
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "SELECT id, name,",
                   "SELECT id, name, to_json(id, id) AS score,")
    before, state = tenant_bytes_or_catalog(landscape), landscape.state()

    plan = landscape.run("plan", "dev")
    assert plan.code == 1, plan.output
    assert "! would fail at apply: sales.vw_customer_active:" in plan.stdout and "to_json" in plan.stdout
    assert '"vw_customer_active" AS SELECT' in plan.stdout   # the statement
    markdown = landscape.run("plan", "dev", "--format", "markdown")
    assert markdown.code == 1 and "### Would fail at apply" in markdown.stdout
    refused = json.loads(landscape.run("plan", "dev", "--format", "json").stdout)["tenants"][0]["refused"]
    assert [r["object"] for r in refused] == ["sales.vw_customer_active"]
    assert tenant_bytes_or_catalog(landscape) == before and landscape.state() == state   # never written

    unproven = landscape.run("plan", "dev", "--no-verify")
    assert unproven.code == 0 and "would fail" not in unproven.stdout


def test_the_shadow_binds_a_view_the_plan_leaves_in_place(engine_landscape: EngineLandscape) -> None:
    landscape = engine_landscape
    landscape.write("environments/dev/sales/notes.yaml", "kind: Table\nname: notes\nschema: sales\n"
                    "columns:\n  - {name: id, type: BIGINT}\n  - {name: note, type: VARCHAR}\n")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("CREATE VIEW sales.loud_notes AS SELECT upper(note) AS loud FROM sales.notes")   # a DBA's
    landscape.edit("environments/dev/sales/notes.yaml", "{name: note, type: VARCHAR}", "{name: note, type: INTEGER}")
    plan = landscape.run("plan", "dev")
    if landscape.engine == "duckdb":   # the retype runs; binding the view left in place fails
        assert plan.code == 1, plan.output
        assert "! would fail at apply: sales.loud_notes:" in plan.stdout
    else:   # PostgreSQL will not retype a column a view reads: said at plan time, not found by the shadow
        assert plan.code == 0, plan.output
        assert ("blocked: unmanaged view sales.loud_notes reads it and the engine will not alter it under "
                "that view") in plan.stdout
        before = landscape.state()
        refused = landscape.run("apply", "dev", "--yes")
        assert refused.code == 3 and "sales.loud_notes" in refused.stderr
        assert landscape.state() == before


def test_every_plan_shows_which_columns_read_a_changed_column(landscape: Landscape) -> None:
    """Column-level impact, from the columns each view and data flow was bound to: direct readers,
    then, through every view column computed from it (renamed or aggregated too), what reads that:
    amount -> vw_transaction_detail.amount -> SUM(amount) AS revenue -> segment -> the data flow."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(TRANSACTIONS, '{name: amount, type: "DECIMAL(18,2)"', '{name: amount, type: "DECIMAL(20,2)"')
    landscape.edit(TRANSACTIONS, "{name: channel,", "{name: sales_channel, renamed_from: channel,")
    landscape.edit("environments/dev/sales/views/vw_transaction_detail.yaml", "t.channel", "t.sales_channel AS channel")
    landscape.edit("environments/dev/integration/df_segment_scoring.yaml", "currency, channel,",
                   "currency, sales_channel,")
    plan = landscape.run("plan", "dev")
    assert plan.code == 0, plan.output
    assert ("> amount (type DECIMAL(18, 2) -> DECIMAL(20, 2)) is read by sales.vw_transaction_detail, "
            "sales.vw_customer_lifetime_value, sales.vw_customer_segmentation, integration.df_segment_scoring\n"
            ) in plan.stdout
    assert "> sales_channel (renamed from channel) is read by sales.vw_transaction_detail\n" in plan.stdout
    [change] = [c for c in json.loads(landscape.run("plan", "dev", "--format", "json").stdout)["tenants"][0]["changes"]
                if c["object"] == "sales.customer_transactions"]
    assert change["impact"] == [
        {"column": "amount", "change": "type DECIMAL(18, 2) -> DECIMAL(20, 2)",
         "read_by": ["sales.vw_transaction_detail", "sales.vw_customer_lifetime_value",
                     "sales.vw_customer_segmentation", "integration.df_segment_scoring"]},
        {"column": "sales_channel", "change": "renamed from channel", "read_by": ["sales.vw_transaction_detail"]}]


def test_graph_columns_prints_column_lineage(landscape: Landscape) -> None:
    result = landscape.run("graph", "dev", "--columns", "sales.customer_transactions.amount", "--format", "json")
    assert result.code == 0, result.output
    edges = {(e["from"], e["to"]) for e in json.loads(result.stdout)["edges"]}
    assert edges == {("sales.customer_transactions.amount", "sales.vw_transaction_detail.amount"),
                     ("sales.vw_transaction_detail.amount", "sales.vw_customer_lifetime_value.revenue"),  # SUM()
                     ("sales.vw_customer_lifetime_value.revenue", "sales.vw_customer_segmentation.revenue"),
                     ("sales.vw_customer_lifetime_value.revenue", "sales.vw_customer_segmentation.segment"),
                     ("sales.vw_customer_segmentation.segment", "integration.df_segment_scoring")}   # WHERE
    mermaid = landscape.run("graph", "dev", "--columns", "customer_transactions.amount").stdout
    assert "sales__customer_transactions__amount --> sales__vw_transaction_detail__amount" in mermaid
    assert landscape.run("graph", "dev", "--columns", "sales.customer_transactions", "--format", "svg").code == 0
    unknown = landscape.run("graph", "dev", "--columns", "sales.customer_master.nope")
    assert unknown.code == 64 and "has no column nope" in unknown.stderr


@pytest.mark.skipif(not GENERATOR.exists(), reason="the landscape generator lives in ../shared/bench (CI has it)")
def test_a_generated_landscape_with_round_applies_to_postgresql(tmp_path: Path, postgres_database: str) -> None:
    """300 generated objects (ROUND(double * 1.1, 2) among them) apply to PostgreSQL and converge."""
    subprocess.run([sys.executable, str(GENERATOR), "--objects", "300", "--out", str(tmp_path)], check=True,
                   capture_output=True)
    repo = tmp_path / "landscape"
    assert "ROUND(" in "".join(p.read_text() for p in (repo / "environments").rglob("*.yaml"))
    environment = repo / "environments" / "dev" / "environment.yaml"
    lines = [f"    url: {postgres_database}" if line.strip().startswith("url:") else line
             for line in environment.read_text().splitlines()]
    environment.write_text("\n".join(lines) + "\n")
    reconciler = [str(Path(sys.executable).parent / "reconciler"), "--repo", str(repo)]
    applied = subprocess.run([*reconciler, "apply", "dev", "--yes", "--quiet"], capture_output=True, text=True)
    assert applied.returncode == 0, applied.stderr[-3000:]
    again = subprocess.run([*reconciler, "plan", "dev", "--detailed-exitcode"], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-3000:]


def test_a_plan_with_read_only_credentials_says_it_is_not_proven(landscape: Landscape, postgres_database: str) -> None:
    """The plan job should get read-only credentials; the PostgreSQL shadow needs to run DDL. Then the
    plan says it could not be proven, and nothing fails or is written."""
    import psycopg

    landscape.edit("environments/dev/environment.yaml", "duckdb:///.tenants/dev.duckdb", postgres_database)
    landscape.commit("dev on postgres")
    assert landscape.run("apply", "dev", "--yes").code == 0
    database = postgres_database.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute(f"DROP ROLE IF EXISTS reader_{database}")
        connection.execute(f"CREATE ROLE reader_{database} LOGIN")
        for schema in ("sales", "_reconciler"):
            connection.execute(f"GRANT USAGE ON SCHEMA {schema} TO reader_{database}")
            connection.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO reader_{database}")
    reader_url = postgres_database.replace("postgresql://postgres@", f"postgresql://reader_{database}@")
    landscape.edit("environments/dev/environment.yaml", postgres_database, reader_url)
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "SELECT id,", "SELECT DISTINCT id,")
    plan = landscape.run("plan", "dev")
    assert plan.code == 0, plan.output
    assert "? not proven on a shadow of the tenant: these credentials may not change the tenant" in plan.stdout
    markdown = landscape.run("plan", "dev", "--format", "markdown").stdout
    assert "not proven on a shadow of the tenant" in markdown


def test_readers_are_recreated_only_when_the_columns_they_give_change(engine_landscape: EngineLandscape) -> None:
    """A new column recreates only the view giving it on through `*`; a retyped column recreates
    the views whose columns are computed from it, and on PostgreSQL also what pins it (a view
    reading it in WHERE, then what reads that view, since recreating a view drops it first)."""
    landscape = engine_landscape
    landscape.write("environments/dev/sales/codes.yaml", "kind: Table\nname: codes\nschema: sales\nstatus: active\n"
                    "columns:\n  - {name: id, type: BIGINT, nullable: false}\n  - {name: code, type: INTEGER}\n"
                    "  - {name: label, type: VARCHAR}\nprimary_key: [id]\n")
    for name, query in {"vw_codes_all": "SELECT * FROM sales.codes",
                        "vw_codes_kept": "SELECT id, label FROM sales.codes WHERE code > 0",
                        "vw_codes_loud": "SELECT id, upper(label) AS loud FROM sales.vw_codes_kept",
                        "vw_codes_code": "SELECT id, code + 1 AS next_code FROM sales.codes"}.items():
        landscape.write(f"environments/dev/sales/views/{name}.yaml",
                        f"kind: View\nname: {name}\nschema: sales\nstatus: active\nsql: {query}\n")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.codes VALUES (1, 7, 'seven'), (2, 0, 'zero')")

    landscape.edit("environments/dev/sales/codes.yaml", "primary_key", "  - {name: note, type: VARCHAR}\nprimary_key")
    changes = json.loads(landscape.run("plan", "dev", "--format", "json").stdout)["tenants"][0]["changes"]
    assert [(c["object"], c["action"], c["reason"]) for c in changes] == [
        ("sales.codes", "update", "columns changed"),
        ("sales.vw_codes_all", "replace", "recreated: its column note changes with sales.codes")]
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.columns("sales", "vw_codes_all") == ["id", "code", "label", "note"]

    landscape.edit("environments/dev/sales/codes.yaml", "{name: code, type: INTEGER}", "{name: code, type: BIGINT}")
    changes = json.loads(landscape.run("plan", "dev", "--format", "json").stdout)["tenants"][0]["changes"]
    recreated = {c["object"]: c["reason"] for c in changes if c["action"] == "replace"}
    assert recreated["sales.vw_codes_all"] == "recreated: its column code changes with sales.codes"   # `*`
    assert recreated["sales.vw_codes_code"] == "recreated: its column next_code changes with sales.codes"
    if landscape.engine == "duckdb":   # views are bound by name when read: nothing else needs to move
        assert set(recreated) == {"sales.vw_codes_all", "sales.vw_codes_code"}
    else:
        assert recreated["sales.vw_codes_kept"] == ("recreated: the engine will not alter sales.codes while a "
                                                    "view reads it (dropped first, then created again)")
        assert recreated["sales.vw_codes_loud"] == ("recreated: the engine will not alter sales.vw_codes_kept "
                                                    "while a view reads it (dropped first, then created again)")
        assert len(recreated) == 4
    assert not any(c["conflict"] for c in changes)
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert landscape.sql("SELECT id, loud FROM sales.vw_codes_loud") == [(1, "SEVEN")]
    assert landscape.sql("SELECT id, next_code FROM sales.vw_codes_code ORDER BY id") == [(1, 8), (2, 1)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_correlated_subquery_binds_its_columns_to_its_own_sources(landscape: Landscape) -> None:
    """sqlglot lends a correlated subquery's unqualified columns to the enclosing scope; they are
    resolved where the engine resolves them (the subquery's own sources first), never reported
    against the outer query's tables."""
    landscape.write("environments/dev/sales/views/vw_buyers.yaml", "kind: View\nname: vw_buyers\nschema: sales\n"
                    "status: active\nsql: |\n  SELECT c.id, (SELECT max(amount) FROM sales.customer_transactions\n"
                    "                WHERE customer_id = c.id) AS biggest\n  FROM sales.customer_master c\n"
                    "  WHERE EXISTS (SELECT 1 FROM sales.customer_transactions WHERE customer_id = c.id\n"
                    "                AND currency = 'EUR')\n")
    result = landscape.run("validate", "dev")
    assert result.code == 0, result.output
    landscape.edit("environments/dev/sales/views/vw_buyers.yaml", "AND currency = 'EUR'", "AND curency = 'EUR'")
    result = landscape.run("validate", "dev")
    assert result.code == 1
    assert ("vw_buyers.yaml:10:21: error[column]: column curency does not exist in sales.customer_transactions, "
            "sales.customer_master (did you mean currency?)") in result.stderr, result.stderr


def test_a_values_list_binds_the_column_names_its_alias_gives(landscape: Landscape) -> None:
    landscape.write("environments/dev/sales/views/vw_days.yaml", "kind: View\nname: vw_days\nschema: sales\n"
                    "status: active\nsql: |\n  SELECT d, dayofweek(d) AS dow\n"
                    "  FROM (VALUES (DATE '2024-01-07'), (DATE '2024-01-08')) AS week(d)\n")
    result = landscape.run("validate", "dev")
    assert result.code == 0, result.output
    landscape.edit("environments/dev/sales/views/vw_days.yaml", "dayofweek(d)", "dayofweek(day)")
    result = landscape.run("validate", "dev")
    assert result.code == 1
    assert "vw_days.yaml:6:23: error[column]: column day does not exist in week" in result.stderr, result.stderr


def test_column_lineage_draws_only_what_binding_established(landscape: Landscape) -> None:
    """A view column computed by a subquery, or by a UNION, comes from the columns those read and from
    nothing else the view reads (before, such a column counted as computed from everything)."""
    landscape.write("environments/dev/sales/views/vw_biggest.yaml", "kind: View\nname: vw_biggest\nschema: sales\n"
                    "sql: |\n  SELECT c.id, (SELECT max(t.amount) FROM sales.customer_transactions AS t\n"
                    "                WHERE t.customer_id = c.id) AS biggest\n"
                    "  FROM sales.customer_master AS c WHERE c.email IS NOT NULL\n")
    landscape.write("environments/dev/sales/views/vw_ids.yaml", "kind: View\nname: vw_ids\nschema: sales\n"
                    "sql: SELECT id FROM sales.customer_master UNION ALL SELECT customer_id FROM "
                    "sales.customer_transactions WHERE amount > 0\n")

    def edges(column: str) -> set[tuple[str, str]]:
        result = landscape.run("graph", "dev", "--columns", column, "--format", "json")
        assert result.code == 0, result.output
        return {(e["from"], e["to"]) for e in json.loads(result.stdout)["edges"]
                if e["to"].startswith(("sales.vw_biggest", "sales.vw_ids"))}

    assert edges("sales.customer_master.email") == {("sales.customer_master.email", "sales.vw_biggest")}   # a filter
    assert edges("sales.customer_transactions.amount") == {
        ("sales.customer_transactions.amount", "sales.vw_biggest.biggest"),
        ("sales.customer_transactions.amount", "sales.vw_ids")}
    assert edges("sales.customer_transactions.customer_id") == {
        ("sales.customer_transactions.customer_id", "sales.vw_biggest.biggest"),   # the subquery's own filter
        ("sales.customer_transactions.customer_id", "sales.vw_ids.id")}
    assert edges("sales.customer_master.id") == {("sales.customer_master.id", "sales.vw_biggest.id"),
                                                 ("sales.customer_master.id", "sales.vw_biggest.biggest"),
                                                 ("sales.customer_master.id", "sales.vw_ids.id")}
