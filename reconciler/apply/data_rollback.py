"""Checkpoints and data rollback across an environment's tenants: take one, list them, roll tables'
rows back to one (a dry run unless told).

Owns finding what a command names (the tables a `--select` picks, the checkpoint a name means and why
another is not it: unknown, another environment's, another tenant's) and handing each tenant to its
protocol through the executor, which writes. Never writes itself, and never plans beyond the plan the
audit records.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import graph as graphs
from ..desired.source import available_environments
from ..engines import catalog
from ..errors import ReconcilerError, TenantError, UsageProblem, did_you_mean
from ..model import ObjectKey
from ..planning.environment import TenantState, Workspace, plan_environment
from . import executor
from .checkpointed import Rolled, impacts
from .checkpoints import Point, check_name, refusal
from .journaled_checkpoints import PartlyRestored


@dataclass(frozen=True)
class Taken:
    tenant: str
    run_id: str
    name: str
    points: tuple[Point, ...]


@dataclass
class DataRollback:
    """A data rollback of an environment: each tenant's result, or the error that stopped it."""

    environment: str
    checkpoint: str
    execute: bool
    results: list[Rolled] = field(default_factory=list)
    errors: list[tuple[str, ReconcilerError]] = field(default_factory=list)


def take(workspace: Workspace, environment: str, selection: str | None, name: str | None,
         tenant: str | None) -> list[Taken]:
    """A checkpoint of the selected tables (every managed table without `selection`: `graph --select`'s
    expressions) in each tenant (or `tenant`), named `name` or after its run."""
    if name is not None:
        check_name(name)
    planned = plan_environment(workspace, environment, None, [tenant] if tenant else None)
    actor = executor.current_actor(workspace.repo)
    chosen = name or f"checkpoint-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}"
    tables = {}
    for tenant_plan in planned.plan.tenants:   # every tenant can take it before any does
        state = planned.states[tenant_plan.tenant]
        if not state.adapter.exists:
            raise TenantError(f"tenant {state.tenant.name} does not exist yet: apply {environment} first")
        tables[tenant_plan.tenant] = _tables(state, selection)
        if any(row["name"] == chosen for row in state.adapter.checkpoints()):
            raise UsageProblem(f"tenant {state.tenant.name}: a checkpoint named {chosen} exists already; choose "
                               "another --name; nothing was taken")
    taken = []
    for tenant_plan in planned.plan.tenants:
        state = planned.states[tenant_plan.tenant]
        run_id, points = executor.checkpoint(state, tenant_plan, planned.plan, tables[tenant_plan.tenant], chosen,
                                             actor)
        taken.append(Taken(tenant_plan.tenant, run_id, chosen, tuple(points)))
    return taken


def _tables(state: TenantState, selection: str | None) -> list[ObjectKey]:
    """The managed tables the tenant holds, of those `selection` names; UsageProblem when it names none."""
    live = state.live.objects
    tables = [key for key in sorted(state.desired.objects) if key in live and live[key].kind == "Table"]
    if selection:
        try:
            chosen = set(graphs.select(state.desired.graph, selection))
        except ValueError as error:
            raise UsageProblem(f"--select {selection}: {error}") from None
        tables = [key for key in tables if key in chosen]
    if not tables:
        raise UsageProblem(f"tenant {state.tenant.name}: {f'--select {selection} names' if selection else 'it holds'} "
                           "no managed table; nothing was taken")
    return tables


def listing(workspace: Workspace, environment: str) -> list[dict]:
    """Every checkpoint of the environment, per tenant, oldest first: its name, time, commit, tables,
    rows, kind, the checkpoint it follows a rollback of, and until when it can be restored."""
    landscape = workspace.load(environment)
    found = []
    for tenant in landscape.environment.tenants:
        adapter = workspace.adapter(tenant, environment)
        points = [Point.from_row(row) for row in adapter.checkpoints()] if adapter.exists else []
        retention = landscape.environment.rules_for(tenant).retention
        backup_days = landscape.environment.backup_retention_days
        keep = retention or (dt.timedelta(days=backup_days) if backup_days else None)
        newest = {}   # a copy stays while the newest checkpoint naming it does (a rollback's names the one restored)
        for point in points:
            newest[point.restore_point.lower()] = max(newest.get(point.restore_point.lower(), point.created_at),
                                                      point.created_at)
        for name in dict.fromkeys(p.name for p in points if p.environment == environment):
            mine = [p for p in points if p.name == name]
            kept_from = min(newest[p.restore_point.lower()] if p.kind == catalog.COPY_POINT else p.created_at
                            for p in mine)
            until = (f"no: {next(p.lost for p in mine if p.lost)}" if any(p.lost for p in mine) else
                     f"{kept_from + keep:%Y-%m-%d %H:%M}" if keep else "until pruned")
            found.append({"tenant": tenant.name, "name": name, "created_at": mine[0].created_at,
                          "commit": mine[0].commit, "tables": [str(p.table) for p in mine],
                          "rows": sum(p.row_count for p in mine), "kind": mine[0].kind,
                          "linked_to": mine[0].linked_to, "run_id": mine[0].run_id, "restorable_until": until})
    return sorted(found, key=lambda c: (c["created_at"], c["tenant"], c["name"]))


