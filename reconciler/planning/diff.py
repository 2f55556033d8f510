"""Desired state against live state: the typed changes one tenant needs.

Owns pairing objects by key (as the engine compares names), classifying each difference
as create / update / replace / delete with field-level details (deepdiff does the field
comparison), the risk and reason of each, drift, conflicts with unmanaged objects, and the
views that must be recreated: those whose columns change with what they read, and those the
engine will not leave in place under a change to what they read (the adapter says which).
Never executes SQL and never orders changes (that is `plan`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import networkx as nx

from .. import graph as graphs
from ..desired import sql
from ..model import ObjectKey
from ..plan import Change, Detail, Impact
from ..state import CatalogRecord, ColumnState, DesiredState, LiveObject, LiveState, ObjectState

ENGINE_KINDS = ("Table", "View", "MaterializedTable")   # what the engine holds an object for
MATERIALIZED = "MaterializedTable"   # a table in the engine, whose rows its query gives
VIEWS = ("View", "MaterializedTable")   # what gives columns computed from what it reads


def diff(desired: DesiredState, live: LiveState, pins: Pins | None = None) -> list[Change]:
    """Every change that makes `live` equal `desired` (unordered; `plan.order` orders them).
    `pins`: what the tenant's engine will not alter under a view that reads it (none by default)."""
    changes: dict[ObjectKey, Change] = {}
    matched: set[ObjectKey] = set()
    for key, want in desired.objects.items():
        record, found = live.record(key), live.object(key)
        if want.renamed_from and record is None and found is None:
            previous, former = live.record(want.renamed_from), live.object(want.renamed_from)
            if previous is not None and former is not None:
                matched.add(previous.key)
                changes[key] = _renamed(want, previous, former, desired.engine)
                continue
        if record is not None:
            matched.add(record.key)
        change = _compare(want, record, found, desired.engine)
        if change is not None:
            changes[key] = change
    for key, record in live.catalog.items():
        if key not in matched:
            changes[key] = _delete(record, live.objects.get(key))
    _recreate_readers(changes, desired, live, pins or _unpinned)
    _column_impact(changes, desired)
    _block_breaking_unmanaged_readers(changes, desired, live, pins or _unpinned)
    _flag_probable_table_renames(changes, desired, live)
    return list(changes.values())


def unmanaged(desired: DesiredState, live: LiveState) -> list[str]:
    """Engine objects the catalog does not know: reported, never touched."""
    wanted = {key.folded() for key in desired.objects}
    return sorted(str(k) for k in live.objects if k not in live.catalog and k.folded() not in wanted)


def _compare(want: ObjectState, record: CatalogRecord | None, found: LiveObject | None,
             engine: str) -> Change | None:
    engine_kind = want.kind in ENGINE_KINDS
    if record is None:
        if found is None:
            return _change("create", want, "low", "new object")
        return _adopt_or_conflict(want, found, engine)
    if engine_kind and found is None:
        return _change("create", want, "low", "missing from the tenant: dropped outside the "
                       "reconciler (drift)", drift=True)
    kind = found.kind if found is not None else record.kind   # what the tenant is, not what the catalog says
    if want.kind == MATERIALIZED and kind == "Table" and record.kind == MATERIALIZED:
        return _materialized(want, record, engine)
    if kind != want.kind:
        loses = kind == "Table"
        return _change("replace", want, "high" if loses else "medium",
                       f"kind changes from {kind} to {want.kind}", data_loss=loses)
    if want.kind == "Table":
        return _table(want, record, found, engine)
    if want.kind == "View":
        return _view(want, record, found, engine)
    if record.content_hash == want.content_hash:
        return None
    details = _details(record.definition, want.definition)
    return _change("update", want, "low", "definition changed", details, catalog_only=True)


def _adopt_or_conflict(want: ObjectState, found: LiveObject, engine: str) -> Change:
    if found.kind == want.kind and (
            (want.kind == "Table" and _columns(found.columns) == _columns(want.columns)
             and found.table_format == want.table_format)
            or (want.kind == "View" and _same_view(want, found, engine))):
        return _change("update", want, "low", "adopting an identical object that the reconciler did "
                       "not create", catalog_only=True)
    return _change("create", want, "high", f"an unmanaged {found.kind.lower()} with this name already "
                   "exists and differs from the desired state; rename or remove it by hand, or make "
                   "the YAML match it to adopt it", conflict=True)


