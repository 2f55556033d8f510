"""What `rollback ENV --checkpoint NAME --execute` on Spark promises when something goes wrong (README,
"Checkpoints and data rollback"), each promise attacked on the test Spark Connect server: a session that
ignores missing files is refused, Ctrl-C midway puts back what the rollback touched, a failure after the
restores leaves them restored without the checkpoints around them, another writer's Delta commit stops a
compensation until `unlock --as-is`, a checkpoint row edited by hand restores nothing, and a rollback that
restored no table exits 1."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import EngineLandscape, Hold
from test_checkpoints import RECONCILER, checkpoints, runs
from test_spark_checkpoints import BAD_ROW, _delta, copies, on_spark  # noqa: F401 - on_spark is a fixture

NEW_MASTER = "INSERT INTO sales.customer_master VALUES (5, 'Ed', NULL, 'US', 'ACTIVE', NULL)"
TABLES = ("sales.customer_master", "sales.customer_transactions")
ROLLBACK = ("rollback", "dev", "--checkpoint", "good", "--execute")


def bad_rows_after_checkpoint(landscape: EngineLandscape) -> dict:
    """Checkpoint `good`, then a row nobody wanted in each table (as a job outside the reconciler would
    write them): the tenant as it is then, rows and definitions."""
    taken = landscape.run("checkpoint", "dev", "--name", "good")
    assert taken.code == 0, taken.output
    landscape.sql(NEW_MASTER)
    landscape.sql(BAD_ROW)
    return everything(landscape)


def everything(landscape: EngineLandscape) -> dict:
    """The tenant's objects and rows, and each table's full schema (nullability, comments, defaults) and the
    properties it holds: a table put back must be the one it was, not only its rows."""
    state = landscape.state()
    for table in TABLES:
        state[f"{table} schema"] = landscape.spark.table(table).schema.json()
        state[f"{table} properties"] = sorted((key, value) for key, value in (
            tuple(row) for row in landscape.spark.sql(f"SHOW TBLPROPERTIES {table}").collect())
            if key != "transient_lastDdlTime")   # the metastore's time of its last DDL
    return state


def rollback(landscape: EngineLandscape, fault: str) -> subprocess.CompletedProcess:
    return subprocess.run([RECONCILER, "--repo", str(landscape.root), *ROLLBACK],
                          env={**os.environ, "RECONCILER_FAULT": fault}, capture_output=True, text=True)


def running(landscape: EngineLandscape) -> list[str]:
    return [r["run_id"] for r in json.loads(landscape.run("history", "dev", "--format", "json").stdout)
            if r["outcome"] == "running"]


def restores(landscape: EngineLandscape, table: str) -> int:
    """How many RESTORE commits a Delta table's history holds."""
    return sum(row.operation == "RESTORE" for row in landscape.spark.sql(f"DESCRIBE HISTORY {table}").collect())


def no_traceback(output: str, code: int) -> None:
    assert "Traceback" not in output and "internal error" not in output and code != 70, output


# -- 1 and 6: a session that ignores missing files; no table restored is exit 1 -----------------------------
def test_a_session_that_ignores_missing_files_restores_no_table_and_exits_1(tmp_path: Path, delta_server: str,
                                                                          spark, monkeypatch) -> None:
    """With spark.sql.files.ignoreMissingFiles=true Delta's RESTORE brings back what files are left: every
    table is refused before its RESTORE, left as it was, and a rollback that restored none is exit 1. The
    session sets it as pyspark sets a client's `--conf spark.sql.*` on every session it makes."""
    landscape = _delta(tmp_path, delta_server, spark)
    bad = bad_rows_after_checkpoint(landscape)
    monkeypatch.setenv("PYSPARK_REMOTE_INIT_CONF_LEN", "1")
    monkeypatch.setenv("PYSPARK_REMOTE_INIT_CONF_0", json.dumps({"spark.sql.files.ignoreMissingFiles": "true"}))

    refused = landscape.run(*ROLLBACK)

    assert refused.code == 1, refused.output
    no_traceback(refused.output, refused.code)
    assert "tables restored: none; not restored:" in refused.stderr
    for table in TABLES:
        assert (f"{table}: not run: the session sets spark.sql.files.ignoreMissingFiles=true, with which Delta "
                "restores what files are left and skips the rest") in refused.stderr
        assert restores(landscape, table) == 0
    assert refused.stderr.count("; left as it was") == 2
    assert everything(landscape) == bad
    assert runs(landscape)[-1] == ("rollback", "failed", False)
    assert "before-rollback" not in " ".join(checkpoints(landscape))


