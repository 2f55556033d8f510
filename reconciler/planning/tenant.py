"""Planning one tenant: desired and live state in, an ordered, checked, fingerprinted plan out.

Owns diffing, the row counts a plan needs (`Questions`), folding their answers (`Counts`) into
the plan, compiling the changes through the engine's `Compiler`, the change `reconciler restore`
makes (`Restoring`: it asks which columns the backup holds), and comparing a saved plan with what
planning gives now. Pure: planning reads nothing itself. It asks in two rounds: the diff
(`draft`) asks the rows of the tables a change would lose or rebuild and what a MaterializedTable's
query gives, which decide what the changes compile to (`Draft.compile`), whose row checks are
asked next (`Compiled.plan`). The caller answers each round through its read session
(`Questions.answer`; `plan_through`: a plan's read session, or an apply's locked one). Never
writes, never opens a connection, never imports an engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .. import plan as plans
from ..desired import checks
from ..errors import StalePlan
from ..model import ObjectKey
from ..plan import Change, Compiler, Plan, Replace, TenantPlan, Update
from ..sessions import StatementFailed
from ..state import DesiredState, LiveState
from .diff import diff, unmanaged


class Reader(Protocol):
    """Where a plan's counts are read: a plan's read session or an apply's locked session."""

    def count(self, query: str) -> int: ...

    def count_rows(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, int]: ...

    def backup_columns(self, backup: str) -> list[str]: ...


@dataclass(frozen=True)
class Counts:
    """The answers to a plan's `Questions`, as the tenant gave them."""

    tables: Mapping[ObjectKey, int] = field(default_factory=dict)
    queries: Mapping[str, int | str] = field(default_factory=dict)   # a string: the engine's refusal
    checks: Mapping[str, int] = field(default_factory=dict)
    backups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)   # each backup's columns, in order


@dataclass(frozen=True)
class Questions:
    """The row counts one tenant's plan needs, in the order they are read."""

    tables: tuple[ObjectKey, ...] = ()   # live tables whose rows it states: what a change loses, what is rebuilt
    queries: tuple[str, ...] = ()        # what a MaterializedTable's query gives; the engine may refuse one
    checks: tuple[str, ...] = ()         # row checks: a count other than zero blocks its change
    backups: tuple[str, ...] = ()        # backups whose rows a restore puts back: which columns they hold

    def answer(self, reader: Reader) -> Counts:
        """The counts, read through `reader`. A query the engine refuses is an answer (the plan says why its
        MaterializedTable is blocked); a table or a row check it refuses is raised (StatementFailed)."""
        tables = reader.count_rows(list(self.tables))
        queries: dict[str, int | str] = {}
        for query in self.queries:
            try:
                queries[query] = reader.count(query)
            except StatementFailed as failure:
                queries[query] = failure.message
        return Counts(tables, queries, {query: reader.count(query) for query in self.checks},
                      {backup: tuple(reader.backup_columns(backup)) for backup in self.backups})


@dataclass(frozen=True)
class _Rebuilt:
    """A MaterializedTable built or rebuilt: what the plan says of its rows, and what that needs counted."""

    now: ObjectKey | None   # the live table it replaces, whose rows it holds now
    query: str | None       # counts what its query gives on the tenant as it is; None: counted at apply
    later: str = ""         # why its query is counted at apply


@dataclass(frozen=True)
class Draft:
    """One tenant's changes as diffed, and the counts that decide what they compile to (round one)."""

    compiler: Compiler
    desired: DesiredState
    live: LiveState
    changes: tuple[Change, ...]   # unordered, uncounted
    rebuilt: Mapping[ObjectKey, _Rebuilt]   # each MaterializedTable built or rebuilt: what is said of its rows
    questions: Questions          # the rows of the tables they name, what a MaterializedTable's query gives

    def compile(self, counts: Counts) -> Compiled:
        """The changes with the rows they would lose and what a MaterializedTable holds and gives, as
        `counts` answers (a query the engine refuses blocks its MaterializedTable), in order, compiled for
        the engine; asking for their row checks."""
        changes = [self._counted(c, counts) for c in self.changes]
        compiled = tuple(self.compiler.compile(plans.order(changes, self.desired, self.live), self.desired, self.live))
        return Compiled(self, compiled, Questions(checks=tuple(dict.fromkeys(
            check.query for change in compiled for check in change.checks))))


    def _counted(self, change: Change, counts: Counts) -> Change:
        """The change with the rows it would lose, or copy, or what a MaterializedTable holds and gives."""
        if change.data_loss and change.kind == "Table":
            return change.model_copy(update={"rows": counts.tables.get(_counted(change, self.live))})
        if _copies(change, self.live):
            return _copied_rows(change, counts.tables[_counted(change, self.live)])
        return _materialized_rows(change, self.rebuilt.get(change.key), counts)


