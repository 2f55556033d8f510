"""Taking a checkpoint, and rolling tables' rows back to one, on engines whose DDL commits statement by
statement (the journaled protocol's: Spark): under the tenant's lease lock, audited as one run.

Owns the order there. Both refuse a tenant a killed run left partly changed (`unlock` puts it back
first). A checkpoint records per table a version of its own history where the adapter keeps one
(Delta: no row copied, its row count read at that version) or a copy in the backup schema. A
rollback journals every table as it is (its restore point: the version it is at, or a copy taken
just before it is restored, which stays as the checkpoint of the rows it replaced), then restores the
tables one by one, each checked after it (its data checks, no NULL in its primary key, the
checkpoint's row count). A table whose restore or checks fail is put back from its journal and the
others go on (PartlyDone names both), unless `all_or_nothing`, which puts every one back. Ctrl-C puts
back what it touched (and drops a copy it took of a table it had not written yet); a SIGKILL leaves the run running with its journal, and the next apply or
`unlock` puts every table back as the journal says. Never plans, never decides which tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from .. import faults
from ..desired import checks, sql
from ..engines import catalog
from ..engines.journaled_contract import JournaledAdapter
from ..errors import ApplyFailed, ChecksFailed, PartlyDone, TenantLocked
from ..model import ObjectKey
from ..parallel import STOP, stopping
from ..plan import Plan, TenantPlan
from ..planning.environment import TenantState
from ..sessions import StatementFailed
from ..state import LiveObject
from . import checkpoints
from .checkpointed import REFUSED, Rolled, dry_run, impacts_in, summary
from .checkpoints import Point
from .journaled import compensate
from .lifecycle import appended, new_run_id


def take_checkpoint(state: TenantState, tenant_plan: TenantPlan, plan: Plan, tables: Sequence[ObjectKey],
                    name: str, actor: str) -> tuple[str, list[Point]]:
    """A checkpoint of `tables` named `name` under the tenant lock (operation `checkpoint` in the audit):
    the run's id and the restore points. The tables are read one after another: a writer outside the
    reconciler between two of them is not held off (no engine transaction spans them)."""
    adapter = cast(JournaledAdapter, state.adapter)   # `protocol_for` chose this protocol for being one
    run = catalog.Run(new_run_id(), plan, tenant_plan.model_copy(update={"changes": ()}), actor, "checkpoint")
    with running(state, adapter, run, actor, "nothing was taken") as session:
        try:
            checkpoints.refuse_taken(session, name, state.tenant.name)
            found = checkpoints.held(session.inspect(), tables, state.tenant.name)
            taken = checkpoints.take(session, adapter, run, found, name, in_history=in_history(session, adapter))
        except BaseException as stopped:
            raise concluded(session, run, stopped, "nothing was taken") from None
        run.summary = {"tables": len(taken), "rows": sum(p.row_count for p in taken)}
        run.finish(session, "applied")
    return run.run_id, taken


def rollback_rows(state: TenantState, tenant_plan: TenantPlan, plan: Plan, points: Sequence[Point], actor: str,
                  execute: bool, all_or_nothing: bool = False) -> Rolled:
    """Roll the rows of each point's table back to it, table by table. A dry run reads counts and is
    audited as one; PartlyDone (the Rolled on it) when some tables were restored and others put back."""
    if not execute:
        return dry_run(state, tenant_plan, plan, points, actor, writing=appended)
    adapter = cast(JournaledAdapter, state.adapter)
    run = catalog.Run(new_run_id(), plan, tenant_plan.model_copy(update={"changes": ()}), actor, "rollback")
    with running(state, adapter, run, actor, "nothing was changed") as session:
        try:
            live = session.inspect()
            impacts = impacts_in(session, state, points, live.objects)
            stopped = checkpoints.refusal(impacts)
            if stopped:
                raise stopped
            befores = [catalog.Before.of(step, point.table, live.objects[point.table],
                                         adapter.restore_point(session, live.objects[point.table], run.run_id, False))
                       for step, point in enumerate(points)]
            catalog.write_journal(session, run.run_id, befores, {point.table for point in points})
        except BaseException as refused:
            raise concluded(session, run, refused, "nothing was changed") from None
        restoring = _Restoring(session, state, adapter, run)
        try:
            for before, point in zip(befores, points):
                restoring.one(before, point, all_or_nothing)
        except BaseException as stopped:
            raise restoring.stopped(befores, stopped) from None
        run.summary = summary(impacts)
        if not restoring.restored:
            message = restoring.failures()
            run.finish(session, "failed", message)
            raise ApplyFailed(message)
        done = [(before, point) for before, point in zip(befores, points) if point in restoring.restored]
        outcome = "partly-applied" if restoring.not_restored else "applied"
        unsaid = restoring.failures() if restoring.not_restored else None
        try:   # the tables are restored and checked: nothing after this puts them back
            before_name, after_name = restoring.checkpoints(done, {i.table: i.rows_now for i in impacts},
                                                            live.objects)
        except BaseException as failed:
            why = failed.message if isinstance(failed, StatementFailed) else type(failed).__name__
            run.finish(session, outcome, "\n".join(filter(None, [unsaid, "the tables are restored and checked; the "
                                                                 f"checkpoints around the rollback were not taken: {why}"])))
            if isinstance(failed, StatementFailed):
                raise ApplyFailed(f"tenant {state.tenant.name}: the tables are restored and checked, but the "
                                  f"checkpoints around the rollback were not taken: {failed.message}\n  statement: "
                                  f"{failed.statement}") from None
            raise
        run.finish(session, outcome, unsaid)
    rolled = Rolled(state.tenant.name, run.run_id, outcome, tuple(impacts), before_name, after_name,
                    tuple(run.checks), tuple(restoring.not_restored))
    if restoring.not_restored:
        raise PartlyRestored(restoring.failures(), rolled)
    return rolled


class PartlyRestored(PartlyDone):
    """Some tables of a data rollback were restored and checked, others put back as they were."""

    def __init__(self, message: str, rolled: Rolled):
        super().__init__(message)
        self.rolled = rolled


class _Restoring:
    """One rollback's tables restored one by one: what it restored, what it put back and why."""

    def __init__(self, session, state: TenantState, adapter: JournaledAdapter, run: catalog.Run):
        self.session, self.state, self.adapter, self.run = session, state, adapter, run
        self.fault = faults.Fault.from_environment(state.tenant.name, STOP)
        self.touched: set[tuple[str, str]] = set()
        self.copied: set[tuple[str, str]] = set()   # tables whose rows it copied (their restore point) first
        self.restored: list[Point] = []
        self.not_restored: list[tuple[str, str]] = []
        self.run.checks = []

    def one(self, before: catalog.Before, point: Point, all_or_nothing: bool) -> None:
        """Restore one table and check it; a failure puts it back (every one, `all_or_nothing`)."""
        try:
            self._restore(before, point)
            found = checkpoints.verify(self.session, self.state.desired, [point])
            failed = checks.failures(found)
            if failed:
                raise ChecksFailed(checks.failure_message(self.state.tenant.name, failed))
            self.run.checks = [*self.run.checks, *found]
            self.restored.append(point)
        except (StatementFailed, ChecksFailed) as failure:
            why = (f"{failure.message} (statement: {failure.statement})" if isinstance(failure, StatementFailed)
                   else str(failure).removeprefix(f"tenant {self.state.tenant.name}: "))
            if all_or_nothing:
                self.not_restored.append((str(point.table), why))
                raise _AllOrNothing() from None
            if before.key.folded() not in self.touched:   # refused before it wrote: nothing to put back
                self.not_restored.append((str(point.table), f"{why}; left as it was"))
                return
            put_back = compensate(self.session, self.run.run_id, [before], {before.key.folded()})
            self.touched.discard(before.key.folded())
            self.not_restored.append((str(point.table), f"{why}; put back as it was ({put_back})"))

    def _restore(self, before: catalog.Before, point: Point) -> None:
        engine, key = self.session.engine, point.table
        if before.version is None:   # the rows it replaces, copied first: the journal's restore point
            self.copied.add(key.folded())
            self._execute(catalog.copy_statement(engine, key, before.restore_point))
        if point.kind == catalog.HISTORY_KIND:
            if before.version is None:
                raise StatementFailed(f"RESTORE {key} TO {point.restore_point}", f"{key} keeps no history now")
            self.session.hold()
            self.adapter.rewind(self.session, key, catalog.history_version(point.restore_point),
                                before.version, lambda: self.touched.add(key.folded()))   # one commit, or none
            self.fault.tick()
            return
        self.touched.add(key.folded())
        columns = [name for name, _ in point.structure]
        for statement in self.adapter.restore_statements(key, point.restore_point, columns):
            self._execute(statement)

    def _execute(self, statement: str) -> None:
        if stopping():
            raise KeyboardInterrupt
        self.session.hold()
        self.session.fresh(statement)
        self.session.execute(statement)
        self.fault.tick()

    def stopped(self, befores: Sequence[catalog.Before], stopped: BaseException) -> BaseException:
        """Every table it touched put back (Ctrl-C, all or nothing, a lock lost is the next holder's to
        recover), the run concluded; the error to raise."""
        if isinstance(stopped, TenantLocked):
            return stopped
        touched = [before for before in befores if before.key.folded() in self.touched]   # the rest: as they are
        try:
            put_back = compensate(self.session, self.run.run_id, touched, self.touched)
            for before in befores:   # copied, then stopped before it wrote the table: no one's restore point
                if before.key.folded() in self.copied - self.touched:
                    copy = sql.qualified(catalog.BACKUP_SCHEMA, before.restore_point, self.session.engine)
                    self.session.execute(f"DROP TABLE IF EXISTS {copy}")
        except (ApplyFailed, PartlyDone) as failed:   # it stays running: the next apply or unlock tries again
            why = self.failures() if isinstance(stopped, _AllOrNothing) else str(stopped) or type(stopped).__name__
            return type(failed)(f"tenant {self.state.tenant.name}: the rollback stopped ({why}), "
                                f"and {failed}\n  the run {self.run.run_id} stays recorded as running; the next "
                                "apply (or `reconciler unlock` of it) tries to put it back again")
        if isinstance(stopped, _AllOrNothing):
            message = f"{self.failures()}\n  --all-or-nothing: every table was put back as it was ({put_back})"
            self.run.finish(self.session, "failed", message)
            return ApplyFailed(message)
        self.run.finish(self.session, "interrupted", f"stopped by {type(stopped).__name__}; put back ({put_back})")
        return stopped

    def failures(self) -> str:
        restored = ", ".join(str(p.table) for p in self.restored) or "none"
        lines = [f"tenant {self.state.tenant.name}: tables restored: {restored}; not restored:"]
        return "\n  ".join(lines + [f"{table}: {why}" for table, why in self.not_restored])

    def checkpoints(self, done: Sequence[tuple[catalog.Before, Point]], rows_now, live) -> tuple[str, str]:
        """The checkpoints around the rollback, of the tables it restored: the rows it replaced (the
        journal's restore points, kept) and those it restored, linked to the one restored."""
        run, before_name = self.run, f"before-rollback-{self.run.run_id}"
        replaced = [Point(before_name, run.plan.environment, run.tenant_plan.tenant, point.table,
                          catalog.HISTORY_KIND if before.version is not None else catalog.COPY_POINT,
                          before.restore_point, run.plan.commit, run.run_id, run.started, rows_now[str(point.table)],
                          checkpoints.structure(live[point.table])) for before, point in done]
        checkpoints.record(self.session, replaced)
        after = checkpoints.take(self.session, self.adapter, run, [live[point.table] for _, point in done],
                                 f"after-rollback-{run.run_id}", linked_to=done[0][1].name, tag="after",
                                 in_history=in_history(self.session, self.adapter),
                                 restored={point.table: point for _, point in done})
        return before_name, after[0].name


