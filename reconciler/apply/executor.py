"""Applying plans: the only part of the reconciler that writes to a tenant.

Owns what comes before any tenant is touched (the guards, a saved plan checked against the plan
made now, every secret the apply needs resolved), applying each tenant at once on its own
connection, and handing each to its protocol (`apply.protocols`: one transaction, or a journal),
chosen once from its adapter. Also the other writes, by the same protocol: dry-run and check audit
records, running a data flow, releasing a dead run, dropping backups, checkpoints and rolling rows back
to one.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import git

from .. import faults, secrets
from .. import plan as plans
from ..desired import checks
from ..engines import catalog
from ..engines.contract import Adapter, Session
from ..errors import GuardRefused, ReconcilerError, StalePlan, TenantError, TenantLocked
from ..model import ObjectKey
from ..parallel import each_tenant
from ..plan import Plan, TenantPlan
from ..planning.environment import Planned, TenantState
from ..planning.tenant import Restoring, check_saved_plan
from .lifecycle import FlowRun, Progress, TenantResult, new_run_id, warnings
from .protocols import protocol_for

if TYPE_CHECKING:
    from ..planning.environment import Workspace


def apply_environment(workspace: Workspace, planned: Planned, plan: Plan, allow_data_loss: Sequence[str] = (),
                      actor: str | None = None, operation: str = "apply", progress: Progress | None = None,
                      moved: str = "refuse", claim: Plan | None = None, smoke: bool = False) -> list[TenantResult]:
    """Apply each tenant's plan by its protocol; one tenant's failure spares the others.
    `moved` says what happens when a tenant's plan made under its lock is not `plan`'s (see apply_tenant);
    `claim` is a saved plan that must be exactly `plan`. Guards speak first: rows in the way are
    worth more to a user than "the plan is stale"."""
    problems = plans.violations(plan, allow_data_loss)
    if problems:
        raise GuardRefused("refused:\n  " + "\n  ".join(problems))
    if claim is not None:
        check_saved_plan(claim, planned.plan)
    _require_variables(planned, plan)
    actor = actor or current_actor(workspace.repo)

    def apply_one(tenant_plan: TenantPlan) -> TenantResult:
        try:
            return apply_tenant(planned.states[tenant_plan.tenant], tenant_plan, plan, actor, operation, progress,
                                moved, allow_data_loss, smoke=smoke)
        except ReconcilerError as error:
            outcome = ("refused" if isinstance(error, GuardRefused) else
                       "locked" if isinstance(error, TenantLocked) else
                       "stale" if isinstance(error, StalePlan) else "failed")
            faults.failed(tenant_plan.tenant, error)
            return TenantResult(tenant_plan.tenant, None, outcome, tenant_plan.summary, str(error), error.exit_code)
        except Exception as error:   # a bug, raised once every tenant ended: said at once to a test waiting
            faults.failed(tenant_plan.tenant, error)
            raise

    results = each_tenant(plan.tenants, apply_one)
    for result in results:
        if isinstance(result, BaseException):   # not a ReconcilerError: a bug; never swallowed
            raise result
    return results


def _require_variables(planned: Planned, plan: Plan) -> None:
    """Every `env:` reference the apply needs resolves before any tenant is touched: each tenant's
    password, and the secrets of every connection it creates or changes (deployed, it must work)."""
    names: list[str] = []
    for tenant_plan in plan.tenants:
        state = planned.states[tenant_plan.tenant]
        names += state.tenant.secret_names
        for change in tenant_plan.changes:
            if change.kind == "Connection" and change.action != "delete":
                names += secrets.references(state.desired.objects[change.key].definition.get("secrets", {}))
    unset = secrets.missing(names)
    if unset:
        raise TenantError(f"environment variable{'s' if len(unset) > 1 else ''} {', '.join(unset)} "
                          f"{'are' if len(unset) > 1 else 'is'} not set, and the apply needs "
                          f"{'them' if len(unset) > 1 else 'it'} (a tenant password or the secret of a connection "
                          "it deploys); nothing was changed")


def apply_tenant(state: TenantState, expected: TenantPlan, plan: Plan, actor: str, operation: str = "apply",
                 progress: Progress | None = None, moved: str = "refuse", allow_data_loss: Sequence[str] = (),
                 restoring: Restoring | None = None, smoke: bool = False) -> TenantResult:
    """Apply one tenant by its protocol. What runs is never `expected` as given: the tenant is planned
    again under its lock, and that plan runs. When it differs from `expected`, `moved="refuse"` stops (a
    saved, reviewed or confirmed plan: exit 5) and `moved="follow"` runs the new plan once the guards
    pass it (another run got there first). A restore's change (`restoring`), planned under the lock too,
    runs after it. With `smoke`,
    the apply is first rehearsed with every data flow it deploys run, and rolled back."""
    return protocol_for(state.adapter).apply(state, expected, plan, actor, operation, progress, moved,
                                             allow_data_loss, restoring, smoke)


def run_flow(state: TenantState, tenant_plan: TenantPlan, plan: Plan, flow: ObjectKey, actor: str,
             dry_run: bool = False) -> FlowRun:
    """Run a data flow's INSERT ... SELECT, or refresh a MaterializedTable, then the checks of what it
    writes, by the tenant's protocol (`transactional.run_flow`)."""
    return protocol_for(state.adapter).run_flow(state, tenant_plan, plan, flow, actor, dry_run)


