"""The pipeline end to end for one command: load -> validate -> render -> read -> plan.

Owns the `Workspace` (the repository, its per-command memo of validated environments, the
reconciler's own state under `.git/reconciler/`), `plan_environment`, which plans every tenant
of an environment at once, each through one read session (which also answers the row counts its
plan asks), and what a plan was made from (`TenantState`, `Planned`: each tenant's adapter too, for
the apply). Reads only: applying is `executor`, planning one tenant is `planning.tenant` (pure),
the tenant catalog is `engines.catalog`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import git
import networkx as nx

from .. import disclosure
from ..desired.cache import Cache
from ..desired.key import desired_key
from ..desired.landscape import Landscape
from ..desired.render import render
from ..desired.source import (
    ENVIRONMENT_FILE,
    ENVIRONMENTS,
    WORKTREE,
    Blobs,
    EnvironmentSource,
    available_environments,
    environment_blobs,
    head_commit,
    read_document,
    read_environment,
    resolve_commit,
)
from ..desired.validate import load, valid_environment, validate
from ..engines import catalog
from ..engines.contract import Adapter, Session, Unprovable, adapter_for
from ..errors import GuardRefused, ReconcilerError, TenantError, UsageProblem, did_you_mean
from ..model import DataFlow, Environment, MaterializedTable, ObjectKey, Tenant
from ..parallel import each_tenant
from ..plan import Plan
from ..state import DesiredState, LiveState
from .diff import views_to_bind
from .recall import recalled as recalled_plan
from .tenant import TenantPlan, plan_through


@dataclass
class Workspace:
    """The repository being reconciled, and the reconciler's own state for it: the cache and the
    intent of an interrupted rollback. That state lives inside the git directory (`.git/reconciler/`),
    where no commit can put a file: a cache or an intent a pull request committed would otherwise be
    believed over the files it describes."""

    repo: Path
    lock_timeout: float = 0          # seconds to wait for a tenant another run holds
    cache: Cache = field(init=False)
    state: Path = field(init=False)
    _loaded: dict[tuple, Landscape] = field(init=False, default_factory=dict, repr=False)
    _base_tenants: dict[str, dict] = field(init=False, default_factory=dict, repr=False)   # `base_tenants`

    def __post_init__(self) -> None:
        self.repo = self.repo.resolve()
        try:
            self.state = Path(git.Repo(self.repo).git_dir) / "reconciler"
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            self.state = self.repo / ".reconciler"   # not a git repository: nothing can commit into it either
        self.cache = Cache(self.state / "cache.sqlite")

    def rollback_intent(self, environment: str) -> Path:
        """Where `rollback --execute` records what it is doing until it has finished."""
        return self.state / f"rollback-{environment}.json"

    def adapter(self, tenant: Tenant, environment: str) -> Adapter:
        """The adapter every command opens a tenant of `environment` through. In a pull request's run
        (RECONCILER_BASE_REF names the base), a tenant that may send a credential (one it names, or one its
        client finds by itself, as libpq finds PGPASSWORD) is opened only where the base's environment.yaml
        of that environment declares it with its url and password: a pull request must not be able to send
        a tenant's password to a host it names, or point one environment's commands at another's database,
        whichever command reads the tenant."""
        base = os.environ.get(BASE_REF_VARIABLE)
        if base and tenant.may_send_credentials \
                and self.base_tenants(base).get(environment, {}).get(tenant.name) != (tenant.url, tenant.password):
            raise TenantError(f"tenant {tenant.name}: this change gives it another url or password than "
                              f"{BASE_REF_VARIABLE}={base} has; the reconciler never sends a tenant's password to "
                              "a place a pull request names, so it is read only after merge, on the protected branch")
        return adapter_for(tenant, self.repo, self.lock_timeout)

    def base_tenants(self, base: str) -> dict[str, dict[str, tuple]]:
        """Environment -> tenant -> (url, password) as the base's environment.yaml files declare them, each
        checked alone; one that is not valid (or a base that cannot be read) vouches for nothing."""
        if base not in self._base_tenants:
            declared: dict[str, dict[str, tuple]] = {}
            try:
                for name in available_environments(self.repo, base):
                    # a cache of its own: a tenant may be opened on any thread, and the workspace's is one thread's
                    found = declared_environment(self, name, base, Cache(None))
                    if found is not None:
                        declared[name] = {t.name: (t.url, t.password) for t in found[2].tenants}
            except ReconcilerError:
                pass   # what was read so far vouches; the rest does not
            self._base_tenants[base] = declared
        return self._base_tenants[base]

    def load(self, environment: str, ref: str | None = None) -> Landscape:
        """One environment, read and validated once per command: at a ref, once per commit it names;
        in the working tree, once per set of file contents (git blob ids, listed before anything is
        parsed), so a command that checks files out reads them again but never parses or validates
        the same files twice."""
        try:
            if ref is not None:
                key: tuple = (environment, ref, resolve_commit(self.repo, ref).hexsha)
                if key not in self._loaded:
                    self._loaded[key] = load(self.repo, environment, ref, self.cache)
            else:
                environments = tuple(available_environments(self.repo, None))
                listed = environment_blobs(self.repo, environment)   # None: a link, which reading reports
                key = (environment, None, tuple(listed.ids.items()) if listed else None, environments)
                if listed is None or key not in self._loaded:
                    source = read_environment(self.repo, environment, None, self.cache)
                    # kept under the files it read: one edited since they were listed is not these
                    key = (environment, None, source.files, environments)
                    self._loaded[key] = validate(source, list(environments), self.cache)
            disclosure.sensitive(self._loaded[key].sensitive_names)   # before anything runs on a tenant
            return self._loaded[key]
        finally:
            self.cache.flush()


@dataclass(frozen=True)
class TenantState:
    """What one tenant's plan was made from: its desired and live state, read once, and the adapter
    the apply goes through."""

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


@dataclass(frozen=True)
class Opened:
    """A tenant's read session opened, and the tenant inspected, before its environment was validated."""

    tenant: Tenant
    adapter: Adapter
    reading: Session
    live: LiveState


