"""Rendering a statement for a tenant's engine: parameters inlined as literals, schemas mapped,
transpiled by sqlglot, with the rewrites sqlglot does not make (PostgreSQL's ROUND, Spark's days of
the week, the names an engine would make up); what cannot be transpiled or would change meaning;
identifiers quoted; an upsert; a MaterializedTable's pinned types.

Owns what each engine is given to run, cached by a hash of its inputs. Never executes it and never
subclasses sqlglot's classes: its compiled build (sqlglotc) refuses interpreted subclasses.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError, UnsupportedError

from ...model import Numeric
from ..cache import NO_CACHE, Cache, content_key
from .parsing import parse
from .problems import SqlProblem, bounded, unsupported
from .templates import parameter_name
from .values import parameter


@bounded
def untranslatable(sql: str, dialect: str, engine: str, cache: Cache = NO_CACHE) -> str | None:
    """Why `sql` cannot be expressed in `engine`'s dialect, or None when it can (cached)."""
    key = content_key("portable", "2", sqlglot.__version__, dialect, engine, sql)   # "2": reasons said once
    cached = cache.get("sql-portable", key)
    if cached is not None:
        return cached or None
    try:
        tree = parse(sql, dialect)
        tree.sql(dialect=engine, unsupported_level=ErrorLevel.RAISE)
        problem = meaning_changes(tree, dialect, engine) or ""
    except UnsupportedError as error:
        problem = unsupported(error)
    cache.put("sql-portable", key, problem)
    return problem or None


@bounded
def render(sql: str, dialect: str, engine: str, schemas: Mapping[str, str],
           parameters: Mapping[str, str | Numeric], cache: Cache = NO_CACHE,
           names: Sequence[str | None] | None = None) -> str:
    """The statement as it runs on `engine`: parameters inlined, schemas mapped, transpiled; with
    `names` (a query's, `naming.output_names`), each item of its select list the engine would name
    itself aliased with its name there."""
    key = content_key("render", RENDER_VERSION, sqlglot.__version__, dialect, engine, sql,
                      repr(sorted(schemas.items())), repr(sorted(parameters.items())), repr(names))
    cached = cache.get("sql-render", key)
    if cached is not None:
        return cached
    folded = {k.lower(): v for k, v in schemas.items()}

    def rewrite(node: exp.Expression) -> exp.Expression:
        name = parameter_name(node)
        if name is not None:
            return parameter(parameters[name])
        if isinstance(node, exp.Table) and node.db and node.db.lower() in folded:
            node.set("db", exp.to_identifier(folded[node.db.lower()]))
        return ENGINE_REWRITES.get(engine, _as_is)(node, dialect)

    tree = parse(sql, dialect).transform(rewrite)   # a copy (the parsed tree is shared): generated in place
    if names is not None:
        _named(tree, names)
    if engine in NAMES_EVERY_VIEW_OUTPUT:
        _listed_named(tree)
    try:
        rendered = tree.sql(dialect=engine, unsupported_level=ErrorLevel.RAISE, comments=False, copy=False)
    except UnsupportedError as error:
        raise SqlProblem(f"cannot be expressed in {engine}: {error}") from None
    except SqlglotError as error:
        raise SqlProblem(str(error)) from None
    cache.put("sql-render", key, rendered)
    return rendered


NAMED = (exp.Alias, exp.Column, exp.Star, exp.Dot)   # select items that carry their own name


def _named(query: exp.Expression, names: Sequence[str | None]) -> None:
    """Alias each item of the query's outermost select list (its first branch's, for a set operation)
    that has no name of its own with the name at its position in `names`; nothing where they do not
    line up."""
    select = query
    while isinstance(select, (exp.SetOperation, exp.Subquery)):
        select = select.this if isinstance(select, exp.Subquery) else select.left
    if not isinstance(select, exp.Select) or len(select.expressions) != len(names):
        return
    select.set("expressions", [item if isinstance(item, NAMED) or name is None
                               else exp.alias_(item, exp.to_identifier(name, quoted=True))
                               for item, name in zip(select.expressions, names)])


def _listed_named(tree: exp.Expression) -> None:
    """Alias each unnamed item of a derived table's or CTE's query with the name its alias list gives it
    (what the list does anyway): Spark keeps the name it made up for such an item as the column's
    metadata through the list, and refuses a permanent view whose output carries it."""
    for alias in list(tree.find_all(exp.TableAlias)):
        if not alias.columns or not isinstance(alias.parent, (exp.Subquery, exp.CTE)):
            continue
        branches = [alias.parent.this]
        while branches:
            query = branches.pop()
            if isinstance(query, (exp.SetOperation, exp.Subquery)):
                branches += [query.this] if isinstance(query, exp.Subquery) else [query.left, query.right]
            elif isinstance(query, exp.Select) and len(query.expressions) == len(alias.columns):
                query.set("expressions", [item if isinstance(item, NAMED) else
                                          exp.alias_(item, exp.to_identifier(column.name, quoted=True))
                                          for item, column in zip(query.expressions, alias.columns)])


