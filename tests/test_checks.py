"""Data checks: declared with the objects, run inside the apply before it commits, and on demand by
`reconciler check`; on DuckDB and a real PostgreSQL (`engine_landscape`).

A failing check of severity error must leave the tenant exactly as it was (rows and schema) and the
audit must say which check failed and how; a warning commits and is recorded; a sample never shows a
sensitive column.
"""

from __future__ import annotations

import json
import re

from conftest import EngineLandscape

TRANSACTIONS = "environments/dev/sales/customer_transactions.yaml"
MASTER = "environments/dev/sales/customer_master.yaml"
VIEW = "environments/dev/sales/views/vw_customer_active.yaml"
LIFETIME = "environments/dev/sales/views/vw_customer_lifetime_value.yaml"
ROWS = ("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'ada@example.com', 'EU', 'ACTIVE', NULL), "
        "(2, 'Bob', 'bob@example.com', 'EU', 'ACTIVE', NULL); "
        "INSERT INTO sales.customer_transactions VALUES (10, 1, 2500.00, 'EUR', 'web', NULL), "
        "(11, 2, -40.00, 'EUR', 'secret-channel', NULL)")


def applied(landscape: EngineLandscape) -> EngineLandscape:
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    landscape.sql(ROWS)
    return landscape


def declare(landscape: EngineLandscape, column: str, checks: str, path: str = TRANSACTIONS) -> None:
    """Give `column` of the file's table these checks (YAML flow text)."""
    text = landscape.path(path).read_text()
    start = text.index(f"{{name: {column},")
    end = text.index("}\n", start)
    landscape.write(path, text[:end] + f", {checks}" + text[end:])


def audit(landscape: EngineLandscape) -> list[dict]:
    return json.loads(landscape.run("history", "dev", "--format", "json").stdout)


def test_a_change_whose_data_breaks_a_check_rolls_back_and_says_which_rows(engine_landscape: EngineLandscape) -> None:
    landscape = applied(engine_landscape)
    declare(landscape, "amount", "checks: [{accepted_range: {min: 0}}]")
    declare(landscape, "channel", "sensitive: true")
    landscape.edit(TRANSACTIONS, "primary_key", "  - {name: note, type: VARCHAR}\nprimary_key")
    before = landscape.state()

    result = landscape.run("apply", "dev", "--yes")

    assert result.code == 3, result.output
    assert "sales.customer_transactions: accepted_range(amount): failed (1 offending row)" in result.stderr
    assert "id=11" in result.stderr and "amount=-40" in result.stderr
    assert "secret-channel" not in result.output and "channel=" not in result.stderr
    assert "the tenant was rolled back; nothing changed" in result.stderr
    assert landscape.state() == before
    last = audit(landscape)[-1]
    assert last["outcome"] == "failed" and last["checks"]["failed"] == 1
    assert landscape.sql("SELECT check_name, outcome, offending, sample FROM _reconciler.check_results "
                         f"WHERE run_id = '{last['run_id']}' AND outcome = 'failed'") == \
        [("accepted_range(amount)", "failed", 1, json.dumps([
            {"id": 11, "customer_id": 2, "amount": "-40.00", "currency": "EUR", "transaction_ts": None,
             "note": None}]))]


