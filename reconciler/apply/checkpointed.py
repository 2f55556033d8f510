"""Taking a checkpoint, and rolling tables' rows back to one, on engines whose DDL is transactional
(DuckDB, PostgreSQL): each in one transaction per tenant, under the tenant lock, audited as one run.

Owns the order inside that transaction: a checkpoint reads the tenant under the lock and copies each
table; a rollback locks the tables, finds them as the checkpoint needs them, checkpoints what it
replaces, restores every table (the change `planning.tenant.Restoring` compiles), runs the checks
after it and checkpoints what it restored, linked to the checkpoint. A dry run reads row counts only
and is audited as a dry run. What either writes is `apply.checkpoints`'; never plans, never decides
which tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import faults
from ..desired import checks
from ..engines import catalog
from ..engines.contract import TransactionalSession
from ..engines.stores import now
from ..errors import ApplyFailed, ChecksFailed, GuardRefused, TenantError, UsageProblem
from ..model import ObjectKey
from ..parallel import STOP, stopping
from ..plan import Plan, TenantPlan
from ..planning.environment import TenantState
from ..planning.tenant import Restoring, restore_through
from ..sessions import StatementFailed
from . import checkpoints
from .checkpoints import Impact, Point
from .lifecycle import new_run_id, record_dry_run

REFUSED = (GuardRefused, UsageProblem, TenantError)   # found under the lock: nothing was written


@dataclass(frozen=True)
class Rolled:
    """One tenant's data rollback: what it found, and (executed) what it took and checked."""

    tenant: str
    run_id: str
    outcome: str                       # dry-run | applied
    impacts: tuple[Impact, ...]
    before: str | None = None          # the checkpoint of the rows it replaced (rollback of the rollback)
    after: str | None = None           # the checkpoint of the rows it restored, linked to the one restored
    checks: tuple = ()
    not_restored: tuple[tuple[str, str], ...] = ()   # (table, why): tables restored one by one (journaled)


def take_checkpoint(state: TenantState, tenant_plan: TenantPlan, plan: Plan, tables: Sequence[ObjectKey],
                    name: str, actor: str) -> tuple[str, list[Point]]:
    """A checkpoint of `tables` named `name`, in one transaction under the tenant lock (operation
    `checkpoint` in the audit): the run's id and the restore points."""
    run = catalog.Run(new_run_id(), plan, tenant_plan.model_copy(update={"changes": ()}), actor, "checkpoint")

    def body(session: TransactionalSession) -> list[Point]:
        checkpoints.refuse_taken(session, name, state.tenant.name)
        found = checkpoints.held(session.inspect(), tables, state.tenant.name)
        for statement in state.adapter.copy_lock_statements(sorted(tables)):   # one point in time
            session.execute(statement)
        taken = checkpoints.take(session, state.adapter, run, found, name)
        run.summary = {"tables": len(taken), "rows": sum(p.row_count for p in taken)}
        return taken

    return run.run_id, _in_one_transaction(state, run, actor, body)


