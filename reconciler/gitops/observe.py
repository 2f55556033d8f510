"""Reading the landscape and its tenants for people: history, status, drift, what differs
between environments, and the data of the landscape report.

Owns nothing but the reads and how they are put together; never writes to git or a tenant.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import plan as plans
from ..desired.landscape import Landscape
from ..desired.source import ENVIRONMENTS, available_environments, open_repo, resolve_commit
from ..errors import ReconcilerError, TenantLocked
from ..model import ObjectKey, Tenant
from ..parallel import beside, each_tenant
from ..planning.environment import Opened, Workspace, declared_environment, plan_environment, recalled_on
from ..views import observed
from . import history as gitops


def history(workspace: Workspace, environment: str) -> list[dict]:
    """Every tenant's audit records for the environment, oldest first."""
    landscape = workspace.load(environment)
    runs = []
    for tenant in landscape.environment.tenants:
        runs += [run for run in workspace.adapter(tenant, environment).runs() if run["environment"] == environment]
    return sorted(runs, key=lambda run: (str(run["started_at"]), run["run_id"]))


def environments(workspace: Workspace, changed_since: str | None = None) -> list[str]:
    """The environments in landscape order (along `promotes_from`); with a ref, only those whose folder
    differs between that ref and the checked-out commit (one the ref lacks included), which is what CI
    plans on a pull request and applies on a push without naming any environment itself."""
    names = gitops.landscape_order({name: workspace.load(name) for name in available_environments(workspace.repo, None)})
    if changed_since is None:
        return names
    before, now = resolve_commit(workspace.repo, changed_since).tree, open_repo(workspace.repo).head.commit.tree
    return [name for name in names if _folder(before, name) != _folder(now, name)]


def _folder(tree, environment: str) -> str | None:
    try:
        return (tree / f"{ENVIRONMENTS}/{environment}").hexsha
    except KeyError:
        return None


@dataclass(frozen=True)
class TenantStatus:
    environment: str
    tenant: str
    applied_commit: str | None
    pending: int | None
    drift: int | None
    lock: str | None
    problem: str | None = None
    checks: str | None = None   # the data checks of the latest run that ran any: counts, its operation, when


@dataclass(frozen=True)
class Waiting:
    source: str
    target: str
    objects: tuple[str, ...]
    held_back: tuple[str, ...]


def status(workspace: Workspace) -> tuple[list[TenantStatus], list[Waiting]]:
    """Environments x tenants, then what waits to be promoted between consecutive ones."""
    landscapes = {name: workspace.load(name) for name in available_environments(workspace.repo, None)}
    rows, waiting, _ = _status(workspace, landscapes, gitops.landscape_order(landscapes), {})
    return rows, waiting


def _status(workspace: Workspace, landscapes: dict[str, Landscape], order: list[str], audits: dict) -> tuple[
        list[TenantStatus], list[Waiting], dict[tuple[str, str], plans.TenantPlan]]:
    """`status`, and each tenant's plan now (by environment and tenant); a tenant's runs are read from
    `audits` where it holds them."""
    rows, pending = [], {}
    for name in order:
        more_rows, more_pending = _environment_status(workspace, landscapes[name], audits)
        rows, pending = rows + more_rows, pending | more_pending
    return rows, _waiting(workspace, landscapes, order), pending


def _environment_status(workspace: Workspace, landscape: Landscape, audits: dict) -> tuple[
        list[TenantStatus], dict[tuple[str, str], plans.TenantPlan]]:
    """One environment's rows of `status` and its tenants' plans."""
    try:   # the whole environment at once: its tenants are read in parallel
        planned = plan_environment(workspace, landscape.name)
    except ReconcilerError:
        planned = None
    return _planned_status(workspace, landscape, audits, planned and planned.plan)


def _planned_status(workspace: Workspace, landscape: Landscape, audits: dict, plan: plans.Plan | None) -> tuple[
        list[TenantStatus], dict[tuple[str, str], plans.TenantPlan]]:
    """`_environment_status` of an environment planned (None: its plan failed)."""
    name, tenants = landscape.name, landscape.environment.tenants
    if plan is None:   # then one by one, to say which tenant cannot be read, and why
        return [_tenant_status(workspace, name, tenant) for tenant in tenants], {}
    rows = []
    for tenant in tenants:
        every = audits.get((name, tenant.name), {}).get("runs")
        rows.append(_row(name, plan, tenant.name, workspace.adapter(tenant, name).runs() if every is None else every))
    return rows, {(name, tenant_plan.tenant): tenant_plan for tenant_plan in plan.tenants}