@dataclass(frozen=True)
class Compiled:
    """One tenant's changes in order, compiled, and their row checks to count (round two)."""

    drafted: Draft
    changes: tuple[Change, ...]
    questions: Questions

    def plan(self, counts: Counts, acknowledged: Sequence[str] = ()) -> TenantPlan:
        """The plan, a change whose row check `counts` finds rows for blocked; data-loss changes the
        environment acknowledges (`allow_data_loss`) marked so."""
        desired, live = self.drafted.desired, self.drafted.live
        changes = tuple(_checked(c, counts) for c in self.changes)
        tenant_plan = TenantPlan(
            tenant=desired.tenant, engine=self.drafted.compiler.engine, capacity=desired.capacity, changes=changes,
            unmanaged=tuple(unmanaged(desired, live)), live_fingerprint=live.fingerprint,
            desired_fingerprint=desired.fingerprint, create_database=not live.exists, interrupted=live.interrupted,
            checks=tuple(f"{obj.key} ({len(obj.checks)})" for obj in checks.affected(changes, desired)))
        return _acknowledge(tenant_plan, acknowledged)


def draft(compiler: Compiler, desired: DesiredState, live: LiveState, under_review: bool = False) -> Draft:
    """The changes that make `live` equal `desired`, asking the live tables a change would lose rows of,
    a MaterializedTable's rows now and what its query gives (unless `under_review`: a pull request's plan
    never runs the folder's SQL on the tenant's rows)."""
    changes = tuple(diff(desired, live, compiler.pinned))
    changes = tuple(_rebuild(c, compiler.engine) if c.action == "update" and c.kind == "Table" and
                    compiler.rebuilds(c, desired.objects.get(c.key), live.object(c.live_key)) else c for c in changes)
    changed = {c.key for c in changes}
    rebuilt = {c.key: r for c in changes if (r := _rebuilt(c, changed, desired, live, under_review)) is not None}
    tables = [_counted(c, live) for c in changes if (c.data_loss and c.kind == "Table") or _copies(c, live)]
    tables += [r.now for r in rebuilt.values() if r.now is not None]
    queries = [r.query for r in rebuilt.values() if r.query is not None]
    return Draft(compiler, desired, live, changes, rebuilt,
                 Questions(tuple(dict.fromkeys(tables)), tuple(dict.fromkeys(queries))))


def plan_tenant(drafted: Draft, counts: Counts, acknowledged: Sequence[str] = ()) -> TenantPlan:
    """The plan of the drafted changes, `counts` answering the questions of both rounds."""
    return drafted.compile(counts).plan(counts, acknowledged)


def plan_through(reader: Reader, compiler: Compiler, desired: DesiredState, live: LiveState,
                 acknowledged: Sequence[str] = (), under_review: bool = False) -> TenantPlan:
    """The plan, each round's questions answered through `reader` (a plan's read session, or an apply's
    locked one)."""
    drafted = draft(compiler, desired, live, under_review)
    compiled = drafted.compile(drafted.questions.answer(reader))
    return compiled.plan(compiled.questions.answer(reader), acknowledged)


def _rebuilt(change: Change, changed: set[ObjectKey], desired: DesiredState, live: LiveState,
             under_review: bool) -> _Rebuilt | None:
    """A MaterializedTable built or rebuilt says how many rows it holds now and how many its query gives on
    the tenant as it is: counted now where nothing it reads changes in this plan and the plan is not a pull
    request's, else at apply. None for any other change."""
    if change.kind != "MaterializedTable" or change.action not in ("create", "replace") \
            or change.catalog_only or change.conflict:
        return None
    want = desired.objects.get(change.key)
    if want is None:
        return None
    found = live.object(change.key)
    now = found.key if found is not None and found.kind == "Table" else None
    if under_review:
        return _Rebuilt(now, None, "a pull request's plan never runs it on the tenant")
    if set(want.dependencies) & changed:
        return _Rebuilt(now, None, "what it reads changes in this plan")
    return _Rebuilt(now, f"SELECT count(*) FROM ({want.sql}) AS q")


def _materialized_rows(change: Change, rebuilt: _Rebuilt | None, counts: Counts) -> Change:
    """The reason of a MaterializedTable built or rebuilt, with its rows now and what its query gives; a
    query the engine refuses on those rows blocks the change, saying why."""
    if rebuilt is None:
        return change
    now = f"{plans.row_count(counts.tables[rebuilt.now])} now, " if rebuilt.now is not None else ""
    if rebuilt.query is None:
        after = f"its query's rows are counted at apply ({rebuilt.later})"
    elif isinstance(answer := counts.queries[rebuilt.query], str):
        return change.model_copy(update={"conflict": True, "reason": (
            f"{change.reason}; blocked: its query fails on the tenant's rows: {answer}")})
    else:
        after = f"{plans.row_count(answer)} from its query"
    return change.model_copy(update={"reason": f"{change.reason}; {now}{after}"})