# -- 2: Ctrl-C midway --------------------------------------------------------------------------------------
def test_ctrl_c_midway_puts_back_what_the_rollback_touched(on_spark: EngineLandscape) -> None:  # noqa: F811
    """SIGINT at each point of the rollback's writes: after a parquet table's copy (taken, the table not yet
    written), after its overwrite, after a Delta table's RESTORE, after the last table's: what it touched is
    put back, the run concluded interrupted, the tenant exactly as before, rows and schema, and no copy left
    behind."""
    landscape = on_spark
    bad = bad_rows_after_checkpoint(landscape)
    copied = copies(landscape)
    # Delta: after the first RESTORE; parquet (each table copied, then overwritten): after the first copy, the
    # first table not yet written, and after the second copy, the first table restored
    points = (1,) if landscape.table_format == "delta" else (1, 3)

    for after in points:
        stopped = rollback(landscape, f"SIGINT:{after}")
        assert stopped.returncode == 130, (after, stopped.stderr)
        no_traceback(stopped.stderr, stopped.returncode)
        assert everything(landscape) == bad, after
        assert copies(landscape) == copied, after
        assert runs(landscape)[-1] == ("rollback", "interrupted", False) and not running(landscape), after


# -- 3: a failure after the restores --------------------------------------------------------------------------
def test_a_failure_after_the_restores_ends_restored_without_the_checkpoints(tmp_path: Path, delta_server: str,
                                                                             spark, hold: Hold) -> None:
    """Held after the last table is restored; the catalog's checkpoints table is moved away meanwhile (a DBA),
    so the checkpoints around the rollback cannot be recorded: every table stays restored and checked, the
    run ends restored (not running, not put back), saying they were not taken."""
    landscape = _delta(tmp_path, delta_server, spark)
    good = everything(landscape)
    bad_rows_after_checkpoint(landscape)

    process = hold.popen([RECONCILER, "--repo", str(landscape.root), *ROLLBACK], hold.env(2))   # after both RESTOREs
    hold.held(process)
    landscape.sql("ALTER TABLE _reconciler.checkpoints RENAME TO _reconciler.checkpoints_moved")
    hold.release(process)
    stdout, stderr = process.communicate()
    landscape.sql("ALTER TABLE _reconciler.checkpoints_moved RENAME TO _reconciler.checkpoints")

    assert process.returncode == 1, stderr
    no_traceback(stderr, process.returncode)
    assert ("dev: tenant dev: the tables are restored and checked, but the checkpoints around the rollback were not "
            "taken:") in stderr
    assert everything(landscape) == good
    assert runs(landscape)[-1] == ("rollback", "applied", False) and not running(landscape)
    [history] = [r for r in json.loads(landscape.run("history", "dev", "--format", "json").stdout)
                 if r["operation"] == "rollback"]
    assert "the checkpoints around the rollback were not taken" in history["error"], history
    assert sorted(checkpoints(landscape)) == ["good"]
    assert landscape.run("checkpoint", "dev", "--name", "after").code == 0   # the tenant is not held


# -- 4: a compensation stopped by another writer ---------------------------------------------------------------
def test_another_writers_commit_stops_the_compensation_until_unlock_as_is(tmp_path: Path, delta_server: str,
                                                                        spark) -> None:
    """SIGKILL after the first Delta table is restored; another session then commits to it, and to the second,
    which the rollback never reached. `unlock` will not RESTORE over the first's commit: it fails, naming that
    table alone (the second has nothing of the run's to put back), the run stays running, the tenant refuses a
    checkpoint, and both commits are kept. `unlock --as-is` concludes the run with nothing put back."""
    landscape = _delta(tmp_path, delta_server, spark)
    bad_rows_after_checkpoint(landscape)
    killed = rollback(landscape, "SIGKILL:1")
    assert killed.returncode == -9, killed.stderr
    [run_id] = running(landscape)
    assert landscape.sql("SELECT count(*) FROM sales.customer_master") == [(4,)]   # restored, not yet put back
    landscape.sql("INSERT INTO sales.customer_master VALUES (6, 'Flo', NULL, 'EU', 'ACTIVE', NULL)")
    landscape.sql("INSERT INTO sales.customer_transactions VALUES (16, 1, 1.00, 'EUR', 'web', NULL)")
    written = everything(landscape)

    unlocked = landscape.run("unlock", "dev", run_id)
    assert unlocked.code == 1, unlocked.output
    no_traceback(unlocked.output, unlocked.code)
    assert "sales.customer_master was written by another since version" in unlocked.stderr
    assert "customer_transactions" not in unlocked.stderr
    assert "WRITE by" in unlocked.stderr, unlocked.stderr
    assert everything(landscape) == written
    assert running(landscape) == [run_id]
    assert landscape.run("checkpoint", "dev", "--name", "meanwhile").code == 4

    concluded = landscape.run("unlock", "dev", run_id, "--as-is")
    assert concluded.code == 0, concluded.output
    assert f"run {run_id} concluded as interrupted, as the tenant is: nothing was put back" in concluded.stdout
    assert everything(landscape) == written
    assert not running(landscape) and runs(landscape)[-1] == ("rollback", "interrupted", False)
    assert landscape.run("checkpoint", "dev", "--name", "after").code == 0


