"""Columns bound with sqlglot against the landscape's own declarations.

Owns which columns every object exposes and reads: a table's are declared; a view's are derived,
in dependency order, from its SQL (sqlglot's scopes find every column reference and its source;
qualify expands `*`; annotate_types gives the types); a data flow's INSERT column list and
arity are checked against its target. Every column that resolves to no source, or to two, is a
problem at its line and column inside the SQL. Never touches a tenant; never hand-parses SQL;
an object whose inputs could not be bound is skipped rather than reported twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.qualify_tables import qualify_tables
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import MappingSchema

from . import sql
from .cache import NO_CACHE, Cache, content_key

BIND_VERSION = "2"
Columns = dict[str, str]   # column name -> its type in the landscape's dialect, in order


@dataclass(frozen=True)
class Problem:
    """A column that does not bind, at its position inside the SQL (1-based)."""

    line: int
    column: int
    message: str
    word: str = ""                       # what was written, for a did-you-mean among `candidates`
    candidates: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bound:
    outputs: Columns | None              # None: could not be derived (the object is not checked further)
    problems: tuple[Problem, ...] = ()
    reads: dict[str, list[str]] = field(default_factory=dict)   # lower-case schema.name -> its columns read


def bind(text: str, dialect: str, inputs: Mapping[str, Columns], target: str | None = None,
         cache: Cache = NO_CACHE) -> Bound:
    """Bind one view's query, or a data flow's INSERT (into `target`), against `inputs`: the columns
    of every object it reads, by lower-case `schema.name`. Cached by the SQL and those inputs."""
    key = content_key("bind", BIND_VERSION, sqlglot.__version__, dialect, text, target or "",
                      json.dumps(sorted((k, list(v.items())) for k, v in inputs.items())))
    cached = cache.get("bind", key)
    if cached is not None:
        return Bound(cached["outputs"], tuple(Problem(p[0], p[1], p[2], p[3], tuple(p[4])) for p in cached["problems"]),
                     cached["reads"])
    try:
        result = _bind(sql.parse(text, dialect), dialect, inputs, target)
    except (sql.SqlProblem, SqlglotError, RecursionError):
        result = Bound(None)   # what does not parse is validate's to report, once
    cache.put("bind", key, {"outputs": result.outputs, "reads": result.reads,
                            "problems": [[p.line, p.column, p.message, p.word, list(p.candidates)]
                                         for p in result.problems]})
    return result


def _bind(tree: exp.Expression, dialect: str, inputs: Mapping[str, Columns], target: str | None) -> Bound:
    if isinstance(tree, exp.Insert):
        return _insert(tree, dialect, inputs, target)
    found, reads = resolve(tree, dialect, inputs)
    problems = tuple(found)
    if not problems:
        return Bound(outputs(tree, dialect, inputs), problems, reads)
    # what it would expose, as written, so that what reads it is checked too in the same run
    named = tree.named_selects if isinstance(tree, exp.Query) and not tree.is_star else []
    return Bound({name: "UNKNOWN" for name in named} or None, problems, reads)


def _insert(tree: exp.Insert, dialect: str, inputs: Mapping[str, Columns], target: str | None) -> Bound:
    """A data flow: its SELECT binds like a view's; the columns it names exist in the target, and
    it selects as many values as it inserts."""
    query = tree.expression
    problems, reads = resolve(query, dialect, inputs) if isinstance(query, exp.Query) else ([], {})
    columns = inputs.get((target or "").lower())
    if columns is None:
        return Bound(None, tuple(problems), reads)
    listed = tree.this.expressions if isinstance(tree.this, exp.Schema) else []
    known = {name.lower() for name in columns}
    for identifier in listed:
        if identifier.name.lower() not in known:
            line, column = _position(identifier)
            problems.append(Problem(line, column, f"column {identifier.name} does not exist in {target}",
                                    identifier.name, tuple(columns)))
    if not problems and isinstance(query, exp.Query):
        expanded = outputs(query, dialect, inputs) if query.is_star else None
        selected = len(expanded) if expanded is not None else None if query.is_star else len(query.selects)
        wanted = len(listed) if listed else len(columns)
        if selected is not None and selected != wanted:
            line, column = _position(tree.this.this if isinstance(tree.this, exp.Schema) else tree.this)
            names = "the columns it lists" if listed else f"{target}'s columns"
            problems.append(Problem(line, column, f"the SELECT gives {selected} values for {wanted} of {names}"))
    return Bound(None, tuple(problems), reads)


def resolve(tree: exp.Expression, dialect: str, inputs: Mapping[str, Columns]
            ) -> tuple[list[Problem], dict[str, list[str]]]:
    """Every column reference that names no column of its sources, or a column two sources have; and
    the columns of the objects it reads that it refers to (`*` reads them all). Where a source's
    columns are not known (a table function, a derived `SELECT *`), nothing that could come from
    it is reported."""
    tree = qualify_tables(tree.copy(), dialect=sql.templated(dialect))
    problems: list[Problem] = []
    reads: dict[str, set[str]] = {}
    for scope in traverse_scope(tree):
        chain = [scope]
        while chain[-1].is_subquery and chain[-1].parent is not None:   # a correlated subquery: outer scopes
            chain.append(chain[-1].parent)
        levels = [[_source_columns(name, source, inputs) for name, source in level.sources.items()]
                  for level in chain]
        select = scope.expression if isinstance(scope.expression, exp.Select) else None
        # a select alias may be referred to elsewhere in the query (DuckDB: even later in the select
        # list), never by the expression it names
        aliases = [(e.alias.lower(), e) for e in select.expressions if isinstance(e, exp.Alias)] if select else []
        using = {identifier.name.lower() for join in select.args.get("joins") or []
                 for identifier in join.args.get("using") or []} if select else set()
        for column in scope.columns:
            own = _projection_of(column, select)
            allowed = using | {alias for alias, node in aliases if node is not own}
            problem, owner = _check(column, levels, allowed)
            if problem is not None:
                problems.append(problem)
            elif owner is not None and owner[1] in inputs:
                reads.setdefault(owner[1], set()).add(column.name.lower())
        for star in select.expressions if select else ():
            starred = star.table if isinstance(star, exp.Column) and isinstance(star.this, exp.Star) else \
                "" if isinstance(star, exp.Star) else None
            for alias, what, columns in levels[0] if starred is not None else ():
                if what in inputs and columns is not None and starred in ("", alias):
                    reads.setdefault(what, set()).update(c.lower() for c in columns)
    return problems, {source: sorted(columns) for source, columns in sorted(reads.items())}


def _projection_of(column: exp.Column, select: exp.Select | None) -> exp.Expression | None:
    """The select-list expression `column` stands in, if it stands in one of `select`'s."""
    node: exp.Expression | None = column
    while node is not None and select is not None and node.parent is not select:
        node = node.parent
    return node if node is not None and select is not None and node.arg_key == "expressions" else None


