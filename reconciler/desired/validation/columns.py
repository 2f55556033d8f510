"""Binding: the columns every table and view gives, and every view and data flow reads, bound
against the landscape's declarations in dependency order (`bind`).

Owns the order and the bookkeeping: a table's declared columns typed as binding infers with them, a
view's and a MaterializedTable's (its `columns:` pinning types) from its query, no cascade past an
input that did not bind, each column that does not bind reported at its place inside the SQL. Never
resolves names (`references` did) and never decides what a sample may show (`sensitive`).
"""

from __future__ import annotations

import networkx as nx
from sqlglot import exp

from ... import graph as graphs
from ...errors import Diagnostic
from ...model import DataFlow, MaterializedTable, ObjectKey, Table, View
from .. import bind, column_types, sql
from ..documents import Document
from .references import READABLE
from .run import Run, did_you_mean


def columns(run: Run, objects, facts, dependencies, graph: nx.DiGraph, dialect: str) -> tuple[dict, dict, dict, dict]:
    """Bind every view and data flow against the columns the landscape declares, in dependency
    order; report each column that does not bind at its place inside the SQL. (The columns each
    table and view exposes, with their types, `bind.UNNAMED` among them where the engine names
    some; the columns of its inputs each view and data flow reads, what each view column is
    computed from, what each view gives on through `*`: `Landscape`'s fields.)"""
    known: dict[ObjectKey, bind.Columns | None] = {}
    read_columns: dict[ObjectKey, dict[ObjectKey, tuple[str, ...]]] = {}
    derived: dict[ObjectKey, dict[str, tuple[tuple[ObjectKey, str], ...]]] = {}
    stars: dict[ObjectKey, tuple[ObjectKey, ...]] = {}
    for key in graphs.order(graph):
        result = bind_one(run, key, objects, facts, dependencies[key], known, dialect)
        if result is None:
            continue
        reads = {str(d).lower(): d for d in dependencies[key] if isinstance(objects[d], READABLE)}
        read_columns[key] = {reads[name]: tuple(columns) for name, columns in result.reads.items() if name in reads}
        if result.derived:
            derived[key] = {column: tuple((reads[source], name) for source, name in pairs if source in reads)
                            for column, pairs in result.derived.items()}
        if result.stars:
            stars[key] = tuple(reads[name] for name in result.stars if name in reads)
        document = run.documents[key]
        for problem in result.problems:
            line, column = document.where_inside(("sql",), problem.line, problem.column)
            hint = did_you_mean(problem.word, problem.candidates) if problem.word else ""
            run.diagnostics.append(Diagnostic(document.path, line, column, "column", problem.message + hint))
    return ({key: columns for key, columns in known.items() if columns is not None}, read_columns, derived, stars)


def bind_one(run: Run, key: ObjectKey, objects, facts, dependencies: tuple[ObjectKey, ...],
             known: dict[ObjectKey, bind.Columns | None], dialect: str,
             tree: exp.Expression | None = None) -> bind.Bound | None:
    """Bind one object against the columns `known` of what it reads, and record the columns it
    gives there (None: not known, so nothing reading it is bound). None where it is not bound."""
    obj = objects[key]
    if key in run.duplicated:
        known[key] = None
        return None
    if isinstance(obj, Table):
        try:
            known[key] = {c.name: _bound_type(c.type, dialect) for c in obj.columns}
        except sql.SqlProblem:
            known[key] = None
        return None
    if not isinstance(obj, (View, MaterializedTable, DataFlow)) or key not in facts:
        return None
    reads = [d for d in dependencies if isinstance(objects[d], READABLE)]
    if any(known.get(d) is None for d in reads):   # an input that did not bind: no cascade
        known[key] = None
        return None
    target = next((str(d).lower() for d in reads if isinstance(obj, DataFlow)
                   and d.folded() == ObjectKey.parse(obj.target).folded()), None)
    result = bind.bind(obj.sql, dialect, {str(d).lower(): known[d] for d in reads}, target, run.cache, tree)
    known[key] = result.outputs if isinstance(obj, View) else None
    if isinstance(obj, MaterializedTable) and result.outputs is not None:
        known[key] = _pinned(run, run.documents[key], obj, result.outputs, dialect)
    if known[key] is not None and result.unnamed:   # its readers may name those as the engine does
        known[key] = {**known[key], bind.UNNAMED: "UNKNOWN"}
    return result


def _pinned(run: Run, document: Document, table: MaterializedTable, outputs: bind.Columns,
            dialect: str) -> bind.Columns:
    """A MaterializedTable's columns: its query's, with the types its `columns:` pin."""
    given = {name.lower(): name for name in outputs}
    columns = dict(outputs)
    for index, column in enumerate(table.columns):
        if column.name.lower() not in given:
            run.report(document, "reference", f"column {column.name} is not a column of the query"
                       f"{did_you_mean(column.name, outputs)}", "columns", index, "name")
            continue
        try:
            columns[given[column.name.lower()]] = sql.normalize_type(column.type, dialect, dialect)
        except sql.SqlProblem:
            pass   # reported with the object
    return columns


def _bound_type(declared: str, dialect: str) -> str:
    """A table column's type as binding infers with it: as SQL in `dialect` means it, UNKNOWN for a type
    sqlglot has no expression for (PostgreSQL's BIT VARYING); SqlProblem where it is no type at all."""
    column_types.declared(declared, dialect)
    try:
        return sql.normalize_type(declared, dialect, dialect)
    except sql.SqlProblem:
        return "UNKNOWN"
