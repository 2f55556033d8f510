"""Behaviour of plan and apply on real DuckDB tenant files, through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import Landscape, snapshot

VIEW = "environments/dev/sales/views/vw_customer_active.yaml"
MASTER = "environments/dev/sales/customer_master.yaml"
ROWS = ("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'ada@example.com', 'EU', 'ACTIVE', NULL), "
        "(2, 'Bob', NULL, 'EU', 'ACTIVE', NULL); "
        "INSERT INTO sales.customer_transactions VALUES (10, 1, 2500.00, 'EUR', 'web', NULL)")


def applied(landscape: Landscape) -> Landscape:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql(ROWS)
    return landscape


def test_fresh_apply_then_plan_reports_no_changes(landscape: Landscape) -> None:
    first = landscape.run("apply", "dev", "--yes")
    assert first.code == 0, first.output
    assert "9 to create" in first.stdout
    again = landscape.run("plan", "dev", "--detailed-exitcode")
    assert again.code == 0 and "No changes" in again.stdout


def test_applying_the_same_state_twice_changes_nothing(landscape: Landscape) -> None:
    applied(landscape)
    before = snapshot(landscape.tenant(), audit=False)
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0 and "no-changes" in result.stdout
    assert snapshot(landscape.tenant(), audit=False) == before


def test_rows_survive_adding_a_column_and_recreating_views(landscape: Landscape) -> None:
    applied(landscape)
    landscape.edit(MASTER, "primary_key", "  - {name: loyalty_tier, type: VARCHAR}\nprimary_key")
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    plan = landscape.run("plan", "dev", "--detailed-exitcode")
    assert plan.code == 2
    assert "sales.vw_customer_active: the view's columns change" in plan.stdout
    assert "View sales.vw_customer_segmentation" not in plan.stdout   # none of the columns it reads changes
    assert "Data checks before commit: sales.vw_customer_lifetime_value (3), sales.vw_customer_segmentation (2)" \
        in plan.stdout   # but its checks run: it reads what changes
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.sql("SELECT id, name, loyalty_tier FROM sales.customer_master ORDER BY id") == \
        [(1, "Ada", None), (2, "Bob", None)]
    assert landscape.sql("SELECT customer_id, segment FROM sales.vw_customer_segmentation") == [(1, "GOLD")]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_dropping_a_column_is_refused_without_the_flag(landscape: Landscape) -> None:
    applied(landscape)
    before = snapshot(landscape.tenant(), audit=False)
    landscape.edit(MASTER, "  - {name: email, type: VARCHAR}\n", "")
    landscape.edit(VIEW, "SELECT id, name, email, region", "SELECT id, name, region")
    landscape.edit("environments/dev/integration/df_customer_enrichment.yaml", "name, email, region", "name, region")
    refused = landscape.run("apply", "dev", "--yes")
    assert refused.code == 3
    assert "sales.customer_master: drops column email (2 rows)" in refused.stderr
    assert "--allow-data-loss" in refused.stderr
    assert snapshot(landscape.tenant(), audit=False) == before
    assert landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.customer_master").code == 0
    columns = [row[0] for row in landscape.sql("DESCRIBE sales.customer_master")]
    assert "email" not in columns and landscape.sql("SELECT count(*) FROM sales.customer_master") == [(2,)]


def test_a_failing_statement_rolls_the_tenant_back(landscape: Landscape) -> None:
    applied(landscape)
    before = snapshot(landscape.tenant(), audit=False)
    landscape.edit(MASTER, "primary_key", "  - {name: tier, type: VARCHAR}\nprimary_key")
    landscape.edit(VIEW, "region, created_at", "region, created_at, to_json(id, id) AS x")  # only the engine knows (to_json takes one value)
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 1
    assert "View sales.vw_customer_active: apply failed" in result.stderr and "to_json" in result.stderr
    assert 'statement: CREATE' in result.stderr and '"vw_customer_active" AS SELECT' in result.stderr
    assert snapshot(landscape.tenant(), audit=False) == before
    outcome = landscape.sql("SELECT outcome, error FROM _reconciler.runs ORDER BY started_at DESC LIMIT 1")
    assert outcome[0][0] == "failed" and "vw_customer_active" in outcome[0][1]


def test_plan_at_an_older_ref_reads_git_not_the_working_tree(landscape: Landscape) -> None:
    applied(landscape)
    old = landscape.repo.head.commit.hexsha
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    landscape.commit("add status to the active customers")
    landscape.edit(VIEW, "SELECT id,", "SELECT DISTINCT id,")  # uncommitted: must not be seen
    at_old = landscape.run("plan", "dev", "--ref", old[:10], "--detailed-exitcode")
    assert at_old.code == 0, at_old.output
    at_head = landscape.run("plan", "dev", "--ref", "HEAD", "--format", "json")
    changes = json.loads(at_head.stdout)["tenants"][0]["changes"]
    assert [(c["object"], c["action"]) for c in changes] == [("sales.vw_customer_active", "replace")]
    assert "DISTINCT" not in at_head.stdout
    bad = landscape.run("plan", "dev", "--ref", "--output=x")
    assert bad.code == 1 and "cannot start with '-'" in bad.stderr
    assert landscape.run("plan", "dev", "--ref", "no-such-branch").code == 1


def test_saved_plan_is_applied_only_when_nothing_moved(landscape: Landscape, tmp_path) -> None:
    applied(landscape)
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    saved = tmp_path / "dev.plan.json"
    assert landscape.run("plan", "dev", "--out", str(saved)).code == 0
    landscape.sql("CREATE OR REPLACE VIEW sales.vw_customer_segmentation AS SELECT 1 AS x")
    stale = landscape.run("apply", "dev", "--plan", str(saved), "--yes")
    assert stale.code == 5 and "tenant changed since the plan" in stale.stderr
    other = landscape.run("apply", "qa", "--plan", str(saved), "--yes")
    assert other.code == 5 and "made for environment dev" in other.stderr
    assert landscape.run("plan", "dev", "--out", str(saved)).code == 0
    landscape.edit(VIEW, "SELECT id,", "SELECT DISTINCT id,")
    moved = landscape.run("apply", "dev", "--plan", str(saved), "--yes")
    assert moved.code == 5 and "desired state moved" in moved.stderr
    landscape.edit(VIEW, "SELECT DISTINCT id,", "SELECT id,")
    landscape.commit("the same content, a new commit")
    committed = landscape.run("apply", "dev", "--plan", str(saved), "--yes")
    assert committed.code == 5 and "the folder is now at" in committed.stderr
    assert landscape.run("plan", "dev", "--out", str(saved)).code == 0
    assert landscape.run("apply", "dev", "--plan", str(saved), "--yes").code == 0
    tampered = json.loads(saved.read_text())
    tampered["tenants"][0]["changes"] = []
    saved.write_text(json.dumps(tampered))
    assert landscape.run("apply", "dev", "--plan", str(saved), "--yes").code == 5


def test_json_plan_has_the_documented_keys(landscape: Landscape) -> None:
    result = landscape.run("plan", "dev", "--format", "json")
    plan = json.loads(result.stdout)
    assert {"environment", "ref", "tenants", "summary"} <= set(plan)
    change = plan["tenants"][0]["changes"][0]
    assert {"action", "kind", "object", "risk", "reason", "details"} <= set(change)
    assert plan["summary"] == {"create": 9, "update": 0, "replace": 0, "delete": 0}


def test_rules_render_per_environment_and_tenant(landscape: Landscape) -> None:
    for environment in ("qa", "prod"):
        assert landscape.run("apply", environment, "--yes").code == 0, environment
        assert landscape.run("plan", environment, "--detailed-exitcode").code == 0
    # qa maps the sales schema and swaps the ERP connection
    qa_views = landscape.sql("SELECT schema_name, sql FROM duckdb_views() WHERE view_name = "
                             "'vw_transaction_detail'", "qa")
    assert qa_views[0][0] == "sales_qa" and "sales_qa.vw_customer_active" in qa_views[0][1]
    flow = landscape.sql("SELECT definition FROM _reconciler.objects WHERE name = 'df_customer_enrichment'", "qa")
    assert json.loads(flow[0][0])["connection"] == "integration.Connection_ERP_TEST"
    # the region parameter differs per prod tenant and lands as a quoted literal
    for tenant, region in (("prod-eu", "'EU'"), ("prod-us", "'US'")):
        text = landscape.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'vw_customer_active'", tenant)
        assert f"region = {region}" in text[0][0]
    capacity = landscape.sql("SELECT value FROM _reconciler.meta WHERE key = 'capacity'", "prod-us")
    assert capacity == [("prod-capacity-us",)]


def test_a_missing_tenant_file_is_an_error_unless_declared_create(landscape: Landscape) -> None:
    landscape.edit("environments/dev/environment.yaml", "    create: true\n", "")
    result = landscape.run("plan", "dev")
    assert result.code == 1 and "does not exist" in result.stderr and "create: true" in result.stderr
    assert not landscape.tenant().exists()


def test_a_locked_tenant_exits_4(landscape: Landscape) -> None:
    applied(landscape)
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; "
                               "c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
                               str(landscape.tenant())], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = landscape.run("apply", "dev", "--yes")
        assert result.code == 4 and f"process {holder.pid}" in result.stderr
    finally:
        holder.kill()
        holder.wait()
    assert landscape.run("plan", "dev").code == 0


def test_graph_formats(landscape: Landscape) -> None:
    mermaid = landscape.run("graph", "dev").stdout
    assert mermaid.startswith("flowchart LR") and "sales__customer_master --> sales__vw_customer_active" in mermaid
    dot = landscape.run("graph", "dev", "--format", "dot").stdout
    assert '"sales.vw_customer_active" -> "sales.vw_transaction_detail";' in dot
    graph = json.loads(landscape.run("graph", "dev", "--format", "json").stdout)
    assert {"from": "integration.Connection_ERP", "to": "integration.df_customer_enrichment"} in graph["edges"]


def test_usage_errors_exit_64(landscape: Landscape) -> None:
    assert landscape.run("plan").code == 64
    assert landscape.run("plan", "dev", "--format", "yaml").code == 64


def test_verbose_prints_a_line_per_object_and_quiet_only_results(landscape: Landscape) -> None:
    verbose = landscape.run("apply", "dev", "--yes", "--verbose")
    assert verbose.code == 0
    assert "dev: create Table sales.customer_master" in verbose.stdout
    assert verbose.stdout.count("dev: create ") == 9
    landscape.edit(VIEW, "SELECT id,", "SELECT DISTINCT id,")
    quiet = landscape.run("apply", "dev", "--yes", "--quiet")
    assert quiet.code == 0 and quiet.stdout.startswith("dev: applied (run ") and "Plan:" not in quiet.stdout
