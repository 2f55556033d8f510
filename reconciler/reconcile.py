"""The pipeline end to end: load -> validate -> render -> inspect -> diff -> plan -> apply.

Owns the sequence and the apply transaction protocol: lock, record the run as running,
re-check the tenant against the plan, run the row checks, back up what a change would lose,
run every statement, write the catalog, bind every view, conclude the audit record, commit;
on any failure roll back and record how the run ended. After a commit it re-plans and
requires an empty plan (the convergence check). The tenants of an environment are read and
applied concurrently. Planning here only reads; `apply_*` (and dry-run audit records,
backup pruning, unlock) alone write.
"""

from __future__ import annotations

import datetime as dt
import difflib
import getpass
import hashlib
import json
import os
import secrets as random
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import git

from . import faults, secrets
from . import plan as plans
from .cache import Cache
from .diff import diff, unmanaged, views_to_bind
from .errors import (
    ApplyFailed,
    GuardRefused,
    ReconcilerError,
    StalePlan,
    TenantError,
    TenantLocked,
    UsageProblem,
)
from .model import ObjectKey, Tenant
from .plan import Change, Plan, TenantPlan
from .render import render
from .source import WORKTREE, available_environments, head_commit, read_environment, resolve_commit
from .state import DesiredState, LiveState
from .tenants.base import (
    CATALOG_DDL,
    CATALOG_SCHEMA,
    CATALOG_VERSION,
    RUN_COLUMNS,
    Adapter,
    Session,
    StatementFailed,
    Unprovable,
    adapter_for,
)
from .validate import Landscape, load, validate


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

    def adapter(self, tenant: Tenant) -> Adapter:
        return adapter_for(tenant, self.repo, self.lock_timeout)

    def load(self, environment: str, ref: str | None = None, allow_empty: bool = False) -> Landscape:
        """One environment, read and validated once per command: at a ref, once per commit it names;
        in the working tree, once per set of file contents (git blob ids), so a command that
        checks files out reads them again but never validates the same files twice."""
        try:
            if ref is not None:
                key: tuple = (environment, ref, resolve_commit(self.repo, ref).hexsha, allow_empty)
                if key not in self._loaded:
                    self._loaded[key] = load(self.repo, environment, ref, self.cache, allow_empty)
                return self._loaded[key]
            source = read_environment(self.repo, environment, None, self.cache)
            environments = available_environments(self.repo, None)
            key = (environment, None, source.identity, tuple(environments), allow_empty)
            if key not in self._loaded:
                self._loaded[key] = validate(source, environments, self.cache, allow_empty)
            return self._loaded[key]
        finally:
            self.cache.flush()


@dataclass(frozen=True)
class TenantState:
    tenant: Tenant
    adapter: Adapter
    desired: DesiredState
    live: LiveState
    acknowledged: tuple[str, ...] = ()   # the environment's allow_data_loss


@dataclass(frozen=True)
class Planned:
    landscape: Landscape
    plan: Plan
    states: dict[str, TenantState]


@dataclass(frozen=True)
class TenantResult:
    tenant: str
    run_id: str | None
    outcome: str         # applied | no-changes | failed | refused (a guard) | locked (another run) | stale
    summary: dict[str, int]
    error: str | None = None
    exit_code: int = 0   # the code of the error that stopped this tenant


