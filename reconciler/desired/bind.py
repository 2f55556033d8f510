"""Columns bound by sqlglot's optimizer against the landscape's own declarations.

Owns which columns every object exposes and reads: a table's are declared; a view's are derived,
in dependency order, by sqlglot's `qualify_tables` and `qualify_columns` (SQL's scoping rules as
sqlglot implements and tests them for each dialect) with the declared columns as the schema, read
back by `scopes`, and typed where every engine gives a column the same type (UNKNOWN elsewhere); a
data flow's INSERT column list and arity are checked against its target.
What is certain is a problem at its line and column inside the SQL: a column no source in scope
has, one two sources have, an output name given twice. What sqlglot cannot decide (a source whose
columns are not known, a construct it does not model) is no problem here: the engine's proof on a
shadow decides. Never touches a tenant; parses only a statement whose analysed tree is not at hand
(`sql.take`); cached by the SQL, its dialect and the columns of what it reads.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify_columns import qualify_columns
from sqlglot.optimizer.qualify_tables import qualify_tables
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import Schema

from . import scopes, sql
from .cache import NO_CACHE, Cache, content_key
from .scopes import Problem

BIND_VERSION = "8"
Columns = dict[str, str]   # column name -> its type in the landscape's dialect (UNKNOWN: not known), in order
UNKNOWN = "UNKNOWN"
UNNAMED = "*"   # among an input's columns: it has more, which its engine names (`SELECT count(*) ...`)

__all__ = ["Bound", "Columns", "Problem", "UNNAMED", "bind"]


@dataclass(frozen=True)
class Bound:
    outputs: Columns | None              # None: could not be derived (the object is not checked further)
    problems: tuple[Problem, ...] = ()
    reads: dict[str, list[str]] = field(default_factory=dict)   # lower-case schema.name -> its columns read
    derived: dict[str, list[list[str]]] = field(default_factory=dict)
    # ^ a view's output column (lower case) -> the [input, column] pairs its values are computed from; a
    #   column whose sources binding could not establish is not listed
    stars: list[str] = field(default_factory=list)   # inputs a `*` gives on whole: their new columns show
    unnamed: int = 0                     # output columns each engine names itself (not in `outputs`)


def bind(text: str, dialect: str, inputs: Mapping[str, Columns], target: str | None = None,
         cache: Cache = NO_CACHE, tree: exp.Expression | None = None) -> Bound:
    """Bind one view's query, or a data flow's INSERT (into `target`), against `inputs`: the columns
    of every object it reads, by lower-case `schema.name` (`UNNAMED` among them: and columns the engine
    names). `tree`: the statement's tree from `sql.parse`, when the caller still holds it. Cached by
    the SQL and the inputs."""
    key = content_key("bind", BIND_VERSION, sqlglot.__version__, dialect, text, target or "",
                      json.dumps(sorted((k, list(v.items())) for k, v in inputs.items())))
    cached = cache.get("bind", key)
    if cached is not None:
        return Bound(cached["outputs"], tuple(Problem(p[0], p[1], p[2], p[3], tuple(p[4])) for p in cached["problems"]),
                     cached["reads"], cached["derived"], cached["stars"], cached["unnamed"])
    try:
        result = _bind(sql.take(text, dialect, tree), dialect, inputs, target)
    except sql.SqlProblem:   # reported where the statement is analysed
        result = Bound(None)
    cache.put("bind", key, {"outputs": result.outputs, "reads": result.reads, "derived": result.derived,
                            "stars": result.stars, "unnamed": result.unnamed,
                            "problems": [[p.line, p.column, p.message, p.word, list(p.candidates)]
                                         for p in result.problems]})
    return result


def _bind(tree: exp.Expression, dialect: str, inputs: Mapping[str, Columns], target: str | None) -> Bound:
    query = tree.expression if isinstance(tree, exp.Insert) else tree
    if isinstance(tree, exp.Insert) and tree.args.get("with_") and isinstance(query, exp.Query):
        query.set("with_", tree.args["with_"])   # WITH ... INSERT: the CTEs are the query's
    if not isinstance(query, exp.Query):
        return Bound(None)
    reading = _qualified(query, dialect, inputs)
    if isinstance(tree, exp.Insert):
        return Bound(None, tuple(_insert_problems(tree, reading, inputs, target)),
                     _sorted(reading.reads) if reading else {})
    if reading is None:
        return Bound(None)
    outputs = None if reading.outputs is None else _typed(query, reading.outputs, dialect, inputs)
    return Bound(outputs, tuple(reading.problems), _sorted(reading.reads),
                 {name: sorted([list(pair) for pair in pairs]) for name, pairs in sorted(reading.derived.items())},
                 sorted(reading.stars), reading.unnamed)


def _qualified(query: exp.Query, dialect: str, inputs: Mapping[str, Columns]) -> scopes.Reading | None:
    """sqlglot's qualification of `query`, in place, read back; None where sqlglot cannot decide."""
    binding = _dialect(dialect)
    columns = {name: tuple(c.lower() for c in given if c != UNNAMED) for name, given in inputs.items()}
    partial = frozenset(name for name, given in inputs.items() if UNNAMED in given)
    _note_stars(query)
    try:
        normalize_identifiers(query, dialect=binding)
        qualify_tables(query, dialect=binding)
        qualify_columns(query, _Declared(columns, partial, binding), expand_alias_refs=True, expand_stars=True,
                        allow_partial_qualification=True)
    except (SqlglotError, RecursionError, AssertionError, KeyError, IndexError, AttributeError, TypeError, ValueError):
        return None   # what sqlglot does not model (or trips on): the engine's proof decides
    try:
        spelled = {name: {c.lower(): c for c in given} for name, given in inputs.items()}
        return scopes.read(query, columns, partial, spelled)
    except (SqlglotError, RecursionError):   # a scope sqlglot cannot build (an alias used twice, say)
        return None


