"""Running a data flow, or refreshing a MaterializedTable, on engines whose writes commit statement by
statement (the journaled protocol's: Spark, Snowflake): under the tenant's lease lock, audited as one run `run`.

Owns the order there. The target is journaled first with its restore point (a Delta table's version, a
copy of any other, indexed before it is made); the flow's one statement runs, refused before anything
when it writes anything but its target; then the checks of what it writes and of what reads that. Where
the restore point is a copy, the statement's rows go first into a stage made like the target and are
counted there, then into the target, counted again: the target must hold its rows before and the run's,
no more, no fewer (a commit of another writer's is not told apart from the run's by any count taken
after the INSERT). A check of severity error that fails, a failing statement or Ctrl-C puts the
target's rows back (a Delta table restored to its version, refused over another writer's commit; any
other overwritten from its copy, only while it holds exactly the rows the run left: another writer's
would be lost), and the run is recorded failed or interrupted. A SIGKILL leaves it running with its
journal, for the next apply or `unlock` to put back as any journaled run (a parquet target then stops,
exit 6: the rows its copy lacks cannot be told from another writer's). A run that passes keeps its
restore point as the checkpoint `before-run-<run>`. Never a dry run: the rows would commit for every
reader before they were put back. Never plans.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import cast

from sqlglot.errors import SqlglotError

from .. import faults
from ..desired import checks
from ..desired.sql import SqlProblem, qualified, staged
from ..engines import catalog
from ..engines.journaled_contract import JournaledAdapter
from ..errors import ApplyFailed, ChecksFailed, LockTakenOver, PartlyDone, ReconcilerError, TenantError
from ..model import ObjectKey
from ..parallel import STOP, stopping
from ..plan import Plan, TenantPlan
from ..planning.environment import TenantState
from ..sessions import StatementFailed
from .checks import run as run_data_checks
from .journaled import checkpoint_restore_points, drop_restore_points
from .journaled_checkpoints import concluded, running
from .lifecycle import FlowRun, Written, confined, new_run_id


def run_flow(state: TenantState, tenant_plan: TenantPlan, plan: Plan, flow: ObjectKey, actor: str,
             dry_run: bool = False) -> FlowRun:
    """Run `flow` once on the tenant, its target put back unless its checks pass (ChecksFailed, exit 3)."""
    tenant, engine = state.tenant.name, state.adapter.engine
    if dry_run:
        raise TenantError(f"tenant {tenant}: run --dry-run is not possible on {engine}: each statement commits, so "
                          "the rows would be there for every reader before they were put back; rehearse on a copy "
                          "of the tenant; nothing was run")
    obj = state.desired.objects[flow]
    if obj.kind == "DataFlow" and obj.definition.get("mode") == "upsert":
        raise TenantError(f"tenant {tenant}: data flow {flow}: an upsert is not built on {engine} yet (it counts the "
                          "rows it updates inside a transaction); nothing was run")
    target = flow if obj.kind == "MaterializedTable" else ObjectKey.parse(obj.definition["target"])
    table = qualified(target.schema, target.name, engine)
    statement = f"INSERT OVERWRITE {table} {obj.sql}" if obj.kind == "MaterializedTable" else obj.sql or ""
    confined(statement, target, flow, tenant, engine)
    adapter = cast(JournaledAdapter, state.adapter)   # `protocol_for` chose this protocol for being one
    run = catalog.Run(new_run_id(), plan, tenant_plan.model_copy(update={"changes": ()}), actor, "run")
    stage_name = adapter.backup_name(target, f"{run.run_id}-staged")
    try:   # split before anything runs: a statement that cannot be split is refused with nothing done
        into_stage, move = staged(statement, qualified(catalog.BACKUP_SCHEMA, stage_name, engine), engine)
    except (SqlProblem, SqlglotError) as error:
        raise TenantError(f"tenant {tenant}: data flow {flow}: cannot stage its rows apart ({error}); nothing was "
                          "run") from None
    with running(state, adapter, run, actor, "nothing was run") as session:
        try:
            found = session.inspect().objects.get(target)
            if found is None or found.kind != "Table":
                raise TenantError(f"tenant {tenant}: {target}, the target of {flow}, is not a table the tenant "
                                  "holds now; nothing was run")
            before = catalog.Before.of(0, found.key, found, adapter.restore_point(session, found, run.run_id, False))
            catalog.write_journal(session, run.run_id, [before], {target})
            # no history to tell the run's commit from another's: its rows staged apart first, to be counted
            stage = None if before.version is not None else stage_name
            if stage is not None:
                catalog.mark_restore_points(session, run.run_id, [before.restore_point, stage])
        except BaseException as refused:
            raise concluded(session, run, refused, "nothing was run") from None
        counts = Counts(overwrite=obj.kind == "MaterializedTable")
        fault = faults.Fault.from_environment(tenant, STOP)
        try:
            started = time.monotonic()
            if stage is not None:   # the copy and the stage, indexed first: a run killed between leaves them listed
                for making in (catalog.backup_statements(engine, target, before.restore_point, run.run_id, run.started)
                               + catalog.stage_statements(engine, target, stage, run.run_id, run.started)):
                    _execute(session, making, fault)
            counts.before = session.count_rows([target])[target]   # Ctrl-C after its commit puts it back
            if stage is None:
                counts.moving = True
                _execute(session, statement, fault)
                counts.after = session.count_rows([target])[target]
                counts.staged = counts.after - (0 if counts.overwrite else counts.before)
            else:
                _execute(session, into_stage, fault)
                rows = ObjectKey(catalog.BACKUP_SCHEMA, stage)
                counts.staged = session.count_rows([rows])[rows]
                if stopping():   # not sent: the target holds nothing of the run's
                    raise KeyboardInterrupt
                counts.moving = True
                _execute(session, move, fault)
                counts.after = session.count_rows([target])[target]
            written = Written(inserted=counts.staged, deleted=counts.before if counts.overwrite else 0)
            run.checks = run_data_checks(session, checks.reached({target}, state.desired))
            seconds = time.monotonic() - started
            run.summary = written.to_json()
            failed = checks.failures(run.checks)
            if failed:
                raise ChecksFailed(checks.failure_message(tenant, failed))
            session.hold()   # a lease that lapsed meanwhile: the run that took the tenant over puts this one back
            run.finish(session, "applied")
        except LockTakenOver:   # the new holder recovers this run from its journal
            raise
        except BaseException as stopped:
            raise _put_back(session, adapter, run, before, stage, counts, stopped, flow) from None
        kept, said = checkpoint_restore_points(session, adapter, run, [found], [before])
        drop_restore_points(session, [before], kept)
        said += _drop_stage(session, stage)
    return FlowRun(tenant, run.run_id, "applied", written, seconds, tuple(run.checks), notes=said)


def _execute(session, statement: str, fault: faults.Fault) -> None:
    if stopping():
        raise KeyboardInterrupt
    session.hold()
    session.fresh(statement)
    session.execute(statement)
    fault.tick()


@dataclass
class Counts:
    """The target's rows as the run counted them, and the rows its statement wrote (None: not counted)."""

    overwrite: bool            # a refresh: the rows written replace the target's
    before: int | None = None  # the target's, once its restore point was made
    staged: int | None = None  # the statement's, counted in its stage (where there is none, by the target's)
    moving: bool = False       # the statement's rows were sent into the target
    after: int | None = None   # the target's, once they are in it

    def left(self) -> int | None:
        """The rows the target holds if no one else wrote to it since its restore point was made."""
        if self.staged is None or self.before is None:
            return None
        return self.staged + (0 if self.overwrite else self.before)