def test_a_warning_commits_and_is_recorded(engine_landscape: EngineLandscape) -> None:
    landscape = applied(engine_landscape)
    declare(landscape, "amount", "checks: [{accepted_range: {min: 0}, severity: warn}]")

    result = landscape.run("apply", "dev", "--yes")

    assert result.code == 0, result.output
    assert "check warned: sales.customer_transactions: accepted_range(amount): warned (1 offending row)" \
        in result.stderr
    assert audit(landscape)[-1]["checks"] == {"passed": 5, "warned": 1, "failed": 0}   # with the demo views'
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_adding_a_check_is_a_change_the_apply_proves_before_it_records_it(engine_landscape: EngineLandscape) -> None:
    landscape = applied(engine_landscape)
    declare(landscape, "customer_id", "checks: [{relationships: {to: sales.customer_master, column: id}}]")
    landscape.sql("INSERT INTO sales.customer_transactions VALUES (12, 99, 1.00, 'EUR', 'web', NULL)")

    plan = landscape.run("plan", "dev")
    assert "sales.customer_transactions: checks changed" in plan.stdout
    assert "Data checks before commit: sales.customer_transactions (1), sales.vw_customer_lifetime_value (3)" \
        in plan.stdout   # the view reads the table the change is about
    as_json = json.loads(landscape.run("plan", "dev", "--format", "json").stdout)
    assert as_json["tenants"][0]["checks"][0] == "sales.customer_transactions (1)"
    refused = landscape.run("apply", "dev", "--yes")
    assert refused.code == 3, refused.output
    assert "relationships(customer_id): failed (1 offending row)" in refused.stderr and "customer_id=99" in refused.stderr
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 2   # nothing was recorded

    landscape.sql("DELETE FROM sales.customer_transactions WHERE id = 12")
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_change_upstream_runs_the_checks_of_the_views_that_read_it(engine_landscape: EngineLandscape) -> None:
    landscape = applied(engine_landscape)
    landscape.edit(VIEW, "kind: View", "kind: View\nchecks:\n  - {row_count: {max: 1}}")
    landscape.edit(MASTER, "primary_key", "  - {name: tier, type: VARCHAR}\nprimary_key")
    before = landscape.state()

    result = landscape.run("apply", "dev", "--yes")

    assert result.code == 3, result.output
    assert "sales.vw_customer_active: row_count: failed (2 rows)" in result.stderr
    assert landscape.state() == before


def test_check_finds_a_violation_made_by_hand(engine_landscape: EngineLandscape) -> None:
    landscape = engine_landscape
    declare(landscape, "name", "checks: [not_null]", MASTER)
    declare(landscape, "email", "sensitive: true, checks: [unique]", MASTER)
    landscape.edit(MASTER, "primary_key: [id]", "primary_key: [id]\nchecks:\n  - {row_count: {min: 1}, severity: warn}")
    applied(landscape)
    assert landscape.run("check", "dev").code == 0

    landscape.sql("INSERT INTO sales.customer_master VALUES (3, NULL, 'ada@example.com', 'US', 'ACTIVE', NULL)")
    result = landscape.run("check", "dev")

    assert result.code == 1, result.output
    assert "FAIL sales.customer_master: not_null(name): failed (1 offending row)" in result.stdout
    assert "FAIL sales.customer_master: unique(email): failed (2 offending rows)" in result.stdout
    assert "ada@example.com" not in result.stdout
    as_json = json.loads(landscape.run("check", "dev", "--format", "json").stdout)
    assert {(r["check"], r["outcome"], r["offending"]) for r in as_json[0]["results"]} >= {
        ("not_null(name)", "failed", 1), ("unique(email)", "failed", 2), ("row_count", "passed", 0)}
    annotations = landscape.run("check", "dev", "--format", "github").stdout.splitlines()
    line = next(n for n, text in enumerate(landscape.path(MASTER).read_text().splitlines(), 1) if "{name: name," in text)
    assert annotations[0].startswith(f"::error file={MASTER},line={line},title=check not_null(name)::")
    assert audit(landscape)[-1]["operation"] == "check" and audit(landscape)[-1]["outcome"] == "failed"
    assert re.search(r"\d+ passed, 2 failed \(check ", landscape.run("status").stdout)
    assert landscape.run("check", "dev", "--select", "schema:sales", "--format", "markdown").code == 1
    assert landscape.run("check", "dev", "--select", "vw_customer_active").code == 0

    landscape.sql("DELETE FROM sales.customer_master WHERE id = 3")
    assert landscape.run("check", "dev").code == 0


FLOW = "df_segment_scoring"   # scores PLATINUM customers into sales.customer_transactions


