"""What a change does to what reads it: the views an engine pins to a changed object recreated around
it, the columns a change alters traced through every reader (column-level impact), and a change
blocked where an unmanaged view reads what it would break.

Owns those decisions over the changes `diff` found; never compares an object with its live self.
"""

from __future__ import annotations

from typing import Protocol

from .. import graph as graphs
from ..desired import sql
from ..model import ObjectKey
from ..plan import CHANGES, Change, Impact
from ..state import CatalogRecord, DesiredState, LiveObject, LiveState, ObjectState

ENGINE_KINDS = ("Table", "View", "MaterializedTable")   # what the engine holds an object for
MATERIALIZED = "MaterializedTable"   # a table in the engine, whose rows its query gives
VIEWS = ("View", "MaterializedTable")   # what gives columns computed from what it reads


class Pins(Protocol):
    """What an engine will not change while a view reads it (`Compiler.pinned`)."""

    def __call__(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> frozenset[str] | None:
        """The columns (lower case) of the changed object whose readers must be dropped first and
        created again; None for every reader."""


def unpinned(change: Change, want: ObjectState | None, found: LiveObject | None) -> frozenset[str] | None:
    return frozenset()


def _altered_columns(change: Change) -> frozenset[str] | None:
    """The columns (lower case) whose name or type a table change alters; None for all of them (the
    object was not a table before)."""
    if change.action == "replace" and not any(d.field in ("primary_key", "table_format") for d in change.details):
        return None
    altered = set()
    for detail in change.details:
        if detail.whole_column or detail.attribute == "type":
            altered.add(detail.column.lower())
            if detail.op == "rename":
                altered.add(str(detail.before).lower())
    return frozenset(altered)


def columns_change(before: dict, after: dict) -> bool:
    """Whether a view's new definition changes its columns (their names, order or types: what
    replacing it in place may not change on PostgreSQL). Certain only where both typed columns are
    known; else (a record written before they were, a type not known) where its select list's text
    changes."""
    typed = _typed_outputs(before), _typed_outputs(after)
    if None not in typed and list(typed[0].items()) == list(typed[1].items()) \
            and "UNKNOWN" not in typed[0].values():
        return False
    return before.get("projection", after.get("projection")) != after.get("projection")


def _typed_outputs(definition: dict) -> dict[str, str] | None:
    """The typed columns (lower-case name -> type) recorded with a view's or MaterializedTable's
    definition, in order; None for a record written before they were, or where some are named by
    each engine itself (`*`)."""
    outputs = definition.get("outputs")
    if outputs is None or any(name == "*" for name, _ in outputs):
        return None
    return {name.lower(): kind for name, kind in outputs}


def _altered_view_columns(record: CatalogRecord | None, want: ObjectState, dialect: str) -> frozenset[str] | None:
    """The columns of a view or MaterializedTable its own change adds, drops or retypes, from the typed
    columns recorded when it was created and the desired ones (a type not known on either side counts
    as altered: only what is certain is left alone); None where that is not known (a view that was
    something else). A record without typed columns: the views whose select-list entry changes."""
    if record is None or record.kind != want.kind or record.kind not in ("View", MATERIALIZED):
        return None
    before, after = _typed_outputs(record.definition), _typed_outputs(want.definition)
    if before is not None and after is not None:
        return frozenset(name for name in before.keys() | after.keys()
                         if before.get(name) != after.get(name) or before[name] == "UNKNOWN")
    if record.kind != "View":
        return None
    before = sql.select_items(record.definition.get("projection", ""), dialect)
    after = sql.select_items(want.projection, dialect)
    if before is None or after is None:
        return None
    return frozenset(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))


