"""The apply protocol of engines whose DDL is transactional (DuckDB, PostgreSQL): one transaction
per tenant.

Owns: lock, record the run as running, plan again under the lock inside the transaction (every table
the plan changes locked against other writers), run the guards, checkpoint every table it writes and
back up what a change would lose, run every statement, write the catalog, bind every view left in
place, require that a new plan is empty (the convergence check), conclude the audit record, commit;
on any failure roll back and record how the run ended. Also running a data flow in one transaction
(its target checkpointed first), and a dry run's audit record. What both protocols do around their
statements is `apply.lifecycle`'s; `apply.protocols` hands tenants here. Never plans.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from .. import faults
from ..desired import checks, sql
from ..engines import catalog
from ..engines.contract import Adapter, StatementFailed, TransactionalSession
from ..errors import ApplyFailed, ChecksFailed, GuardRefused, ReconcilerError, StalePlan
from ..model import ObjectKey
from ..parallel import STOP, stopping
from ..plan import Change, Plan, TenantPlan
from ..planning.diff import views_to_bind
from ..planning.environment import TenantState
from ..planning.tenant import Restoring
from ..state import LiveState
from . import checkpoints
from .checks import run as run_data_checks
from .lifecycle import (
    FlowRun,
    NotConverged,
    Progress,
    TenantResult,
    Written,
    changed_tables,
    confined,
    converged,
    failed_subject,
    new_run_id,
    replan,
    restored,
    run_checks,
    warnings,
)


def apply_transactional(state: TenantState, expected: TenantPlan, plan: Plan, actor: str, operation: str = "apply",
                 progress: Progress | None = None, moved: str = "refuse", allow_data_loss: Sequence[str] = (),
                 restoring: Restoring | None = None, smoke: bool = False) -> TenantResult:
    """Apply one tenant in one transaction. What runs is never `expected` as given: the tenant is
    planned again under its lock, inside the transaction (with every table the plan changes locked
    against other writers), and that plan runs. When it differs from `expected`, `moved="refuse"`
    stops (a saved, reviewed or confirmed plan: exit 5) and `moved="follow"` runs the new plan once
    the guards pass it (another run got there first). A restore's change (`restoring`) runs after it.
    The convergence check (a new plan must be empty) runs before commit. With `smoke`, all of it is
    rehearsed first, with every data flow it deploys run and the checks of what they write, and
    rolled back (`_smoke`); then it runs for real."""
    run = catalog.Run(new_run_id(), plan, expected, actor, operation)
    adapter = state.adapter
    notes: tuple[str, ...] = ()
    with adapter.session(create=state.tenant.create, holder={"run_id": run.run_id, "actor": actor}) as session:
        run.start(session)   # committed on its own: if this process dies, the next run sees it
        session.begin()
        try:
            if smoke:   # a rehearsal: the whole apply, then every data flow it deploys, then rolled back
                changes = _statements_and_checks(session, state, expected, plan, moved, allow_data_loss, restoring, run,
                                                 None)
                notes = _smoke(session, state, changes)
                session.rollback()
                session.begin()
            changes = _statements_and_checks(session, state, expected, plan, moved, allow_data_loss, restoring, run,
                                             progress)
            tenant_plan = run.tenant_plan
            run.supersede(session)
            run.finish(session, "applied" if changes else "no-changes")
            converged(session, state, run)
            session.commit()
        except (GuardRefused, StalePlan) as refused:
            session.rollback()
            run.conclude(session, "refused" if isinstance(refused, GuardRefused) else "stale", str(refused))
            raise
        except ChecksFailed as failed:
            raise _undone(session, run, f"{failed}\n  the tenant was rolled back; nothing changed", ChecksFailed) \
                from None
        except NotConverged as left:
            raise _undone(session, run, f"tenant {expected.tenant}: after the statements a new plan was not empty: "
                          f"{left}; the tenant was rolled back; nothing changed (this is a reconciler bug, please "
                          "report it)", ApplyFailed) from None
        except StatementFailed as failure:
            raise _undone(session, run, f"tenant {expected.tenant}: "
                          f"{failed_subject((*run.tenant_plan.changes, *run.restored), failure)}: apply failed: "
                          f"{failure.message}\n  statement: {failure.statement}\n  the tenant was rolled back; "
                          "nothing changed", ApplyFailed) from None
        except BaseException as stopped:   # KeyboardInterrupt, SystemExit, a bug: roll back, say so
            session.rollback()
            run.conclude(session, "interrupted", f"stopped by {type(stopped).__name__}; rolled back")
            raise
    return TenantResult(expected.tenant, run.run_id, run.outcome, tenant_plan.summary,
                        notes=notes + warnings(run.checks))


def _statements_and_checks(session: TransactionalSession, state: TenantState, expected: TenantPlan, plan: Plan,
                           moved: str, allow_data_loss: Sequence[str], restoring: Restoring | None, run: catalog.Run,
                           progress: Progress | None) -> tuple[Change, ...]:
    """Inside the apply transaction: plan again under the lock, run every statement, record the catalog,
    bind the views left in place, run the data checks. The changes that ran."""
    live, run.tenant_plan = replan(session, state, expected, plan, moved, allow_data_loss)
    run.restored = restored(session, state, live, restoring)
    changes = (*run.tenant_plan.changes, *run.restored)
    written = changed_tables([change for change in changes if change.action != "delete"], live)
    if written:   # rolled back with the rest if the apply is; a table it drops has its backup instead
        checkpoints.take(session, state.adapter, run, [live.objects[key] for key in written],
                         f"before-{run.operation}-{run.run_id}")
    _execute(session, state.adapter, live, changes, run, progress)
    catalog.write_objects(session, run.tenant_plan.changes, state.desired, run)
    session.check_views(views_to_bind(changes, live, state.desired.engine))
    run_checks(session, state, changes, run)
    return changes


def _smoke(session: TransactionalSession, state: TenantState, changes: Sequence[Change]) -> tuple[str, ...]:
    """`apply --smoke`, after the rehearsal's statements and checks: every data flow the plan creates
    or changes runs, then the checks of what it writes (the caller rolls it all back)."""
    flows = [change.key for change in changes if change.kind == "DataFlow" and change.action != "delete"]
    for flow in flows:
        _rehearsable(state, flow, "apply --smoke")
    notes = []
    for flow in flows:
        written, results = _flow(session, state, flow)
        failed = checks.failures(results)
        if failed:
            raise ChecksFailed(f"smoke test of data flow {flow}: "
                               + checks.failure_message(state.tenant.name, failed))
        target = state.desired.objects[flow].definition["target"]
        notes.append(f"smoke test: {flow} {written.describe()} in {target} (its SQL on the tenant: its "
                     f"connection is outside it), {checks.summary(results)}; rolled back")
    return tuple(notes)


def _rehearsable(state: TenantState, flow: ObjectKey, what: str) -> None:
    """A rehearsal is rolled back, and a sequence is not: a flow taking sequence values is not rehearsed
    (GuardRefused, before it runs)."""
    taken = sql.sequence_calls(state.desired.objects[flow].sql or "", state.adapter.engine)
    if taken:
        raise GuardRefused(f"tenant {state.tenant.name}: {what}: data flow {flow} calls {', '.join(taken)}(), and a "
                           "rolled-back rehearsal would still advance the sequence; run it for real, or rehearse on "
                           "a copy of the tenant; nothing was run")


def _flow(session: TransactionalSession, state: TenantState, flow: ObjectKey) -> tuple[Written, list[checks.Result]]:
    """Run a data flow's INSERT (or refresh a MaterializedTable from its query: its rows deleted, the
    query's inserted) in the session's transaction, then the checks of what it writes and of what reads
    that: the rows written, by the engine's own counts, and what the checks found. An upsert's count
    is split into rows inserted and updated by the table's size before and after, with the table held
    against every other writer in between."""
    obj = state.desired.objects[flow]
    target = flow if obj.kind == "MaterializedTable" else ObjectKey.parse(obj.definition["target"])
    table = sql.qualified(target.schema, target.name, state.adapter.engine)
    try:
        if obj.kind == "MaterializedTable":
            deleted = session.write(f"DELETE FROM {table}")
            written = Written(inserted=session.write(f"INSERT INTO {table} {obj.sql}"), deleted=deleted)
        elif obj.definition.get("mode") == "upsert":
            for statement in state.adapter.lock_statements([target]):
                session.execute(statement)
            before = session.count(f"SELECT count(*) FROM {table}")
            changed = session.write(obj.sql or "")
            inserted = session.count(f"SELECT count(*) FROM {table}") - before
            written = Written(inserted=inserted, updated=changed - inserted)
        else:
            written = Written(inserted=session.write(obj.sql or ""))
    except StatementFailed as failure:
        failure.subject = f"{obj.kind} {flow}"
        raise
    return written, run_data_checks(session, checks.reached({target}, state.desired))


def _undone(session: TransactionalSession, run: catalog.Run, message: str,
            error: type[ReconcilerError]) -> ReconcilerError:
    """After a failure inside the transaction: roll it back, record the run as failed with `message`
    (in a transaction of its own), and the error to raise."""
    session.rollback()
    run.conclude(session, "failed", message)
    return error(message)


def _execute(session: TransactionalSession, adapter: Adapter, live: LiveState, changes: Sequence[Change],
             run: catalog.Run, progress: Progress | None) -> None:
    fault = faults.Fault.from_environment(run.tenant_plan.tenant, STOP)   # the catalog exists: run.start made it
    for change in changes:
        table = live.find(change.key)
        statements = list(change.statements)
        if change.data_loss and table in live.objects and live.objects[table].kind == "Table":
            statements[:0] = catalog.backup_statements(adapter.engine, table, adapter.backup_name(table, run.run_id),
                                                       run.run_id, run.started)
        for statement in statements:
            if stopping():
                raise KeyboardInterrupt
            session.execute(statement)
            fault.tick()
        if progress is not None:
            progress(run.tenant_plan.tenant, change)


def run_flow(state: TenantState, tenant_plan: TenantPlan, plan: Plan, flow: ObjectKey, actor: str,
             dry_run: bool = False) -> FlowRun:
    """Run a data flow's INSERT ... SELECT (as rendered for the tenant), or refresh a MaterializedTable,
    in one transaction under the tenant lock, then the checks of what it writes and of what reads that;
    commit only when none of severity error fails (ChecksFailed otherwise, rolled back), and never with
    `dry_run`. Audited as operation `run`, with the rows it inserted, updated and deleted; what it writes
