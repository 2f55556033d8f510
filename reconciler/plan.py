"""The plan: an immutable, ordered, fingerprinted list of changes per tenant.

Owns the change vocabulary (`Create`, `Update`, `Replace`, `Delete`: each holds only what its
action can have, with a risk and a reason for people that nothing decides on; all four are written
as one flat record), the execution order, the guard pass and the stable JSON form.
Order contract: creates, updates and replaces in dependency order (graph.order), deletes
in the reverse order of the live dependencies, all deletes first. Also what planning asks of a
tenant's engine (`Compiler`), named here so that planning never imports an engine. Never
executes SQL.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Annotated, Any, Literal, Protocol

import networkx as nx
from pydantic import BaseModel, ConfigDict, Field

from . import graph as graphs
from .model import ObjectKey
from .state import DesiredState, LiveObject, LiveState, ObjectState

FORMAT_VERSION = 1
ACTIONS = ("create", "update", "replace", "delete")
COLUMN_ATTRIBUTES = ("type", "nullable", "default", "comment")
Action = Literal["create", "update", "replace", "delete"]
Risk = Literal["low", "medium", "high"]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Detail(_Value):
    """One field that differs: `columns.region.type`, `sql`, `properties.host`, ..."""

    field: str
    op: Literal["add", "drop", "change", "rename"]
    before: Any = None
    after: Any = None

    @property
    def column(self) -> str | None:
        """The column a `columns.NAME` or `columns.NAME.ATTRIBUTE` detail is about; None for any
        other field. The one place a field's path is read."""
        if not self.field.startswith("columns."):
            return None
        name = self.field[len("columns."):]
        head, _, tail = name.rpartition(".")
        return head if head and tail in COLUMN_ATTRIBUTES else name

    @property
    def attribute(self) -> str | None:
        """`type`, `nullable` or `default` for a detail about one attribute of a column; None for a
        whole column (added, dropped, renamed) and for any other field."""
        column = self.column
        return None if column is None or self.field == f"columns.{column}" else self.field.rsplit(".", 1)[1]

    @property
    def whole_column(self) -> bool:
        """A column added, dropped or renamed (not one of its attributes)."""
        return self.column is not None and self.attribute is None


class Check(_Value):
    """A query counting the rows that would make a change fail or lose data; must return 0.
    Run at plan time and again inside the apply transaction, just before the change."""

    query: str
    problem: str        # what the counted rows are, e.g. "rows with NULL in email"


class Impact(_Value):
    """A column the change alters, and what reads it: the views and data flows that refer to it, then,
    where a reader gives the column on under the same name, what reads that (transitively)."""

    column: str
    change: str                   # "type DECIMAL(18, 2) -> DOUBLE", "renamed from amount"
    read_by: tuple[str, ...]      # schema.name of each reader, nearest first


class _Change(_Value):
    """What every change has, in the plan format's order (every change is written as the same record).
    A field its action cannot have is typed to the one value it then has (a create's `data_loss` is
    `Literal[False]`), so that a record holding another is no change. `reason` is for people only:
    nothing decides on its words, and a plan under review is approved without it (`Plan.review_hash`)."""

    action: Action
    kind: str
    object: str
    risk: Risk
    reason: str
    details: tuple[Detail, ...] = ()
    statements: tuple[str, ...] = ()
    checks: tuple[Check, ...] = ()
    data_loss: bool = False
    rows: int | None = None           # what a table that loses data, or is rebuilt, holds now
    conflict: bool = False            # blocked: an unmanaged object in the way, a row check that counts rows
    catalog_only: bool = False        # adoption or a kind the engine has no object for: no statements
    drift: bool = False               # undoes a change made to the tenant outside the reconciler
    acknowledged: bool = False        # data loss accepted in review (the environment's allow_data_loss)
    renamed_from: str | None = None   # the live table this one was called before (renamed in place)
    impact: tuple[Impact, ...] = ()   # the columns it alters that something reads (column-level lineage)

    @property
    def key(self) -> ObjectKey:
        return ObjectKey.parse(self.object)

    @property
    def live_key(self) -> ObjectKey:
        """The identity the tenant has now: the former one of a renamed table."""
        return ObjectKey.parse(self.renamed_from or self.object)


