"""What `run` of a data flow on Spark promises when someone else is writing (README, "Data flows that run" and
"Checkpoints and data rollback"), each promise attacked on the test Spark Connect server: another writer's rows
added while the flow is held after its INSERT stop the put-back (parquet: by count; Delta: RESTORE refused over
that commit), exit 6, every row kept; an upsert is refused before anything is written; a commit another writer
tags as another run is another writer's, one it tags with the running run's own id is put back with the run's,
as the README says.

The other writer is the test's own Spark session; the flow is held after its INSERT (RECONCILER_FAULT=HOLD:N)
and let go once that writer committed: every wait is on a pipe, never on the clock."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import EngineLandscape, Hold
from test_checkpoints import RECONCILER, checkpoints, runs
from test_confinement import flow
from test_spark_checkpoints import copies, on_spark  # noqa: F401 - on_spark is a fixture
from test_spark_rollback_faults import no_traceback, running

TRANSACTIONS = "sales.customer_transactions"
OTHER_WRITER = f"INSERT INTO {TRANSACTIONS} VALUES (15, 2, 3.00, 'EUR', 'web', NULL)"   # a row the check accepts
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
# Not in the "spark" xdist group, like the other checkpoint files: spread over the workers (each has its
# own test Spark server by then), so CI's longest chain does not grow by this file's minutes.


def with_a_check_the_flow_fails(landscape: EngineLandscape) -> dict:
    """The target checked for channels web and shop only, which the flow's SCORING row fails; the tenant then."""
    landscape.edit("environments/dev/sales/customer_transactions.yaml", "primary_key: [id]",
                   "primary_key: [id]\nchecks:\n  - {column: channel, accepted_values: [web, shop]}")
    landscape.commit("only web and shop")
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    return landscape.state()


def held_run(landscape: EngineLandscape, hold: Hold, after: int) -> subprocess.Popen:
    """`run dev df_segment_scoring`, held after its `after`-th statement."""
    process = hold.popen([RECONCILER, "--repo", str(landscape.root), "run", "dev", "df_segment_scoring"],
                         hold.env(after))
    hold.held(process)
    return process


def history(landscape: EngineLandscape) -> list[dict]:
    return [row.asDict() for row in landscape.spark.sql(f"DESCRIBE HISTORY {TRANSACTIONS}").collect()]


# -- 1: another writer's rows while the flow runs ---------------------------------------------------------
# Where the flow is held: Delta after its INSERT (the table's version journaled, no statement before it); parquet
# after its copy is indexed and made (statement 2: the writer's row is in the table before the run counts it),
# after its rows are in their stage (statement 5: the copy, the stage indexed and made, the INSERT into the stage),
# and after they were moved into the target (statement 6: the writer's row is there before the run counts it again).
WRITERS = [pytest.param("delta", 1, id="delta-after-insert"), pytest.param("parquet", 2, id="parquet-after-copy"),
           pytest.param("parquet", 5, id="parquet-after-stage"), pytest.param("parquet", 6, id="parquet-after-insert")]


@pytest.mark.parametrize("on_spark, after", WRITERS, indirect=["on_spark"])
def test_another_writers_rows_stop_the_put_back_and_are_kept(on_spark: EngineLandscape,  # noqa: F811
                                                             hold: Hold, after: int) -> None:
    """Held midway, another session adds a row; the flow's check then fails. Putting the target back would lose
    that row: on parquet the counts say so (the copy holds 4 rows, the table 6, the run wrote 1), on Delta a
    commit after the journaled version is not the run's. Exit 6, the message names why, both rows kept, the run
    left running for `unlock`, which stops there too, until `unlock --as-is` concludes it with every row kept;
    on parquet the stage its rows went through first stays until then, and the next apply drops it."""
    landscape = on_spark
    before = with_a_check_the_flow_fails(landscape)
    listed = set(checkpoints(landscape))

    process = held_run(landscape, hold, after)
    landscape.sql(OTHER_WRITER)
    hold.release(process)
    stdout, stderr = process.communicate()

    assert process.returncode == 6, stderr
    no_traceback(stderr, process.returncode)
    assert "accepted_values(channel): failed (1 offending row)" in stderr
    assert "putting its target back stopped: " in stderr
    if landscape.table_format == "delta":
        assert f"{TRANSACTIONS} was written by another since version" in stderr, stderr
        assert "which restoring would undo" in stderr
        assert "RESTORE" not in {row["operation"] for row in history(landscape)}
    else:
        assert f"{TRANSACTIONS} holds 6 rows, where the run left " in stderr, stderr
        assert "over the 4 of its restore point: another writer wrote since the copy was taken" in stderr, stderr
    kept = landscape.state()
    assert kept[TRANSACTIONS] == sorted(before[TRANSACTIONS] + [
        repr(row) for row in landscape.sql(f"SELECT * FROM {TRANSACTIONS} WHERE id = 15 OR channel = 'SCORING'")])
    assert len(kept[TRANSACTIONS]) == 6
    [run_id] = running(landscape)
    assert f"the run {run_id} stays recorded as running" in stderr
    assert not [name for name in set(checkpoints(landscape)) - listed if name.startswith("before-run-")]

    unlocked = landscape.run("unlock", "dev", run_id)   # the journal says the same: the rows stay
    assert unlocked.code in (1, 6), unlocked.output
    no_traceback(unlocked.output, unlocked.code)
    assert landscape.state() == kept and running(landscape) == [run_id]
    staged = [name for name in copies(landscape) if name.endswith("_staged")]
    assert len(staged) == (landscape.table_format == "parquet"), copies(landscape)   # the run's rows, apart
    concluded = landscape.run("unlock", "dev", run_id, "--as-is")
    assert concluded.code == 0, concluded.output
    assert landscape.state() == kept and not running(landscape)
    assert landscape.run("checkpoint", "dev", "--name", "after").code == 0   # the tenant is free again
    applied = landscape.run("apply", "dev", "--yes")   # drops what the concluded run left, its stage too
    assert applied.code == 0, applied.output
    assert not set(staged) & set(copies(landscape)) and landscape.state() == kept