is checkpointed first (`before-run-<run>`)."""
    obj = state.desired.objects[flow]
    if obj.kind == "DataFlow":
        confined(obj.sql or "", ObjectKey.parse(obj.definition["target"]), flow, state.tenant.name,
                 state.adapter.engine)
    if dry_run and obj.kind == "DataFlow":
        _rehearsable(state, flow, "run --dry-run")
    run = catalog.Run(new_run_id(), plan, tenant_plan.model_copy(update={"changes": ()}), actor, "run")
    with state.adapter.session(create=False, holder={"run_id": run.run_id, "actor": actor}) as session:
        run.start(session)
        session.begin()
        try:
            started = time.monotonic()
            obj = state.desired.objects[flow]
            target = flow if obj.kind == "MaterializedTable" else ObjectKey.parse(obj.definition["target"])
            if target in state.live.objects:   # as the plan read it: `runnable` refuses a target with a change
                checkpoints.take(session, state.adapter, run, [state.live.objects[target]], f"before-run-{run.run_id}")
            written, run.checks = _flow(session, state, flow)
            seconds = time.monotonic() - started
            run.summary = written.to_json()
            failed = checks.failures(run.checks)
            if failed:
                raise ChecksFailed(checks.failure_message(state.tenant.name, failed))
            if dry_run:
                session.rollback()
                run.conclude(session, "dry-run", None)
            else:
                run.finish(session, "applied")
                session.commit()
        except ChecksFailed as failed:
            raise _undone(session, run, f"{failed}\n  what {flow} wrote was rolled back", ChecksFailed) from None
        except StatementFailed as failure:
            raise _undone(session, run, f"tenant {state.tenant.name}: {failure.subject or flow} failed: "
                          f"{failure.message}\n  statement: {failure.statement}\n  rolled back; nothing was "
                          "written", ApplyFailed) from None
        except BaseException as stopped:
            session.rollback()
            run.conclude(session, "interrupted", f"stopped by {type(stopped).__name__}; rolled back")
            raise
    return FlowRun(state.tenant.name, run.run_id, "dry-run" if dry_run else "applied", written, seconds,
                   tuple(run.checks))