def _opened(workspace: Workspace, name: str, tenants: Sequence[Tenant], stack: contextlib.ExitStack,
            audits: dict) -> dict[str, Opened]:
    """Each tenant's read session, opened on its own thread as a plan's are, and its audit read on it (into
    `audits`): kept open on `stack` for the plan where the tenant was also inspected. A tenant that cannot
    be read is left out (its plan says why); a session whose inspection failed is closed."""
    kept, keeping = stack.enter_context(contextlib.ExitStack()), threading.Lock()

    def open_one(tenant):
        with contextlib.ExitStack() as own:
            adapter = workspace.adapter(tenant, name)
            reading = own.enter_context(adapter.reading())
            audit = adapter.audit_in(reading)
            try:
                found = Opened(tenant, adapter, reading, reading.inspect())
            except ReconcilerError:
                return audit, None
            with keeping:   # on `stack` as it is kept, never held only by a result Ctrl-C throws away
                kept.push(own.pop_all())
            return audit, found

    opened = {}
    for tenant, outcome in zip(tenants, each_tenant(tenants, open_one)):
        if isinstance(outcome, ReconcilerError):
            continue   # an unreachable tenant shows in the status table
        if isinstance(outcome, BaseException):   # a bug: never swallowed
            raise outcome
        audit, found = outcome
        audits[name, tenant.name] = {**audit, "runs": [run for run in audit["runs"] if run["environment"] == name]}
        if found is not None:
            opened[tenant.name] = found
    return opened


def _waiting(workspace: Workspace, landscapes: dict[str, Landscape], order: list[str]) -> list[Waiting]:
    waiting = []
    for name in order:
        source = landscapes[name].environment.promotes_from
        if source in landscapes:
            promotion = gitops.plan_promotion(workspace.repo, landscapes[source], landscapes[name], None, True)
            waiting.append(Waiting(source, name, tuple(f"{m.action} {m.key}" for m in promotion.moves),
                                   tuple(f"{key}: {why}" for key, why in promotion.held_back)))
    return waiting


def _tenant_status(workspace: Workspace, environment: str, tenant) -> TenantStatus:
    try:
        planned = plan_environment(workspace, environment, None, [tenant.name])
    except TenantLocked as locked:
        return TenantStatus(environment, tenant.name, None, None, None, str(locked))
    except ReconcilerError as error:
        return TenantStatus(environment, tenant.name, None, None, None, None, str(error))
    return _row(environment, planned.plan, tenant.name, planned.states[tenant.name].adapter.runs())


def _row(environment: str, plan: plans.Plan, tenant: str, every: list[dict]) -> TenantStatus:
    tenant_plan = plan.tenant(tenant)
    runs = [r for r in every if r["outcome"] in ("applied", "no-changes") and not r["dry_run"]]
    applied = (runs[-1]["commit"] or "")[:8] if runs else None
    drifted = sum(1 for c in tenant_plan.changes if c.drift) + len(tenant_plan.unmanaged)
    checked = [r for r in every if r["checks"]]
    checks = (f"{observed.check_counts(checked[-1]['checks'])} ({checked[-1].get('operation') or 'apply'} "
              f"{checked[-1]['started_at']:%Y-%m-%d %H:%M})" if checked else None)
    return TenantStatus(environment, tenant, applied, len(tenant_plan.changes), drifted, None, checks=checks)


@dataclass(frozen=True)
class Drift:
    tenant: str
    changed: tuple[plans.Change, ...]
    unmanaged: tuple[str, ...]


def drift(workspace: Workspace, environment: str) -> list[Drift]:
    """Per tenant: objects changed outside the reconciler, and objects it does not manage."""
    planned = plan_environment(workspace, environment)
    return [Drift(t.tenant, tuple(c for c in t.changes if c.drift), t.unmanaged) for t in planned.plan.tenants]


def modified(workspace: Workspace, landscape: Landscape, against: str) -> set[ObjectKey]:
    """Objects whose file differs from (or is missing in) another environment's folder, or the
    same folder at a git ref: the `state:modified` of a graph selection."""
    if against in available_environments(workspace.repo, None):
        other = workspace.load(against)
    else:
        other = workspace.load(landscape.name, against)
    mine, theirs = gitops.blob_ids(landscape), gitops.blob_ids(other)
    return {key for key, (_, blob) in mine.items() if theirs.get(key, (None, None))[1] != blob}