# -- 2: an upsert ------------------------------------------------------------------------------------------
def test_an_upsert_is_refused_before_anything_is_written(on_spark: EngineLandscape) -> None:  # noqa: F811
    """`mode: upsert` is refused on Spark (the rows would commit for every reader before any check): exit 1 with
    the reason, no traceback, the tenant exactly as before: its rows, no run recorded, no copy, no checkpoint,
    and on Delta no commit."""
    landscape = on_spark
    flow(landscape, "INSERT INTO sales.customer_master (id, name, region) SELECT 1, 'Ada again', 'EU'",
         "mode: upsert\nunique_key: [id]\n")
    landscape.commit("an upsert")
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    before, audit, held, listed = landscape.state(), runs(landscape), copies(landscape), checkpoints(landscape)
    commits = (len(landscape.spark.sql("DESCRIBE HISTORY sales.customer_master").collect())
               if landscape.table_format == "delta" else None)

    refused = landscape.run("run", "dev", "df_hostile")

    assert refused.code == 1, refused.output
    no_traceback(refused.output, refused.code)
    assert ("data flow integration.df_hostile: an upsert is not built on spark yet" in refused.stderr
            and "nothing was run" in refused.stderr), refused.stderr
    assert landscape.state() == before and runs(landscape) == audit
    assert copies(landscape) == held and checkpoints(landscape) == listed and not running(landscape)
    if commits is not None:
        assert len(landscape.spark.sql("DESCRIBE HISTORY sales.customer_master").collect()) == commits


# -- 3: a forged tag ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("on_spark", ["delta"], indirect=True)
@pytest.mark.parametrize("forged_as", ["another run", "the running run"])
def test_a_commit_tagged_as_a_run_is_put_back_only_when_tagged_as_the_running_run(on_spark: EngineLandscape,  # noqa: F811
                                                                                  hold: Hold, forged_as: str) -> None:
    """The README's word: a commit's tag `reconciler run <id>` makes it the run's own only when <id> is that
    run's. Another writer's commit tagged as another run, while the flow is held, is another writer's: the
    check fails, RESTORE is refused over it (exit 6, both rows kept). Tagged with the running run's own id
    (which the audit shows while it runs), it is taken for the run's: RESTORE undoes both, and the forged
    commit's row goes with the flow's (exit 3, the tenant as before the run)."""
    landscape = on_spark
    before = with_a_check_the_flow_fails(landscape)

    process = held_run(landscape, hold, 1)   # after its INSERT
    [run_id] = running(landscape)
    tag = f"reconciler run {run_id if forged_as == 'the running run' else run_id + '0'}"
    landscape.spark.conf.set(USER_METADATA, tag)
    try:
        landscape.sql(OTHER_WRITER)
    finally:
        landscape.spark.conf.unset(USER_METADATA)
    forged = next(row for row in history(landscape) if row["userMetadata"] == tag)   # the newest: the flow's
    # own INSERT carries the running run's tag too
    hold.release(process)
    stdout, stderr = process.communicate()

    no_traceback(stderr, process.returncode)
    assert "accepted_values(channel): failed (1 offending row)" in stderr
    if forged_as == "another run":
        assert process.returncode == 6, stderr
        assert f"{TRANSACTIONS} was written by another since version" in stderr, stderr
        assert history(landscape)[0]["version"] == forged["version"]   # no RESTORE
        assert landscape.sql(f"SELECT count(*) FROM {TRANSACTIONS} WHERE id = 15 OR channel = 'SCORING'") == [(2,)]
        assert running(landscape) == [run_id]
        assert landscape.run("unlock", "dev", run_id, "--as-is").code == 0
        return
    assert process.returncode == 3, stderr
    newest = history(landscape)[0]
    assert newest["operation"] == "RESTORE" and newest["version"] == forged["version"] + 1, newest
    assert f"its target was put back (restored to version {forged['version'] - 2})" in stderr, stderr
    assert landscape.state() == before   # the forged commit's row went with the run's
    assert landscape.sql(f"SELECT count(*) FROM {TRANSACTIONS} WHERE id = 15") == [(0,)]
    assert runs(landscape)[-1] == ("run", "failed", False) and not running(landscape)
    [recorded] = [r for r in json.loads(landscape.run("history", "dev", "--format", "json").stdout)
                  if r["operation"] == "run"]
    assert "its target was put back" in recorded["error"], recorded