def recreate_readers(changes: dict[ObjectKey, Change], desired: DesiredState, live: LiveState,
                      pins: Pins) -> None:
    """A view the plan leaves in place is recreated when a column it gives changes with what it
    reads (a retyped or renamed input column its values come from, a column added or dropped under
    its `*`), or when the engine will not alter what it reads while it exists (`pins`); in order,
    transitively. A view whose columns stay as they are keeps being the view it is."""
    altered: dict[ObjectKey, frozenset[str] | None] = {}
    pinned: dict[ObjectKey, frozenset[str] | None] = {}
    for key, change in changes.items():
        if change.kind in ENGINE_KINDS and change.action in ("update", "replace") and not change.catalog_only:
            found = live.object(change.live_key)
            if change.kind == "Table":
                altered[key] = _altered_columns(change)
            elif change.action == "replace":
                altered[key] = _altered_view_columns(live.record(key), desired.objects[key], desired.dialect)
            pinned[key] = pins(change, desired.objects.get(key), found)
    if not altered and not any(p is None or p for p in pinned.values()):
        return
    for key in graphs.order(desired.graph.subgraph(graphs.downstream(desired.graph, set(altered) | set(pinned)))):
        view = desired.objects[key]
        if view.kind not in ("View", MATERIALIZED) or (
                key in changes and changes[key].action in ("create", "replace", "delete")):
            continue
        changing = _changing_columns(view, altered)
        reads = {source: set(columns) for source, columns in view.reads}
        held = [] if view.kind == MATERIALIZED else sorted(   # a table: nothing binds it to what it read
            str(source) for source in view.dependencies if source in pinned and (   # not bound: reads anything
                pinned[source] is None or not view.derived or pinned[source] & reads.get(source, set())))
        if changing == frozenset() and not held:
            continue
        if changing != frozenset():
            upstream = sorted(str(source) for source in view.dependencies if source in altered)
            given = "its columns change" if changing is None else (
                f"its column{'s' * (len(changing) > 1)} {', '.join(sorted(changing))} "
                f"change{'s' * (len(changing) == 1)}")
            reason = (f"{'rebuilt from its query' if view.kind == MATERIALIZED else 'recreated'}: {given} with "
                      f"{', '.join(upstream)}")
        else:
            reason = (f"recreated: the engine will not alter {', '.join(held)} while a view reads it "
                      "(dropped first, then created again)")
        details = changes[key].details if key in changes else ()
        changes[key] = new_change("replace", view, "medium", reason, details)
        altered[key] = changing
        pinned[key] = pins(changes[key], view, live.object(key))


def _changing_columns(view: ObjectState, altered: dict[ObjectKey, frozenset[str] | None]) -> frozenset[str] | None:
    """The columns of `view` that change with what it reads: those computed from an altered column,
    and those a `*` gives on (a column added or dropped there is one added to or dropped from the
    view); None (all of them) where nothing says what its columns come from."""
    if not any(altered.get(source, frozenset()) != frozenset() for source in view.dependencies):
        return frozenset()
    if not view.derived or any(source in altered and altered[source] is None for source in view.stars):
        return None
    changing = {name for source in view.stars for name in altered.get(source) or ()}
    derived = dict(view.derived)
    for column in view.exposes:   # one whose sources binding could not establish may come from anything
        pairs = derived.get(column)
        if pairs is None or any(source in altered and (altered[source] is None or name in altered[source])
                                for source, name in pairs):
            changing.add(column)
    return frozenset(changing)


def column_impact(changes: dict[ObjectKey, Change], desired: DesiredState) -> None:
    """For each table column a change retypes or renames: what reads it (from the columns every view
    and data flow was bound to), and transitively what reads a view column computed from it."""
    if not any(c.kind == "Table" and any(d.op == "rename" or d.attribute == "type" for d in c.details)
               for c in changes.values()):
        return
    flow = graphs.column_flow(((key, source, columns) for key, obj in desired.objects.items()
                               for source, columns in obj.reads),
                              ((key, output, pairs) for key, obj in desired.objects.items()
                               for output, pairs in _computed_from(obj)))
    for key, change in list(changes.items()):
        if change.kind != "Table" or change.action not in ("update", "replace"):
            continue
        altered = {}
        for detail in change.details:
            if detail.column is not None and detail.op == "rename":
                altered[detail.after] = f"renamed from {detail.before}"
            elif detail.attribute == "type":
                altered[detail.column] = f"type {detail.before} -> {detail.after}"
        impact = []
        for column, what in sorted(altered.items()):
            reached = list(dict.fromkeys(reader for reader, _ in graphs.downstream_columns(flow, key, column)))
            reached += _unbound_readers(key, reached, desired)
            if reached:
                impact.append(Impact(column=column, change=what, read_by=tuple(map(str, reached))))
        if impact:
            changes[key] = change.model_copy(update={"impact": tuple(impact)})