def platinum(landscape: EngineLandscape) -> EngineLandscape:
    landscape = applied(landscape)
    landscape.sql("INSERT INTO sales.customer_transactions VALUES (12, 1, 20000.00, 'EUR', 'shop', NULL)")
    return landscape


def test_run_executes_a_data_flow_and_audits_the_rows_it_wrote(engine_landscape: EngineLandscape) -> None:
    landscape = platinum(engine_landscape)

    result = landscape.run("run", "dev", FLOW)

    assert result.code == 0, result.output
    assert "integration.df_segment_scoring wrote: 1 row inserted" in result.stdout
    assert "5 checks: 5 passed" in result.stdout   # the views that read its target
    assert "outside the tenant and out of reach here" in result.stderr
    assert landscape.sql("SELECT id, channel FROM sales.customer_transactions WHERE channel = 'SCORING'") == \
        [(1000000, "SCORING")]
    last = audit(landscape)[-1]
    assert (last["operation"], last["outcome"], json.loads(last["summary"])) == ("run", "applied", {"rows inserted": 1, "rows updated": 0, "rows deleted": 0})


def test_a_dry_run_and_a_failing_check_leave_no_rows(engine_landscape: EngineLandscape) -> None:
    landscape = platinum(engine_landscape)
    before = landscape.state()

    dry = landscape.run("run", "dev", FLOW, "--dry-run")
    assert dry.code == 0, dry.output
    assert "wrote (rolled back: --dry-run): 1 row inserted" in dry.stdout
    assert landscape.state() == before

    declare(landscape, "channel", "checks: [{accepted_values: [web, shop, secret-channel]}]")
    assert landscape.run("apply", "dev", "--yes").code == 0
    before = landscape.state()
    failed = landscape.run("run", "dev", FLOW)
    assert failed.code == 3, failed.output
    assert "accepted_values(channel): failed (1 offending row)" in failed.stderr and "channel='SCORING'" in failed.stderr
    assert "what integration.df_segment_scoring wrote was rolled back" in failed.stderr
    assert landscape.state() == before
    assert [r["outcome"] for r in audit(landscape)[-2:]] == ["applied", "failed"]


def test_run_refuses_what_it_cannot_run_as_declared(engine_landscape: EngineLandscape) -> None:
    landscape = platinum(engine_landscape)
    unknown = landscape.run("run", "dev", "df_segment_scorng")
    assert unknown.code == 64 and "did you mean df_segment_scoring?" in unknown.stderr
    landscape.edit(TRANSACTIONS, "primary_key", "  - {name: note, type: VARCHAR}\nprimary_key")
    waiting = landscape.run("run", "dev", FLOW)
    assert waiting.code == 1
    assert "Table sales.customer_transactions has a change waiting (columns changed)" in waiting.stderr
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions WHERE channel = 'SCORING'") == [(0,)]


SCORING = "environments/dev/integration/df_segment_scoring.yaml"


def test_apply_smoke_runs_the_flows_it_deploys_and_leaves_no_rows(engine_landscape: EngineLandscape) -> None:
    landscape = platinum(engine_landscape)
    landscape.edit(SCORING, "'SCORING'", "'SCORE'")
    before = landscape.sql("SELECT * FROM sales.customer_transactions ORDER BY id")

    result = landscape.run("apply", "dev", "--yes", "--smoke")

    assert result.code == 0, result.output
    assert "smoke test: integration.df_segment_scoring 1 row inserted in sales.customer_transactions" in result.stderr
    assert "rolled back" in result.stderr
    assert landscape.sql("SELECT * FROM sales.customer_transactions ORDER BY id") == before
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0   # the change itself was applied


def test_apply_smoke_that_breaks_a_check_changes_nothing(engine_landscape: EngineLandscape) -> None:
    landscape = platinum(engine_landscape)
    declare(landscape, "channel", "checks: [{accepted_values: [web, shop, secret-channel, SCORING]}]")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(SCORING, "'SCORING'", "'SCORE'")
    before = landscape.state()

    result = landscape.run("apply", "dev", "--yes", "--smoke")

    assert result.code == 3, result.output
    assert "smoke test of data flow integration.df_segment_scoring: tenant dev: 1 check failed" in result.stderr
    assert "channel='SCORE'" in result.stderr and "the tenant was rolled back; nothing changed" in result.stderr
    assert landscape.state() == before
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 2   # the flow's change was not applied