def plan_for_review(workspace: Workspace, environment: str, ref: str | None = None,
                    tenants: Sequence[str] | None = None, verify: bool = False) -> tuple[Plan, nx.DiGraph | None]:
    """The `plan` command's plan, and the lineage it was made with (the dependency graph in the direction
    data flows; None for a recalled plan, which changes nothing). Recalled (`recall`) when every tenant's last apply recorded the same
    desired state and the tenant hashes as it did then; else planned with the sessions recalling
    opened (one connection per tenant per plan)."""
    with contextlib.ExitStack() as stack:
        recalled = recall(workspace, environment, ref, tenants, stack)
        if isinstance(recalled, Plan):
            return recalled, None
        planned = plan_environment(workspace, environment, ref, tenants, verify=verify, opened=recalled)
        return planned.plan, next(iter(planned.states.values())).desired.lineage if planned.states else None


def recall(workspace: Workspace, environment: str, ref: str | None, tenants: Sequence[str] | None,
           stack: contextlib.ExitStack) -> Plan | dict[str, Opened]:
    """The plan every chosen tenant's last apply recorded (`snapshot`), when the folder holds the files it
    validated, by git blob id, with this reconciler, and each tenant hashes as it did after that apply:
    nothing is validated, rendered or diffed. Otherwise the sessions it opened (kept open on `stack`),
    for planning the long way. Only environment.yaml is checked before a tenant is opened (as validating
    checks it); a pull request's plan (RECONCILER_BASE_REF), an interrupted rollback, RECONCILER_NO_RECALL
    (or RECONCILER_NO_CACHE) or a file that is a link is always planned the long way, as is anything
    that cannot be told."""
    opened: dict[str, Opened] = {}
    if not _may_recall(workspace, environment):
        return opened
    try:
        found = declared_environment(workspace, environment, ref)
        if found is None:
            return opened
        blobs, environments, declared = found
        if not {*(tenants or ())} <= {t.name for t in declared.tenants}:
            return opened
        for tenant in [t for t in declared.tenants if not tenants or t.name in tenants]:
            adapter = workspace.adapter(tenant, environment)
            reading = stack.enter_context(adapter.reading())
            opened[tenant.name] = Opened(tenant, adapter, reading, reading.inspect())
        plan = _recalled(workspace, environment, ref, blobs.commit,
                         desired_key(environment, environments, blobs.ids.items()), opened)
    except ReconcilerError:   # the long way says it, in its order (an invalid folder before a tenant)
        return opened
    finally:
        workspace.cache.flush()
    return plan or opened


