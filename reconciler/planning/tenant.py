"""Planning one tenant: desired and live state in, an ordered, checked, fingerprinted plan out.

Owns diffing, counting the rows a change would lose, running the row checks and compiling the
changes for the tenant's engine, all through a `Reader` handed in (a plan's read session, or an
apply's locked one), and comparing a saved plan with what planning gives now. Pure apart from
those reads: never writes, never opens a connection of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .. import plan as plans
from ..desired import checks
from ..engines.contract import Adapter, StatementFailed
from ..errors import StalePlan
from ..model import ObjectKey, Tenant
from ..plan import Change, Plan, TenantPlan
from ..state import DesiredState, LiveState
from .diff import diff, unmanaged

if TYPE_CHECKING:
    from ..desired.landscape import Landscape


@dataclass(frozen=True)
class TenantState:
    """What one tenant's plan was made from: its desired and live state, read once."""

    tenant: Tenant
    adapter: Adapter
    desired: DesiredState
    live: LiveState
    acknowledged: tuple[str, ...] = ()   # the environment's allow_data_loss


@dataclass(frozen=True)
class Planned:
    """An environment's plan and everything it was made from, for the commands that act on it."""

    landscape: Landscape
    plan: Plan
    states: dict[str, TenantState]


class Reader(Protocol):
    """Where a plan counts rows: a plan's read session or an apply's locked session."""

    def count(self, query: str) -> int: ...

    def count_rows(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, int]: ...


def plan_tenant(adapter: Adapter, desired: DesiredState, live: LiveState, reader: Reader,
                acknowledged: Sequence[str] = (), under_review: bool = False) -> TenantPlan:
    """The changes that make `live` equal `desired`, in order, compiled for the adapter's engine,
    with the rows they would lose counted and their row checks run through `reader`; data-loss
    changes the environment acknowledges (`allow_data_loss`) marked so. `under_review`: a pull
    request's plan, which never runs the folder's SQL on the tenant's rows (a MaterializedTable's
    query is counted at apply)."""
    changes = diff(desired, live, adapter.pinned)
    at_risk = [c.key for c in changes if c.data_loss and c.kind == "Table"]
    rows = reader.count_rows([live.find(k) or k for k in at_risk])
    changes = [c.model_copy(update={"rows": rows.get(live.find(c.key) or c.key)}) if c.key in at_risk else c
               for c in changes]
    changes = _materialized_rows(changes, desired, live, reader, under_review)
    ordered = plans.order(changes, desired, live)
    compiled = tuple(_checked(reader, c) for c in adapter.compile(ordered, desired, live))
    tenant_plan = TenantPlan(
        tenant=desired.tenant, engine=adapter.engine, capacity=desired.capacity, changes=compiled,
        unmanaged=tuple(unmanaged(desired, live)), live_fingerprint=live.fingerprint,
        desired_fingerprint=desired.fingerprint, create_database=not live.exists, interrupted=live.interrupted,
        checks=tuple(f"{obj.key} ({len(obj.checks)})" for obj in checks.affected(compiled, desired)))
    return _acknowledge(tenant_plan, acknowledged)