def rollback_rows(state: TenantState, tenant_plan: TenantPlan, plan: Plan, points: Sequence[Point], actor: str,
                  execute: bool) -> Rolled:
    """Roll the rows of each point's table back to it. A dry run reads counts and is audited as one;
    executed, every table is restored in one transaction, then checked, else nothing commits."""
    if not execute:
        return dry_run(state, tenant_plan, plan, points, actor)
    run = catalog.Run(new_run_id(), plan, tenant_plan.model_copy(update={"changes": ()}), actor, "rollback")

    def body(session: TransactionalSession) -> Rolled:
        live = session.inspect()
        present = {p.table for p in points if p.table in live.objects and live.objects[p.table].kind == "Table"}
        locking = state.adapter.lock_statements(sorted(present))
        for statement in locking:
            session.execute(statement)
        if locking:   # read again, as no other writer can change them now
            live = session.inspect()
        impacts = impacts_in(session, state, points, live.objects)
        stopped = checkpoints.refusal(impacts)
        if stopped:
            raise stopped
        tables = [live.objects[p.table] for p in points]
        before = checkpoints.take(session, state.adapter, run, tables, f"before-rollback-{run.run_id}", tag="before")
        fault = faults.Fault.from_environment(state.tenant.name, STOP)
        for point in points:
            change = restore_through(session, state.adapter, live, Restoring(point.table, point.restore_point))
            for statement in change.statements:
                if stopping():
                    raise KeyboardInterrupt
                session.execute(statement)
                fault.tick()
        run.checks = checkpoints.verify(session, state.desired, points)
        failed = checks.failures(run.checks)
        if failed:
            raise ChecksFailed(checks.failure_message(state.tenant.name, failed))
        after = checkpoints.take(session, state.adapter, run, tables, f"after-rollback-{run.run_id}",
                                 linked_to=points[0].name, tag="after", restored={p.table: p for p in points})
        run.summary = summary(impacts)
        return Rolled(state.tenant.name, run.run_id, "applied", tuple(impacts), before[0].name, after[0].name,
                      tuple(run.checks))

    return _in_one_transaction(state, run, actor, body)


def dry_run(state: TenantState, tenant_plan: TenantPlan, plan: Plan, points: Sequence[Point], actor: str,
            writing: Callable | None = None) -> Rolled:
    """What rolling the points' tables back would do, by row counts, audited as a dry run (`writing`: how
    the protocol writes its audit rows; one transaction by default)."""
    found = impacts(state, points)
    run_id = record_dry_run(state, tenant_plan.model_copy(update={"changes": ()}), plan, "rollback", actor,
                            summary(found), writing)
    return Rolled(state.tenant.name, run_id or "", "dry-run", tuple(found))


def impacts(state: TenantState, points: Sequence[Point]) -> list[Impact]:
    """Each point's impact on its table as the tenant is now, read outside any run: what a dry run shows,
    and what an executed rollback checks of every tenant before it restores any."""
    with state.adapter.reading() as reading:
        return impacts_in(reading, state, points)


def impacts_in(reading, state: TenantState, points: Sequence[Point], found=None) -> list[Impact]:
    """Each point's impact on its table as `reading` finds it: counts only."""
    objects = found if found is not None else reading.inspect().objects
    present = [p.table for p in points if p.table in objects and objects[p.table].kind == "Table"]
    counted = reading.count_rows(present)
    at = now()
    return [checkpoints.impact(p, objects.get(p.table), counted.get(p.table), state.desired.environment, at)
            for p in points]


def summary(impacts: Sequence[Impact]) -> dict[str, int | float]:
    return {"tables": len(impacts), "rows now": sum(i.rows_now or 0 for i in impacts),
            "rows at checkpoint": sum(i.rows_then for i in impacts)}


def _in_one_transaction(state: TenantState, run: catalog.Run, actor: str, body: Callable):
    """`body` inside one transaction under the tenant lock, the run recorded as running before it and
    concluded inside it (applied) or after its rollback (refused, failed, interrupted)."""
    with state.adapter.session(create=False, holder={"run_id": run.run_id, "actor": actor}) as session:
        run.start(session)
        session.begin()
        try:
            result = body(session)
            run.supersede(session)   # a run left 'running' (killed) is over: this one holds the tenant
            run.finish(session, "applied")
            session.commit()
            return result
        except REFUSED as refused:
            session.rollback()
            run.conclude(session, "refused", str(refused))
            raise
        except ChecksFailed as failed:
            message = f"{failed}\n  the rollback was rolled back; nothing changed"
            session.rollback()
            run.conclude(session, "failed", message)
            raise ChecksFailed(message) from None
        except StatementFailed as failure:
            message = (f"tenant {state.tenant.name}: {run.operation} failed: {failure.message}\n  statement: "
                       f"{failure.statement}\n  rolled back; nothing changed")
            session.rollback()
            run.conclude(session, "failed", message)
            raise ApplyFailed(message) from None
        except BaseException as stopped:
            session.rollback()
            run.conclude(session, "interrupted", f"stopped by {type(stopped).__name__}; rolled back")
            raise