def _same_view(want: ObjectState, found: LiveObject, engine: str) -> bool:
    """`want.sql` is rendered for the tenant's engine; the live view's SQL is the engine's own."""
    try:
        return sql.parse(want.sql or "", engine).sql(dialect=engine) == view_query(found.engine_sql, engine)
    except sql.SqlProblem:
        return False


def view_query(engine_sql: str | None, engine: str) -> str:
    """The query of a CREATE VIEW statement as the engine reports it."""
    try:
        tree = sql.parse(engine_sql or "", engine)
    except sql.SqlProblem:
        return engine_sql or ""
    return (tree.expression if tree.key == "create" else tree).sql(dialect=engine)


def _materialized(want: ObjectState, record: CatalogRecord, engine: str) -> Change | None:
    """A MaterializedTable the reconciler built: rebuilt from its query when the query (or a pinned
    type) changed; its rows are what the query gives, so a rebuild is expected to change them."""
    if record.content_hash == want.content_hash:
        return None
    details = (*_details(_compared(record.definition), _compared(want.definition)),
               *_check_details(record.definition, want.definition, engine))
    if not details:   # only what its checks show changed
        return None
    if all(d.field == "description" or d.field.startswith("checks.") for d in details):
        return _change("update", want, "low", _catalog_reason(details), details, catalog_only=True)
    return _change("replace", want, "medium", "its query changed: rebuilt from it (its rows are computed again)",
                   details)


def _renamed(want: ObjectState, record: CatalogRecord, found: LiveObject, engine: str) -> Change:
    """A table declared `renamed_from:` the live one: renamed in place, then altered as usual."""
    name = Detail(field="name", op="rename", before=str(found.key), after=str(want.key))
    altered = _table(want, record, found, engine)
    if altered is None:
        return _change("update", want, "medium", f"renamed from {found.key} (rows kept)", (name,),
                       renamed_from=str(found.key))
    return altered.model_copy(update={"reason": f"renamed from {found.key} (rows kept); {altered.reason}",
                                      "details": (name, *altered.details), "renamed_from": str(found.key),
                                      "risk": "medium" if altered.risk == "low" else altered.risk})


def _table(want: ObjectState, record: CatalogRecord, found: LiveObject, engine: str) -> Change | None:
    live_columns, renames = _columns(found.columns), []
    for old, new in want.column_renames:
        if old in live_columns and new not in live_columns:
            live_columns = {(new if k == old else k): v for k, v in live_columns.items()}
            renames.append(Detail(field=f"columns.{new}", op="rename", before=old, after=new))
    details = (*renames, *_details(live_columns, _columns(want.columns), prefix="columns"))
    live_primary_key = tuple(name if name in live_columns else dict(want.column_renames).get(name, name)
                             for name in found.primary_key)
    rebuilt = []   # what only a new table can change: the rows are copied into it
    if live_primary_key != tuple(want.primary_key):
        rebuilt.append(("primary key changed", Detail(field="primary_key", op="change", before=list(found.primary_key),
                                                      after=list(want.primary_key))))
    if found.table_format != want.table_format and found.table_format and want.table_format:
        rebuilt.append((f"table format changes from {found.table_format} to {want.table_format}",
                        Detail(field="table_format", op="change", before=found.table_format,
                               after=want.table_format)))
    if rebuilt:
        dropped = [d.field for d in details if d.op == "drop" and d.whole_column]
        return _change("replace", want, "high" if dropped else "medium",
                       f"{'; '.join(reason for reason, _ in rebuilt)}: the table is rebuilt and its rows copied",
                       (*(detail for _, detail in rebuilt), *details), data_loss=bool(dropped))
    drift = record.definition.get("columns") != [c.to_json() for c in found.columns] and bool(details)
    description = (*_details({"description": record.definition.get("description", "")},
                             {"description": want.definition.get("description", "")}),
                   *_check_details(record.definition, want.definition, engine))
    if not details:
        if description:
            return _change("update", want, "low", _catalog_reason(description), description, catalog_only=True)
        return None
    dropped = [d for d in details if d.op == "drop" and d.whole_column]
    reason = "columns changed outside the reconciler (drift)" if drift else "columns changed"
    if renames:
        reason = ", ".join(f"renames column {d.before} to {d.after}" for d in renames) + " (values kept)" + (
            "" if len(renames) == len(details) else f"; {reason}")
    probable = _probable_column_renames(details)
    reason += probable
    if dropped:
        names = ", ".join(d.column for d in dropped)
        recorded = {c["name"] for c in record.definition.get("columns", [])}
        outside = " (added outside the reconciler)" if all(
            d.column not in recorded for d in dropped) else ""
        return _change("update", want, "high", f"drops column {names}{outside}{probable}",
                       (*details, *description), data_loss=True, drift=drift)
    return _change("update", want, "medium", reason, (*details, *description), drift=drift)