def _materialized_rows(changes: list[Change], desired: DesiredState, live: LiveState, reader: Reader,
                       under_review: bool) -> list[Change]:
    """A MaterializedTable built or rebuilt says how many rows it holds now and how many its query gives
    on the tenant as it is (where nothing it reads changes in this plan, and the plan is not a pull
    request's: else at apply). A query the engine refuses on those rows blocks the change, saying why."""
    changed = {c.key for c in changes}
    counted = []
    for change in changes:
        want = desired.objects.get(change.key)
        if change.kind != "MaterializedTable" or change.action not in ("create", "replace") \
                or change.catalog_only or change.conflict or want is None:
            counted.append(change)
            continue
        found = live.object(change.key)
        now = f"{plans.row_count(reader.count_rows([found.key])[found.key])} now, " \
            if found is not None and found.kind == "Table" else ""
        if under_review:
            after = "its query's rows are counted at apply (a pull request's plan never runs it on the tenant)"
        elif set(want.dependencies) & changed:
            after = "its query's rows are counted at apply (what it reads changes in this plan)"
        else:
            try:
                after = f"{plans.row_count(reader.count(f'SELECT count(*) FROM ({want.sql}) AS q'))} from its query"
            except StatementFailed as failure:
                counted.append(change.model_copy(update={"conflict": True, "reason": (
                    f"{change.reason}; blocked: its query fails on the tenant's rows: {failure.message}")}))
                continue
        counted.append(change.model_copy(update={"reason": f"{change.reason}; {now}{after}"}))
    return counted


def _checked(reader: Reader, change: Change) -> Change:
    """Run the change's row checks now; a non-zero count blocks it with the count in the reason."""
    failing = [(check, count) for check in change.checks if (count := reader.count(check.query))]
    if not failing:
        return change
    counted = "; ".join(f"{check.problem}: {plans.row_count(count)}" for check, count in failing)
    return change.model_copy(update={"conflict": True, "reason": f"{change.reason}; blocked: {counted}"})


def _acknowledge(tenant_plan: TenantPlan, names: Sequence[str]) -> TenantPlan:
    """Mark the data-loss changes the environment acknowledges in review (allow_data_loss)."""
    accepted = {name.lower() for name in names}
    if not accepted:
        return tenant_plan
    changes = tuple(c.model_copy(update={"acknowledged": True}) if c.data_loss and c.object.lower() in accepted
                    else c for c in tenant_plan.changes)
    return tenant_plan.model_copy(update={"changes": changes})


def check_saved_plan(saved: Plan, current: Planned) -> None:
    """A saved plan is applied only to exactly what it was made from; say what moved."""
    if saved.environment != current.plan.environment:
        raise StalePlan(f"the plan was made for environment {saved.environment}, "
                        f"not {current.plan.environment}")
    if saved.commit != current.plan.commit:
        raise StalePlan(f"the plan was made at commit {(saved.commit or 'none')[:12]}, the folder is now at "
                        f"{(current.plan.commit or 'none')[:12]}; plan again")
    for tenant_plan in saved.tenants:
        now = current.plan.tenant(tenant_plan.tenant)
        if now is None:
            raise StalePlan(f"the plan names tenant {tenant_plan.tenant}, which environment "
                            f"{saved.environment} no longer has")
        if now.desired_fingerprint != tenant_plan.desired_fingerprint:
            raise StalePlan(f"tenant {tenant_plan.tenant}: the desired state moved since the plan was "
                            f"made (ref {saved.ref}, commit {(saved.commit or '?')[:12]}); plan again")
        if now.live_fingerprint != tenant_plan.live_fingerprint:
            raise StalePlan(f"tenant {tenant_plan.tenant}: the tenant changed since the plan was made; "
                            "plan again")
        if now.changes != tenant_plan.changes:   # the file is a claim about this plan, never a program
            raise StalePlan(f"tenant {tenant_plan.tenant}: the plan file says something other than what the "
                            f"desired and live state give now ({first_difference(now, tenant_plan)}); "
                            "nothing was applied; plan again")


def same_plan(now: TenantPlan, expected: TenantPlan) -> bool:
    return (now.changes, now.live_fingerprint, now.desired_fingerprint) == \
        (expected.changes, expected.live_fingerprint, expected.desired_fingerprint)


def first_difference(now: TenantPlan, expected: TenantPlan) -> str:
    changed = [c for c in (*now.changes, *expected.changes) if c not in now.changes or c not in expected.changes]
    if changed:
        return f"first difference: {changed[0].action} {changed[0].object}"
    return "its objects moved" if now.live_fingerprint != expected.live_fingerprint else "the folder moved"
