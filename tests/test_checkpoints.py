"""Checkpoints and data rollback (issue 25, items 2 and 3) on DuckDB and a real PostgreSQL server:
`checkpoint`, `checkpoints`, `rollback --checkpoint` (a dry run, then --execute), the checkpoints
`apply` and `run` take before they write, `prune-backups` under `rules.checkpoint_retention`, and every
bad input leaving the tenant as it was."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from conftest import DEMO_ROWS, EngineLandscape, Hold, Landscape, snapshot

RECONCILER = str(Path(sys.executable).parent / "reconciler")
MASTER = "environments/dev/sales/customer_master.yaml"
TRANSACTIONS = "environments/dev/sales/customer_transactions.yaml"
SCORED = ("dev: integration.df_segment_scoring wrote: 1 row inserted")


def with_rows(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    for statement in DEMO_ROWS:
        landscape.sql(statement)


def checkpoints(landscape: Landscape) -> dict[str, dict]:
    listed = landscape.run("checkpoints", "dev", "--format", "json")
    assert listed.code == 0, listed.output
    return {c["name"]: c for c in json.loads(listed.stdout)}


def runs(landscape: Landscape) -> list[tuple]:
    history = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    return [(r["operation"], r["outcome"], r["dry_run"]) for r in history]


def since(text: str) -> str:
    """Output with the time between a checkpoint and now left out (the clock's, not ours)."""
    return re.sub(r", \d+ (s|min) since,", ", <t> since,", text)


def dry_run_execute_and_undo(landscape: EngineLandscape, good: dict, bad: dict) -> None:
    """After checkpoint `good` and a fifth transaction nobody wanted: the dry run's impact, the rollback
    with its checks and its two linked checkpoints, the plan converged, and the rollback of the rollback."""
    dry = landscape.run("rollback", "dev", "--checkpoint", "good")
    assert dry.code == 0, dry.output
    assert since(dry.stdout) == (
        "dev: sales.customer_master: 4 rows now, 4 rows at checkpoint good (+0), <t> since, risk low; can be restored\n"
        "dev: sales.customer_transactions: 5 rows now, 4 rows at checkpoint good (+1), <t> since, risk medium; can be "
        "restored\n"
        "dry run: no row was changed (the dry run is in each tenant's audit); --execute restores\n")
    assert landscape.state() == bad
    executed = landscape.run("rollback", "dev", "--checkpoint", "good", "--execute")
    assert executed.code == 0, executed.output
    assert landscape.state() == good
    assert "dev: sales.customer_transactions: 5 rows before, 4 rows at checkpoint good (+1)" in executed.stdout
    assert re.search(r"dev: \d+ checks: \d+ passed, 0 warned, 0 failed; checkpoint (before-rollback-\S+) holds "
                     r"the rows it replaced, (after-rollback-\S+) those it restored \(run (\S+)\)", executed.stdout)
    listed = checkpoints(landscape)
    before = next(name for name in listed if name.startswith("before-rollback-"))
    after = next(name for name in listed if name.startswith("after-rollback-"))
    assert listed[after]["linked_to"] == "good" and listed[after]["rows"] == 8 and listed[before]["rows"] == 9
    assert listed[before]["run_id"] == listed[after]["run_id"]   # one run for all of it
    points = {(name, table): (kind, restore_point) for name, table, kind, restore_point in landscape.sql(
        "SELECT name, table_name, kind, restore_point FROM _reconciler.checkpoints")}
    for (name, table), (kind, restore_point) in points.items():   # the rows restored are the copy restored
        if name == after and points[("good", table)][0] == "copy":
            assert (kind, restore_point) == points[("good", table)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    undone = landscape.run("rollback", "dev", "--checkpoint", before, "--execute")   # the rollback of the rollback
    assert undone.code == 0, undone.output
    assert landscape.state() == bad


def test_checkpoint_bad_rows_dry_run_rollback_checks_and_the_rollback_of_the_rollback(
        engine_landscape: EngineLandscape) -> None:
    landscape = engine_landscape
    with_rows(landscape)
    good = landscape.state()

    taken = landscape.run("checkpoint", "dev", "--name", "good")
    assert taken.code == 0, taken.output
    assert taken.stdout.startswith("dev: checkpoint good: 2 tables, 8 rows (run ")
    flow = landscape.run("run", "dev", "df_segment_scoring")   # a data flow writes rows nobody wanted
    assert flow.code == 0 and SCORED in flow.stdout, flow.output
    bad = landscape.state()
    assert bad != good

    dry_run_execute_and_undo(landscape, good, bad)
    assert runs(landscape)[-5:] == [("checkpoint", "applied", False), ("run", "applied", False),
                                    ("rollback", "dry-run", True), ("rollback", "applied", False),
                                    ("rollback", "applied", False)]


def test_an_apply_and_a_run_checkpoint_each_table_they_write_first(landscape: Landscape) -> None:
    with_rows(landscape)
    assert landscape.run("run", "dev", "df_segment_scoring").code == 0
    landscape.edit(MASTER, "primary_key", "  - {name: tier, type: VARCHAR}\nprimary_key")
    landscape.commit("a tier per customer")
    assert landscape.run("apply", "dev", "--yes").code == 0

    listed = checkpoints(landscape)
    [run_point] = [c for name, c in listed.items() if name.startswith("before-run-")]
    [apply_point] = [c for name, c in listed.items() if name.startswith("before-apply-")]
    assert (run_point["tables"], run_point["rows"]) == (["sales.customer_transactions"], 4)
    assert (apply_point["tables"], apply_point["rows"]) == (["sales.customer_master"], 4)
    dry = landscape.run("rollback", "dev", "--checkpoint", run_point["name"])
    assert dry.code == 0 and "5 rows now, 4 rows at checkpoint" in dry.stdout


def test_selected_tables_only(landscape: Landscape) -> None:
    with_rows(landscape)
    assert landscape.run("checkpoint", "dev", "--name", "just-sales", "--select", "customer_transactions").code == 0
    assert checkpoints(landscape)["just-sales"]["tables"] == ["sales.customer_transactions"]
    assert landscape.run("checkpoint", "dev", "--name", "both").code == 0
    landscape.sql("DELETE FROM sales.customer_master WHERE id = 4; DELETE FROM sales.customer_transactions")

    dry = json.loads(landscape.run("rollback", "dev", "--checkpoint", "both", "--select", "customer_transactions",
                                   "--format", "json").stdout)
    [impact] = dry["results"][0]["impacts"]
    assert (impact["table"], impact["rows_now"], impact["rows_then"], impact["difference"], impact["risk"]) == \
        ("sales.customer_transactions", 0, 4, -4, "high")
    result = landscape.run("rollback", "dev", "--checkpoint", "both", "--select", "customer_transactions", "--execute")

    assert result.code == 0, result.output
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions") == [(4,)]
    assert landscape.sql("SELECT count(*) FROM sales.customer_master") == [(3,)]   # not selected: as it is
    wrong = landscape.run("rollback", "dev", "--checkpoint", "both", "--select", "customer_transaction")
    assert wrong.code == 64 and "(did you mean sales.customer_transactions?)" in wrong.stderr


def test_unknown_names_and_another_environments_checkpoint_are_usage_errors(landscape: Landscape) -> None:
    with_rows(landscape)
    assert landscape.run("checkpoint", "dev", "--name", "good").code == 0
    assert landscape.run("apply", "qa", "--yes").code == 0
    assert landscape.run("checkpoint", "qa", "--name", "qa-point").code == 0
    before = snapshot(landscape.tenant(), audit=False)

    unknown = landscape.run("rollback", "dev", "--checkpoint", "goood", "--execute")
    assert unknown.code == 64
    assert "no checkpoint goood in dev (did you mean good?)" in unknown.stderr
    other = landscape.run("rollback", "dev", "--checkpoint", "qa-point", "--execute")
    assert other.code == 64
    assert "checkpoint qa-point is of environment qa (tenant qa), not dev" in other.stderr
    tenant = landscape.run("rollback", "dev", "--checkpoint", "good", "--tenant", "dve")
    assert tenant.code == 64 and "no tenant dve in dev (did you mean dev?)" in tenant.stderr
    assert landscape.run("apply", "prod", "--yes").code == 0
    assert landscape.run("checkpoint", "prod", "--name", "eu-only", "--tenant", "prod-eu").code == 0
    us = landscape.run("rollback", "prod", "--checkpoint", "eu-only", "--tenant", "prod-us", "--execute")
    assert us.code == 64 and "checkpoint eu-only is of tenant prod-eu, not prod-us" in us.stderr
    taken = landscape.run("checkpoint", "dev", "--name", "good")
    assert taken.code == 64 and "a checkpoint named good exists already" in taken.stderr
    assert landscape.run("checkpoint", "dev", "--name", "no spaces").code == 64
    assert snapshot(landscape.tenant(), audit=False) == before


def test_a_table_dropped_or_changed_since_names_the_structural_rollback_and_refuses(
        engine_landscape: EngineLandscape) -> None:
    landscape = engine_landscape
    with_rows(landscape)
    assert landscape.run("checkpoint", "dev", "--name", "good").code == 0
    commit = landscape.repo.head.commit.hexsha
    landscape.edit(MASTER, "primary_key", "  - {name: tier, type: VARCHAR}\nprimary_key")
    landscape.remove(TRANSACTIONS)
    for view in ("vw_customer_lifetime_value", "vw_transaction_detail", "vw_customer_segmentation"):
        landscape.remove(f"environments/dev/sales/views/{view}.yaml")
    landscape.remove("environments/dev/integration/df_segment_scoring.yaml")
    landscape.commit("tiers; no transactions")
    applied = landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.customer_transactions")
    assert applied.code == 0, applied.output
    changed = landscape.state()

    for args in ((), ("--execute",)):
        refused = landscape.run("rollback", "dev", "--checkpoint", "good", *args)
        assert refused.code == 3, refused.output
        assert (f"table sales.customer_transactions is gone since checkpoint good (dropped or renamed): roll its "
                f"structure back first (reconciler rollback dev --to {commit[:12]}), then its rows") in refused.stderr
        assert "table sales.customer_master has columns (id " in refused.stderr
        assert f"roll its structure back first (reconciler rollback dev --to {commit[:12]})" in refused.stderr
        assert landscape.state() == changed
    # the executed one is refused before any tenant's run starts (every tenant is checked first): as an
    # apply a guard refuses at plan time, it leaves no run; the dry run is audited
    assert runs(landscape)[-2:] == [("apply", "applied", False), ("rollback", "dry-run", True)]


def test_a_copy_a_dba_dropped_is_reported_and_nothing_is_restored(engine_landscape: EngineLandscape) -> None:
    landscape = engine_landscape
    with_rows(landscape)
    assert landscape.run("checkpoint", "dev", "--name", "good").code == 0
    landscape.sql("DELETE FROM sales.customer_transactions")
    [copy] = [name for (name,) in landscape.sql("SELECT restore_point FROM _reconciler.checkpoints WHERE name = 'good' "
                                                 "AND table_name = 'customer_transactions'")]
    landscape.sql(f'DROP TABLE _reconciler_backup."{copy}"')
    gone = f"its copy _reconciler_backup.{copy} is gone (pruned, or dropped outside the reconciler)"
    assert checkpoints(landscape)["good"]["restorable_until"] == f"no: {gone}"
    changed = landscape.state()

    refused = landscape.run("rollback", "dev", "--checkpoint", "good", "--execute")

    assert refused.code == 1, refused.output
    assert f"checkpoint good of sales.customer_transactions cannot be restored: {gone}" in refused.stderr
    assert landscape.state() == changed   # the other table was not restored either


def test_a_checkpoint_row_whose_columns_or_row_count_were_edited_is_listed_and_refused(landscape: Landscape) -> None:
    """Fields a restore trusts, edited by hand in the catalog: the listing says why the checkpoint cannot be
    restored, the rollback refuses (exit 1) before any table is restored; never an internal error (exit 70)."""
    with_rows(landscape)
    assert landscape.run("checkpoint", "dev", "--name", "good").code == 0
    landscape.sql("DELETE FROM sales.customer_transactions")
    changed = snapshot(landscape.tenant(), audit=False)
    [(structure, rows)] = landscape.sql("SELECT structure, row_count FROM _reconciler.checkpoints "
                                        "WHERE table_name = 'customer_master'")
    for column, value, said in (("structure", "'[[\"id\"'", "its columns in _reconciler.checkpoints are not as they "
                                 "were written: '[[\"id\"'"),
                                ("structure", "'[[\"id\", 1]]'", "its columns in _reconciler.checkpoints are not as"),
                                ("row_count", "NULL", "its row count in _reconciler.checkpoints is not a number: None")):
        landscape.sql(f"UPDATE _reconciler.checkpoints SET {column} = {value} WHERE table_name = 'customer_master'")
        assert checkpoints(landscape)["good"]["restorable_until"].startswith(f"no: {said}")
        refused = landscape.run("rollback", "dev", "--checkpoint", "good", "--execute")
        assert refused.code == 1, refused.output
        assert f"checkpoint good of sales.customer_master cannot be restored: {said}" in refused.stderr
        assert "internal error" not in refused.output
        listed = snapshot(landscape.tenant(), audit=False)
        assert {k: v for k, v in listed.items() if k.startswith("sales.")} == \
            {k: v for k, v in changed.items() if k.startswith("sales.")}
        landscape.sql(f"UPDATE _reconciler.checkpoints SET structure = '{structure}', row_count = {rows} "
                      "WHERE table_name = 'customer_master'")
    assert checkpoints(landscape)["good"]["restorable_until"] == "until pruned"


def test_a_rollback_waits_for_no_apply_and_a_killed_one_restores_nothing(engine_landscape: EngineLandscape,
                                                                           hold: Hold) -> None:
    landscape = engine_landscape
    with_rows(landscape)
    assert landscape.run("checkpoint", "dev", "--name", "good").code == 0
    assert landscape.run("run", "dev", "df_segment_scoring").code == 0
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "region, created_at",
                   "region, created_at, status")
    landscape.commit("status in the view")
    holder = hold.popen([RECONCILER, "--repo", str(landscape.root), "apply", "dev", "--yes"], hold.env())
    hold.held(holder)
    locked = landscape.run("rollback", "dev", "--checkpoint", "good", "--execute")
    hold.release(holder)
    assert holder.wait(timeout=60) == 0
    assert locked.code == 4 and "is locked by" in locked.stderr, locked.output
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions") == [(5,)]

    before = landscape.state()
    killed = subprocess.run([RECONCILER, "--repo", str(landscape.root), "rollback", "dev", "--checkpoint", "good",
                             "--execute"], env={**os.environ, "RECONCILER_FAULT": "SIGKILL:3"}, capture_output=True,
                            text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr   # after a table's DELETE, INSERT and the next DELETE
    assert landscape.state() == before
    assert not [name for name in checkpoints(landscape) if name.startswith("after-rollback-")]
    assert runs(landscape)[-1] == ("rollback", "running", False)   # nothing could record its end
    again = landscape.run("rollback", "dev", "--checkpoint", "good", "--execute")
    assert again.code == 0, again.output
    assert runs(landscape)[-2:] == [("rollback", "interrupted", False), ("rollback", "applied", False)]
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions") == [(4,)]


def checkpoint_kept_a_day(landscape: Landscape, name: str) -> None:
    """dev's checkpoints kept a day (`rules.checkpoint_retention: 1d`), its tables holding rows, and a
    checkpoint `name` of them."""
    landscape.edit("environments/dev/environment.yaml", "  capacity: dev-shared", "  capacity: dev-shared\n"
                   "  checkpoint_retention: 1d")
    landscape.commit("checkpoints kept a day")
    with_rows(landscape)
    assert landscape.run("checkpoint", "dev", "--name", name).code == 0


def test_prune_backups_drops_checkpoints_past_their_retention_and_says_so(landscape: Landscape) -> None:
    checkpoint_kept_a_day(landscape, "old")
    assert landscape.run("checkpoint", "dev", "--name", "new").code == 0
    landscape.sql("UPDATE _reconciler.checkpoints SET created_at = created_at - INTERVAL 2 DAY WHERE name = 'old'")

    listed = landscape.run("prune-backups", "dev")
    assert listed.code == 0, listed.output
    assert listed.stdout.count("would drop dev:") == 2 and listed.stdout.count(", of checkpoint old)") == 2
    assert json.loads(landscape.run("backups", "dev", "--format", "json").stdout) == []   # before data loss only
    assert landscape.run("prune-backups", "dev", "--yes").code == 0
    remaining = checkpoints(landscape)
    assert remaining["old"]["restorable_until"].startswith("no: its copy _reconciler_backup.")
    assert not remaining["new"]["restorable_until"].startswith("no:")
    assert landscape.run("rollback", "dev", "--checkpoint", "old").code == 1
    assert landscape.run("rollback", "dev", "--checkpoint", "new").code == 0


def test_a_copy_stays_while_any_checkpoint_naming_it_is_within_its_retention(landscape: Landscape) -> None:
    """The checkpoint a rollback takes of the rows it restored names the copy it restored (no second
    copy): pruning the older checkpoint keeps that copy, and both stay restorable until the newer
    one expires."""
    checkpoint_kept_a_day(landscape, "old")
    landscape.sql("DELETE FROM sales.customer_transactions WHERE id = 1")
    assert landscape.run("rollback", "dev", "--checkpoint", "old", "--execute").code == 0
    copies = "SELECT count(*) FROM information_schema.tables WHERE table_schema = '_reconciler_backup'"
    assert landscape.sql(copies) == [(4,)]   # old's two copies, and those of the rows the rollback replaced
    after = next(name for name in checkpoints(landscape) if name.startswith("after-rollback-"))
    landscape.sql("UPDATE _reconciler.checkpoints SET created_at = created_at - INTERVAL 2 DAY WHERE name = 'old'")

    assert "of checkpoint old" not in landscape.run("prune-backups", "dev").stdout
    assert landscape.run("prune-backups", "dev", "--yes").code == 0
    listed = checkpoints(landscape)
    assert listed["old"]["restorable_until"] == listed[after]["restorable_until"] != "until pruned"
    landscape.sql("DELETE FROM sales.customer_transactions WHERE id = 2")
    assert landscape.run("rollback", "dev", "--checkpoint", "old", "--execute").code == 0
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions") == [(4,)]

    landscape.sql("UPDATE _reconciler.checkpoints SET created_at = created_at - INTERVAL 2 DAY WHERE name <> 'old'")
    pruned = landscape.run("prune-backups", "dev", "--yes")
    assert pruned.code == 0 and pruned.stdout.count("dev:") == 6, pruned.output   # each copy once: old's and
    # those of the rows each of the two rollbacks replaced
    listed = checkpoints(landscape)
    assert all(c["restorable_until"].startswith("no: its copy") for c in listed.values()), listed
    assert landscape.sql(copies) == [(0,)]


def test_a_copy_a_rollback_names_while_prune_backups_is_listing_is_kept(landscape: Landscape, hold: Hold) -> None:
    """`prune-backups --yes` lists an expired checkpoint's copies, then, before it takes the tenant's lock,
    a rollback restores from that checkpoint and its after-rollback checkpoint names those copies: the
    prune decides again under the lock and keeps them, so the newer checkpoint stays restorable."""
    checkpoint_kept_a_day(landscape, "old")
    landscape.sql("UPDATE _reconciler.checkpoints SET created_at = created_at - INTERVAL 2 DAY WHERE name = 'old'")
    listed = landscape.run("prune-backups", "dev")
    assert listed.stdout.count("of checkpoint old") == 2, listed.output   # both copies expired, as listed

    pruning = hold.popen([RECONCILER, "--repo", str(landscape.root), "prune-backups", "dev", "--yes"],
                         {**os.environ, "RECONCILER_FAULT": "HOLD@listed"})
    hold.held(pruning)
    landscape.sql("DELETE FROM sales.customer_transactions WHERE id = 1")
    rolled = landscape.run("rollback", "dev", "--checkpoint", "old", "--execute")
    assert rolled.code == 0, rolled.output
    rows = "SELECT * FROM sales.customer_transactions ORDER BY id"
    restored = landscape.sql(rows)
    hold.release(pruning)
    stdout, stderr = pruning.communicate()
    assert pruning.returncode == 0, stderr
    assert "of checkpoint old" not in stdout, stdout   # dropped nothing a newer checkpoint names

    after = next(name for name in checkpoints(landscape) if name.startswith("after-rollback-"))
    assert checkpoints(landscape)[after]["restorable_until"] != "until pruned"
    assert not checkpoints(landscape)[after]["restorable_until"].startswith("no:"), checkpoints(landscape)[after]
    landscape.sql("DELETE FROM sales.customer_transactions WHERE id = 2")
    assert landscape.run("rollback", "dev", "--checkpoint", after, "--execute").code == 0
    assert landscape.sql(rows) == restored


def two_tenants(landscape: Landscape) -> None:
    """dev with tenants a and b, each applied and holding the demo's rows."""
    landscape.edit("environments/dev/environment.yaml", """  - name: dev
    url: duckdb:///.tenants/dev.duckdb
    create: true""", """  - name: a
    url: duckdb:///.tenants/a.duckdb
    create: true
  - name: b
    url: duckdb:///.tenants/b.duckdb
    create: true""")
    landscape.commit("dev on two tenants")
    assert landscape.run("apply", "dev", "--yes").code == 0
    for tenant in ("a", "b"):
        for statement in DEMO_ROWS:
            landscape.sql(statement, tenant)


def test_a_tenant_that_cannot_be_restored_stops_the_rollback_before_any_tenant_is(landscape: Landscape) -> None:
    """Found by review: tenant a was restored and committed, then b refused, and the message said
    nothing was changed. Every tenant is checked before any is restored."""
    two_tenants(landscape)
    assert landscape.run("checkpoint", "dev", "--name", "x").code == 0
    for tenant in ("a", "b"):
        landscape.sql("DELETE FROM sales.customer_transactions WHERE id = 13", tenant)
    landscape.sql("ALTER TABLE sales.customer_transactions ADD COLUMN dba_note VARCHAR", "b")

    refused = landscape.run("rollback", "dev", "--checkpoint", "x", "--execute")
    assert refused.code == 3, refused.output
    assert "b: table sales.customer_transactions has columns" in refused.stderr
    for tenant in ("a", "b"):
        assert landscape.sql("SELECT count(*) FROM sales.customer_transactions", tenant) == [(3,)]
    assert "before-rollback-" not in landscape.run("checkpoints", "dev").stdout


def test_a_name_one_tenant_holds_already_takes_no_checkpoint_in_any_tenant(landscape: Landscape) -> None:
    two_tenants(landscape)
    assert landscape.run("checkpoint", "dev", "--tenant", "b", "--name", "x").code == 0
    refused = landscape.run("checkpoint", "dev", "--name", "x")
    assert refused.code == 64 and "tenant b: a checkpoint named x exists already" in refused.stderr
    assert [(c["tenant"], c["name"]) for c in checkpoints(landscape).values()] == [("b", "x")]
