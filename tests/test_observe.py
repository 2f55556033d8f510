"""history, status and drift: what the tenants remember and how they differ from the folders."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import Landscape

VIEW = "environments/dev/sales/views/vw_customer_active.yaml"


def test_history_lists_every_run_with_its_commit_actor_and_outcome(landscape: Landscape, monkeypatch) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    first = landscape.repo.head.commit.hexsha
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(VIEW, "SELECT id, name", "SELECT id, to_json(id, id) AS x, name")
    landscape.edit(VIEW, "region, created_at", "region, created_at, 1 AS extra")
    second = landscape.commit("a view reading a column that does not exist")
    assert landscape.run("apply", "dev", "--yes").code == 1

    runs = json.loads(landscape.run("history", "dev", "--format", "json").stdout)

    assert [(r["commit"], r["outcome"], r["actor"], r["operation"], r["dry_run"]) for r in runs] == [
        (first, "applied", "github:octocat", "apply", False), (second, "failed", "github:octocat", "apply", False)]
    assert json.loads(runs[0]["summary"])["create"] == 9 and runs[0]["ended_at"] >= runs[0]["started_at"]
    assert "to_json" in runs[1]["error"] and runs[0]["plan_fingerprint"]
    text = landscape.run("history", "dev").stdout
    assert "octocat" in text and "failed" in text and first[:8] in text


def test_status_shows_applied_commits_pending_changes_locks_and_waiting_promotions(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    applied = landscape.repo.head.commit.hexsha
    landscape.edit(VIEW, "SELECT id, name", "SELECT id,  name, 1 AS one")
    landscape.commit("dev change, not applied")
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
                               "print('ready', flush=True); sys.stdin.read()", str(landscape.tenant())],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        locked = landscape.run("status")
    finally:
        holder.kill()
        holder.wait()
    assert locked.code == 0, locked.output
    assert f"locked by process {holder.pid}" in locked.stdout

    result = landscape.run("status")
    lines = {tuple(line.split()[:2]): line.split() for line in result.stdout.splitlines() if line.strip()}
    assert lines[("dev", "dev")][2:5] == [applied[:8], "1", "0"]   # the view; nothing reads its new column
    assert lines[("qa", "qa")][2:6] == ["never", "applied", "9", "0"]
    assert "dev -> qa: 1 waiting to be promoted" in result.stdout and "change sales.vw_customer_active" in result.stdout
    assert "held back integration.df_segment_scoring: status is beta" in result.stdout
    assert "qa -> prod: nothing waiting" in result.stdout


def test_drift_reports_outside_changes_and_unmanaged_objects(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    clean = landscape.run("drift", "dev")
    assert clean.code == 0 and "dev: no drift" in clean.stdout

    landscape.sql("CREATE OR REPLACE VIEW sales.vw_customer_active AS SELECT 1 AS id")
    landscape.sql("CREATE TABLE sales.scratch (x INTEGER)")
    landscape.sql("ALTER TABLE sales.customer_transactions ADD COLUMN note VARCHAR")
    result = landscape.run("drift", "dev")

    assert result.code == 2
    assert "dev: sales.vw_customer_active: changed outside the reconciler (drift)" in result.stdout
    assert "dev: sales.customer_transactions: drops column note (added outside the reconciler)" in result.stdout
    assert "dev: sales.scratch: unmanaged (not in the folder; never touched)" in result.stdout
    assert "vw_customer_segmentation" not in result.stdout   # recreated dependents are not drift


def test_status_and_drift_speak_json(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("CREATE TABLE sales.scratch (x INTEGER)")
    status = json.loads(landscape.run("status", "--format", "json").stdout)
    dev = next(t for t in status["tenants"] if t["tenant"] == "dev")
    assert dev["pending"] == 0 and dev["drift"] == 1 and dev["applied_commit"]
    assert [w["target"] for w in status["waiting"]] == ["qa", "prod"]
    drifted = landscape.run("drift", "dev", "--format", "json")
    assert drifted.code == 2 and json.loads(drifted.stdout) == [{"tenant": "dev", "changed": [],
                                                                 "unmanaged": ["sales.scratch"]}]


def test_the_reports_sessions_are_closed_when_ctrl_c_comes_while_its_tenants_are_opened(
        landscape: Landscape, monkeypatch) -> None:
    """The site reads each tenant's audit and plan on one session, opened on the tenants' threads.
    Ctrl-C while they are opened (here: dev-b's thread, once dev's session is kept) leaves none open,
    even while the KeyboardInterrupt, and every result it threw away, is still held: a DuckDB tenant
    held read-only refuses every apply."""
    import threading

    import pytest

    from reconciler.engines.duckdb import DuckDBAdapter
    from reconciler.gitops import observe
    from reconciler.planning.environment import Opened, Workspace

    landscape.edit("environments/dev/environment.yaml", "rules:",
                   "  - {name: dev-b, url: 'duckdb:///.tenants/dev-b.duckdb', create: true}\nrules:")
    landscape.commit("a second dev tenant")
    assert landscape.run("apply", "dev", "--yes").code == 0
    dev_opened, audit_in = threading.Event(), DuckDBAdapter.audit_in

    def told(tenant, *rest) -> Opened:   # dev's session is inspected: kept the moment this returns
        if tenant.name == "dev":
            dev_opened.set()
        return Opened(tenant, *rest)

    def pressed(self, reading):
        if self.tenant.name == "dev-b":
            assert dev_opened.wait(timeout=120)   # a hang guard only: dev's thread sets it
            raise KeyboardInterrupt
        return audit_in(self, reading)

    monkeypatch.setattr(observe, "Opened", told)
    monkeypatch.setattr(DuckDBAdapter, "audit_in", pressed)
    with pytest.raises(KeyboardInterrupt) as raised:
        observe.landscape_report(Workspace(landscape.root), history_size=None)
    writable = subprocess.run([sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()",
                               str(landscape.tenant("dev"))], capture_output=True, text=True)
    assert writable.returncode == 0, writable.stderr
    assert raised.value is not None   # held until here


def test_the_site_shows_the_tenant_validated_when_environment_yaml_changes_while_the_folder_is_validated(
        landscape: Landscape, monkeypatch) -> None:
    """`site` and `report` open the tenants environment.yaml declares while the folder is validated; one
    edited meanwhile to name another database is read again: no row mixes the runs of one database with
    the plan of another."""
    from reconciler.gitops import observe
    from reconciler.planning import environment

    assert landscape.run("apply", "dev", "--yes").code == 0
    validating = environment.Workspace.load

    def edited_while_validated(workspace, name, ref=None):
        if name == "dev" and ref is None and "dev-new" not in (landscape.root / "environments/dev/environment.yaml").read_text():
            landscape.edit("environments/dev/environment.yaml", ".tenants/dev.duckdb", ".tenants/dev-new.duckdb")
        return validating(workspace, name, ref)

    monkeypatch.setattr(environment.Workspace, "load", edited_while_validated)
    data = observe.landscape_report(environment.Workspace(landscape.root), history_size=None, environments=("dev",))
    assert data.landscapes["dev"].environment.tenants[0].url == "duckdb:///.tenants/dev-new.duckdb"
    row = next(row for row in data.status if row.environment == "dev")
    assert (row.applied_commit, row.checks) == (None, None) and row.pending > 0, row   # the new, empty database
    assert not data.history   # the old database's runs are not the new one's
