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

import networkx as nx

from .. import graph as graphs
from ..desired import sql
from ..model import ObjectKey
from ..plan import Change, Delete, Detail
from ..state import CatalogRecord, ColumnState, DesiredState, LiveObject, LiveState, ObjectState
from .readers import (
    ENGINE_KINDS,
    MATERIALIZED,
    Pins,
    block_breaking_unmanaged_readers,
    column_impact,
    columns_change,
    new_change,
    recreate_readers,
    unpinned,
)


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
    recreate_readers(changes, desired, live, pins or unpinned)
    column_impact(changes, desired)
    block_breaking_unmanaged_readers(changes, desired, live, pins or unpinned)
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
            return new_change("create", want, "low", "new object")
        return _adopt_or_conflict(want, found, engine)
    if engine_kind and found is None:
        return new_change("create", want, "low", "missing from the tenant: dropped outside the "
                       "reconciler (drift)", drift=True)
    kind = found.kind if found is not None else record.kind   # what the tenant is, not what the catalog says
    if want.kind == MATERIALIZED and kind == "Table" and record.kind == MATERIALIZED:
        return _materialized(want, record, engine)
    if kind != want.kind:
        loses = kind == "Table"
        return new_change("replace", want, "high" if loses else "medium",
                       f"kind changes from {kind} to {want.kind}", data_loss=loses)
    if want.kind == "Table":
        return _table(want, record, found, engine)
    if want.kind == "View":
        return _view(want, record, found, engine)
    if record.content_hash == want.content_hash:
        return None
    details = _details(record.definition, want.definition)
    return new_change("update", want, "low", "definition changed", details, catalog_only=True)


