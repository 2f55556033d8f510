"""Crash and interrupt consistency: an apply killed at any point leaves the tenant exactly as it was.

A real `reconciler apply` process is stopped by a test-only fault hook (RECONCILER_FAULT) that
signals the process itself after N change statements, with SIGKILL (no cleanup at all) or SIGINT.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import EngineLandscape, Hold, Landscape, said, snapshot

RECONCILER = str(Path(sys.executable).parent / "reconciler")
TABLES = 45


def large_change(landscape: Landscape) -> None:
    """Forty-five new tables, a new column on a table with rows, and the view giving it on recreated."""
    for number in range(TABLES):
        landscape.write(f"environments/dev/staging/t{number:02}.yaml",
                        f"kind: Table\nname: t{number:02}\nschema: staging\nstatus: active\n"
                        "columns:\n  - {name: id, type: BIGINT}\n  - {name: label, type: VARCHAR}\n")
    landscape.edit("environments/dev/sales/customer_master.yaml", "primary_key",
                   "  - {name: tier, type: VARCHAR, default: \"'BASIC'\"}\nprimary_key")
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "region, created_at",
                   "region, created_at, tier")


@pytest.mark.parametrize("fault", ["SIGKILL:1", "SIGKILL:23", "SIGKILL:45", "SIGINT:12"])
def test_a_killed_apply_leaves_the_old_state_and_the_next_run_converges(landscape: Landscape, fault: str) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'a@x', 'EU', 'ACTIVE', NULL), "
                  "(2, 'Bob', NULL, 'US', 'ACTIVE', NULL); "
                  "INSERT INTO sales.customer_transactions VALUES (10, 1, 25.00, 'EUR', 'web', NULL)")
    before = snapshot(landscape.tenant(), audit=False)
    large_change(landscape)
    statements = sum(len(c["statements"]) for t in json.loads(landscape.run("plan", "dev", "--format", "json")
                                                               .stdout)["tenants"] for c in t["changes"])
    assert statements > 45  # every fault point falls inside the transaction

    killed = subprocess.run([RECONCILER, "--repo", str(landscape.root), "apply", "dev", "--yes"],
                            env={**os.environ, "RECONCILER_FAULT": fault}, capture_output=True, text=True)

    assert killed.returncode == (-9 if fault.startswith("SIGKILL") else 130), killed.stderr
    assert snapshot(landscape.tenant(), audit=False) == before
    if fault.startswith("SIGKILL"):   # nothing could record the end: the next plan reads it from the audit
        assert "! interrupted run" in landscape.run("plan", "dev").stdout
    else:
        assert "interrupted: the statements running were stopped; a tenant being written to was rolled back" \
            in killed.stderr
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    assert landscape.sql("SELECT id, name, tier FROM sales.customer_master ORDER BY id") == \
        [(1, "Ada", "BASIC"), (2, "Bob", "BASIC")]
    outcomes = [r["outcome"] for r in json.loads(landscape.run("history", "dev", "--format", "json").stdout)]
    assert outcomes == ["applied", "interrupted", "applied"]


def test_one_failing_tenant_does_not_stop_the_others(landscape: Landscape) -> None:
    assert landscape.run("apply", "prod", "--yes").code == 0
    landscape.sql("CREATE VIEW sales.us_report AS SELECT region FROM sales.vw_customer_active", "prod-us")
    before_us = snapshot(landscape.tenant("prod-us"), audit=False)
    landscape.edit("environments/prod/sales/views/vw_customer_active.yaml", "email, region, created_at",
                   "email, created_at")
    landscape.edit("environments/prod/sales/views/vw_transaction_detail.yaml", "c.region", "'EU' AS region")
    landscape.edit("environments/prod/integration/df_customer_enrichment.yaml", "email, region, 'ACTIVE'",
                   "email, 'EU', 'ACTIVE'")

    result = landscape.run("apply", "prod", "--yes")

    assert result.code == 1
    assert "prod-eu: applied" in result.stdout and "prod-us: failed" in result.stderr
    assert "view sales.us_report no longer works" in result.stderr
    assert snapshot(landscape.tenant("prod-us"), audit=False) == before_us
    assert "region" not in [c for (c,) in landscape.sql(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'vw_customer_active'", "prod-eu")]


def test_tenants_apply_at_the_same_time_and_ctrl_c_rolls_every_one_back(landscape: Landscape, hold: Hold) -> None:
    assert landscape.run("apply", "prod", "--yes").code == 0
    landscape.edit("environments/prod/sales/views/vw_customer_active.yaml", "region, created_at",
                   "upper(region) AS region, created_at, status")   # four views recreated
    before = {t: snapshot(landscape.tenant(t), audit=False) for t in ("prod-eu", "prod-us")}
    interrupted = subprocess.Popen([RECONCILER, "--repo", str(landscape.root), "apply", "prod", "--yes"],
                                   env={**os.environ, "RECONCILER_FAULT": "SIGINT:2"},
                                   stderr=subprocess.PIPE, text=True)
    assert interrupted.wait(timeout=60) == 130, interrupted.stderr.read()
    assert {t: snapshot(landscape.tenant(t), audit=False) for t in before} == before

    both = hold.popen([RECONCILER, "--repo", str(landscape.root), "apply", "prod", "--yes"], hold.env())
    hold.held(both, "prod-eu", "prod-us")    # both transactions are open at once
    hold.release(both, holders=2)
    assert both.wait(timeout=60) == 0, both.stderr.read()
    runs = [r for r in json.loads(landscape.run("history", "prod", "--format", "json").stdout)
            if r["outcome"] == "applied"][-2:]
    assert {r["tenant"] for r in runs} == {"prod-eu", "prod-us"}


# -- issue 22, break 10b: Ctrl-C while a statement never ends ---------------------------------

FOREVER = ("WITH RECURSIVE forever AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM forever) "
           "SELECT n FROM forever WHERE n < 0")


def with_a_check_that_never_ends(landscape: Landscape, environment: str = "dev") -> None:
    landscape.edit(f"environments/{environment}/sales/customer_master.yaml", "primary_key: [id]\n",
                   f"primary_key: [id]\nchecks:\n  - {{name: forever, sql: \"{FOREVER}\"}}\n")
    landscape.commit("a check whose query never ends")


def interrupted_at_the_checks(landscape: Landscape, *command: str, tenants: tuple[str, ...] = ("dev",)) -> str:
    """Run COMMAND, wait until every one of TENANTS says its checks are about to run (the fault hook's
    event on stderr, no clock), press Ctrl-C; the command must end with 130. Its stderr."""
    process = subprocess.Popen([RECONCILER, "--repo", str(landscape.root), *command],
                               env={**os.environ, "RECONCILER_FAULT": "TELL@checks"}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        waiting = set(tenants)
        while waiting:
            waiting.discard(said(process, "reconciler fault: reached checks ").split()[-1])
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=120)   # a hang guard only: the statement is stopped, not waited out
    finally:   # never left running (a failed wait, or pytest-timeout's hang guard, leaves this block)
        process.kill()
    rest = process.stderr.read()
    assert code == 130, rest
    return rest


@pytest.mark.parametrize("command", [("check", "dev"), ("apply", "dev", "--yes")], ids=["check", "apply"])
def test_issue22_10b_ctrl_c_during_a_check_that_never_ends_exits_130_and_changes_nothing(
        engine_landscape: EngineLandscape, command: tuple[str, ...]) -> None:
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (1, 'Ada', NULL, 'EU', 'ACTIVE', NULL)")
    with_a_check_that_never_ends(landscape)   # `check` runs it as declared; `apply` runs it before commit
    before = landscape.state()
    files = snapshot(landscape.tenant(), audit=False) if landscape.engine == "duckdb" else None

    said_after = interrupted_at_the_checks(landscape, *command)

    assert "interrupted: the statements running were stopped" in said_after
    assert ("no tenant was written to" in said_after) == (command[0] == "check"), said_after   # apply: rolled back
    assert "internal error" not in said_after and "Traceback" not in said_after
    assert landscape.state() == before
    if files is not None:
        assert snapshot(landscape.tenant(), audit=False) == files
    if command[0] == "apply":
        last = json.loads(landscape.run("history", "dev", "--format", "json").stdout)[-1]
        assert (last["operation"], last["outcome"]) == ("apply", "interrupted"), said_after
        assert "stopped by KeyboardInterrupt" in last["error"]


def test_a_fault_line_is_one_write_so_tenants_threads_never_interleave_theirs(monkeypatch) -> None:
    """With PYTHONUNBUFFERED (CI's), stderr has no buffer: `print` wrote a line's text and its newline
    apart, two tenants' lines merged ("...checks dev...checks dev-b") and a test waited on the first
    for half an hour. Each fault line is one write, whole."""
    from reconciler import faults

    class Recorded(list):
        def write(self, text: str) -> int:
            self.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    recorded = Recorded()
    monkeypatch.setattr(sys, "stderr", recorded)
    monkeypatch.setenv("RECONCILER_FAULT", "TELL@checks")
    faults.reached("checks", "dev")
    faults.failed("dev-b", ValueError("no database"))
    assert recorded == ["reconciler fault: reached checks dev\n", "reconciler fault: failed dev-b: no database\n"]


@pytest.mark.timeout(300)   # waits on what a process says: a regression hangs, not for half an hour
def test_a_tenant_that_fails_while_another_runs_a_check_that_never_ends_says_so_at_once(landscape: Landscape) -> None:
    """The wait on every tenant's checks ends with the failing tenant's reason, not at the hang guard:
    dev-b's apply fails (a reader holds its file, which a plan shares and an apply may not) while dev's
    check keeps the command running."""
    landscape.edit("environments/dev/environment.yaml", "rules:",
                   "  - {name: dev-b, url: 'duckdb:///.tenants/dev-b.duckdb', create: true}\nrules:")
    landscape.commit("a second dev tenant")
    assert landscape.run("apply", "dev", "--yes").code == 0
    with_a_check_that_never_ends(landscape)

    with duckdb.connect(str(landscape.tenant("dev-b")), read_only=True), pytest.raises(
            AssertionError, match=r"(?s)'reconciler fault: reached checks ' never came.*reconciler fault: failed dev-b: "
                                  r"tenant dev-b .* is locked"):
        interrupted_at_the_checks(landscape, "apply", "dev", "--yes", tenants=("dev", "dev-b"))


@pytest.mark.timeout(300)   # waits on what a process says: a regression hangs, not for half an hour
def test_issue22_10b_ctrl_c_stops_every_tenant_thread_held_in_a_check_that_never_ends(
        engine_landscape: EngineLandscape) -> None:
    """Two tenants applied at once, each on its own thread (dev on the engine under test, dev-b on
    DuckDB), both inside a check that never ends: the main thread asks each engine to stop its
    statement, and each tenant rolls back and records the run as interrupted."""
    landscape = engine_landscape
    landscape.edit("environments/dev/environment.yaml", "rules:",
                   "  - {name: dev-b, url: 'duckdb:///.tenants/dev-b.duckdb', create: true}\nrules:")
    landscape.commit("a second dev tenant")
    assert landscape.run("apply", "dev", "--yes").code == 0
    with_a_check_that_never_ends(landscape)
    before = landscape.state(), snapshot(landscape.tenant("dev-b"), audit=False)

    interrupted_at_the_checks(landscape, "apply", "dev", "--yes", tenants=("dev", "dev-b"))

    assert (landscape.state(), snapshot(landscape.tenant("dev-b"), audit=False)) == before
    runs = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    assert {(r["tenant"], r["outcome"]) for r in runs[-2:]} == {("dev", "interrupted"), ("dev-b", "interrupted")}