def _typed(query: exp.Query, names: list[str], dialect: str, inputs: Mapping[str, Columns]) -> Columns:
    """Each output column's type where every engine gives it the same (`_type_of`): a declared
    column's passed on (through CTEs and derived tables too), a cast's, a count's, a comparison's;
    UNKNOWN elsewhere: a computation each engine types its own way (a sum's widening, decimal or date
    arithmetic, a function's text type), an output of a set operation, a query sqlglot trips on.
    sqlglot's `annotate_types` infers more, but where engines differ its answer is one dialect's
    guess, and where they agree it is what is read here directly, at a fifth of a cold validate's
    binding time less."""
    if not isinstance(query, exp.Select):
        return {name: UNKNOWN for name in names}
    declared = {source: {column.lower(): kind for column, kind in columns.items()}
                for source, columns in inputs.items()}
    typed: dict[int, dict[str, str]] = {}
    try:
        for scope in traverse_scope(query):   # inner scopes first: a CTE before what reads it
            if isinstance(scope.expression, exp.Select):
                typed[id(scope.expression)] = {item.alias_or_name.lower(): _type_of(item, scope, typed, declared,
                                                                                     dialect)
                                               for item in scope.expression.selects}
    except (SqlglotError, RecursionError, AssertionError, KeyError, IndexError, AttributeError, TypeError,
            ValueError):   # sqlglot's own slips: the types are not known, the view is as good as before
        return {name: UNKNOWN for name in names}
    given = typed.get(id(query), {})
    return {name: given.get(name.lower(), UNKNOWN) for name in names}


# what gives BOOLEAN on every engine, whatever it compares
_PREDICATES = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.And, exp.Or, exp.Not, exp.Is, exp.In,
               exp.Between, exp.Like, exp.ILike, exp.Exists)


def _type_of(node: exp.Expression, scope: Scope, typed: Mapping[int, Mapping[str, str]],
             declared: Mapping[str, Mapping[str, str]], dialect: str) -> str:
    """The type every engine gives one select item, in `dialect`; UNKNOWN where engines may differ."""
    while isinstance(node, (exp.Alias, exp.Paren)):
        node = node.this
    if isinstance(node, exp.Cast):
        return _spelled(node.to, dialect)
    if isinstance(node, exp.Count):
        return _named_type("BIGINT", dialect)
    if isinstance(node, _PREDICATES):
        return _named_type("BOOLEAN", dialect)
    if not isinstance(node, exp.Column):
        return UNKNOWN
    source = scope.sources.get(node.table)
    if isinstance(source, Scope):
        return typed.get(id(source.expression), {}).get(node.name.lower(), UNKNOWN)
    if isinstance(source, exp.Table) and not source.alias_column_names and not source.args.get("pivots"):
        return declared.get(_table_name(source) or "", {}).get(node.name.lower(), UNKNOWN)
    return UNKNOWN


def _spelled(kind: exp.Expression, dialect: str) -> str:
    if not isinstance(kind, exp.DataType) or any(inner.is_type(exp.DataType.Type.UNKNOWN, exp.DataType.Type.NULL)
                                                 for inner in kind.find_all(exp.DataType)):
        return UNKNOWN
    try:
        return kind.sql(dialect=dialect)
    except SqlglotError:
        return UNKNOWN