def _computed_from(obj: ObjectState) -> list[tuple[str, tuple[tuple[ObjectKey, str], ...]]]:
    """What each column a view gives is computed from, for the impact: as bound; a column whose sources
    binding could not establish, from every column the view reads (as the view is recreated with any)."""
    derived = dict(obj.derived)
    read = tuple((source, name) for source, names in obj.reads for name in names)
    return [(column, derived.get(column, read)) for column in obj.exposes] if obj.kind in VIEWS else []


def _unbound_readers(key: ObjectKey, reached: list[ObjectKey], desired: DesiredState) -> list[ObjectKey]:
    """What binding could not tie to columns (a view whose columns are not known, a data flow that
    did not bind) reading `key` or what reaches its changed column, and everything that reads those,
    directly or through others: any of it may read the column. In dependency order."""
    objects, near = desired.objects, {key, *reached}
    unbound = [reader for reader, obj in objects.items() if reader not in near and near.intersection(obj.dependencies)
               and (obj.kind in VIEWS and not obj.exposes or obj.kind == "DataFlow" and not obj.reads)]
    unbound += [reader for reader in reached if reader in objects and objects[reader].kind in VIEWS
                and not objects[reader].exposes]   # read, but what it gives is not known
    if not unbound:
        return []
    found = set(unbound) | graphs.downstream(desired.graph, unbound)
    return [k for k in graphs.order(desired.graph) if k in found and k not in near]


def block_breaking_unmanaged_readers(changes: dict[ObjectKey, Change], desired: DesiredState,
                                      live: LiveState, pins: Pins) -> None:
    """A view the reconciler did not create, reading a table or view that this plan removes (or a
    column it drops), would break; one reading what the engine will not alter under it (`pins`:
    on PostgreSQL a rebuilt table, a retyped column, a view recreated by dropping it) would stop
    the apply. Either way the change is refused as a conflict. Never CASCADE."""
    wanted = {key.folded() for key in desired.objects}
    readers = [(key, *sql.view_reads(found.engine_sql or "", desired.engine)) for key, found in live.objects.items()
               if found.kind == "View" and key not in live.catalog and key.folded() not in wanted]
    if not readers:
        return
    for key, change in list(changes.items()):
        dropped = {d.column.lower() for d in change.details if d.op == "drop" and d.whole_column}
        found = live.object(change.live_key)
        pinned = pins(change, desired.objects.get(key), found) \
            if change.action in ("update", "replace") and not change.catalog_only else frozenset()
        if change.action != "delete" and not dropped and pinned == frozenset():
            continue
        names = {str(key).lower(), str(live.find(key) or key).lower()}
        breaking = sorted(str(reader) for reader, tables, columns in readers
                          if names & tables and (change.action == "delete" or dropped & columns))
        held = sorted(str(reader) for reader, tables, columns in readers
                      if names & tables and (pinned is None or (pinned or frozenset()) & columns))
        if breaking or held:
            what = "and would break" if breaking else "and the engine will not alter it under that view"
            changes[key] = change.model_copy(update={"conflict": True, "reason": (
                f"{change.reason}; blocked: unmanaged view {', '.join(breaking or held)} reads it {what}. "
                "Change or drop that view by hand first (the reconciler never alters what it did not "
                "create, and never uses CASCADE)")})


def new_change(action: str, want: ObjectState, risk: str, reason: str, details=(), **flags) -> Change:
    return CHANGES[action](kind=want.kind, object=str(want.key), risk=risk, reason=reason,
                           details=tuple(details),
                           catalog_only=flags.pop("catalog_only", want.kind not in ENGINE_KINDS), **flags)