def plan_environment(workspace: Workspace, environment: str, ref: str | None = None,
                     tenants: Sequence[str] | None = None, resuming: bool = False, verify: bool = False) -> Planned:
    """Plan every tenant of an environment; reads tenants, never writes. With `verify`, every
    tenant's plan is proven on a shadow of it (`Adapter.prove`) and what the engine refuses is in
    the plan. An interrupted `rollback --execute` of the environment must be finished first
    (`resuming` is that finishing)."""
    intent = workspace.rollback_intent(environment)
    if not resuming and intent.exists():
        raise GuardRefused(f"a `reconciler rollback {environment} --execute` was interrupted (recorded in {intent}); "
                           "its tenants and git may disagree until it is finished: run "
                           f"`reconciler rollback {environment} --resume`")
    landscape = workspace.load(environment, ref)
    names = [t.name for t in landscape.environment.tenants]
    for name in tenants or ():
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1) or [n for n in names if n.lower() == name.lower()]
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageProblem(f"environment {environment} has no tenant {name}{hint}; its tenants: {', '.join(names)}")
    chosen = [t for t in landscape.environment.tenants if not tenants or t.name in tenants]
    untrusted = _moved_tenants(workspace, landscape, chosen)
    # rendering is pure and uses the (single-threaded) cache; reading tenants waits on databases
    desired = {tenant.name: render(landscape, tenant, workspace.cache) for tenant in chosen}
    workspace.cache.flush()

    def plan_one(tenant: Tenant) -> tuple[TenantState, TenantPlan]:
        if tenant.name in untrusted:
            raise TenantError(f"tenant {tenant.name}: this change gives it another url or password than "
                              f"{BASE_REF_VARIABLE}={untrusted[tenant.name]} has; the reconciler never sends a "
                              "tenant's password to a place a pull request names, so it is planned after merge, "
                              "on the protected branch")
        adapter = workspace.adapter(tenant)
        with adapter.reading() as reading:   # one connection: inspect, row counts, checks, then the proof
            live = reading.inspect()
            if not live.exists and not tenant.create:
                raise TenantError(f"tenant {tenant.name}: database {adapter.describe()} does not exist; "
                                  "declare `create: true` on the tenant to create it")
            state = TenantState(tenant, adapter, desired[tenant.name], live, landscape.environment.allow_data_loss)
            tenant_plan = plan_tenant(adapter, state.desired, live, reading, state.acknowledged)
            if verify and tenant_plan.changes:   # nothing to prove when nothing changes
                reads = {str(k): [str(d) for d in o.dependencies] for k, o in state.desired.objects.items()}
                reads.update({str(k): [str(d) for d in r.dependencies] for k, r in live.catalog.items()
                              if str(k) not in reads})
                try:
                    proof = adapter.prove_in(reading, [c for c in tenant_plan.changes if c.statements],
                                             views_to_bind(tenant_plan.changes, live, state.desired.engine), reads)
                    tenant_plan = tenant_plan.model_copy(update={"refused": tuple(proof)})
                except Unprovable as why:   # said in the plan; the apply's own transaction stays the proof
                    tenant_plan = tenant_plan.model_copy(update={"unproven": str(why)})
        return state, tenant_plan

    outcomes = _each_tenant(chosen, plan_one)
    for outcome in outcomes:   # the first failure, in tenant order, after every read has finished
        if isinstance(outcome, BaseException):
            raise outcome
    commit = landscape.source.commit or head_commit(workspace.repo)
    plan = Plan(environment=environment, ref=landscape.source.ref, commit=commit,
                tenants=tuple(tenant_plan for _, tenant_plan in outcomes))
    return Planned(landscape, plan, {state.tenant.name: state for state, _ in outcomes})


BASE_REF_VARIABLE = "RECONCILER_BASE_REF"   # set by the pull request plan workflow: the base branch's commit


def _moved_tenants(workspace: Workspace, landscape: Landscape, tenants: Sequence[Tenant]) -> dict[str, str]:
    """In a pull request's plan (RECONCILER_BASE_REF names the base), the tenants holding a password
    whose url or password reference differs from the base's: a pull request must not be able to send
    a tenant's password to a host it names. Tenant name -> the base ref."""
    base = os.environ.get(BASE_REF_VARIABLE)
    if not base or not any(t.password for t in tenants):
        return {}
    try:
        before = {t.name: (t.url, t.password) for t in workspace.load(landscape.name, base).environment.tenants}
    except ReconcilerError:   # a base that does not hold a valid environment vouches for nothing
        before = {}
    return {t.name: base for t in tenants if t.password and before.get(t.name) != (t.url, t.password)}