def _probable_column_renames(details: tuple[Detail, ...]) -> str:
    """A dropped and an added column of one type look like a rename that forgot `renamed_from:`."""
    dropped = {d.column: d.before["type"] for d in details if d.op == "drop" and d.whole_column}
    added = {d.column: d.after["type"] for d in details if d.op == "add" and d.whole_column}
    pairs = [(old, new) for old, kind in dropped.items() for new, other in added.items() if kind == other]
    return "".join(f"; probable rename of {old} to {new}: declare `renamed_from: {old}` on {new} to keep "
                   "its values" for old, new in pairs)


def _flag_probable_table_renames(changes: dict[ObjectKey, Change], desired: DesiredState, live: LiveState) -> None:
    deleted = {k: live.objects[k] for k, c in changes.items()
               if c.action == "delete" and c.kind == "Table" and k in live.objects}
    for key, change in list(changes.items()):
        if change.action != "create" or change.kind != "Table" or change.conflict:
            continue
        shape = _columns(desired.objects[key].columns)
        for old, found in deleted.items():
            if _columns(found.columns) == shape:
                hint = (f"; probable rename of {old} to {key}: declare `renamed_from: {old.name}` on "
                        f"{key.name} to keep its rows")
                changes[key] = change.model_copy(update={"reason": change.reason + hint})
                changes[old] = changes[old].model_copy(update={"reason": changes[old].reason + hint})


def _view(want: ObjectState, record: CatalogRecord, found: LiveObject, engine: str) -> Change | None:
    same = record.content_hash == want.content_hash
    details = () if same else (*_details(_compared(record.definition), _compared(want.definition)),
                               *_check_details(record.definition, want.definition, engine))
    if found.engine_sql != record.engine_sql:
        return _change("update", want, "low", "changed outside the reconciler (drift)",
                       (Detail(field="sql", op="change", before=view_query(found.engine_sql, engine),
                               after=want.sql),), drift=True)
    if not details:
        return None
    if all(d.field.startswith("checks.") for d in details):   # the view itself stays as it is
        return _change("update", want, "low", _catalog_reason(details), details, catalog_only=True)
    if _columns_change(record.definition, want.definition):
        return _change("replace", want, "medium", "the view's columns change", details)
    return _change("update", want, "low", "query changed, same columns", details)


def _delete(record: CatalogRecord, found: LiveObject | None) -> Change:
    """Risk and data loss from what the tenant holds (a hand-edited catalog cannot make a table cheap)."""
    if found is not None and found.kind == "Table":
        return Change(action="delete", kind="Table", object=str(record.key), risk="high",
                      reason="removed from the folder: drops the table and its rows", data_loss=True)
    catalog_only = record.kind not in ENGINE_KINDS or found is None
    return Change(action="delete", kind=found.kind if found is not None else record.kind, object=str(record.key),
                  risk="low", reason="removed from the folder", catalog_only=catalog_only)