# -- 5: a checkpoint row edited by hand ------------------------------------------------------------------------
def edit_checkpoint(landscape: EngineLandscape, table: str, restore_point: str) -> None:
    """Checkpoint `good`'s row of `table` given another restore point, as a person would edit the catalog's
    parquet table: its rows read, one changed, the table overwritten."""
    spark = landscape.spark
    spark.sql("REFRESH TABLE _reconciler.checkpoints").collect()
    catalog = spark.table("_reconciler.checkpoints")
    rows = [row.asDict() for row in catalog.collect()]
    schema, name = catalog.schema, table.split(".")[1]
    assert any(row["name"] == "good" and row["table_name"] == name for row in rows)
    edited = [{**row, "restore_point": restore_point} if row["name"] == "good" and row["table_name"] == name else row
              for row in rows]
    spark.createDataFrame([tuple(row[f.name] for f in schema.fields) for row in edited], schema=schema) \
        .write.insertInto("_reconciler.checkpoints", overwrite=True)


def hand_edits(landscape: EngineLandscape, original: dict[str, str]) -> list[tuple[dict[str, str], int, str]]:
    """(restore point per table, exit code, what stderr says): rows no restore may trust, found before any
    table is restored, and rows naming a real restore point that is not the checkpoint's (a version the table
    had, another table's copy), restored, caught by the checks after, and put back."""
    lost = "cannot be restored: "
    if landscape.table_format == "delta":
        return [({TABLES[0]: "version 999"}, 1, f"{lost}version 999 is no longer in the table's history"),
                ({TABLES[0]: "version 1; DROP TABLE sales.customer_transactions"}, 1,
                 f"{lost}its restore point 'version 1; DROP TABLE sales.customer_transactions' names no version"),
                ({TABLES[0]: "version 0", TABLES[1]: "version 0"}, 1, "rows as at checkpoint good (4)")]
    copy = {table: original[table.split(".")[1]] for table in TABLES}
    return [({TABLES[0]: "x` AS SELECT 1; DROP TABLE sales.customer_transactions; --"}, 1,
             f"{lost}its copy _reconciler_backup.x` AS SELECT 1; DROP TABLE sales.customer_transactions; -- is gone"),
            ({TABLES[0]: copy[TABLES[1]], TABLES[1]: copy[TABLES[0]]}, 1, "put back as it was")]


def test_a_checkpoint_row_edited_by_hand_restores_nothing(on_spark: EngineLandscape) -> None:  # noqa: F811
    """Through the CLI: a clear message, exit 1 (never a traceback or 70), no table restored, the tenant as
    it was; the listing says why the edited checkpoint cannot be restored."""
    landscape = on_spark
    bad = bad_rows_after_checkpoint(landscape)
    spark = landscape.spark
    spark.sql("REFRESH TABLE _reconciler.checkpoints").collect()
    original = {row.table_name: row.restore_point for row in spark.table("_reconciler.checkpoints").collect()}

    for edits, code, said in hand_edits(landscape, original):
        for table, restore_point in edits.items():
            edit_checkpoint(landscape, table, restore_point)
        refused = landscape.run(*ROLLBACK)
        assert refused.code == code, (edits, refused.output)
        no_traceback(refused.output, refused.code)
        assert said in refused.stderr, (edits, refused.stderr)
        assert everything(landscape) == bad, edits
        assert not running(landscape)
        for table in edits:
            edit_checkpoint(landscape, table, original[table.split(".")[1]])
    assert checkpoints(landscape)["good"]["restorable_until"] == "until pruned"