MAX_PARALLEL_TENANTS = 8
_STOP = threading.Event()   # set on Ctrl-C: every tenant's apply rolls back at its next statement


def _each_tenant(items: Sequence, work) -> list:
    """`work(item)` for every tenant at once, each on its own connection; results (or the
    exception raised) in the items' order. Ctrl-C stops them all, each rolling back."""
    if len(items) <= 1:
        return [_outcome(work, item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), MAX_PARALLEL_TENANTS)) as pool:
        futures = [pool.submit(_outcome, work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            _STOP.set()
            while True:   # a second Ctrl-C must not let a tenant go on (and commit) before it stopped
                try:
                    wait(futures)
                    break
                except KeyboardInterrupt:
                    continue
            raise
        finally:
            _STOP.clear()


def _outcome(work, item):
    try:
        return work(item)
    except Exception as error:  # noqa: BLE001 - handed back to the caller, which decides
        return error


class Reader(Protocol):
    """Where a plan counts rows: a plan's read session or an apply's locked session."""

    def count(self, query: str) -> int: ...

    def count_rows(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, int]: ...


def plan_tenant(adapter: Adapter, desired: DesiredState, live: LiveState, reader: Reader,
                acknowledged: Sequence[str] = ()) -> TenantPlan:
    changes = diff(desired, live, adapter.pinned)
    at_risk = [c.key for c in changes if c.data_loss and c.kind == "Table"]
    rows = reader.count_rows([live.find(k) or k for k in at_risk])
    changes = [c.model_copy(update={"rows": rows.get(live.find(c.key) or c.key)}) if c.key in at_risk else c
               for c in changes]
    ordered = plans.order(changes, desired, live)
    tenant_plan = TenantPlan(
        tenant=desired.tenant, engine=adapter.engine, capacity=desired.capacity,
        changes=tuple(_checked(reader, c) for c in adapter.compile(ordered, desired, live)),
        unmanaged=tuple(unmanaged(desired, live)), live_fingerprint=live.fingerprint,
        desired_fingerprint=desired.fingerprint, create_database=not live.exists, interrupted=live.interrupted)
    return _acknowledge(tenant_plan, acknowledged)


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
                            f"desired and live state give now ({_first_difference(now, tenant_plan)}); "
                            "nothing was applied; plan again")


Progress = Callable[[str, Change], None]   # (tenant, change) after each change's statements ran


def apply_environment(workspace: Workspace, planned: Planned, plan: Plan, allow_data_loss: Sequence[str] = (),
                      actor: str | None = None, operation: str = "apply", progress: Progress | None = None,
                      moved: str = "refuse", claim: Plan | None = None) -> list[TenantResult]:
    """Apply each tenant's plan in its own transaction; one tenant's failure spares the others.
    `moved` says what happens when a tenant's plan made under its lock is not `plan`'s (see apply_tenant);
    `claim` is a saved plan that must be exactly `plan`. Guards speak first: rows in the way are
    worth more to a user than "the plan is stale"."""
    problems = plans.violations(plan, allow_data_loss)
    if problems:
        raise GuardRefused("refused:\n  " + "\n  ".join(problems))
    if claim is not None:
        check_saved_plan(claim, planned)
    _require_variables(planned, plan)
    actor = actor or current_actor(workspace.repo)

    def apply_one(tenant_plan: TenantPlan) -> TenantResult:
        try:
            return apply_tenant(planned.states[tenant_plan.tenant], tenant_plan, plan, actor, operation, progress,
                                moved, allow_data_loss)
        except ReconcilerError as error:
            outcome = ("refused" if isinstance(error, GuardRefused) else
                       "locked" if isinstance(error, TenantLocked) else
                       "stale" if isinstance(error, StalePlan) else "failed")
            return TenantResult(tenant_plan.tenant, None, outcome, tenant_plan.summary, str(error), error.exit_code)

    results = _each_tenant(plan.tenants, apply_one)
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
        names += secrets.references(state.tenant.password)
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
                 extra: Sequence[Change] = ()) -> TenantResult:
    """Apply one tenant in one transaction. What runs is never `expected` as given: the tenant is
    planned again under its lock, inside the transaction (with every table the plan changes locked
    against other writers), and that plan runs. When it differs from `expected`, `moved="refuse"`
    stops (a saved, reviewed or confirmed plan: exit 5) and `moved="follow"` runs the new plan once
    the guards pass it (another run got there first). `extra` changes (a restore's) run after it.
    The convergence check (a new plan must be empty) runs before commit."""
    run = _Run(new_run_id(), plan, expected, actor, operation)
    run.progress = progress
    adapter = state.adapter
    with adapter.session(create=state.tenant.create, holder={"run_id": run.run_id, "actor": actor}) as session:
        run.start(session)   # committed on its own: if this process dies, the next run sees it
        session.begin()
        changes: tuple[Change, ...] = ()
        try:
            live, tenant_plan = _plan_locked(session, state)
            if not _same_plan(tenant_plan, expected):
                problems = plans.violations(plan.model_copy(update={"tenants": (tenant_plan,)}), allow_data_loss)
                if problems:
                    raise GuardRefused("refused (planned again under the tenant lock):\n  "
                                       + "\n  ".join(problems) + "\n  nothing was changed")
                if moved == "refuse":
                    raise StalePlan(f"tenant {expected.tenant}: the tenant changed between plan and apply "
                                    f"({_first_difference(tenant_plan, expected)}); nothing was applied; "
                                    "plan again")
            run.tenant_plan = tenant_plan
            changes = (*tenant_plan.changes, *extra)
            _execute(session, adapter, live, changes, run)
            _write_catalog(session, tenant_plan.changes, state.desired, run)
            session.check_views(views_to_bind(changes, live, state.desired.engine))
            remaining = diff(state.desired, session.inspect())
            if remaining:
                raise NotConverged(", ".join(f"{c.action} {c.object} ({c.reason})" for c in remaining[:5]))
            session.execute(f"UPDATE {CATALOG_SCHEMA}.runs SET outcome = 'interrupted' "
                            "WHERE outcome = 'running' AND run_id <> ?", [run.run_id])
            run.finish(session, "applied" if changes else "no-changes")
            session.commit()
        except (GuardRefused, StalePlan) as refused:
            session.rollback()
            run.conclude(session, "refused" if isinstance(refused, GuardRefused) else "stale", str(refused))
            raise
        except NotConverged as left:
            session.rollback()
            message = (f"tenant {expected.tenant}: after the statements a new plan was not empty: {left}; "
                       "the tenant was rolled back; nothing changed (this is a reconciler bug, please report it)")
            run.conclude(session, "failed", message)
            raise ApplyFailed(message) from None
        except StatementFailed as failure:
            session.rollback()
            change = next((c for c in changes if failure.statement in c.statements), None)
            subject = (f"{change.kind} {change.object}" if change else
                       "views" if failure.statement.startswith("SELECT * FROM") else "catalog")
            message = (f"tenant {expected.tenant}: {subject}: apply failed: {failure.message}\n"
                       f"  statement: {failure.statement}\n  the tenant was rolled back; nothing changed")
            run.conclude(session, "failed", message)
            raise ApplyFailed(message) from None
        except BaseException as stopped:   # KeyboardInterrupt, SystemExit, a bug: roll back, say so
            session.rollback()
            run.conclude(session, "interrupted", f"stopped by {type(stopped).__name__}; rolled back")
            raise
    return TenantResult(expected.tenant, run.run_id, run.outcome, tenant_plan.summary)