def declared_environment(workspace: Workspace, environment: str, ref: str | None = None,
                         cache: Cache | None = None) -> tuple[Blobs, list[str], Environment] | None:
    """environment.yaml alone, checked as validating checks it (its objects are not read): the tenants a
    command may open while the folder is validated. With the folder's files listed (by git blob id) and
    the environments it may name; None when it has a problem (only validating says which) or a file is a link."""
    blobs = environment_blobs(workspace.repo, environment, ref)
    if blobs is None or blobs.environment is None:
        return None
    cache = workspace.cache if cache is None else cache
    environments = available_environments(workspace.repo, ref)
    document = read_document(f"{ENVIRONMENTS}/{environment}/{ENVIRONMENT_FILE}", blobs.environment, cache)
    if document is None:
        return None
    declared = valid_environment(EnvironmentSource(environment, ref or WORKTREE, blobs.commit, document, (), ()),
                                 environments, cache)
    return None if declared is None else (blobs, environments, declared)


def recalled_on(workspace: Workspace, landscape: Landscape, opened: dict[str, Opened]) -> Plan | None:
    """`recall` of an environment of the working tree validated already (`landscape`), every tenant of it
    opened and inspected (`opened`): the plan each remembers, when the files validated are those its
    last apply recorded (by git blob id); None otherwise (plan it the long way, on those sessions)."""
    source = landscape.source
    if source.commit is not None or not _may_recall(workspace, landscape.name) \
            or {name: found.tenant for name, found in opened.items()} != {t.name: t for t in landscape.environment.tenants} \
            or any(blob is None for _, blob in source.files):
        return None
    key = desired_key(landscape.name, available_environments(workspace.repo, None), source.files)
    try:
        return _recalled(workspace, landscape.name, None, None, key, opened)
    except ReconcilerError:
        return None


def _may_recall(workspace: Workspace, environment: str) -> bool:
    """Not a pull request's plan, an interrupted rollback's environment, or a run told not to."""
    return not (os.environ.get("RECONCILER_NO_RECALL") or os.environ.get("RECONCILER_NO_CACHE")
                or os.environ.get(BASE_REF_VARIABLE) or workspace.rollback_intent(environment).exists())


def _recalled(workspace: Workspace, environment: str, ref: str | None, commit: str | None, key: str,
              opened: dict[str, Opened]) -> Plan | None:
    """The plan of the tenants `opened` when every one of them remembers one for the desired state `key`."""
    recalled = [recalled_plan(catalog.snapshot(found.reading, environment, name), key, name, found.adapter.engine,
                              found.live) for name, found in opened.items()]
    if not recalled or None in recalled:
        return None
    return Plan(environment=environment, ref=ref or WORKTREE, commit=commit or head_commit(workspace.repo),
                tenants=tuple(recalled))