def upsert(statement: str, engine: str, key: Sequence[str], columns: Sequence[str]) -> str:
    """A data flow's rendered INSERT made an upsert: a row whose `key` is in the target already replaces
    that row's other columns (the columns the INSERT lists, else all of the target's: `columns`)."""
    tree = parse(statement, engine).copy()
    listed = [column.name for column in tree.this.expressions] if isinstance(tree.this, exp.Schema) else columns
    keys = {name.lower() for name in key}
    replaced = [exp.EQ(this=exp.column(name, quoted=True),   # `excluded`: the row that was proposed
                       expression=exp.Column(this=exp.to_identifier(name, quoted=True),
                                             table=exp.to_identifier("excluded")))
                for name in listed if name.lower() not in keys]
    tree.set("conflict", exp.OnConflict(conflict_keys=[exp.to_identifier(name, quoted=True) for name in key],
                                        action=exp.var("DO UPDATE" if replaced else "DO NOTHING"),
                                        expressions=replaced))
    return tree.sql(dialect=engine)


def _as_is(node: exp.Expression, dialect: str) -> exp.Expression:
    return node


def _postgres(node: exp.Expression, dialect: str) -> exp.Expression:
    """What PostgreSQL lacks and sqlglot does not transpile: round(double precision, integer) does not
    exist there (only round(numeric, integer)), so ROUND's argument goes to NUMERIC when it has a
    number of decimals. For a numeric argument the cast changes nothing; a double's result is then
    numeric, its value the same."""
    if isinstance(node, exp.Round) and node.args.get("decimals") is not None and not (
            isinstance(node.this, exp.Cast) and node.this.to.is_type("decimal")):
        node.set("this", exp.cast(node.this, exp.DataType.build("DECIMAL")))
    return node


SUNDAY_ZERO = frozenset({"duckdb", "postgres"})   # dialects whose dayofweek / EXTRACT(dow) count Sunday as 0


def _spark(node: exp.Expression, dialect: str) -> exp.Expression:
    """Days of the week, which sqlglot transpiles by name although the numbers differ: Spark's
    DAYOFWEEK and EXTRACT(DOW) count Sunday as 1 where DuckDB and PostgreSQL count it as 0, and
    its ISO day (Monday 1) is WEEKDAY + 1 (sqlglot writes `DAYOFWEEK % 7 + 1`, which is wrong there)."""
    if dialect not in SUNDAY_ZERO:
        return node
    day = node.this if isinstance(node, (exp.DayOfWeek, exp.DayOfWeekIso)) else \
        node.expression if isinstance(node, exp.Extract) else None
    unit = node.name.upper() if isinstance(node, exp.Extract) else None
    if isinstance(node, exp.DayOfWeek) or unit in ("DOW", "DAYOFWEEK"):
        return exp.paren(exp.Sub(this=exp.func("DAYOFWEEK", day), expression=exp.Literal.number(1)))
    if isinstance(node, exp.DayOfWeekIso) or unit in ("ISODOW", "DAYOFWEEKISO"):
        return exp.paren(exp.Add(this=exp.func("WEEKDAY", day), expression=exp.Literal.number(1)))
    return node


ENGINE_REWRITES = {"postgres": _postgres, "spark": _spark}   # per engine, applied to every node when rendering


def meaning_changes(tree: exp.Expression, dialect: str, engine: str) -> str | None:
    """What sqlglot would transpile to `engine` without complaint although the values change, or
    None. Refused at validate, naming the construct, rather than run with other results."""
    if engine != "spark" or dialect in ("spark", "databricks"):
        return None
    for node in tree.walk():
        if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
            return (f"{node.sql(dialect)}: Spark's collect_list keeps no order, so the ORDER BY would be "
                    "dropped")
        if isinstance(node, exp.TimeToUnix):
            return (f"{node.sql(dialect)}: epoch() is seconds as a DOUBLE (with fractions) in {dialect}, "
                    "Spark's UNIX_TIMESTAMP whole seconds as a BIGINT, in the session's time zone")
        if isinstance(node, exp.UnixToTime) and dialect == "duckdb":
            return (f"{node.sql(dialect)}: DuckDB's epoch_ms/epoch_us turn a timestamp into a number and a "
                    "number into a timestamp; transpiled, only the second meaning survives")
        if isinstance(node, exp.Pivot) and node.args.get("using"):
            return ("DuckDB's PIVOT ... ON ... USING: its columns come from the data, and Spark has no such "
                    "statement (write PIVOT (... FOR col IN (...)))")
    return None