class NotConverged(Exception):
    """Inside apply: the statements ran but a new plan still has changes (never committed)."""


def _plan_locked(session: Session, state: TenantState) -> tuple[LiveState, TenantPlan]:
    """The tenant's plan read inside the apply transaction, after locking every live table it changes
    (planned again whenever locking found more tables, so the final plan saw only locked rows)."""
    locked: set[ObjectKey] = set()
    while True:
        live = session.inspect()
        tenant_plan = plan_tenant(state.adapter, state.desired, live, session, state.acknowledged)
        tables = sorted(set(_changed_tables(tenant_plan.changes, live)) - locked)
        statements = state.adapter.lock_statements(tables)
        if not statements:
            return live, tenant_plan
        for statement in statements:
            session.execute(statement)
        locked |= set(tables)


def _changed_tables(changes: Sequence[Change], live: LiveState) -> list[ObjectKey]:
    """The live tables a plan alters, rebuilds, renames or drops."""
    names = [c.renamed_from or c.object for c in changes if not c.catalog_only and c.action != "create"]
    keys = (live.find(ObjectKey.parse(name)) for name in names)
    return [key for key in keys if key in live.objects and live.objects[key].kind == "Table"]


def _same_plan(now: TenantPlan, expected: TenantPlan) -> bool:
    return (now.changes, now.live_fingerprint, now.desired_fingerprint) == \
        (expected.changes, expected.live_fingerprint, expected.desired_fingerprint)