class Create(_Change):
    """An object the tenant does not have (or lost: `drift`): it loses no data, has no field details and
    alters no column something reads."""

    action: Literal["create"] = "create"
    details: tuple[()] = ()
    data_loss: Literal[False] = False
    rows: None = None
    acknowledged: Literal[False] = False
    renamed_from: None = None
    impact: tuple[()] = ()


class Update(_Change):
    """An object changed in place: altered, redefined, renamed, or recorded (`catalog_only`)."""

    action: Literal["update"] = "update"


class Replace(_Change):
    """An object dropped and created again, or a table rebuilt (copied into a new one and swapped in,
    `rows` copied): also what puts back a table altered by hand that the engine cannot alter back in
    place (`drift`)."""

    action: Literal["replace"] = "replace"


class Delete(_Change):
    """An object removed from the folder: dropped from the tenant and the catalog. It has no field details,
    undoes no drift, renames nothing and alters no column something reads."""

    action: Literal["delete"] = "delete"
    details: tuple[()] = ()
    drift: Literal[False] = False
    renamed_from: None = None
    impact: tuple[()] = ()


Change = Annotated[Create | Update | Replace | Delete, Field(discriminator="action")]
CHANGES: dict[str, type[Create | Update | Replace | Delete]] = {
    "create": Create, "update": Update, "replace": Replace, "delete": Delete}


class Refusal(_Value):
    """A statement the engine refused when the plan was proven on a shadow of the tenant: what merging
    would fail on. `object` is the change's object (or the view a bind check found broken)."""

    object: str
    statement: str
    message: str


class TenantPlan(_Value):
    tenant: str
    engine: str
    capacity: str | None = None
    changes: tuple[Change, ...]
    unmanaged: tuple[str, ...] = ()
    live_fingerprint: str
    desired_fingerprint: str
    create_database: bool = False
    interrupted: tuple[str, ...] = ()   # earlier runs that died mid-apply; the tenant kept its state
    refused: tuple[Refusal, ...] = ()   # statements a shadow of the tenant refused (the plan was proven)
    unproven: str | None = None          # how and why (part of) the plan could not be proven: read-only credentials,
    #                                      or statements EXPLAIN cannot see the effect of earlier ones on (Spark)
    checks: tuple[str, ...] = ()         # the objects whose data checks its apply runs before commit: "schema.name (3)"

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(change.action for change in self.changes)
        return {action: counts.get(action, 0) for action in ACTIONS}


