"""Checkpoints and data rollback (issue 25) on Spark, parquet and Delta tables, on the test Spark Connect
server: a Delta table's checkpoint is a version of its own history (no row copied) restored by RESTORE
TABLE, a parquet table's a copy restored by INSERT OVERWRITE; tables restore one by one under the
journaled protocol, a SIGKILL midway is put back from the journal by `unlock`, another writer's commit
is never restored over, and a version a VACUUM ran after is reported and never restored partly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import DEMO, DEMO_ROWS, EngineLandscape, Hold
from test_checkpoints import RECONCILER, SCORED, checkpoints, dry_run_execute_and_undo, runs

ENVIRONMENT = "environments/dev/environment.yaml"
BAD_ROW = "INSERT INTO sales.customer_transactions VALUES (14, 4, -1.00, 'EUR', 'SCORING', NULL)"


@pytest.fixture(params=["parquet", "delta"])
def on_spark(request, tmp_path: Path) -> EngineLandscape:
    """The demo applied with rows, dev on the test Spark server in the table format of the param."""
    url = request.getfixturevalue("delta_server" if request.param == "delta" else "spark_server")
    shutil.copytree(DEMO, tmp_path / "environments")
    landscape = EngineLandscape(tmp_path, "spark", None, request.getfixturevalue("spark"))
    environment = tmp_path / ENVIRONMENT
    environment.write_text(environment.read_text().replace("duckdb:///.tenants/dev.duckdb", url)
                           .replace("rules:\n", f"rules:\n  table_format: {request.param}\n", 1))
    landscape.commit(f"the demo, dev on Spark ({request.param})")
    landscape.table_format = request.param
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    for statement in DEMO_ROWS:
        landscape.sql(statement)
    return landscape


def copies(landscape: EngineLandscape) -> list[str]:
    if not landscape.spark.catalog.databaseExists("_reconciler_backup"):
        return []
    return sorted(table.name for table in landscape.spark.catalog.listTables("_reconciler_backup"))


def test_checkpoint_bad_rows_dry_run_rollback_checks_and_the_rollback_of_the_rollback(
        on_spark: EngineLandscape) -> None:
    landscape = on_spark
    good = landscape.state()
    copied = copies(landscape)

    taken = landscape.run("checkpoint", "dev", "--name", "good")
    assert taken.code == 0, taken.output
    assert taken.stdout.startswith("dev: checkpoint good: 2 tables, 8 rows (run ")
    listed = checkpoints(landscape)["good"]
    if landscape.table_format == "delta":   # a version of each table's history: no row copied
        assert listed["kind"] == "version" and copies(landscape) == copied
    else:
        assert listed["kind"] == "copy" and len(copies(landscape)) == len(copied) + 2
    flow = landscape.run("run", "dev", "df_segment_scoring")   # a data flow writes a row nobody wanted
    assert flow.code == 0 and flow.stdout.startswith(SCORED), flow.output
    bad = landscape.state()
    assert bad != good
    [after_run] = [c for name, c in checkpoints(landscape).items() if name.startswith("before-run-")]
    assert (after_run["tables"], after_run["rows"]) == (["sales.customer_transactions"], 4)

    dry_run_execute_and_undo(landscape, good, bad)
    assert runs(landscape)[-5:] == [("checkpoint", "applied", False), ("run", "applied", False),
                                    ("rollback", "dry-run", True), ("rollback", "applied", False),
                                    ("rollback", "applied", False)]


def test_a_run_whose_checks_fail_or_that_is_killed_leaves_its_target_as_it_was(on_spark: EngineLandscape) -> None:
    """`run` on Spark: the target journaled with its restore point (Delta: its version, the flow's commit
    tagged as the run's; parquet: a copy) before the flow's INSERT commits; a failing check puts it back
    (exit 3, no checkpoint kept); a SIGKILL after the INSERT leaves the run running until `unlock` puts
    the Delta target back (a parquet one stops there, exit 6, its rows kept: the row its copy lacks cannot
    be told from another writer's, so `unlock --as-is` concludes it); a dry run is refused, since the rows
    would commit for every reader first."""
    landscape = on_spark
    landscape.edit("environments/dev/sales/customer_transactions.yaml", "primary_key: [id]",
                   "primary_key: [id]\nchecks:\n  - {column: channel, accepted_values: [web, shop]}")
    landscape.commit("only web and shop")
    assert landscape.run("apply", "dev", "--yes").code == 0
    before, held, listed = landscape.state(), copies(landscape), set(checkpoints(landscape))

    failed = landscape.run("run", "dev", "df_segment_scoring")
    assert failed.code == 3, failed.output
    assert "accepted_values(channel): failed (1 offending row)" in failed.stderr
    assert "its target was put back (" in failed.stderr and "Traceback" not in failed.stderr
    assert landscape.state() == before and copies(landscape) == held and set(checkpoints(landscape)) == listed
    assert runs(landscape)[-1] == ("run", "failed", False)

    refused = landscape.run("run", "dev", "df_segment_scoring", "--dry-run")
    assert refused.code == 1 and "run --dry-run is not possible on spark" in refused.stderr, refused.output

    # parquet: its copy and its stage indexed and made, the INSERT into the stage, then its rows into the table
    inserted = 1 if landscape.table_format == "delta" else 6
    killed = subprocess.run([RECONCILER, "--repo", str(landscape.root), "run", "dev", "df_segment_scoring"],
                            env={**os.environ, "RECONCILER_FAULT": f"SIGKILL:{inserted}"}, capture_output=True,
                            text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions") == [(5,)]   # the INSERT committed
    [run_id] = [r["run_id"] for r in json.loads(landscape.run("history", "dev", "--format", "json").stdout)
                if r["outcome"] == "running"]
    unlocked = landscape.run("unlock", "dev", run_id)
    if landscape.table_format == "delta":   # the flow's commit is tagged as the run's: RESTORE undoes it
        assert unlocked.code == 0, unlocked.output
        assert landscape.state() == before and copies(landscape) == held
        return
    # parquet: the row the restore point lacks cannot be told from another writer's: kept, exit 6
    assert unlocked.code == 6 and "holds rows its restore point" in unlocked.stderr, unlocked.output
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions") == [(5,)]
    concluded = landscape.run("unlock", "dev", run_id, "--as-is")
    assert concluded.code == 0, concluded.output
    assert landscape.run("checkpoint", "dev", "--name", "after").code == 0   # the tenant is free again


def test_an_apply_checkpoints_each_table_it_changes_from_its_restore_points_and_its_rows_come_back(
        on_spark: EngineLandscape) -> None:
    """`apply` takes `before-apply-<run>` of every table it changes, made of the restore points its
    journal took before writing them: a Delta table's version (no row copied), a parquet table's copy
    (no second copy). `backups` does not list it, the next apply does not drop it, and the rows come
    back from it; an apply that was put back leaves no checkpoint."""
    landscape = on_spark
    copied = copies(landscape)
    good = landscape.state()
    landscape.edit("environments/dev/sales/customer_transactions.yaml", "description: One row per sales transaction",
                   "description: One row per sales transaction, in the currency it was paid in")
    landscape.commit("a clearer description")
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    [run_id] = [r["run_id"] for r in json.loads(landscape.run("history", "dev", "--format", "json").stdout)][-1:]
    point = checkpoints(landscape)[f"before-apply-{run_id}"]
    assert (point["tables"], point["rows"]) == (["sales.customer_transactions"], 4)
    if landscape.table_format == "delta":
        assert point["kind"] == "version" and copies(landscape) == copied
    else:   # the journal's restore point, kept: one copy, listed by the checkpoint alone
        assert point["kind"] == "copy" and len(copies(landscape)) == len(copied) + 1
    assert json.loads(landscape.run("backups", "dev", "--format", "json").stdout) == []
    kept = copies(landscape)

    landscape.sql(BAD_ROW)
    again = landscape.run("apply", "dev", "--yes")   # nothing to change: nothing checkpointed, nothing dropped
    assert again.code == 0 and "restore point" not in again.output, again.output
    assert copies(landscape) == kept
    restored = landscape.run("rollback", "dev", "--checkpoint", f"before-apply-{run_id}", "--execute")
    assert restored.code == 0, restored.output
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions") == [(4,)]

    assert landscape.state() == good
    landscape.edit("environments/dev/sales/customer_transactions.yaml", "in the currency it was paid in",
                   "in its currency\nchecks:\n  - {column: channel, accepted_values: [WEB]}")
    landscape.commit("a check the rows fail, with a change that writes the table")
    listed, held = set(checkpoints(landscape)), copies(landscape)
    failed = landscape.run("apply", "dev", "--yes")
    assert failed.code == 3 and "compensated from its journal" in failed.stderr, failed.output
    assert set(checkpoints(landscape)) == listed and copies(landscape) == held and landscape.state() == good


def test_a_rollback_killed_midway_is_put_back_whole_by_unlock(on_spark: EngineLandscape) -> None:
    """SIGKILL after the first table is restored: the run stays running with its journal, a checkpoint
    or another rollback is refused meanwhile (exit 4), and `unlock` puts every table back as it was
    before the rollback, rows and schema byte for byte."""
    landscape = on_spark
    assert landscape.run("checkpoint", "dev", "--name", "good").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (5, 'Ed', NULL, 'US', 'ACTIVE', NULL)")
    landscape.sql(BAD_ROW)
    bad = landscape.state()
    first_restored = 1 if landscape.table_format == "delta" else 2   # parquet: its copy, then its overwrite

    killed = subprocess.run([RECONCILER, "--repo", str(landscape.root), "rollback", "dev", "--checkpoint", "good",
                             "--execute"], env={**os.environ, "RECONCILER_FAULT": f"SIGKILL:{first_restored}"},
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert landscape.state() != bad   # one table restored, the other not
    [run_id] = [r["run_id"] for r in json.loads(landscape.run("history", "dev", "--format", "json").stdout)
                if r["outcome"] == "running"]
    refused = landscape.run("checkpoint", "dev", "--name", "meanwhile")
    assert refused.code == 4 and f"run {run_id} was interrupted" in refused.stderr, refused.output

    unlocked = landscape.run("unlock", "dev", run_id)
    assert unlocked.code == 0, unlocked.output
    assert landscape.state() == bad
    assert ("rollback", "compensated", False) in runs(landscape)


def test_another_writers_commit_is_never_restored_over(tmp_path: Path, delta_server: str, spark,
                                                       hold: Hold) -> None:
    """Delta: the rollback holds after restoring the first table; another session commits to the second;
    its RESTORE is refused (that commit would be undone unseen), the first stays restored, exit 6 names
    both. With --all-or-nothing the first is put back too."""
    landscape = _delta(tmp_path, delta_server, spark)
    assert landscape.run("checkpoint", "dev", "--name", "good").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (5, 'Ed', NULL, 'US', 'ACTIVE', NULL)")
    landscape.sql(BAD_ROW)

    for written, all_or_nothing in ((15, []), (16, ["--all-or-nothing"])):
        process = hold.popen([RECONCILER, "--repo", str(landscape.root), "rollback", "dev", "--checkpoint", "good",
                              "--execute", *all_or_nothing], hold.env(1))
        hold.held(process)
        landscape.sql(f"INSERT INTO sales.customer_transactions VALUES ({written}, 1, 1.00, 'EUR', 'web', NULL)")
        hold.release(process)
        stdout, stderr = process.communicate()
        masters = landscape.sql("SELECT count(*) FROM sales.customer_master")
        assert landscape.sql(f"SELECT count(*) FROM sales.customer_transactions WHERE id = {written}") == [(1,)]
        if not all_or_nothing:
            assert process.returncode == 6, stderr
            assert "tables restored: sales.customer_master; not restored:" in stderr
            assert "another writer committed since, and restoring would undo that unseen" in stderr
            assert masters == [(4,)]
            landscape.sql("INSERT INTO sales.customer_master VALUES (5, 'Ed', NULL, 'US', 'ACTIVE', NULL)")
        else:
            assert process.returncode == 1, stderr
            assert "--all-or-nothing: every table was put back as it was" in stderr
            assert masters == [(5,)]


def test_a_version_a_vacuum_ran_after_is_not_restorable_and_nothing_is_restored(tmp_path: Path, delta_server: str,
                                                                             spark) -> None:
    landscape = _delta(tmp_path, delta_server, spark)
    assert landscape.run("checkpoint", "dev", "--name", "good").code == 0
    landscape.sql("DELETE FROM sales.customer_transactions WHERE id > 11")
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    spark.sql("VACUUM sales.customer_transactions RETAIN 0 HOURS").collect()
    changed = landscape.state()

    listed = checkpoints(landscape)["good"]
    assert listed["restorable_until"].startswith("no: VACUUM ran after version "), listed
    refused = landscape.run("rollback", "dev", "--checkpoint", "good", "--execute")
    assert refused.code == 1, refused.output
    assert "checkpoint good of sales.customer_transactions cannot be restored: VACUUM ran after version" in refused.stderr
    assert landscape.state() == changed   # the other table was not restored either


def _delta(tmp_path: Path, url: str, spark) -> EngineLandscape:
    shutil.copytree(DEMO, tmp_path / "environments")
    landscape = EngineLandscape(tmp_path, "spark", None, spark)
    environment = tmp_path / ENVIRONMENT
    environment.write_text(environment.read_text().replace("duckdb:///.tenants/dev.duckdb", url)
                           .replace("rules:\n", "rules:\n  table_format: delta\n", 1))
    landscape.commit("the demo, dev on Delta")
    assert landscape.run("apply", "dev", "--yes").code == 0
    for statement in DEMO_ROWS:
        landscape.sql(statement)
    return landscape




def test_which_versions_a_history_can_restore_whole() -> None:
    """Rows as DESCRIBE HISTORY gives them: a version the log no longer holds, and one a VACUUM ran after,
    are lost; one after the last VACUUM is not. A checkpoint row naming no version is never restored."""
    from reconciler.engines.catalog import history_version
    from reconciler.engines.spark_catalog import lost_versions

    history = [{"version": v, "operation": op} for v, op in
               [(3, "WRITE"), (4, "DELETE"), (5, "VACUUM START"), (6, "VACUUM END"), (7, "WRITE")]]
    lost = lost_versions(history, [2, 4, 6, 7])
    assert set(lost) == {2, 4}
    assert lost[2].startswith("version 2 is no longer in the table's history (its log keeps 3 to 7")
    assert lost[4] == "VACUUM ran after version 4 (at version 5): its files may be gone"
    assert [history_version(text) for text in ("version 12", "version 1; DROP TABLE x", "sales__t__r1", None)] == \
        [12, None, None, None]
