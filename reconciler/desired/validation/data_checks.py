"""Data checks as validation sees them: each declared check (`checks.declared`) made a query over
the columns the landscape declares, or its problems reported.

Owns what a check may name (its own object's columns, a related object's column), its conditions
(they parse, change nothing, call only what the engines allow, are true or false for a row), a `sql:`
check (one SELECT whose references resolve and whose columns bind), and what each check's sample may
show (never a sensitive column). Never runs a check: `apply.checks` does; building the query is
`checks.build`'s.
"""

from __future__ import annotations

import json

import networkx as nx
import sqlglot

from ...errors import Diagnostic
from ...model import COLUMN_CHECK_KINDS, MaterializedTable, ObjectKey, Table
from .. import bind, policy, sql
from ..cache import content_key
from ..checks import CHECKS_VERSION, DataCheck, Declared, build, declared
from ..documents import Document
from .references import READABLE, relation
from .run import Run, did_you_mean
from .sensitive import CHECKED, reads_sensitive

CHECKS_CACHE = "check-queries"   # each data check's query, by what it is built from


def checks(run: Run, objects, dependencies, graph: nx.DiGraph, columns: dict[ObjectKey, bind.Columns],
           sensitive: dict[ObjectKey, set[str]], dialect: str) -> dict[ObjectKey, tuple[DataCheck, ...]]:
    """Every table's and view's checks, each a query over the columns the landscape declares: the
    columns and objects they name exist, conditions parse and are boolean, a `sql:` check is one
    SELECT whose references and columns bind; no sample ever shows a sensitive column (`sensitive`)."""
    index = {key.folded(): key for key in objects}
    found: dict[ObjectKey, tuple[DataCheck, ...]] = {}
    for key, obj in objects.items():
        if not isinstance(obj, READABLE) or not obj.checks and not (
                isinstance(obj, (Table, MaterializedTable)) and any(c.checks for c in obj.columns)):
            continue
        if key not in columns:   # its own columns did not bind: reported already
            continue
        document = run.documents[key]
        made = [_check(run, document, key, item, index, objects, columns, sensitive, dialect)
                for item in declared(obj)]
        found[key] = tuple(check for check in made if check is not None)
    return found


def _check(run: Run, document: Document, key: ObjectKey, item: Declared, index, objects, columns,
           sensitive: dict[ObjectKey, set[str]], dialect: str) -> DataCheck | None:
    check, loc = item.check, item.loc
    problems = len(run.diagnostics)
    if item.under_column and item.kind not in COLUMN_CHECK_KINDS:
        run.report(document, "check", f"{item.kind} is an object check: write it under the object's "
                   "`checks:`, not under a column", *loc, item.kind)
    elif item.under_column and (check.column or isinstance(check.not_null, str)
                                or isinstance(check.unique, (str, tuple))):
        run.report(document, "check", "under a column a check is about that column: it names no other",
                   *loc, item.kind)
    elif not item.under_column and item.kind in COLUMN_CHECK_KINDS and not item.columns:
        hint = f"{{{item.kind}: COLUMN}}" if item.kind in ("not_null", "unique") else "`column: NAME`"
        run.report(document, "check", f"an object-level {item.kind} check names its column: {hint}", *loc)
    own = {name.lower(): name for name in columns[key]}
    for position, name in enumerate(item.columns):
        if name.lower() not in own:
            where = (("column",) if check.column else (item.kind, position) if isinstance(check.unique, tuple)
                     else (item.kind,))
            run.report(document, "reference", f"check {item.name}: {key} has no column {name}"
                       f"{did_you_mean(name, own.values())}", *loc, *where)
    if item.kind in ("accepted_values", "accepted_range") and len(item.columns) == 1 \
            and item.columns[0].lower() in own:
        column = own[item.columns[0].lower()]
        mismatch = sql.value_mismatch(columns[key][column], dialect, check.accepted_values) \
            if check.accepted_values else sql.not_numeric(columns[key][column], dialect)
        if mismatch:
            run.report(document, "check", f"check {item.name}: {mismatch}", *loc, item.kind)
    if check.where is not None and item.kind == "sql":
        run.report(document, "check", "a sql check filters in its own WHERE; `where:` is for the other "
                   "kinds", *loc, "where")
    conditions = [(field_name, getattr(check, field_name)) for field_name in ("where", "expression")
                  if getattr(check, field_name) is not None and item.kind != "sql"]
    parameters: set[str] = set()
    for field_name, text in conditions:
        try:
            condition = sql.parse_condition(text, dialect)
            parameters |= sql.parameters_in(condition)
            if run.effects(document, (*map(str, loc), field_name), policy.effects(condition),
                           f"check {item.name}: "):
                continue
            run.calls(document, (*map(str, loc), field_name),
                      {engine: sql.calls_in(condition, engine, text) for engine in run.callers[0]},
                      what=f"check {item.name}: ")
        except sql.SqlProblem as problem:
            line, column = document.where_inside((*map(str, loc), field_name), problem.line, problem.column)
            run.diagnostics.append(Diagnostic(document.path, line, column, "sql",
                                          f"check {item.name}: {field_name} does not parse: {problem}"))
            continue
        kind = sql.condition_type(condition, columns[key], dialect)
        if kind.upper() not in ("BOOLEAN", "UNKNOWN"):
            run.report(document, "check", f"check {item.name}: {field_name} must be true or false for a "
                       f"row; it is {kind}", *loc, field_name)
    target, reads, inputs = None, [], {str(key).lower(): columns[key]}
    if check.relationships is not None:
        target = relation(run, document, check.relationships.to, index, objects,
                          (*loc, "relationships", "to"))
        if target is not None and target in columns:
            theirs = {name.lower() for name in columns[target]}
            if check.relationships.column.lower() not in theirs:
                run.report(document, "reference", f"check {item.name}: {target} has no column "
                           f"{check.relationships.column}{did_you_mean(check.relationships.column, columns[target])}",
                           *loc, "relationships", "column")
            reads, inputs = [target], {**inputs, str(target).lower(): columns[target]}
    shown = [name for name in columns[key] if name.lower() not in sensitive.get(key, set())]
    if item.kind == "row_count":
        shown = ["row_count"]   # its one offending row is the count
    elif item.kind == "sql":
        shown, reads = _sql_check(run, document, item, index, objects, columns, sensitive, dialect)
        parameters |= set(sql.analyze(check.sql, dialect, run.cache).parameters) if shown is not None else set()
    if len(run.diagnostics) > problems or shown is None:
        return None
    query = _built(run, item, key, shown, dialect, target)
    if conditions:   # the columns a condition names, bound like a view's (the others' were checked above)
        for problem in bind.bind(query, dialect, inputs, None, run.cache).problems:
            field_name = "expression" if check.expression else "where" if check.where else item.kind
            hint = did_you_mean(problem.word, problem.candidates) if problem.word else ""
            run.report(document, "column", f"check {item.name}: {problem.message}{hint}", *loc, field_name)
    if len(run.diagnostics) > problems:
        return None
    return DataCheck(item.name, item.kind, check.severity, query, tuple(shown), tuple(reads),
                     document.where(*loc)[0], tuple(sorted(parameters)))