def _rebuild(change: Change, engine: str) -> Change:
    """An update of a table the engine cannot make in place is a rebuild (its rows copied into a new
    table swapped in): planned, and said, as one."""
    return Replace(**{**dict(change), "action": "replace", "risk": "high" if change.risk == "high" else "medium",
                      "reason": f"{change.reason}; {engine} cannot alter this in place: the table is rebuilt and "
                                "its rows copied"})


def _counted(change: Change, live: LiveState) -> ObjectKey:
    """The live table whose rows a table change states: the one it renames, if it renames one."""
    return live.find(change.live_key) or change.live_key


def _copies(change: Change, live: LiveState) -> bool:
    """A table rebuilt from the live table without losing data: its rows are copied."""
    found = live.object(change.live_key)
    return change.kind == "Table" and change.action == "replace" and not change.data_loss \
        and found is not None and found.kind == "Table"


def _copied_rows(change: Change, rows: int) -> Change:
    """A rebuild that loses nothing says how many rows it copies, in its reason only: the count is the
    tenant's at plan time, for people, and another writer's rows since change no approved plan (a
    change that loses data carries its rows, which any apply must match)."""
    return change.model_copy(update={"reason": f"{change.reason} ({plans.row_count(rows)} now)"})


def _checked(change: Change, counts: Counts) -> Change:
    """A non-zero count of a row check blocks its change, with the count in the reason."""
    failing = [(check, count) for check in change.checks if (count := counts.checks[check.query])]
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


@dataclass(frozen=True)
class Restoring:
    """`reconciler restore`: a backup's rows brought back into the live table it was taken of."""

    table: ObjectKey   # as the tenant has it
    backup: str

    @property
    def questions(self) -> Questions:
        return Questions(backups=(self.backup,))

    def change(self, compiler: Compiler, live: LiveState, counts: Counts) -> Change:
        """The change that replaces the table's rows with the backup's, for the columns both have: data
        it loses on purpose, so acknowledged (the rows it replaces are backed up first, as any)."""
        kept = set(counts.backups[self.backup])
        columns = [c.name for c in live.objects[self.table].columns if c.name in kept]
        return Update(kind="Table", object=str(self.table), risk="high", data_loss=True, acknowledged=True,
                      reason=f"restore rows from backup {self.backup} (the current rows are backed up first)",
                      statements=tuple(compiler.restore_statements(self.table, self.backup, columns)))


def restore_through(reader: Reader, compiler: Compiler, live: LiveState, restoring: Restoring) -> Change:
    """The restore's change, its question answered through `reader` (an apply's locked session)."""
    return restoring.change(compiler, live, restoring.questions.answer(reader))


def check_saved_plan(saved: Plan, current: Plan) -> None:
    """A saved plan is applied only to exactly what it was made from; say what moved."""
    if saved.environment != current.environment:
        raise StalePlan(f"the plan was made for environment {saved.environment}, "
                        f"not {current.environment}")
    if saved.commit != current.commit:
        raise StalePlan(f"the plan was made at commit {(saved.commit or 'none')[:12]}, the folder is now at "
                        f"{(current.commit or 'none')[:12]}; plan again")
    for tenant_plan in saved.tenants:
        now = current.tenant(tenant_plan.tenant)
        if now is None:
            raise StalePlan(f"the plan names tenant {tenant_plan.tenant}, which environment "
                            f"{saved.environment} no longer has")
        if now.desired_fingerprint != tenant_plan.desired_fingerprint:
            raise StalePlan(f"tenant {tenant_plan.tenant}: the desired state moved since the plan was "
                            f"made (ref {saved.ref}, commit {(saved.commit or '?')[:12]}); plan again")
        if now.live_fingerprint != tenant_plan.live_fingerprint:
            raise StalePlan(f"tenant {tenant_plan.tenant}: the tenant changed since the plan was made; "
                            "plan again")
        if _unexplained(now) != _unexplained(tenant_plan):   # the file is a claim about this plan, never a program
            raise StalePlan(f"tenant {tenant_plan.tenant}: the plan file says something other than what the "
                            f"desired and live state give now ({first_difference(now, tenant_plan)}); "
                            "nothing was applied; plan again")


def same_plan(now: TenantPlan, expected: TenantPlan) -> bool:
    """The same changes (their reasons, which are for people, aside: a count said there moves with every
    writer) of the same states."""
    return (_unexplained(now), now.live_fingerprint, now.desired_fingerprint) == \
        (_unexplained(expected), expected.live_fingerprint, expected.desired_fingerprint)


def _unexplained(tenant_plan: TenantPlan) -> tuple[Change, ...]:
    return tuple(c.model_copy(update={"reason": ""}) for c in tenant_plan.changes)


def first_difference(now: TenantPlan, expected: TenantPlan) -> str:
    mine, theirs = _unexplained(now), _unexplained(expected)
    changed = [c for c in (*mine, *theirs) if c not in mine or c not in theirs]
    if changed:
        return f"first difference: {changed[0].action} {changed[0].object}"
    return "its objects moved" if now.live_fingerprint != expected.live_fingerprint else "the folder moved"
