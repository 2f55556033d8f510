"""Tenant housekeeping: backups (list, restore, prune) and releasing what a dead run left.

Owns the order of each (find, check every guard, then write through `planning.environment`); never
decides what a plan changes.
"""

from __future__ import annotations

import datetime as dt
import functools

from .. import faults
from ..engines import catalog
from ..errors import GuardRefused, TenantError
from ..model import ObjectKey
from ..planning.environment import Workspace, plan_environment
from ..planning.tenant import Restoring
from .executor import TenantResult, apply_tenant, current_actor, drop_backups, release


def backups(workspace: Workspace, environment: str) -> list[dict]:
    """Every tenant's backups, oldest first, each with its tenant."""
    landscape = workspace.load(environment)
    found = []
    for tenant in landscape.environment.tenants:
        found += [{"tenant": tenant.name, **b} for b in workspace.adapter(tenant, environment).backups()]
    return sorted(found, key=lambda b: (str(b["created_at"]), b["name"]))


def unlock(workspace: Workspace, environment: str, run_id: str, as_is: bool = False) -> tuple[str, str]:
    """Conclude a dead run that the audit still shows as running, or that left only its tenant lock row
    (a lease that never runs out: `Adapter.lock_holder`), through `executor.release` (`as_is`: putting
    nothing back): its tenant, and what became of the run."""
    landscape = workspace.load(environment)
    running = []
    for tenant in landscape.environment.tenants:
        adapter = workspace.adapter(tenant, environment)
        runs = [r for r in adapter.runs() if r["outcome"] == "running"]
        running += [f"{tenant.name}: {r['run_id']}" for r in runs]
        if any(r["run_id"] == run_id for r in runs):
            return tenant.name, release(adapter, run_id, as_is)
        holder = adapter.lock_holder() or {}
        if holder.get("run_id") == run_id:
            return tenant.name, (f"the tenant lock of run {run_id} (lease_until {holder.get('lease_until')!r}) "
                                 f"released; {release(adapter, run_id, as_is)}")
    listing = ", ".join(running) or "none"
    raise TenantError(f"no run {run_id} is left running in {environment} (running: {listing})")


def restore(workspace: Workspace, environment: str, name: str) -> TenantResult:
    """Bring a backup's rows back into its table by the normal protocol (lock, transaction, a backup of
    the rows it replaces, bind check, audit), its change planned like any other, under the lock
    (`planning.tenant.Restoring`)."""
    tenant, backup = _find_backup(workspace, environment, name)
    planned = plan_environment(workspace, environment, None, [tenant])
    if planned.plan.has_changes:
        raise GuardRefused(f"tenant {tenant} has pending changes; apply {environment} first so that the restore "
                           "is the only change")
    state = planned.states[tenant]
    key = state.live.find(ObjectKey(backup["schema_name"], backup["table_name"]))
    if key is None or key not in state.live.objects or key not in state.desired.objects:
        raise GuardRefused(f"table {backup['schema_name']}.{backup['table_name']} is not in tenant {tenant}; put it "
                           f"back in the folder (git revert), apply {environment}, then restore")
    # the tenant must still have nothing pending under the lock; there the restore is planned, and runs alone
    return apply_tenant(state, planned.plan.tenants[0], planned.plan, current_actor(workspace.repo), "restore",
                        restoring=Restoring(key, name))


def prune_backups(workspace: Workspace, environment: str, older_than_days: int | None,
                  execute: bool) -> list[dict]:
    """Backups older than the retention (the option, else environment.yaml's backup_retention_days), the
    copies of checkpoints older than their tenant's `rules.checkpoint_retention` (unset: the backups'
    retention), and whatever age, the restore points of runs that concluded without dropping them
    (`left`: killed after their commit point); dropped only when `execute`, never otherwise. A copy that
    more than one of them names (a backup that is also a checkpoint's copy, a checkpoint taken after a
    rollback naming the copy it restored) goes only once every one naming it has expired. Dropping
    decides again under the tenant's lock, from what the catalog says then: a rollback that named a copy
    since it was listed (its after-rollback checkpoint) keeps it."""
    landscape = workspace.load(environment)
    days = older_than_days or landscape.environment.backup_retention_days
    kept = {tenant.name: landscape.environment.rules_for(tenant).retention for tenant in landscape.environment.tenants}
    if days is None and not any(kept.values()):
        raise GuardRefused("no retention: pass --older-than DAYS or set backup_retention_days (checkpoints: "
                           f"rules.checkpoint_retention) in environments/{environment}/environment.yaml")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    limit = dt.timedelta(days=days) if days else None
    found = []
    for tenant in landscape.environment.tenants:
        adapter = workspace.adapter(tenant, environment)
        expired = functools.partial(_expired, tenant.name, now=now, limit=limit, retention=kept[tenant.name] or limit)
        listed = expired(adapter.backups(), adapter.checkpoints() if adapter.exists else [])
        faults.reached("listed", tenant.name)
        if execute and listed:   # decided again under the lock, on what the catalog holds then
            listed = drop_backups(adapter, lambda session: expired(catalog.backups(session),
                                                                   adapter.checkpoints_in(session)))
        found += listed
    return sorted(found, key=lambda b: (str(b["created_at"]), b["tenant"], b["name"]))


def _expired(tenant: str, held: list[dict], points: list[dict], now: dt.datetime, limit: dt.timedelta | None,
             retention: dt.timedelta | None) -> list[dict]:
    """Of a tenant's backups (`held`) and the copies of its checkpoints (`points`), those past their
    retention or left by a run, each copy once, and only once everything naming it is past its own."""
    copies = [{"tenant": tenant, **copy} for copy in _checkpoint_copies(points)]
    # a restore point its run's checkpoint lists is that checkpoint's copy (the next apply unlists it), not one left
    checkpointed = {(copy["name"], copy["run_id"]) for copy in copies}
    naming = [({"tenant": tenant, **b}, bool((b.get("left") and (b["name"], b["run_id"]) not in checkpointed)
                                             or (limit and b["created_at"] < now - limit))) for b in held]
    naming += [(copy, bool(retention and copy["created_at"] < now - retention)) for copy in copies]
    kept_by_one = {copy["name"].lower() for copy, gone in naming if not gone}
    return list({copy["name"].lower(): copy for copy, gone in naming
                 if gone and copy["name"].lower() not in kept_by_one}.values())


def _checkpoint_copies(points: list[dict]) -> list[dict]:
    """The copies of a tenant's checkpoints still there, as `backups` shows a backup, with their checkpoint."""
    return [{"name": p["restore_point"], "schema_name": p["schema_name"], "table_name": p["table_name"],
             "run_id": p["run_id"], "created_at": p["created_at"], "row_count": p["row_count"],
             "checkpoint": p["name"]} for p in points if p["kind"] == catalog.COPY_POINT and not p["lost"]]


def _find_backup(workspace: Workspace, environment: str, name: str) -> tuple[str, dict]:
    found = backups(workspace, environment)
    for backup in found:
        if backup["name"] == name:
            return backup["tenant"], backup
    listing = ", ".join(b["name"] for b in found) or "none"
    raise TenantError(f"no backup {name} in {environment} (backups: {listing})")