def _built(run: Run, item: Declared, key: ObjectKey, shown: list[str], dialect: str,
           target: ObjectKey | None) -> str:
    """The check's query (`build`), cached by everything it is made from: building and
    generating it with sqlglot costs more than running it on an empty table."""
    cached_key = content_key("check", CHECKS_VERSION, sqlglot.__version__, dialect, str(key),
                             str(target), item.check.model_dump_json(), json.dumps(list(item.columns)),
                             json.dumps(shown))
    query = run.cache.get(CHECKS_CACHE, cached_key)
    if query is None:
        query = build(item, key, shown, dialect, target)
        run.cache.put(CHECKS_CACHE, cached_key, query)
    return query


def _sql_check(run: Run, document: Document, item: Declared, index, objects, columns, sensitive,
               dialect: str) -> tuple[list[str] | None, list[ObjectKey]]:
    """A `sql:` check: one SELECT whose references resolve and whose columns bind; what it may show
    (its columns not computed from a sensitive one), and what it reads."""
    field_loc = (*map(str, item.loc), "sql")
    try:
        facts = sql.analyze(item.check.sql, dialect, run.cache)
    except sql.SqlProblem as problem:
        line, column = document.where_inside(field_loc, problem.line, problem.column)
        run.diagnostics.append(Diagnostic(document.path, line, column, "sql",
                                      f"check {item.name}: SQL does not parse: {problem}"))
        return None, []
    if facts.statement != "query":
        run.report(document, "sql", f"check {item.name}: a sql check is one SELECT returning the offending "
                   f"rows, found {facts.statement.upper()}", *field_loc)
        return None, []
    if run.effects(document, field_loc, facts.effects, f"check {item.name}: "):
        return None, []
    run.calls(document, field_loc, {engine: sql.calls(item.check.sql, dialect, engine, run.cache)
                                    for engine in run.callers[0]}, what=f"check {item.name}: ")
    reads = [found for found in (relation(run, document, reference, index, objects, field_loc, at)
                                     for reference, at in zip(facts.references, facts.located)) if found is not None]
    if len(reads) != len(facts.references) or any(read not in columns for read in reads):
        return None, reads
    result = bind.bind(item.check.sql, dialect, {str(read).lower(): columns[read] for read in reads}, None,
                       run.cache)
    for problem in result.problems:
        line, column = document.where_inside(field_loc, problem.line, problem.column)
        hint = did_you_mean(problem.word, problem.candidates) if problem.word else ""
        run.diagnostics.append(Diagnostic(document.path, line, column, "column",
                                      f"check {item.name}: {problem.message}{hint}"))
    if result.outputs is None:
        return [], reads   # what it returns is not known: counted, never sampled
    by_name = {str(read).lower(): read for read in reads}
    referred = {by_name[source]: names for source, names in result.reads.items() if source in by_name}
    stars = {CHECKED: tuple(by_name[source] for source in result.stars if source in by_name)}
    if reads_sensitive(CHECKED, sensitive, {CHECKED: referred}, stars):
        return [], reads   # it filters or joins on a sensitive column: its rows tell of it; counted only
    shown = [name for name in result.outputs
             if name.lower() in result.derived and not any(
                 column.lower() in sensitive.get(by_name.get(source), set())
                 for source, column in result.derived[name.lower()])]
    return shown, reads