def rollback(workspace: Workspace, environment: str, name: str, selection: Sequence[str] | None,
             tenant: str | None, execute: bool, all_or_nothing: bool = False) -> DataRollback:
    """Roll the rows of the checkpoint's tables (or `selection` of them) back to it in each tenant that
    holds it: a dry run (counts only, audited as one) unless `execute`. Where tables restore one by one
    (journaled engines), one that fails is put back and the others stay restored (the tenant's error
    says which), unless `all_or_nothing`."""
    landscape = workspace.load(environment)
    tenants = [t for t in landscape.environment.tenants if tenant is None or t.name == tenant]
    if not tenants:
        names = [t.name for t in landscape.environment.tenants]
        raise UsageProblem(f"no tenant {tenant} in {environment}{did_you_mean(tenant or '', names)}")
    held: dict[str, list[Point]] = {}
    everything: dict[str, list[Point]] = {}
    for each in landscape.environment.tenants:
        adapter = workspace.adapter(each, environment)
        everything[each.name] = [Point.from_row(row) for row in adapter.checkpoints()] if adapter.exists else []
    for each in tenants:
        points = [p for p in everything[each.name] if p.name == name and p.environment == environment]
        if points:
            held[each.name] = _selected(points, selection)
    if not held:
        raise _unknown(workspace, environment, name, tenant, everything)
    planned = plan_environment(workspace, environment, None, list(held))
    actor = executor.current_actor(workspace.repo)
    result = DataRollback(environment, name, execute)
    if execute:   # a tenant that cannot be restored stops the rollback before any tenant is
        found = [i for t in planned.plan.tenants for i in impacts(planned.states[t.tenant], held[t.tenant])]
        stopped = refusal(found)
        if stopped is not None:
            result.errors.append((", ".join(sorted({i.tenant for i in found if i.problem})), stopped))
            return result
    for tenant_plan in planned.plan.tenants:
        try:
            result.results.append(executor.rollback_rows(planned.states[tenant_plan.tenant], tenant_plan,
                                                         planned.plan, held[tenant_plan.tenant], actor, execute,
                                                         all_or_nothing))
        except PartlyRestored as partly:
            result.results.append(partly.rolled)
            result.errors.append((tenant_plan.tenant, partly))
        except ReconcilerError as error:
            result.errors.append((tenant_plan.tenant, error))
    return result


def _selected(points: list[Point], selection: Sequence[str] | None) -> list[Point]:
    """The points of the tables `selection` names (schema.name or a name), every one without it."""
    if not selection:
        return points
    chosen = []
    for wanted in selection:
        matches = [p for p in points if wanted.lower() in (str(p.table).lower(), p.table.name.lower())]
        if not matches:
            tables = [str(p.table) for p in points]
            raise UsageProblem(f"--select {wanted}: checkpoint {points[0].name} holds no such table"
                               f"{did_you_mean(wanted, tables)} (its tables: {', '.join(tables)})")
        chosen += [p for p in matches if p not in chosen]
    return chosen


def _unknown(workspace: Workspace, environment: str, name: str, tenant: str | None,
             everything: dict[str, list[Point]]) -> UsageProblem:
    """Why `name` is no checkpoint of the environment (and tenant): another tenant's, another
    environment's, or unknown (with the nearest name)."""
    for held_by, points in everything.items():
        for point in points:
            if point.name != name:
                continue
            if point.environment != environment:
                return UsageProblem(f"checkpoint {name} was taken of environment {point.environment}, not "
                                    f"{environment}: a checkpoint restores only into the environment it was taken of")
            return UsageProblem(f"checkpoint {name} is of tenant {held_by}, not {tenant}")
    for other in available_environments(workspace.repo, None):
        if other == environment:
            continue
        owner = _holder(workspace, other, name)
        if owner:
            return UsageProblem(f"checkpoint {name} is of environment {other} (tenant {owner}), not {environment}: "
                                "a checkpoint restores only into the environment it was taken of")
    known = sorted({p.name for points in everything.values() for p in points if p.environment == environment})
    return UsageProblem(f"no checkpoint {name} in {environment}{did_you_mean(name, known)} (checkpoints: "
                        f"{', '.join(known) or 'none'}; `reconciler checkpoints {environment}` lists them)")


def _holder(workspace: Workspace, environment: str, name: str) -> str | None:
    """The tenant of another environment that holds checkpoint `name`, where it can be read."""
    try:
        landscape = workspace.load(environment)
        for tenant in landscape.environment.tenants:
            adapter = workspace.adapter(tenant, environment)
            if adapter.exists and any(row["name"] == name for row in adapter.checkpoints()):
                return tenant.name
    except ReconcilerError:   # an environment that cannot be read holds nothing this one can name
        return None
    return None