class Pins(Protocol):
    """What an engine will not change while a view reads it (`Compiler.pinned`)."""

    def __call__(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> frozenset[str] | None:
        """The columns (lower case) of the changed object whose readers must be dropped first and
        created again; None for every reader."""


def _unpinned(change: Change, want: ObjectState | None, found: LiveObject | None) -> frozenset[str] | None:
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


def _columns_change(before: dict, after: dict) -> bool:
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


def _recreate_readers(changes: dict[ObjectKey, Change], desired: DesiredState, live: LiveState,
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
        changes[key] = _change("replace", view, "medium", reason, details)
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


def _column_impact(changes: dict[ObjectKey, Change], desired: DesiredState) -> None:
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


def _block_breaking_unmanaged_readers(changes: dict[ObjectKey, Change], desired: DesiredState,
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


def views_to_bind(changes: Sequence[Change], live: LiveState, engine: str) -> list[ObjectKey]:
    """The views an apply must bind before it commits: those it leaves in place that read,
    directly or through other views, something it changed. The views it creates were bound by
    the engine when created (after what they read, by the plan's order); deleted ones are gone."""
    touched = {c.key.folded() for c in changes if not c.catalog_only}
    recreated = {c.key.folded() for c in changes if c.kind == "View"}   # bound when created, or gone
    reads: dict[ObjectKey, set[ObjectKey]] = {}   # folded view key -> folded keys it reads
    views: dict[ObjectKey, ObjectKey] = {}         # folded -> the key as the engine has it
    for key, found in live.objects.items():
        if found.kind != "View" or key.folded() in recreated:
            continue
        record = live.catalog.get(key)
        if record is not None:
            upstream = {d.folded() for d in record.dependencies}
        else:   # an unmanaged view: what it reads comes from its SQL
            tables, _ = sql.view_reads(found.engine_sql or "", engine)
            upstream = {ObjectKey.parse(t).folded() for t in tables if "." in t}
        views[key.folded()], reads[key.folded()] = key, upstream
    graph = nx.DiGraph((source, view) for view, upstream in reads.items() for source in upstream)
    affected = graphs.downstream(graph, touched) & set(views)
    return sorted(views[key] for key in affected)


def _change(action: str, want: ObjectState, risk: str, reason: str, details=(), **flags) -> Change:
    return Change(action=action, kind=want.kind, object=str(want.key), risk=risk, reason=reason,
                  details=tuple(details), catalog_only=flags.pop("catalog_only", want.kind not in ENGINE_KINDS),
                  **flags)


def _columns(columns: tuple[ColumnState, ...]) -> dict[str, dict]:
    return {c.name: {"type": c.type, "nullable": c.nullable, "default": c.default} for c in columns}


def _check_details(before: dict, after: dict, engine: str) -> tuple[Detail, ...]:
    """The data checks that were added, dropped or changed, by name; a check whose query differs only in
    the columns its sample shows (a column added to the object, one marked sensitive) is the same check."""
    named = [{check["name"]: {k: v for k, v in check.items() if k != "name"} for check in d.get("checks", [])}
             for d in (before, after)]
    for name in named[0].keys() & named[1].keys():
        old, new = named[0][name].get("sql"), named[1][name].get("sql")
        if old != new and sql.without_select_list(old, engine) == sql.without_select_list(new, engine):
            named[0][name] = {**named[0][name], "sql": new}
    return _details(named[0], named[1], prefix="checks")


def _compared(definition: dict) -> dict:
    """What is compared field by field: not the checks (`_check_details`), nor the typed columns
    inferred from the definition (`_altered_view_columns`)."""
    return {key: value for key, value in definition.items() if key not in ("checks", "outputs")}


def _catalog_reason(details: Sequence[Detail]) -> str:
    """Why a change touches only the catalog: its description, its checks, or both changed."""
    changed = sorted({"checks" if d.field.startswith("checks.") else d.field for d in details})
    return f"{' and '.join(changed)} changed" if len(changed) > 1 else f"{changed[0]} changed"


def _details(before: dict, after: dict, prefix: str = "") -> tuple[Detail, ...]:
    """deepdiff's report, translated into typed field details with dotted paths."""
    if before == after:
        return ()
    details: list[Detail] = []
    # imported here, when something differs: deepdiff imports numpy, and pandas where it is installed
    # (the Spark extra), 0.2-0.4 s that a plan with nothing to change should not pay
    from deepdiff import DeepDiff

    # threshold 0: always field by field (deepdiff >= 8 reports dicts sharing few keys as one change)
    for category, levels in DeepDiff(before, after, view="tree", threshold_to_diff_deeper=0).items():
        op = "add" if category.endswith("_added") else "drop" if category.endswith("_removed") else "change"
        for level in levels:
            path = ".".join([prefix] * bool(prefix) + [str(p) for p in level.path(output_format="list")])
            details.append(Detail(field=path, op=op, before=None if op == "add" else level.t1,
                                  after=None if op == "drop" else level.t2))
    return tuple(sorted(details, key=lambda d: d.field))