def _adopt_or_conflict(want: ObjectState, found: LiveObject, engine: str) -> Change:
    if found.kind == want.kind and (
            (want.kind == "Table" and _columns(found.columns) == _columns(want.columns)
             and found.table_format == want.table_format)
            or (want.kind == "View" and _same_view(want, found, engine))):
        return new_change("update", want, "low", "adopting an identical object that the reconciler did "
                       "not create", catalog_only=True)
    return new_change("create", want, "high", f"an unmanaged {found.kind.lower()} with this name already "
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
        return new_change("update", want, "low", _catalog_reason(details), details, catalog_only=True)
    return new_change("replace", want, "medium", "its query changed: rebuilt from it (its rows are computed again)",
                   details)


def _renamed(want: ObjectState, record: CatalogRecord, found: LiveObject, engine: str) -> Change:
    """A table declared `renamed_from:` the live one: renamed in place, then altered as usual."""
    name = Detail(field="name", op="rename", before=str(found.key), after=str(want.key))
    altered = _table(want, record, found, engine)
    if altered is None:
        return new_change("update", want, "medium", f"renamed from {found.key} (rows kept)", (name,),
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
        return new_change("replace", want, "high" if dropped else "medium",
                       f"{'; '.join(reason for reason, _ in rebuilt)}: the table is rebuilt and its rows copied",
                       (*(detail for _, detail in rebuilt), *details), data_loss=bool(dropped))
    drift = record.definition.get("columns") != [c.to_json() for c in found.columns] and bool(details)
    description = (*_details({"description": record.definition.get("description", "")},
                             {"description": want.definition.get("description", "")}),
                   *_check_details(record.definition, want.definition, engine))
    comments, comments_drift = _comments(want, record, found, engine)
    properties = _properties(want, found)
    if not details:
        if comments or properties:
            reasons = [*(["table properties changed outside the reconciler (drift)"] if properties else []),
                       *([("comments changed outside the reconciler (drift)" if comments_drift
                           else "descriptions changed")] if comments else [])]
            return new_change("update", want, "low", "; ".join(reasons), (*properties, *comments, *description),
                              drift=comments_drift or bool(properties))
        if description:
            return new_change("update", want, "low", _catalog_reason(description), description, catalog_only=True)
        return None
    description = (*properties, *comments, *description)
    drift = drift or comments_drift
    dropped = [d for d in details if d.op == "drop" and d.whole_column]
    reason = "columns changed outside the reconciler (drift)" if drift else "columns changed"
    if renames:
        reason = ", ".join(f"renames column {d.before} to {d.after}" for d in renames) + " (values kept)" + (
            "" if len(renames) == len(details) else f"; {reason}")
    probable = _probable_column_renames(details) + ("; table properties changed outside the reconciler (drift)"
                                                    if properties else "")
    drift = drift or bool(properties)
    reason += probable
    if dropped:
        names = ", ".join(d.column for d in dropped)
        recorded = {c["name"] for c in record.definition.get("columns", [])}
        outside = " (added outside the reconciler)" if all(
            d.column not in recorded for d in dropped) else ""
        return new_change("update", want, "high", f"drops column {names}{outside}{probable}",
                       (*details, *description), data_loss=True, drift=drift)
    return new_change("update", want, "medium", reason, (*details, *description), drift=drift)


def _comments(want: ObjectState, record: CatalogRecord, found: LiveObject,
              engine: str) -> tuple[tuple[Detail, ...], bool]:
    """Where the engine keeps descriptions as comments (`sql.DESCRIPTIONS_AS_COMMENTS`): each comment of
    the table or of a column it keeps that is not the YAML's description, and whether the comments are
    not what the last apply left (a hand edit: drift)."""
    if engine not in sql.DESCRIPTIONS_AS_COMMENTS:
        return (), False
    live = {"": found.comment or "", **dict(found.column_comments)}
    wanted = {"": want.definition.get("description", ""), **dict(want.column_descriptions)}
    recorded = {"": record.definition.get("description", ""), **record.definition.get("column_descriptions", {})}
    kept = ["", *(c.name for c in want.columns)]
    details = tuple(Detail(field=f"columns.{name}.comment" if name else "comment", op="change",
                           before=live.get(name) or None, after=wanted.get(name) or None)
                    for name in kept if live.get(name, "") != wanted.get(name, ""))
    return details, bool(details) and any(live.get(name, "") != recorded.get(name, "") for name in kept)


def _properties(want: ObjectState, found: LiveObject) -> tuple[Detail, ...]:
    """Each property the table's format asks for (`sql.TABLE_PROPERTIES`) that the live table does not
    have as asked: the reconciler made it with them, so one that differs was edited by hand (drift). A
    property the YAML does not ask for is a DBA's, never a change."""
    live = dict(found.properties)
    return tuple(Detail(field=f"properties.{name}", op="change", before=live.get(name), after=value)
                 for name, value in want.properties if live.get(name) != value)


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
        return new_change("update", want, "low", "changed outside the reconciler (drift)",
                       (Detail(field="sql", op="change", before=view_query(found.engine_sql, engine),
                               after=want.sql),), drift=True)
    if not details:
        return None
    if all(d.field.startswith("checks.") for d in details):   # the view itself stays as it is
        return new_change("update", want, "low", _catalog_reason(details), details, catalog_only=True)
    if columns_change(record.definition, want.definition):
        return new_change("replace", want, "medium", "the view's columns change", details)
    return new_change("update", want, "low", "query changed, same columns", details)


def _delete(record: CatalogRecord, found: LiveObject | None) -> Change:
    """Risk and data loss from what the tenant holds (a hand-edited catalog cannot make a table cheap)."""
    if found is not None and found.kind == "Table":
        return Delete(kind="Table", object=str(record.key), risk="high",
                      reason="removed from the folder: drops the table and its rows", data_loss=True)
    catalog_only = record.kind not in ENGINE_KINDS or found is None
    return Delete(kind=found.kind if found is not None else record.kind, object=str(record.key),
                  risk="low", reason="removed from the folder", catalog_only=catalog_only)


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