def _first_difference(now: TenantPlan, expected: TenantPlan) -> str:
    changed = [c for c in (*now.changes, *expected.changes) if c not in now.changes or c not in expected.changes]
    if changed:
        return f"first difference: {changed[0].action} {changed[0].object}"
    return "its objects moved" if now.live_fingerprint != expected.live_fingerprint else "the folder moved"


def _execute(session: Session, adapter: Adapter, live: LiveState, changes: Sequence[Change], run: _Run) -> None:
    fault = faults.Fault.from_environment(run.tenant_plan.tenant, _STOP)
    for statement in CATALOG_DDL:
        session.execute(statement)
    for change in changes:
        table = live.find(change.key)
        statements = list(change.statements)
        if change.data_loss and table in live.objects and live.objects[table].kind == "Table":
            statements[:0] = adapter.backup_statements(table, backup_name(table, run.run_id), run.run_id,
                                                       run.started)
        for statement in statements:
            if _STOP.is_set():
                raise KeyboardInterrupt
            session.execute(statement)
            fault.tick()
        if run.progress is not None:
            run.progress(run.tenant_plan.tenant, change)




def backup_name(table: ObjectKey, run_id: str) -> str:
    """`schema.table@run`, shortened with a hash past 63 characters (PostgreSQL's limit)."""
    name = f"{table.schema}.{table.name}@{run_id}"
    if len(name) <= 63:
        return name
    return f"{name[:46]}~{hashlib.sha256(name.encode()).hexdigest()[:16]}"


