"""Two applies on one tenant never interleave: real separate processes, DuckDB's own file lock.

Each test holds the first apply mid-transaction (RECONCILER_FAULT=HOLD) and lets it go only once
the others have done what is being proved (refused, or said that they wait): no clock decides.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from conftest import Hold, Landscape, said

RECONCILER = str(Path(sys.executable).parent / "reconciler")
VIEW = "environments/dev/sales/views/vw_customer_active.yaml"


def start(landscape: Landscape, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([RECONCILER, "--repo", str(landscape.root), *args], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def holder_note(landscape: Landscape) -> dict:
    return json.loads(landscape.tenant().with_name("dev.duckdb.holder.json").read_text())


def runs(landscape: Landscape) -> list[dict]:
    return json.loads(landscape.run("history", "dev", "--format", "json").stdout)


def test_five_applies_at_once_run_the_change_exactly_once(landscape: Landscape, hold: Hold) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    first = start(landscape, "apply", "dev", "--yes", env=hold.env())
    hold.held(first)
    holder = holder_note(landscape)
    others = [start(landscape, "apply", "dev", "--yes") for _ in range(4)]
    refused = [(p.wait(timeout=60), p.stderr.read()) for p in others]   # all while the first is held
    hold.release(first)

    assert first.wait(timeout=60) == 0, first.stderr.read()
    for code, stderr in refused:
        assert code == 4, stderr
        assert re.search(rf"locked by run {holder['run_id']} \(Test User on \S+, process {first.pid}\) since "
                         r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", stderr), stderr
    assert [r["run_id"] for r in runs(landscape) if r["outcome"] == "applied"][-1] == holder["run_id"]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    assert not landscape.tenant().with_name("dev.duckdb.holder.json").exists()


def test_waiting_applies_plan_under_the_lock_and_find_nothing_left(landscape: Landscape, hold: Hold) -> None:
    """Issue 10, item 11: applies that waited for the lock plan again once they hold it; the change
    runs once and the others exit 0 with nothing to do (never 1, 'the tenant changed')."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    first = start(landscape, "apply", "dev", "--yes", env=hold.env())
    hold.held(first)
    waiters = [start(landscape, "apply", "dev", "--yes", "--lock-timeout", "300") for _ in range(4)]
    for waiter in waiters:   # each has planned the change and now waits for the lock
        assert "waiting up to 300 s" in said(waiter, "is locked by")
    hold.release(first)

    assert first.wait(timeout=60) == 0, first.stderr.read()
    for waiter in waiters:
        assert waiter.wait(timeout=120) == 0, waiter.stderr.read()
        assert "dev: no-changes" in waiter.stdout.read()
    outcomes = [r["outcome"] for r in runs(landscape)]
    assert outcomes.count("applied") == 2    # the first apply of the demo, and this one
    assert outcomes[-4:] == ["no-changes"] * 4


def test_a_saved_plan_that_waited_for_the_lock_is_refused_as_stale(landscape: Landscape, hold: Hold,
                                                                     tmp_path: Path) -> None:
    """Issue 10, item 11: with --plan, a tenant that moved while the apply waited is exit 5, never 1."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    landscape.commit("status")
    saved = tmp_path / "dev.plan.json"
    assert landscape.run("plan", "dev", "--out", str(saved)).code == 0
    first = start(landscape, "apply", "dev", "--yes", env=hold.env())
    hold.held(first)
    late = start(landscape, "apply", "dev", "--plan", str(saved), "--yes", "--lock-timeout", "300")
    said(late, "is locked by")
    hold.release(first)

    assert first.wait(timeout=60) == 0
    assert late.wait(timeout=120) == 5
    assert "the tenant changed" in late.stderr.read()   # found while planning or under the lock: both 5
    assert [r["outcome"] for r in runs(landscape)].count("applied") == 2


def test_unlock_releases_only_a_dead_run_named_exactly(landscape: Landscape, hold: Hold) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(VIEW, "region, created_at", "upper(region) AS region, created_at, status")   # four views
    killed = start(landscape, "apply", "dev", "--yes", env={**hold.env(), "RECONCILER_FAULT": "SIGKILL:2"})
    assert killed.wait(timeout=60) == -9
    [dead] = [r["run_id"] for r in runs(landscape) if r["outcome"] == "running"]

    wrong = landscape.run("unlock", "dev", dead[:-1])
    assert wrong.code == 1 and f"running: dev: {dead}" in wrong.stderr
    holder = start(landscape, "apply", "dev", "--yes", env=hold.env())
    hold.held(holder)
    assert landscape.run("unlock", "dev", dead).code == 4    # never while a live run holds the tenant
    hold.release(holder)
    assert holder.wait(timeout=60) == 0
    # the live run concluded the dead one as interrupted; unlock now finds nothing left running
    outcomes = {r["run_id"]: r["outcome"] for r in runs(landscape)}
    assert outcomes[dead] == "interrupted"
    assert landscape.run("unlock", "dev", dead).code == 1


def test_a_data_flow_run_cannot_write_while_an_apply_holds_the_tenant(landscape: Landscape, hold: Hold) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (1, 'Ada', NULL, 'EU', 'ACTIVE', NULL); "
                  "INSERT INTO sales.customer_transactions VALUES (10, 1, 20000.00, 'EUR', 'web', NULL)")
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    holder = start(landscape, "apply", "dev", "--yes", env=hold.env())
    hold.held(holder)

    blocked = landscape.run("run", "dev", "df_segment_scoring")

    assert blocked.code == 4, blocked.output   # the tenant lock, like a second apply
    hold.release(holder)
    assert holder.wait(timeout=60) == 0
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions") == [(1,)]
    assert landscape.run("run", "dev", "df_segment_scoring").code == 0
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions") == [(2,)]