def _drop_stage(session, stage: str | None) -> tuple[str, ...]:
    """The run's stage dropped once it ended either way; where that fails (the run is recorded as it
    ended), what to say: a restore point left, which the next apply or prune-backups drops."""
    try:
        for statement in catalog.drop_backup_statements(session, stage) if stage else ():
            session.hold()
            session.execute(statement)
    except (StatementFailed, LockTakenOver) as failed:
        return (f"its stage {catalog.BACKUP_SCHEMA}.{stage} was not dropped ({failed}); the next apply or "
                "prune-backups drops it",)
    return ()


def _put_back(session, adapter: JournaledAdapter, run: catalog.Run, before: catalog.Before, stage: str | None,
              counts: Counts, stopped: BaseException, flow: ObjectKey) -> BaseException:
    """The target's rows put back, the run concluded; the error to raise."""
    tenant = run.tenant_plan.tenant
    if isinstance(stopped, StatementFailed):
        what = f"{flow} failed: {stopped.message}\n  statement: {stopped.statement}"
    elif isinstance(stopped, ChecksFailed):
        what = str(stopped).removeprefix(f"tenant {tenant}: ")
    else:
        what = f"stopped by {type(stopped).__name__}: {stopped}".rstrip(": ")
    try:
        put_back = _restore_target(session, adapter, run.run_id, before, counts) if counts.moving else "nothing was written to it"
    except (StatementFailed, PartlyDone) as failed:   # left running: the next apply or unlock tries again
        why = f"{failed.message} (statement: {failed.statement})" if isinstance(failed, StatementFailed) else failed
        return PartlyDone(f"tenant {tenant}: {what}\n  putting its target back stopped: {why}\n  the run "
                          f"{run.run_id} stays recorded as running with its journal and restore point; the next apply "
                          "(or `reconciler unlock` of it) tries to put it back again")
    drop_restore_points(session, [before])
    message = f"tenant {tenant}: {what}\n  its target was put back ({put_back})"
    run.finish(session, "failed" if isinstance(stopped, Exception) else "interrupted", message)
    message = "\n  ".join((message, *_drop_stage(session, stage)))
    if isinstance(stopped, StatementFailed):
        return ApplyFailed(message)
    if isinstance(stopped, ReconcilerError):
        return type(stopped)(message)
    return stopped