def _write_catalog(session: Session, changes: Sequence[Change], desired: DesiredState, run: _Run) -> None:
    gone = [c.key for c in changes] + [ObjectKey.parse(c.renamed_from) for c in changes if c.renamed_from]
    written = [desired.objects[c.key] for c in changes if c.action != "delete"]
    engine_sql = session.engine_sql([o.key for o in written if o.kind == "View"])
    for start in range(0, len(gone), 500):   # folded as the engine and every match compare names
        batch = [key.folded() for key in gone[start:start + 500]]
        session.execute(f"DELETE FROM {CATALOG_SCHEMA}.objects WHERE (lower(schema_name), lower(name)) IN "
                        f"({', '.join(['(?, ?)'] * len(batch))})",
                        [part for key in batch for part in key])
    rows = [(o.key.schema, o.key.name, o.kind, o.content_hash, json.dumps(o.definition, sort_keys=True),
             json.dumps([str(d) for d in o.dependencies]), engine_sql.get(o.key), run.plan.commit,
             run.run_id, run.started) for o in written]
    if rows:
        session.executemany(f"INSERT INTO {CATALOG_SCHEMA}.objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    session.execute(f"DELETE FROM {CATALOG_SCHEMA}.meta WHERE key IN ('catalog_version', 'capacity')")
    session.execute(f"INSERT INTO {CATALOG_SCHEMA}.meta VALUES ('catalog_version', ?), ('capacity', ?)",
                    [CATALOG_VERSION, desired.capacity])


class _Run:
    """One run's audit row: inserted as 'running' before the transaction, concluded inside it."""

    def __init__(self, run_id: str, plan: Plan, tenant_plan: TenantPlan, actor: str, operation: str):
        self.run_id, self.plan, self.tenant_plan, self.actor = run_id, plan, tenant_plan, actor
        self.operation = operation
        self.progress: Progress | None = None
        self.started = _now()
        self.outcome = "running"

    def record(self, session: Session, outcome: str, error: str | None = None, dry_run: bool = False) -> None:
        self.outcome = outcome
        values = [self.run_id, self.plan.environment, self.tenant_plan.tenant, self.plan.ref, self.plan.commit,
                  self.actor, socket.gethostname(), os.getpid(), self.started,
                  None if outcome == "running" else _now(), outcome, dry_run,
                  json.dumps(self.tenant_plan.summary), error, self.plan.fingerprint, self.tenant_plan.capacity,
                  self.operation]
        session.execute(f"INSERT INTO {CATALOG_SCHEMA}.runs ({', '.join(RUN_COLUMNS)}) "
                        f"VALUES ({', '.join(['?'] * len(RUN_COLUMNS))})", values)

    def start(self, session: Session) -> None:
        session.begin()
        try:
            for statement in CATALOG_DDL:
                session.execute(statement)
            self.record(session, "running")
            session.commit()
        except BaseException:
            session.rollback()
            raise

    def finish(self, session: Session, outcome: str, error: str | None = None) -> None:
        self.outcome = outcome
        session.execute(f"UPDATE {CATALOG_SCHEMA}.runs SET outcome = ?, ended_at = ?, error = ?, summary = ? "
                        "WHERE run_id = ?", [outcome, _now(), error, json.dumps(self.tenant_plan.summary), self.run_id])

    def conclude(self, session: Session, outcome: str, error: str) -> None:
        """After a rollback: record how the run ended, in a transaction of its own (best effort)."""
        try:
            session.begin()
            self.finish(session, outcome, error)
            session.commit()
        except Exception:  # noqa: BLE001 - the original error is what the user needs
            session.rollback()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def record_dry_run(state: TenantState, tenant_plan: TenantPlan, plan: Plan, operation: str,
                   actor: str) -> str | None:
    """Audit a dry run in the tenant (its only write); a tenant that does not exist is left alone."""
    if not state.adapter.exists:
        return None
    run = _Run(new_run_id(), plan, tenant_plan, actor, operation)
    with state.adapter.session(create=False) as session:
        session.begin()
        try:
            for statement in CATALOG_DDL:
                session.execute(statement)
            run.record(session, "dry-run", dry_run=True)
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return run.run_id


def release(adapter: Adapter, run_id: str) -> None:
    """Conclude a dead run's audit row as interrupted. Opening the tenant for writing proves the
    run's process is gone: the engine's lock dies with it (a live holder raises TenantLocked)."""
    with adapter.session(create=False) as session:
        session.begin()
        try:
            session.execute(f"UPDATE {CATALOG_SCHEMA}.runs SET outcome = 'interrupted', ended_at = ?, "
                            "error = 'released by reconciler unlock' WHERE run_id = ? AND outcome = 'running'",
                            [_now(), run_id])
            session.commit()
        except BaseException:
            session.rollback()
            raise


def drop_backups(adapter: Adapter, names: Sequence[str]) -> None:
    """Drop backups and their catalog rows, in one transaction."""
    with adapter.session(create=False) as session:
        session.begin()
        try:
            for name in names:
                for statement in adapter.drop_backup_statements(name):
                    session.execute(statement)
            session.commit()
        except BaseException:
            session.rollback()
            raise


def new_run_id() -> str:
    now = dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{random.token_hex(3)}"


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


__all__ = ["Workspace", "plan_environment", "apply_environment", "check_saved_plan", "WORKTREE"]