def test_a_check_the_engine_cannot_run_is_an_error_naming_it_never_a_pass(engine_landscape: EngineLandscape) -> None:
    """Validation refuses text against a declared number column; a view's column types are the engine's
    to know, so there the engine says it, when the check runs."""
    landscape = applied(engine_landscape)
    declare(landscape, "amount", "checks: [{accepted_values: [lots]}]")
    refused = landscape.run("validate", "dev")
    assert refused.code == 1 and "'lots' is not a number, and the column is DECIMAL(18, 2)" in refused.stderr
    landscape.edit(TRANSACTIONS, ", checks: [{accepted_values: [lots]}]", "")
    landscape.edit(LIFETIME, "  - {not_null: customer_id}",
                   "  - {not_null: customer_id}\n  - {column: revenue, accepted_values: [lots]}")
    before = landscape.state()

    checked = landscape.run("check", "dev")
    assert checked.code == 1, checked.output
    assert "tenant dev: the checks of sales.vw_customer_lifetime_value could not run:" in checked.stderr
    assert "internal error" not in checked.stderr

    applying = landscape.run("apply", "dev", "--yes")
    assert applying.code == 1, applying.output
    assert "the checks of sales.vw_customer_lifetime_value: apply failed:" in applying.stderr
    assert landscape.state() == before


def test_check_changes_nothing_whatever_a_check_calls(engine_landscape: EngineLandscape) -> None:
    """A `sql:` check calling a function with a side effect (advancing a sequence) is refused where it is
    written, before anything runs: a read-only transaction would not stop a sequence (issue 22)."""
    landscape = applied(engine_landscape)
    landscape.sql("CREATE SEQUENCE sales.tickets")
    landscape.edit(MASTER, "primary_key: [id]", "primary_key: [id]\nchecks:\n  - {name: sneaky, sql: "
                   "\"SELECT id FROM sales.customer_master WHERE nextval('sales.tickets') < 0\"}")
    landscape.sql("SELECT nextval('sales.tickets')")          # at 1 now

    result = landscape.run("check", "dev")

    assert result.code == 1, result.output
    assert "customer_master.yaml:16:68: error[function]: check sneaky: nextval() takes a sequence's value, which " \
        "only a data flow may" in result.stderr
    assert landscape.sql("SELECT nextval('sales.tickets')") == [(2,)]   # never advanced by the check


def test_checks_follow_the_rules_of_each_tenant(landscape) -> None:
    """qa maps schema sales to sales_qa, and a parameter may sit in a check's filter: each tenant's checks
    read its own objects with its own values."""
    landscape.edit(LIFETIME, "  - {not_null: customer_id}",
                   "  - {not_null: customer_id}\n  - {row_count: {max: 0}, where: \"region = $$REGION_PARAM\"}")
    landscape.write("environments/qa/sales/views/vw_customer_lifetime_value.yaml",
                    landscape.path(LIFETIME).read_text())
    for environment, schema in (("dev", "sales"), ("qa", "sales_qa")):
        assert landscape.run("apply", environment, "--yes").code == 0
        assert landscape.run("check", environment).code == 0
        landscape.sql(f"INSERT INTO {schema}.customer_master VALUES (1, 'Ada', NULL, 'EU', 'ACTIVE', NULL); "
                      f"INSERT INTO {schema}.customer_transactions VALUES (10, 1, 5.00, 'EUR', 'web', NULL)",
                      environment)

        result = landscape.run("check", environment)

        assert result.code == 1, result.output
        assert "FAIL sales" in result.stdout and "vw_customer_lifetime_value: row_count: failed (1 row)" in result.stdout