@functools.cache
def _named_type(kind: str, dialect: str) -> str:
    return exp.DataType.build(kind).sql(dialect=dialect)


def _note_stars(query: exp.Query) -> None:
    """Where the first select list's `*` items are written, before sqlglot replaces them with what they
    give: a name given twice through one is reported there."""
    first = query
    while isinstance(first, exp.SetOperation):
        first = first.this
    if isinstance(first, exp.Subquery):
        first = first.unnest()
    if isinstance(first, exp.Select):
        first.meta["stars"] = [sql.position(item) if item.find(exp.Identifier) is not None else _star_at(item)
                               for item in first.expressions if item.is_star]


def _star_at(item: exp.Expression) -> tuple[int, int]:
    star = item.find(exp.Star) or item
    meta = star.meta or {}
    return meta.get("line", 1), meta.get("col", 1)


def _insert_problems(tree: exp.Insert, reading: scopes.Reading | None, inputs: Mapping[str, Columns],
                     target: str | None) -> list[Problem]:
    """A data flow: the columns it names exist in the target, and it selects as many values as it
    inserts (checked only once its SELECT bound)."""
    problems = list(reading.problems) if reading is not None else []
    columns = inputs.get((target or "").lower())
    if columns is None:
        return problems
    listed = tree.this.expressions if isinstance(tree.this, exp.Schema) else []
    known = {name.lower() for name in columns}
    missing = [Problem(*sql.position(i), f"column {i.name} does not exist in {target}", i.name, tuple(columns))
               for i in listed if i.name.lower() not in known]
    if reading is None or reading.outputs is None or reading.problems or missing:
        return problems + missing
    count, wanted = len(reading.outputs) + reading.unnamed, len(listed) or len(columns)
    if count != wanted:
        names = "the columns it lists" if listed else f"{target}'s columns"
        table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        problems.append(Problem(*sql.position(table), f"the SELECT gives {count} values for {wanted} of {names}"))
    return problems


def _sorted(reads: Mapping[str, set[str]]) -> dict[str, list[str]]:
    return {source: sorted(columns) for source, columns in sorted(reads.items())}


@functools.cache
def _dialect(dialect: str) -> Dialect:
    """`dialect` (with `$$` parameters) binding names case-insensitively, as every engine compares the
    unquoted names the landscape declares; what sqlglot then renames is noted first (`scopes.note`)."""
    base = type(Dialect.get_or_raise(dialect))

    def normalize_identifier(self, expression):
        if isinstance(expression, exp.Identifier):
            scopes.note(expression)
        return base.normalize_identifier(self, expression)

    binding = type(f"Binding{base.__name__}", (base,), {"normalize_identifier": normalize_identifier})
    return binding(normalization_strategy="case_insensitive")


class _Declared(Schema):
    """The columns of a statement's inputs, as sqlglot's resolver asks for them (by `schema.name`)."""

    def __init__(self, columns: Mapping[str, tuple[str, ...]], partial: frozenset[str], dialect: Dialect):
        self._columns, self._partial, self._dialect = columns, partial, dialect

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def column_names(self, table, only_visible: bool = False, dialect=None, normalize=None) -> list[str]:
        name = _table_name(table)
        if name is None:
            return []
        return [*self._columns.get(name, ()), *(["*"] if name in self._partial else [])]   # "*": and more

    def add_table(self, table, column_mapping=None, dialect=None, normalize=None, match_depth=True) -> None:
        # sqlglot's Schema requires it; qualifying only reads a schema. The inputs are the landscape's
        # declared columns, read-only by design: adding one would bind against what no file declares.
        raise TypeError("binding's inputs are the declared columns; a table is never added to them")

    def get_column_type(self, table, column, dialect=None, normalize=None) -> exp.DataType:
        return exp.DataType.build("unknown")

    def get_udf_type(self, udf, dialect=None, normalize=None) -> exp.DataType:
        return exp.DataType.build("unknown")

    @property
    def supported_table_args(self) -> tuple[str, ...]:
        return ("this", "db")

    @property
    def empty(self) -> bool:
        return not self._columns


def _table_name(table) -> str | None:
    """The lower-case `schema.name` of a table reference sqlglot asks about; None for one with a catalog."""
    if not isinstance(table, exp.Table) or table.catalog:
        return None
    return f"{table.db}.{table.name}".lower() if table.db else table.name.lower()