class _AllOrNothing(Exception):
    """A table failed in a rollback told to restore all or nothing."""


def in_history(session, adapter: JournaledAdapter) -> Callable[[LiveObject], tuple[str, int] | None]:
    """A table's checkpoint in its own history, where it keeps one: (the point, its rows there), else None."""
    def point(found: LiveObject) -> tuple[str, int] | None:
        restore_point = adapter.restore_point(session, found, "history", False)
        version = catalog.history_version(restore_point)
        return None if version is None else (restore_point, adapter.rows_at(session, found.key, version))
    return point


@contextlib.contextmanager
def running(state: TenantState, adapter: JournaledAdapter, run: catalog.Run, actor: str,
             unchanged: str) -> Iterator:
    """The tenant under its lease lock, the run recorded as running in it; refused (TenantLocked) where a
    run killed partway left the tenant partly changed: a checkpoint or a rollback of that is not one."""
    with adapter.session(create=False, holder={"run_id": run.run_id, "actor": actor}) as session:
        catalog.create(session)
        _refuse_unfinished(session, state, unchanged)
        run.record(session, "running")
        yield session


def _refuse_unfinished(session, state: TenantState, unchanged: str) -> None:
    dead = catalog.running(session)
    if dead:
        raise TenantLocked(f"tenant {state.tenant.name}: run {dead[0]} was interrupted and may have left the tenant "
                           f"partly changed: `reconciler unlock {state.desired.environment} {dead[0]}` puts it back "
                           f"from its journal first; {unchanged}")


def concluded(session, run: catalog.Run, stopped: BaseException, unchanged: str) -> BaseException:
    """The run's outcome when it stopped before writing anything its journal would put back; the error."""
    if isinstance(stopped, REFUSED):
        run.finish(session, "refused", str(stopped))
        return stopped
    if isinstance(stopped, StatementFailed):
        message = (f"tenant {run.tenant_plan.tenant}: {run.operation} failed: {stopped.message}\n  statement: "
                   f"{stopped.statement}\n  {unchanged}")
        run.finish(session, "failed", message)
        return ApplyFailed(message)
    run.finish(session, "failed" if isinstance(stopped, Exception) else "interrupted", str(stopped) or
               type(stopped).__name__)
    return stopped

