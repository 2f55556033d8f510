"""Crash and interrupt consistency: an apply killed at any point leaves the tenant exactly as it was.

A real `reconciler apply` process is stopped by a test-only fault hook (RECONCILER_FAULT) that
signals the process itself after N change statements, with SIGKILL (no cleanup at all) or SIGINT.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Hold, Landscape, snapshot

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
        assert "interrupted: the tenant being applied was rolled back" in killed.stderr
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