def _source_columns(name: str, source, inputs: Mapping[str, Columns]) -> tuple[str, str, list[str] | None]:
    """(alias, what it is for people, its column names or None when not known)."""
    if isinstance(source, exp.Table):
        qualified = (f"{source.db}.{source.name}" if source.db else source.name).lower()
        columns = inputs.get(qualified)
        return name, qualified, list(columns) if columns is not None else None
    if isinstance(source, Scope) and isinstance(source.expression, exp.Query):
        selects = source.expression.named_selects
        known = not any(isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
                        for e in source.expression.selects)
        return name, name, list(selects) if known else None
    return name, name, None


Source = tuple[str, str, "list[str] | None"]   # (alias in the query, what it is, its column names if known)


def _check(column: exp.Column, levels: Sequence[Sequence[Source]],
           allowed: set[str]) -> tuple[Problem | None, Source | None]:
    """Resolve a column as engines do: its own scope's sources first, then (in a correlated subquery)
    the enclosing ones. (the problem, or None; the source it comes from, when known)."""
    if isinstance(column.this, exp.Star) or _lambda_parameter(column):
        return None, None
    name = column.name.lower()
    sources = [source for level in levels for source in level]
    if column.table:
        match = [s for s in sources if s[0].lower() == column.table.lower()]
        if not match or match[0][2] is None:   # not a source here (a struct's field), or not known
            return None, None
        alias, what, columns = match[0]
        if name in {c.lower() for c in columns}:
            return None, match[0]
        line, position = _position(column.this)
        return Problem(line, position, f"column {column.table}.{column.name} does not exist: {what} has no column "
                                       f"{column.name}", column.name, tuple(columns)), None
    if name in allowed:
        return None, None
    line, position = _position(column.this)
    for level in levels:
        owners = [s for s in level if s[2] is not None and name in {c.lower() for c in s[2]}]
        if len(owners) == 1:
            return None, owners[0]
        if len(owners) > 1:
            named = " and ".join(what + (f" ({alias})" if alias != what else "") for alias, what, _ in owners[:2])
            return Problem(line, position, f"column {column.name} is ambiguous: {named} both have it; qualify it"), None
        if any(s[2] is None for s in level):   # it may come from a source whose columns are not known
            return None, None
    where = ", ".join(dict.fromkeys(what for _, what, _ in sources)) or "nothing it reads"
    candidates = tuple(c for s in sources for c in s[2] or ())
    return Problem(line, position, f"column {column.name} does not exist in {where}", column.name, candidates), None


def _lambda_parameter(column: exp.Column) -> bool:
    lam = column.find_ancestor(exp.Lambda)
    while lam is not None:
        if column.name.lower() in {p.name.lower() for p in lam.expressions}:
            return True
        lam = lam.find_ancestor(exp.Lambda)
    return False


def outputs(tree: exp.Expression, dialect: str, inputs: Mapping[str, Columns]) -> Columns | None:
    """The columns a query exposes, by name (`*` expanded with qualify); None when sqlglot cannot
    tell. Their types stay UNKNOWN: nothing here needs them yet, and annotating every view costs
    more than the rest of validation together."""
    if not isinstance(tree, exp.Query):
        return None
    if not tree.is_star:
        names = tree.named_selects
    else:
        try:
            names = qualify(tree.copy(), schema=mapping(inputs, dialect), dialect=sql.templated(dialect),
                            validate_qualify_columns=False, quote_identifiers=False).named_selects
        except (SqlglotError, ValueError, KeyError):
            return None
    if not names or "*" in names:
        return None
    return {name: "UNKNOWN" for name in names}


def mapping(inputs: Mapping[str, Columns], dialect: str) -> MappingSchema:
    nested: dict[str, dict[str, Columns]] = {}
    for qualified, columns in inputs.items():
        schema, _, name = qualified.partition(".")
        nested.setdefault(schema, {})[name] = dict(columns)
    return MappingSchema(nested, dialect=dialect, normalize=True)


def _position(node: exp.Expression) -> tuple[int, int]:
    """Where a node's text starts inside the SQL (sqlglot records where its last character is)."""
    identifier = node if isinstance(node, exp.Identifier) else node.find(exp.Identifier) or node
    meta = identifier.meta or {}
    line, end = meta.get("line", 1), meta.get("col", 1)
    width = len(identifier.name) + (2 if getattr(identifier, "quoted", False) else 0) if identifier.name else 1
    return line, max(end - width + 1, 1)