@dataclass(frozen=True)
class LandscapeReport:
    order: list[str]
    status: list[TenantStatus]
    waiting: list[Waiting]
    versions: dict[str, dict[str, str]]        # object -> environment -> short blob id of its file
    local: set[str]                             # connections that belong to one environment
    graph_environment: str
    graph: object                               # the first environment's dependency graph
    history: list[dict]
    landscapes: dict[str, Landscape] = field(default_factory=dict)   # by environment, in `order`
    pending: dict[tuple[str, str], plans.TenantPlan] = field(default_factory=dict)   # (environment, tenant)
    audits: dict[tuple[str, str], dict[str, list[dict]]] = field(default_factory=dict)
    # ^ (environment, tenant) -> `Adapter.audit()`, only that environment's runs; none for a tenant unread


def landscape_report(workspace: Workspace, history_size: int | None = 25,
                     environments: Sequence[str] = ()) -> LandscapeReport:
    """Everything the HTML report and the site show, each tenant's audit read once: status and plans,
    versions per environment, the newest `history_size` runs (every run: None); of `environments` (in
    landscape order, what waits between two of them), or of every one."""
    available = available_environments(workspace.repo, None)
    for name in environments:
        if name not in available:
            workspace.load(name)   # UnknownEnvironment, with what there is
    every, audits, rows_of, pending = {}, {}, {}, {}
    for name in available:   # one read session per tenant: its audit, then its plan; an environment at a time
        if environments and name not in environments:
            every[name] = workspace.load(name)   # for the landscape order
            continue
        with contextlib.ExitStack() as stack:
            # the tenants environment.yaml declares (checked alone) are opened and inspected while the folder
            # is validated; leaving the block waits for them
            declared = declared_environment(workspace, name)
            early = declared[2].tenants if declared else ()
            with beside(_opened, workspace, name, early, stack, audits) as opening:
                every[name] = workspace.load(name)
            opened, validated = opening.result(), every[name].environment.tenants
            for tenant in early:   # environment.yaml edited meanwhile: what was read is not this environment's
                if tenant not in validated:
                    opened.pop(tenant.name, None)
                    audits.pop((name, tenant.name), None)
            planned = recalled_on(workspace, every[name], opened)   # what every tenant remembers, or planned
            try:
                planned = planned or plan_environment(workspace, name, opened=opened).plan
            except ReconcilerError:
                planned = None
        # its sessions closed: a tenant the plan could not read is read on its own, to say why
        rows_of[name], more_pending = _planned_status(workspace, every[name], audits, planned)
        pending |= more_pending
    order = [name for name in gitops.landscape_order(every) if not environments or name in environments]
    landscapes = {name: every[name] for name in order}
    rows = [row for name in order for row in rows_of[name]]
    waiting = _waiting(workspace, landscapes, order)
    versions: dict[str, dict[str, str]] = {}
    local: set[str] = set()
    for name in order:
        for key, (_, blob) in gitops.blob_ids(landscapes[name]).items():
            versions.setdefault(str(key), {})[name] = blob[:8]
        local |= {str(key) for key in gitops.environment_local(landscapes[name])}
    runs = sorted((run for audit in audits.values() for run in audit["runs"]),
                  key=lambda run: (str(run["started_at"]), run["run_id"]), reverse=True)
    return LandscapeReport(order, rows, waiting, dict(sorted(versions.items())), local, order[0],
                           landscapes[order[0]].lineage, runs[:history_size], {n: landscapes[n] for n in order},
                           pending, audits)


def run_changes(workspace: Workspace, data: LandscapeReport) -> dict[str, set[str]]:
    """Run id -> the objects (schema.name) whose file differs between the commit that run applied and the
    one the same tenant's previous applied run did (all of them for its first): what each run changed,
    since the audit keeps a run's counts, not its objects. An object is followed by its file's path in
    the environment's folder now; one renamed or deleted since is not."""
    repo = open_repo(workspace.repo)
    changed: dict[str, set[str]] = {}
    listed: dict[str, dict[str, str]] = {}   # commit -> its files' blob ids: runs often share a commit
    for (environment, _), audit in data.audits.items():
        paths = {str(key): path for key, (path, _) in gitops.blob_ids(data.landscapes[environment]).items()}
        before: dict[str, str] = {}   # the first applied run changed every object its commit holds
        for run in audit["runs"]:
            if run["dry_run"] or run["outcome"] != "applied" or not run["commit"]:
                continue
            try:
                tree = repo.commit(run["commit"]).tree
            except ValueError:   # a commit this clone lacks (a shallow checkout): nothing to compare
                continue
            if tree.hexsha not in listed:
                listed[tree.hexsha] = gitops.tree_blobs(tree)
            blobs = listed[tree.hexsha]
            changed[run["run_id"]] = {name for name, path in paths.items() if blobs.get(path) != before.get(path)}
            before = blobs
    return changed

