"""Two applies on one tenant never interleave: real separate processes, DuckDB's own file lock."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from conftest import Landscape

RECONCILER = str(Path(sys.executable).parent / "reconciler")
VIEW = "environments/dev/sales/views/vw_customer_active.yaml"


def start(landscape: Landscape, *args: str, fault: str | None = None) -> subprocess.Popen:
    env = {**os.environ, **({"RECONCILER_FAULT": fault} if fault else {})}
    return subprocess.Popen([RECONCILER, "--repo", str(landscape.root), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def holding(landscape: Landscape, process: subprocess.Popen) -> dict:
    """Wait until `process` holds the dev tenant; its holder note (a killed run's stale note is not it)."""
    note = landscape.tenant().with_name("dev.duckdb.holder.json")
    for _ in range(400):
        try:
            holder = json.loads(note.read_text())
        except (OSError, ValueError):
            holder = {}
        if holder.get("pid") == process.pid:
            return holder
        time.sleep(0.05)
    raise AssertionError("the run never took the tenant")


def applied_runs(landscape: Landscape) -> list[str]:
    runs = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    return [r["run_id"] for r in runs if r["outcome"] == "applied"]


def test_five_applies_at_once_run_the_change_exactly_once(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    first = start(landscape, "apply", "dev", "--yes", fault="PAUSE:1")
    holder = holding(landscape, first)
    others = [start(landscape, "apply", "dev", "--yes") for _ in range(4)]
    results = [(p.wait(timeout=60), p.stdout.read(), p.stderr.read()) for p in [first, *others]]

    assert results[0][0] == 0, results[0]
    for code, _, stderr in results[1:]:
        assert code == 4, stderr
        assert re.search(rf"locked by run {holder['run_id']} \(Test User on \S+, process {first.pid}\) since "
                         r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", stderr), stderr
    assert applied_runs(landscape) == [applied_runs(landscape)[0], holder["run_id"]]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    assert not landscape.tenant().with_name("dev.duckdb.holder.json").exists()


def test_waiting_applies_run_after_the_holder_one_at_a_time(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    first = start(landscape, "apply", "dev", "--yes", fault="PAUSE:1")
    holding(landscape, first)
    waiters = [start(landscape, "apply", "dev", "--yes", "--lock-timeout", "60") for _ in range(4)]
    codes = [p.wait(timeout=120) for p in [first, *waiters]]
    assert codes[0] == 0 and set(codes[1:]) <= {0, 5}, [p.stderr.read() for p in waiters]
    runs = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    assert [r["outcome"] for r in runs].count("applied") == 2    # the first apply of the demo, and this one
    assert {r["outcome"] for r in runs[2:]} <= {"no-changes"}


def test_unlock_releases_only_a_dead_run_named_exactly(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    killed = start(landscape, "apply", "dev", "--yes", fault="SIGKILL:2")
    assert killed.wait(timeout=60) == -9
    [dead] = [r["run_id"] for r in json.loads(landscape.run("history", "dev", "--format", "json").stdout)
              if r["outcome"] == "running"]

    wrong = landscape.run("unlock", "dev", dead[:-1])
    assert wrong.code == 1 and f"running: dev: {dead}" in wrong.stderr
    holder = start(landscape, "apply", "dev", "--yes", fault="PAUSE:1")
    holding(landscape, holder)
    assert landscape.run("unlock", "dev", dead).code == 4    # never while a live run holds the tenant
    assert holder.wait(timeout=60) == 0
    # the live run concluded the dead one as interrupted; unlock now finds nothing left running
    outcomes = {r["run_id"]: r["outcome"] for r in json.loads(landscape.run("history", "dev", "--format",
                                                                            "json").stdout)}
    assert outcomes[dead] == "interrupted"
    assert landscape.run("unlock", "dev", dead).code == 1