def record_dry_run(state: TenantState, tenant_plan: TenantPlan, plan: Plan, operation: str,
                   actor: str) -> str | None:
    """Audit a dry run in the tenant, where its protocol can take the record back with the rest."""
    return protocol_for(state.adapter).record_dry_run(state, tenant_plan, plan, operation, actor)


def record_checks(state: TenantState, tenant_plan: TenantPlan, plan: Plan, results: Sequence[checks.Result],
                  actor: str) -> str | None:
    """Audit a `reconciler check` in the tenant: a run (operation `check`, outcome passed or failed) and
    the result of every check it ran. A tenant that does not exist is left alone."""
    if not state.adapter.exists:
        return None
    run = catalog.Run(new_run_id(), plan, tenant_plan.model_copy(update={"changes": ()}), actor, "check")
    run.checks = results
    outcome = "failed" if checks.failures(results) else "passed"
    with state.adapter.session(create=False) as session, protocol_for(state.adapter).writing(session):
        catalog.create(session)
        run.record(session, outcome)
        catalog.write_checks(session, run.run_id, results)
    return run.run_id


def release(adapter: Adapter, run_id: str, as_is: bool = False) -> str:
    """Conclude a dead run: opening the tenant for writing proves its process is gone (a live holder
    raises TenantLocked); where its statements committed one by one, it is compensated first, unless
    `as_is`. What became of it, for people."""
    return protocol_for(adapter).release(adapter, run_id, as_is)


def drop_backups(adapter: Adapter, choose: Callable[[Session], list[dict]]) -> list[dict]:
    """Drop the backups `choose` picks, under the tenant's lock, from what the catalog says then, with their
    catalog rows: together where the engine can (each backup's tombstone before its table where it cannot)."""
    with adapter.session(create=False) as session:
        catalog.create(session)   # a catalog an older version wrote may lack what dropping needs
        chosen = choose(session)
        protocol_for(adapter).drop(session, [statement for backup in chosen
                                             for statement in catalog.drop_backup_statements(session, backup["name"])])
    return chosen


def checkpoint(state: TenantState, tenant_plan: TenantPlan, plan: Plan, tables: Sequence[ObjectKey], name: str,
               actor: str) -> tuple[str, list]:
    """A checkpoint of `tables` by the tenant's protocol (`checkpointed.take_checkpoint`): run id, points."""
    return protocol_for(state.adapter).checkpoint(state, tenant_plan, plan, tables, name, actor)


def rollback_rows(state: TenantState, tenant_plan: TenantPlan, plan: Plan, points: Sequence, actor: str,
                  execute: bool, all_or_nothing: bool = False):
    """Tables' rows rolled back to a checkpoint (a dry run unless `execute`), by the tenant's protocol."""
    return protocol_for(state.adapter).rollback_rows(state, tenant_plan, plan, points, actor, execute, all_or_nothing)


def current_actor(repo: Path) -> str:
    """Who runs this: the CI actor, else the landscape repository's git user, else the OS user."""
    if os.environ.get("GITHUB_ACTOR"):
        return f"github:{os.environ['GITHUB_ACTOR']}"
    try:
        name = git.Repo(repo).config_reader().get_value("user", "name", "")
        if name:
            return str(name)
    except Exception:  # noqa: BLE001 - no git identity is not an error; fall back to the OS user
        pass
    return getpass.getuser()


__all__ = ["apply_environment", "apply_tenant", "record_dry_run", "record_checks", "run_flow", "release",
           "drop_backups", "checkpoint", "rollback_rows", "current_actor", "protocol_for", "new_run_id", "warnings",
           "FlowRun", "TenantResult"]