def plan_environment(workspace: Workspace, environment: str, ref: str | None = None,
                     tenants: Sequence[str] | None = None, resuming: bool = False, verify: bool = False,
                     opened: dict[str, Opened] | None = None) -> Planned:
    """Plan every tenant of an environment; reads tenants, never writes. With `verify`, every
    tenant's plan is proven on a shadow of it (`Adapter.prove`) and what the engine refuses is in
    the plan. An interrupted `rollback --execute` of the environment must be finished or abandoned
    first (`resuming` is either). A tenant `opened` already (by `recall`) is planned on that session
    and that inspection, when the validated folder declares it alike."""
    intent = workspace.rollback_intent(environment)
    if not resuming and intent.exists():
        raise GuardRefused(f"a `reconciler rollback {environment} --execute` was interrupted (recorded in {intent}); "
                           "its tenants and git may disagree until it is finished or abandoned: run "
                           f"`reconciler rollback {environment} --resume` to finish it, or `reconciler rollback "
                           f"{environment} --abandon` to put every tenant and git back where it started")
    landscape = workspace.load(environment, ref)
    names = [t.name for t in landscape.environment.tenants]
    for name in tenants or ():
        if name not in names:
            raise UsageProblem(f"environment {environment} has no tenant {name}{did_you_mean(name, names)}; "
                               f"its tenants: {', '.join(names)}")
    chosen = [t for t in landscape.environment.tenants if not tenants or t.name in tenants]
    _refuse_new_functions(workspace, landscape)
    # rendering is pure and uses the (single-threaded) cache; reading tenants waits on databases
    desired = {tenant.name: render(landscape, tenant, workspace.cache) for tenant in chosen}
    workspace.cache.release()   # what validating and rendering read is not needed while tenants are read

    @contextlib.contextmanager
    def read(tenant: Tenant) -> Iterator[tuple[Adapter, Session, LiveState]]:
        found = (opened or {}).get(tenant.name)
        if found is not None and found.tenant == tenant:
            yield found.adapter, found.reading, found.live
            return
        adapter = workspace.adapter(tenant, environment)
        with adapter.reading() as reading:
            yield adapter, reading, reading.inspect()

    def plan_one(tenant: Tenant) -> tuple[TenantState, TenantPlan]:
        with read(tenant) as (adapter, reading, live):   # one connection: inspect, row counts, checks, the proof
            if not live.exists and not tenant.create:
                raise TenantError(f"tenant {tenant.name}: database {adapter.describe()} does not exist; "
                                  "declare `create: true` on the tenant to create it")
            if not desired[tenant.name].objects and live.catalog:
                raise GuardRefused(f"tenant {tenant.name}: environment {environment} has no objects while the tenant "
                                   f"manages {len(live.catalog)}; an empty folder is refused rather than read as "
                                   "'delete everything' (remove objects by deleting their files, not the folder)")
            state = TenantState(tenant, adapter, desired[tenant.name], live, landscape.environment.allow_data_loss)
            tenant_plan = plan_through(reading, adapter, state.desired, live, state.acknowledged,
                                       under_review=bool(os.environ.get(BASE_REF_VARIABLE)))
            if verify and tenant_plan.changes:   # nothing to prove when nothing changes
                reads = {str(k): [str(d) for d in o.dependencies] for k, o in state.desired.objects.items()}
                reads.update({str(k): [str(d) for d in r.dependencies] for k, r in live.catalog.items()
                              if str(k) not in reads})
                try:
                    proving = [c for c in tenant_plan.changes if c.statements or c.conflict]   # blocked: said
                    proof = adapter.prove_in(reading, proving,
                                             views_to_bind(tenant_plan.changes, live, state.desired.engine), reads)
                    tenant_plan = tenant_plan.model_copy(update={"refused": tuple(proof)})
                except Unprovable as why:   # said in the plan; the apply's own transaction stays the proof
                    tenant_plan = tenant_plan.model_copy(update={"unproven": str(why), "refused": why.refused})
        return state, tenant_plan

    outcomes = each_tenant(chosen, plan_one)
    for outcome in outcomes:   # the first failure, in tenant order, after every read has finished
        if isinstance(outcome, BaseException):
            raise outcome
    commit = landscape.source.commit or head_commit(workspace.repo)
    plan = Plan(environment=environment, ref=landscape.source.ref, commit=commit,
                tenants=tuple(tenant_plan for _, tenant_plan in outcomes))
    return Planned(landscape, plan, {state.tenant.name: state for state, _ in outcomes})


