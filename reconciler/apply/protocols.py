"""The apply protocol of a tenant, chosen once from its adapter: the one place that asks whether an
engine's DDL is transactional (an adapter that is a `JournaledAdapter` is not).

Owns the protocol's shape (`ApplyProtocol`: apply a tenant's plan, run a data flow, audit a dry run,
write the audit's rows, release a dead run, drop backups, take a checkpoint, roll rows back to one)
and its two kinds: `Transactional` (DuckDB, PostgreSQL: one transaction per tenant;
`apply.transactional`, `apply.checkpointed`) and `Journaled` (engines whose DDL commits statement by
statement, Spark SQL: journal, restore points, compensation, a lease lock; `apply.journaled`). The
executor is handed one and never branches on the engine. Never plans.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from ..engines import catalog
from ..engines.journaled_contract import JournaledAdapter
from ..errors import TenantError
from ..model import ObjectKey
from ..plan import Plan, TenantPlan
from . import journaled_checkpoints, journaled_flow
from .checkpointed import Rolled, rollback_rows, take_checkpoint
from .checkpoints import Point
from .journaled import apply_journaled, recover
from .lifecycle import FlowRun, Progress, TenantResult, appended, in_transaction, record_dry_run
from .transactional import apply_transactional, run_flow

if TYPE_CHECKING:
    from ..engines.contract import Adapter, Session
    from ..planning.environment import TenantState
    from ..planning.tenant import Restoring


class ApplyProtocol(Protocol):
    """What the executor asks of a tenant's apply protocol."""

    changed_outcomes: tuple[str, ...]   # the audit outcomes of a run that may have changed the tenant

    def apply(self, state: TenantState, expected: TenantPlan, plan: Plan, actor: str, operation: str,
              progress: Progress | None, moved: str, allow_data_loss: Sequence[str], restoring: Restoring | None,
              smoke: bool) -> TenantResult: ...

    def run_flow(self, state: TenantState, tenant_plan: TenantPlan, plan: Plan, flow: ObjectKey, actor: str,
                 dry_run: bool) -> FlowRun: ...

    def record_dry_run(self, state: TenantState, tenant_plan: TenantPlan, plan: Plan, operation: str,
                       actor: str) -> str | None: ...

    def writing(self, session: Session) -> contextlib.AbstractContextManager[None]:
        """Audit rows written together: in one transaction, or each standing on its own."""

    def release(self, adapter: Adapter, run_id: str, as_is: bool) -> str: ...

    def drop(self, session: Session, statements: Sequence[str]) -> None: ...

    def checkpoint(self, state: TenantState, tenant_plan: TenantPlan, plan: Plan, tables: Sequence[ObjectKey],
                   name: str, actor: str) -> tuple[str, list[Point]]: ...

    def rollback_rows(self, state: TenantState, tenant_plan: TenantPlan, plan: Plan, points: Sequence[Point],
                      actor: str, execute: bool, all_or_nothing: bool = False) -> Rolled: ...


class Transactional:
    """DuckDB, PostgreSQL: every write of a run in one transaction, which the engine rolls back."""

    changed_outcomes = ("applied",)   # a run that never ended was rolled back by the engine

    def apply(self, state, expected, plan, actor, operation, progress, moved, allow_data_loss, restoring, smoke):
        return apply_transactional(state, expected, plan, actor, operation, progress, moved, allow_data_loss, restoring,
                                   smoke)

    def run_flow(self, state, tenant_plan, plan, flow, actor, dry_run):
        return run_flow(state, tenant_plan, plan, flow, actor, dry_run)

    def record_dry_run(self, state, tenant_plan, plan, operation, actor):
        return record_dry_run(state, tenant_plan, plan, operation, actor)

    def writing(self, session: Session) -> contextlib.AbstractContextManager[None]:
        return in_transaction(session)

    def release(self, adapter: Adapter, run_id: str, as_is: bool) -> str:
        """Opening the tenant for writing proves the run's process is gone: the engine's lock died with
        it, and the engine rolled the run back (there is nothing to put back, `as_is` or not)."""
        with adapter.session(create=False) as session, self.writing(session):
            catalog.release(session, run_id)
        return (f"run {run_id} marked interrupted; the tenant kept its state from before it (the engine rolled it "
                "back)")

    def drop(self, session: Session, statements: Sequence[str]) -> None:
        with self.writing(session):
            for statement in statements:
                session.execute(statement)

    def checkpoint(self, state, tenant_plan, plan, tables, name, actor):
        return take_checkpoint(state, tenant_plan, plan, tables, name, actor)

    def rollback_rows(self, state, tenant_plan, plan, points, actor, execute, all_or_nothing=False):
        return rollback_rows(state, tenant_plan, plan, points, actor, execute)   # one transaction: all or nothing


class Journaled:
    """Spark SQL: each statement commits on its own; a journal and restore points stand in for the
    transaction, and the lock is a lease the run keeps renewing."""

    changed_outcomes = ("applied", "running")   # a run that never ended is compensated when found, not before

    def apply(self, state, expected, plan, actor, operation, progress, moved, allow_data_loss, restoring, smoke):
        if smoke:
            raise TenantError(f"tenant {state.tenant.name}: apply --smoke is not built for {state.adapter.engine} "
                              "yet (a data flow's rows there commit as they are written); nothing was changed")
        return apply_journaled(state, expected, plan, actor, operation, progress, moved, allow_data_loss, restoring)

    def run_flow(self, state, tenant_plan, plan, flow, actor, dry_run):
        return journaled_flow.run_flow(state, tenant_plan, plan, flow, actor, dry_run)

    def record_dry_run(self, state, tenant_plan, plan, operation, actor):
        return None   # nothing is written where it cannot be taken back with the rest

    def writing(self, session: Session) -> contextlib.AbstractContextManager[None]:
        return appended(session)

    def release(self, adapter: Adapter, run_id: str, as_is: bool) -> str:
        """The run is compensated from its journal first, as the next apply would (`journaled.recover`);
        `as_is`: concluded with nothing put back, its journal and restore points kept for people."""
        with adapter.session(create=False, holder={"run_id": f"unlock of {run_id}", "actor": "unlock",
                                                   "unlocks": run_id}) as session:
            catalog.create(session)   # a run that left only its lock row may have come before the catalog
            if not as_is:
                return recover(session, run_id)
            catalog.release(session, run_id, "interrupted", "concluded by unlock --as-is: nothing was put back")
            return (f"run {run_id} concluded as interrupted, as the tenant is: nothing was put back (its journal "
                    f"and any restore point in {catalog.BACKUP_SCHEMA} are kept)")

    def drop(self, session: Session, statements: Sequence[str]) -> None:
        """Statement by statement under the tenant lock, renewing it before each."""
        for statement in statements:
            session.hold()
            session.execute(statement)

    def checkpoint(self, state, tenant_plan, plan, tables, name, actor):
        return journaled_checkpoints.take_checkpoint(state, tenant_plan, plan, tables, name, actor)

    def rollback_rows(self, state, tenant_plan, plan, points, actor, execute, all_or_nothing=False):
        return journaled_checkpoints.rollback_rows(state, tenant_plan, plan, points, actor, execute, all_or_nothing)


TRANSACTIONAL, JOURNALED = Transactional(), Journaled()


def protocol_for(adapter: Adapter) -> ApplyProtocol:
    """The tenant's apply protocol: the one question asked of an engine's DDL (whether it is rolled back,
    or its adapter gives what a journal needs instead: `JournaledAdapter`)."""
    return JOURNALED if isinstance(adapter, JournaledAdapter) else TRANSACTIONAL