# what an engine's tables do not keep, by table format (Spark's parquet tables: NOT NULL and primary
# keys; Delta tables keep NOT NULL but have no primary key): rendered without it, so a plan never asks
# for what cannot be had
ENGINE_DROPS = {("spark", "parquet"): frozenset({"not_null", "primary_key"}),
                ("spark", "delta"): frozenset({"primary_key"})}
NAMES_EVERY_VIEW_OUTPUT = frozenset({"spark"})   # engines that refuse a permanent view with an unnamed output
# engines whose tables carry the YAML's descriptions as their comments (table and columns), applied and read
# back like any column; elsewhere a comment is a DBA's, carried over (`Addition`), and a description the catalog's
DESCRIPTIONS_AS_COMMENTS = frozenset({"spark"})
DEFAULT_TABLE_FORMAT = {"spark": "parquet"}   # engines whose tables come in more than one format
# the table properties an engine's tables are made with, by table format: what the YAML asks for through its
# table_format (Delta's column mapping and column defaults, which decide what alters in place), so a table
# without them (a hand edit) is drift; every other property is a DBA's
TABLE_PROPERTIES = {("spark", "delta"): (("delta.columnMapping.mode", "name"),
                                         ("delta.feature.allowColumnDefaults", "supported"))}
RENDER_VERSION = "5"                       # part of the render cache key: a new value when rewrites change


FOLDS_TO_UPPER = frozenset({"snowflake"})   # engines whose unquoted names are upper case: a name declared is that


@functools.lru_cache(maxsize=65536)   # an apply quotes each name a few times over; sqlglot's generator is slow
def quote(name: str, engine: str) -> str:
    """One identifier, always quoted for the engine; on an engine that folds unquoted names to upper case,
    the object its unquoted name is (names are compared case-insensitively, as written unquoted)."""
    return exp.to_identifier(name.upper() if engine in FOLDS_TO_UPPER else name, quoted=True).sql(dialect=engine)


def qualified(schema: str, name: str, engine: str) -> str:
    return f"{quote(schema, engine)}.{quote(name, engine)}"


PLAIN_LOWER = re.compile(r"[a-z_][a-z0-9_]*")


def materialized(query: str, pinned: Sequence[tuple[str, str]], columns: Sequence[str], dialect: str) -> str:
    """A MaterializedTable's query, in `dialect`: as written, or, where `pinned` gives columns a type,
    every column of the query (`columns`, in order) selected from it with those cast."""
    if not pinned:
        return query
    types = {name.lower(): kind for name, kind in pinned}

    def named(name: str) -> exp.Identifier:
        # a name written plainly in lower case is left unquoted, so it folds as the query's own unquoted
        # alias does on every engine (Snowflake: to upper case, where "revenue" quoted is another column)
        return exp.to_identifier(name, quoted=not PLAIN_LOWER.fullmatch(name))

    def column(name: str) -> exp.Column:
        return exp.Column(this=named(name), table=exp.to_identifier("q"))

    items = [exp.alias_(exp.Cast(this=column(name), to=exp.DataType.build(types[name.lower()], dialect=dialect)),
                        named(name)) if name.lower() in types else column(name) for name in columns]
    return exp.select(*items).from_(parse(query, dialect).copy().subquery("q")).sql(dialect=dialect)


def staged(statement: str, stage: str, dialect: str) -> tuple[str, str]:
    """A flow's INSERT (or a refresh's INSERT OVERWRITE) split in two, for an engine that commits it
    before its checks: its query's rows into `stage` (a qualified table made like its target), then the
    stage's rows into the target as the INSERT would have put them (its column list, BY NAME and
    OVERWRITE kept, so defaults and casts happen there as before). Counting the stage tells the rows the
    run writes apart from those another writer commits meanwhile."""
    tree = parse(statement, dialect)
    if not isinstance(tree, exp.Insert):
        raise SqlProblem(f"not an INSERT: {statement}")
    staging = exp.to_table(stage, dialect=dialect)
    into_stage = tree.copy()
    (into_stage.this.this if isinstance(into_stage.this, exp.Schema) else into_stage.this).replace(staging.copy())
    listed = [column.copy() for column in tree.this.expressions] if isinstance(tree.this, exp.Schema) else []
    selects = tree.expression.selects if isinstance(tree.expression, exp.Query) else []
    if not listed and tree.args.get("by_name") and selects and all(isinstance(s, (exp.Alias, exp.Column)) for s in selects):
        # BY NAME: the columns its query names, as it writes them (quoted or not, so they fold alike)
        listed = [(s.args["alias"] if isinstance(s, exp.Alias) else s.this).copy() for s in selects]
    moved = exp.select(*([exp.column(name) for name in listed] or ["*"])).from_(staging)
    move = tree.copy()
    move.set("with_", None)
    move.set("expression", moved)
    return into_stage.sql(dialect=dialect), move.sql(dialect=dialect)