def _restore_target(session, adapter: JournaledAdapter, run_id: str, before: catalog.Before, counts: Counts) -> str:
    """A Delta target back to its journaled version (refused over another writer's commit: only the run's
    own, tagged, are undone); any other's rows overwritten from its restore point, only while it holds
    exactly the rows its copy held and the run's staged ones, counted after they arrived and again now
    (by count: another writer's rows would be lost, so it stops; a writer that adds as many rows as it
    deletes meanwhile is not seen, as counts cannot see it)."""
    if before.version is not None:
        adapter.restore_from_history(session, before, run_id)
        return f"restored to version {before.version}"
    if counts.staged == 0 and not counts.overwrite:   # the move added nothing: no row of the run's to take out
        return "its statement wrote no row"
    point = ObjectKey(catalog.BACKUP_SCHEMA, before.restore_point)
    now = session.count_rows([before.key])[before.key]
    if counts.after is None and now == counts.before:
        return "its statement wrote no row"
    copied, left = session.count_rows([point])[point], counts.left()
    if counts.after is None or left is None or now != left or counts.after != left or copied != counts.before:
        made = "rows that could not be counted" if counts.after is None or left is None else \
            f"{left} rows ({counts.staged} of its own)"
        raise PartlyDone(f"{before.key} holds {now} rows, where the run left {made} over the {copied} of its "
                         "restore point: another writer wrote since the copy was taken, and overwriting the table "
                         "from it would lose those rows; it is kept as it is")
    for statement in adapter.restore_statements(before.key, before.restore_point, [c[0] for c in before.columns]):
        session.hold()
        session.execute(statement)
    if session.count_rows([before.key])[before.key] != copied:
        raise PartlyDone(f"{before.key} does not hold its restore point's rows after the overwrite")
    return f"its rows overwritten from its restore point, {copied} rows"