def runnable(planned: Planned, name: str) -> dict[str, tuple[ObjectKey, str | None]]:
    """The data flow or MaterializedTable `name` (schema.name, or a name no other of them has, as the
    folder spells it) in each planned tenant, as the tenant calls it, with where a flow reads from (for
    people: its connection is outside the tenant). UsageProblem when there is no such object;
    TenantError when a tenant does not hold it, or what it writes or reads, as the folder declares."""
    landscape = planned.landscape
    runs = [key for key, obj in landscape.objects.items() if isinstance(obj, (DataFlow, MaterializedTable))]
    matches = [key for key in runs if name.lower() in (str(key).lower(), key.name.lower())]
    if len(matches) != 1:
        names = ", ".join(map(str, runs)) or "none"
        why = "names more than one: write schema.name" if matches else \
            f"is no data flow or MaterializedTable{did_you_mean(name, [*map(str, runs), *(k.name for k in runs)])}"
        raise UsageProblem(f"{name} {why}; what runs in {landscape.name}: {names}")
    path = landscape.documents[matches[0]].path
    found: dict[str, tuple[ObjectKey, str | None]] = {}
    for tenant_plan in planned.plan.tenants:
        desired = planned.states[tenant_plan.tenant].desired
        key = next(k for k, obj in desired.objects.items() if obj.path == path)
        obj = desired.objects[key]
        involved = {key, *obj.dependencies} | (
            {ObjectKey.parse(obj.definition["target"])} if obj.kind == "DataFlow" else set())
        pending = [change for change in tenant_plan.changes if change.key in involved]
        if pending:
            raise TenantError(f"tenant {tenant_plan.tenant}: {pending[0].kind} {pending[0].object} has a change "
                              f"waiting ({pending[0].reason}); {key} runs as the folder declares it: apply "
                              "first; nothing was run")
        source = None
        if obj.kind == "DataFlow":
            connection = desired.objects[ObjectKey.parse(obj.definition["connection"])].definition
            where = ", ".join(f"{k} {v}" for k, v in connection.get("properties", {}).items())
            source = f"connection {obj.definition['connection']} ({connection['type']}{': ' + where if where else ''})"
        found[tenant_plan.tenant] = (key, source)
    return found


BASE_REF_VARIABLE = "RECONCILER_BASE_REF"   # set by the pull request plan workflow: the base branch's commit


def _refuse_new_functions(workspace: Workspace, landscape: Landscape) -> None:
    """In a pull request's plan, a function the pull request itself adds to `allow_functions` is not yet
    allowed: the plan runs SQL on the tenants (its shadow proof), and the pull request is what is under
    review. GuardRefused naming them, before any tenant is read."""
    base = os.environ.get(BASE_REF_VARIABLE)
    if not base or not landscape.environment.allow_functions:
        return
    try:
        allowed = set(workspace.load(landscape.name, base).environment.allow_functions)
    except ReconcilerError:   # a base that does not hold a valid environment vouches for nothing
        allowed = set()
    added = sorted(set(landscape.environment.allow_functions) - allowed)
    if added:
        raise GuardRefused(f"this change allows {', '.join(added)} (allow_functions), which {BASE_REF_VARIABLE}={base} "
                           "does not: a pull request's plan never runs a function only the pull request allows; it is "
                           "planned after merge, on the protected branch; nothing was read")


__all__ = ["Workspace", "TenantState", "Planned", "plan_environment", "runnable", "WORKTREE"]
