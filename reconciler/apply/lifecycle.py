"""What every apply protocol does around its statements, whichever protocol runs them: a run's id
and its result, planning the tenant again under its lock (the guards and the stale-plan check on
that plan), the data checks after the statements, the convergence check, naming what a failed
statement belonged to, and what a data flow's run wrote and how it ended (`Written`, `FlowRun`). `executor` (one transaction) and `journaled` (journal, compensate, resume)
both build on it.

Owns none of the protocols: never opens a session, begins, commits or compensates (the protocol
that calls these does). Imports nothing of the apply above it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets as random
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlglot.errors import SqlglotError

from .. import plan as plans
from ..desired import checks
from ..desired.sql import qualified, written_elsewhere
from ..engines import catalog
from ..engines.contract import Session
from ..errors import ChecksFailed, GuardRefused, StalePlan, TenantError
from ..model import ObjectKey
from ..plan import Change, Plan, TenantPlan
from ..planning.environment import TenantState
from ..planning.tenant import Restoring, first_difference, plan_through, restore_through, same_plan
from ..sessions import StatementFailed
from ..state import LiveState
from .checks import run as run_data_checks


def new_run_id() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{random.token_hex(3)}"


@dataclass(frozen=True)
class TenantResult:
    tenant: str
    run_id: str | None
    outcome: str         # applied | no-changes | failed | refused (a guard) | locked (another run) | stale
    summary: dict[str, int]
    error: str | None = None
    exit_code: int = 0   # the code of the error that stopped this tenant
    notes: tuple[str, ...] = ()   # what the run did besides its plan (an interrupted run it compensated)


Progress = Callable[[str, Change], None]   # (tenant, change) after each change's statements ran


class NotConverged(Exception):
    """Inside apply: the statements ran but a new plan still has changes (never committed)."""


def replan(session: Session, state: TenantState, expected: TenantPlan, plan: Plan, moved: str,
           allow_data_loss: Sequence[str]) -> tuple[LiveState, TenantPlan]:
    """The tenant planned again under its lock; GuardRefused or StalePlan (`moved="refuse"`) when
    that plan is not `expected` and may not run."""
    live, tenant_plan = _plan_locked(session, state)
    if not same_plan(tenant_plan, expected):
        problems = plans.violations(plan.model_copy(update={"tenants": (tenant_plan,)}), allow_data_loss)
        if problems:
            raise GuardRefused("refused (planned again under the tenant lock):\n  "
                               + "\n  ".join(problems) + "\n  nothing was changed")
        if moved == "refuse":
            raise StalePlan(f"tenant {expected.tenant}: the tenant changed between plan and apply "
                            f"({first_difference(tenant_plan, expected)}); nothing was applied; plan again")
    return live, tenant_plan


def restored(session: Session, state: TenantState, live: LiveState, restoring: Restoring | None) -> tuple[Change, ...]:
    """A restore's change, planned under the lock on the tenant as the plan made there read it, to run
    after that plan (which a restore requires to be empty). It stays out of the tenant's plan: a run
    records its plan in the audit and writes its changes' objects to the catalog, and a restore changes
    rows, not what the catalog holds."""
    return () if restoring is None else (restore_through(session, state.adapter, live, restoring),)


def _plan_locked(session: Session, state: TenantState) -> tuple[LiveState, TenantPlan]:
    """The tenant's plan read inside the apply transaction, after locking every live table it changes
    (planned again whenever locking found more tables, so the final plan saw only locked rows)."""
    locked: set[ObjectKey] = set()
    while True:
        live = session.inspect()
        tenant_plan = plan_through(session, state.adapter, state.desired, live, state.acknowledged)
        tables = sorted(set(changed_tables(tenant_plan.changes, live)) - locked)
        statements = state.adapter.lock_statements(tables)
        if not statements:
            return live, tenant_plan
        for statement in statements:
            session.execute(statement)
        locked |= set(tables)


def changed_tables(changes: Sequence[Change], live: LiveState) -> list[ObjectKey]:
    """The live tables a plan alters, rebuilds, renames or drops."""
    keys = (live.find(c.live_key) for c in changes if not c.catalog_only and c.action != "create")
    return [key for key in keys if key in live.objects and live.objects[key].kind == "Table"]


def run_checks(session: Session, state: TenantState, changes: Sequence[Change], run: catalog.Run) -> None:
    """Inside the apply, after its statements: the checks of every object it created or changed and of
    what reads them; ChecksFailed (nothing commits) when one of severity error found offending rows."""
    run.checks = run_data_checks(session, checks.affected(changes, state.desired))
    failed = checks.failures(run.checks)
    if failed:
        raise ChecksFailed(checks.failure_message(state.tenant.name, failed))


def warnings(results: Sequence[checks.Result]) -> tuple[str, ...]:
    return tuple(f"check warned: {r.describe()}" for r in results if r.outcome == "warned")


def converged(session: Session, state: TenantState, run: catalog.Run, reading: Session | None = None) -> None:
    """Last inside the transaction, on the tenant as it will commit (its audit row concluded): a new plan
    must be empty, else NotConverged and nothing commits. That empty plan is what planning the same
    desired state gives while the tenant hashes as it does now: recorded with both (`snapshot`).
    `reading`: the session the tenant is read on, where it is not the applying one (journaled runs)."""
    reading = reading or session
    live = reading.inspect()
    after = plan_through(reading, state.adapter, state.desired, live, state.acknowledged)
    if after.changes:
        raise NotConverged(", ".join(f"{c.action} {c.object} ({c.reason})" for c in after.changes[:5]))
    if live.digest and state.desired.source_key:
        catalog.write_snapshot(session, state.desired.environment, state.desired.source_key, live.digest, after,
                               run.run_id)


def failed_subject(changes: Sequence[Change], failure: StatementFailed) -> str:
    """What a failed statement belonged to, for people: what it says it ran for (an object's data checks,
    a data flow in `apply --smoke`), a change, the bind check of views, the catalog."""
    change = next((c for c in changes if failure.statement in c.statements), None)
    return (failure.subject if failure.subject else f"{change.kind} {change.object}" if change else
            "views" if failure.statement.startswith("SELECT * FROM") else "catalog")


def record_dry_run(state: TenantState, tenant_plan: TenantPlan, plan: Plan, operation: str,
                   actor: str, summary: dict | None = None,
                   writing: Callable[[Session], AbstractContextManager] | None = None) -> str | None:
    """Audit a dry run in the tenant (its only write), in a transaction (or as `writing` writes the
    protocol's audit rows), with `summary` where the plan's counts are not what it did; a tenant that does
    not exist is left alone."""
    if not state.adapter.exists:
        return None
    run = catalog.Run(new_run_id(), plan, tenant_plan, actor, operation)
    if summary is not None:
        run.summary = summary
    with state.adapter.session(create=False) as session, (writing or in_transaction)(session):
        catalog.create(session)
        run.record(session, "dry-run", dry_run=True)
    return run.run_id


@contextlib.contextmanager
def appended(session) -> Iterator[None]:
    """Audit rows where the catalog only appends (the journaled protocol): each stands on its own."""
    yield


@contextlib.contextmanager
def in_transaction(session) -> Iterator[None]:
    """What runs inside committed together, or rolled back on any error."""
    session.begin()
    try:
        yield
        session.commit()
    except BaseException:
        session.rollback()
        raise


@dataclass(frozen=True)
class Written:
    """The rows a data flow or a refresh wrote into its table, as the engine counted them."""

    inserted: int = 0
    updated: int = 0
    deleted: int = 0

    def describe(self) -> str:
        counts = [f"{n} row{'s' * (n != 1)} {what}" for what, n in
                  (("deleted", self.deleted), ("inserted", self.inserted), ("updated", self.updated))
                  if n or what == "inserted"]
        return "; ".join(counts)

    def to_json(self) -> dict[str, int]:
        return {"rows inserted": self.inserted, "rows updated": self.updated, "rows deleted": self.deleted}


@dataclass(frozen=True)
class FlowRun:
    tenant: str
    run_id: str
    outcome: str          # applied | dry-run
    written: Written      # into its target (the MaterializedTable it refreshes)
    seconds: float
    checks: tuple[checks.Result, ...]
    notes: tuple[str, ...] = ()   # what people should know of it (a checkpoint that could not be taken)


def confined(statement: str, target: ObjectKey, flow: ObjectKey, tenant: str, engine: str) -> None:
    """A flow writes its target and nothing else: what its statement, as rendered for the tenant, writes,
    read by sqlglot under the engine's own case rules (a quoted name another table than the unquoted one
    where the engine says so), before anything runs: a check of the target, or a journal of it, could not
    guard anything else."""
    try:
        others = written_elsewhere(statement, qualified(target.schema, target.name, engine), engine)
    except SqlglotError as error:
        raise TenantError(f"tenant {tenant}: data flow {flow}: cannot tell which tables its statement writes "
                          f"({error}); nothing was run") from None
    if others:
        raise TenantError(f"tenant {tenant}: data flow {flow} writes {', '.join(others)}, not only its target "
                          f"{target} (as {engine} names tables); nothing was run")
