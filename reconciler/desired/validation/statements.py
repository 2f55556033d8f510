"""The SQL of every view, MaterializedTable and data flow: each statement parsed once, of the kind its
object needs, changing nothing its kind may not, and runnable on every engine the tenants use.

Owns reading each statement (`sql.analyze`) in dependency order, so that binding finds the tree at
hand; what the tenants' engines may call (`policy`), cannot express (sqlglot refuses to transpile)
or have no column type for. Never resolves a name (`references`) and never reports a column
(`columns` binds them again, and says).
"""

from __future__ import annotations

import contextlib

from sqlglot import exp

from ...errors import Diagnostic
from ...model import DataFlow, MaterializedTable, ObjectKey, Table, View
from .. import bind, column_types, sql
from .columns import bind_one
from .references import connections_by_name, dependencies
from .run import Run

ENGINES_WITHOUT_MATERIALIZED_TABLES = frozenset({"spark"})   # their apply cannot yet rebuild one and prove it


def analyse(run: Run, objects, dialect: str) -> dict[ObjectKey, sql.SqlFacts]:
    """Analyse every statement. Each is parsed once, and its tree serves while it is at hand: the
    analysis, what each engine may run (`engines`), and binding (`columns`, which finds it bound).
    Binding needs the columns of what a statement reads, so the statements are analysed depth
    first, what one reads before it: only the trees on the path are held."""
    facts: dict[ObjectKey, sql.SqlFacts] = {}
    index, connections = {key.folded(): key for key in objects}, connections_by_name(objects)
    known: dict[ObjectKey, bind.Columns | None] = {}   # what binding found so far, as `columns` finds it
    seen: set[ObjectKey] = set()
    for start in objects:
        stack: list[tuple[ObjectKey, exp.Expression | None, bool]] = [(start, None, False)]
        while stack:
            key, tree, finished = stack.pop()
            if finished:   # a statement whose facts came from the cache has no tree: `columns` binds it
                if tree is not None or isinstance(objects[key], Table):
                    with run.quiet():
                        bind_one(run, key, objects, facts, dependencies(run, key, objects, facts, index, connections),
                                 known, dialect, tree)
                continue
            if key in seen:
                continue
            seen.add(key)
            tree = _analysed(run, key, objects[key], dialect, facts)
            stack.append((key, tree, True))
            for reference in facts[key].references if tree is not None else ():   # what it reads first
                found = index.get(ObjectKey.parse(reference).folded()) if reference.count(".") == 1 else None
                if found is not None and found not in seen:
                    stack.append((found, None, False))
            target = index.get(ObjectKey.parse(objects[key].target).folded()) \
                if isinstance(objects[key], DataFlow) and tree is not None else None
            if target is not None and target not in seen:
                stack.append((target, None, False))
    return facts


def engines(run: Run, objects, facts, dialect: str, engines: dict[str, str]) -> None:
    """SQL that some tenant's engine cannot run (sqlglot cannot transpile it) or may not run there (a
    function off the engine's allowlist) is refused now."""
    for key in facts:
        found = {engine: sql.calls(objects[key].sql, dialect, engine, run.cache) for engine in run.callers[0]}
        run.calls(run.documents[key], ("sql",), found, isinstance(objects[key], DataFlow))
    for engine in sorted(set(engines.values()) & ENGINES_WITHOUT_MATERIALIZED_TABLES):
        tenants = ", ".join(sorted(name for name, e in engines.items() if e == engine))
        for key, obj in objects.items():
            if isinstance(obj, MaterializedTable):
                run.report(run.documents[key], "kind", f"a MaterializedTable is not built for {engine} tenants "
                           f"yet (tenant {tenants})", "kind")
    for engine in sorted(set(engines.values())):
        tenants = ", ".join(sorted(name for name, e in engines.items() if e == engine))
        for key in facts:
            if engine == dialect and facts[key].unwritable:   # rendering for the tenant would fail at plan
                run.report(run.documents[key], "sql", f"cannot be rendered for {engine} (tenant {tenants}): "
                           f"sqlglot, which writes every statement a tenant runs, refuses it: "
                           f"{facts[key].unwritable}", "sql")
            problem = engine != dialect and sql.untranslatable(objects[key].sql, dialect, engine, run.cache)
            if problem:
                run.report(run.documents[key], "sql", f"cannot run on {engine} (tenant {tenants}): {problem}",
                           "sql")
    for engine in sorted(set(engines.values())):
        _column_types(run, objects, engine, ", ".join(sorted(name for name, e in engines.items() if e == engine)))


def _analysed(run: Run, key: ObjectKey, obj, dialect: str, facts: dict) -> exp.Expression | None:
    """Analyse one object's SQL into `facts`, and what its engines may run; the tree, while parsed."""
    if not isinstance(obj, (View, MaterializedTable, DataFlow)):
        return None
    document = run.documents[key]
    try:
        result = sql.analyze(obj.sql, dialect, run.cache)
    except sql.SqlProblem as problem:
        line, column = document.where_inside(("sql",), problem.line, problem.column)
        run.diagnostics.append(Diagnostic(document.path, line, column, "sql",
                                          f"SQL does not parse: {problem}"))
        return None
    expected = "insert" if isinstance(obj, DataFlow) else "query"
    if result.statement != expected:
        wanted = "a SELECT" if expected == "query" else "an INSERT INTO ... SELECT"
        run.report(document, "sql", f"{obj.kind} SQL must be {wanted}, "
                   f"found {result.statement.upper()}", "sql")
        return None
    if isinstance(obj, DataFlow) and ObjectKey.parse(result.insert_target or "").folded() \
            != ObjectKey.parse(obj.target).folded():
        run.report(document, "sql", f"the SQL inserts into {result.insert_target} but the "
                   f"target is {obj.target}", "sql")
    if run.effects(document, ("sql",), result.effects, ""):
        return None
    facts[key] = result
    tree = sql.parsed(obj.sql, dialect)   # None when the facts came from the cache
    if tree is not None:   # what `engines` asks, answered (cached) while the tree is at hand
        for engine in run.callers[0]:
            with contextlib.suppress(sql.SqlProblem):
                sql.calls(obj.sql, dialect, engine, run.cache)
                if engine != dialect:
                    sql.untranslatable(obj.sql, dialect, engine, run.cache)
    return tree


def _column_types(run: Run, objects, engine: str, tenants: str) -> None:
    """A table column's declared type that the engine has no type for (a bit string on Spark)."""
    for key, obj in objects.items():
        if not isinstance(obj, Table):
            continue
        for index, column in enumerate(obj.columns):
            try:
                column_types.declared(column.type, run.dialect)
            except sql.SqlProblem:
                continue   # not a type at all: reported with the object
            try:
                column_types.column_type(column.type, run.dialect, engine)
            except sql.SqlProblem as problem:
                run.report(run.documents[key], "type", f"cannot run on {engine} (tenant {tenants}): {problem}",
                           "columns", index, "type")