class Compiler(Protocol):
    """What planning asks of a tenant's engine, none of it connecting to anything: its name, what it
    will not alter under a view that reads it, each change's statements and row checks, and how a
    backup's rows are put back. An
    adapter (`engines.contract.Adapter`) is one; planning is handed it as a value."""

    engine: str

    def pinned(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> frozenset[str] | None:
        """The columns (lower case) of the changed object whose readers must be dropped first and
        created again; None for every reader (`planning.diff.Pins`)."""

    def compile(self, changes: Sequence[Change], desired: DesiredState, live: LiveState) -> list[Change]:
        """The same changes, in order, each carrying the statements that carry it out and its row checks."""

    def rebuilds(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> bool:
        """Whether the change copies the table into a new one and swaps it in (the engine cannot alter it
        in place)."""

    def restore_statements(self, table: ObjectKey, backup: str, columns: Sequence[str]) -> list[str]:
        """What replaces the rows of `table` with those of `backup` (a table the catalog's backups
        hold), for `columns`."""


class Plan(_Value):
    format_version: int = FORMAT_VERSION
    environment: str
    ref: str
    commit: str | None
    tenants: tuple[TenantPlan, ...]

    @property
    def summary(self) -> dict[str, int]:
        total: Counter = Counter()
        for tenant in self.tenants:
            total.update(tenant.summary)
        return {action: total.get(action, 0) for action in ACTIONS}

    @property
    def has_changes(self) -> bool:
        return any(tenant.changes for tenant in self.tenants)

    @property
    def refused(self) -> bool:
        """Whether proving the plan on a shadow found a statement the engine refuses."""
        return any(tenant.refused for tenant in self.tenants)

    def to_dict(self) -> dict:
        data = self.model_dump(mode="json")
        data["summary"] = self.summary
        for tenant, plan in zip(data["tenants"], self.tenants):
            tenant["summary"] = plan.summary
        data["fingerprint"] = self.fingerprint
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        fingerprint = data.pop("fingerprint", None)
        data.pop("summary", None)
        for tenant in data.get("tenants", []):
            tenant.pop("summary", None)
        if fingerprint is None:
            raise ValueError("the plan file has no fingerprint; only a plan saved by `plan --out` is accepted")
        plan = cls.model_validate(data)
        if fingerprint != plan.fingerprint:
            raise ValueError("the plan file was edited after it was made (fingerprint mismatch)")
        return plan

    @property
    def fingerprint(self) -> str:
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def review_hash(self) -> str:
        """What a reviewer approved: the changes and both states of every tenant, not the commit
        (a pull request's merge commit differs from its head, the reviewed plan does not), nor the
        reasons, which are for people (a pull request's plan says a MaterializedTable's rows are
        counted at apply; the apply's own plan counts them)."""
        tenants = [t.model_dump(mode="json", exclude={"refused": True, "unproven": True, "checks": True,   # derived
                                                      "changes": {"__all__": {"reason"}}})
                   for t in self.tenants]
        text = json.dumps([self.environment, tenants], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def tenant(self, name: str) -> TenantPlan | None:
        return next((t for t in self.tenants if t.tenant == name), None)


def order(changes: list[Change], desired: DesiredState, live: LiveState) -> tuple[Change, ...]:
    """Deletes first in reverse live-dependency order, then the rest in desired order."""
    deletes = [c for c in changes if c.action == "delete"]
    others = [c for c in changes if c.action != "delete"]
    if deletes:
        live_graph = graphs.build({k: r.dependencies for k, r in live.catalog.items()},
                                  {k: r.kind for k, r in live.catalog.items()})
        delete_rank = {k: i for i, k in enumerate(reversed(_safe_order(live_graph)))}
        deletes.sort(key=lambda c: (delete_rank.get(c.key, len(delete_rank)), c.key))
    if others:
        rank = {k: i for i, k in enumerate(_safe_order(desired.graph))}
        others.sort(key=lambda c: (rank.get(c.key, len(rank)), c.key))
    return (*deletes, *others)


def _safe_order(graph: nx.DiGraph) -> list[ObjectKey]:
    try:
        return graphs.order(graph)
    except nx.NetworkXUnfeasible:  # a live catalog edited into a cycle: fall back to keys
        return sorted(graph.nodes)


def violations(plan: Plan, allow_data_loss: Collection[str] = ()) -> list[str]:
    """Every reason to refuse this plan, each telling how to allow what is really wanted.

    Data loss is accepted per object only: named in `allow_data_loss` (the CLI's
    `--allow-data-loss schema.name`) or acknowledged in the environment's list."""
    accepted = {name.lower() for name in allow_data_loss}
    problems = []
    for tenant in plan.tenants:
        for change in tenant.changes:
            if change.conflict:
                problems.append(f"{tenant.tenant}: {change.object}: {change.reason}")
            elif change.data_loss and not change.acknowledged and change.object.lower() not in accepted:
                rows = f" ({row_count(change.rows)})" if change.rows is not None else ""
                problems.append(f"{tenant.tenant}: {change.object}: {change.reason}{rows} would lose "
                                f"data; rerun with --allow-data-loss {change.object} to accept")
    return problems


def row_count(rows: int) -> str:
    """`1 row`, `2,500 rows`."""
    return f"{rows:,} row{'s' * (rows != 1)}"
