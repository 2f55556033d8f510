"""What a statement sqlglot's optimizer has qualified says about its columns, as plain data.

Owns reading the tree `bind` had qualified (every column resolved by SQL's scoping rules to the
source it comes from, `*` expanded, select-list aliases expanded where they are referred to): the
columns the statement gives (as written, and how many its engines name themselves), the columns
of each input it refers to, the input columns each output column is computed from, the inputs a
`*` gives on whole, and the references that certainly bind nowhere, each at its line and column:
a column no source in scope has, one two sources have, a qualified one its source lacks, an output
name given twice (never inside a CTE nothing reads: DuckDB does not bind those). Where a source's
columns are not all known (a table function, an input whose engine names some of its columns,
VALUES without column names), nothing that could come from it is reported. Pure: never parses,
never touches a tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from .sql import position

# columns an engine gives every row without a declaration (DuckDB's rowid, PostgreSQL's system columns)
PSEUDOCOLUMNS = frozenset({"rowid", "ctid", "xmin", "xmax", "cmin", "cmax", "tableoid", "oid", "_metadata"})
Pair = tuple[str, str]   # (input as lower-case schema.name, its column, lower case)


@dataclass(frozen=True)
class Problem:
    """A column that does not bind, at its position inside the SQL (1-based)."""

    line: int
    column: int
    message: str
    word: str = ""                       # what was written, for a did-you-mean among `candidates`
    candidates: tuple[str, ...] = ()


@dataclass
class Reading:
    outputs: list[str] | None            # the named output columns as written; None: not known
    unnamed: int = 0                     # outputs whose name each engine makes up itself
    problems: list[Problem] = field(default_factory=list)
    reads: dict[str, set[str]] = field(default_factory=dict)
    derived: dict[str, set[Pair]] = field(default_factory=dict)   # output (lower case) -> what it is computed from
    stars: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class _Source:
    alias: str
    what: str                    # an input's lower-case schema.name, or the alias of a derived source
    columns: tuple[str, ...]     # its column names (lower case) as far as they are known
    complete: bool               # all of them: a name it lacks is certainly not there
    table: str | None = None     # the input it is, when it is one
    scope: Scope | None = None   # the derived source it is, when it is one


def note(identifier: exp.Identifier) -> None:
    """What qualifying renames, noted on an identifier before it is normalised (sqlglot's walk reaches
    each one once): its spelling where lower case changes it (a view's columns are named as written);
    on a select list, the aliases it gives (ORDER BY and HAVING may name them after an alias list has
    renamed them); on a derived table's or CTE's query, the names its alias list gives its columns
    (sqlglot forgets them, and over a set operation never applies them); on a select, the columns its
    USING joins merge (qualifying rewrites USING as ON)."""
    if identifier.this != identifier.this.lower() and "spelled" not in identifier.meta:
        identifier.meta["spelled"] = identifier.this
    parent = identifier.parent
    if isinstance(parent, exp.Alias) and identifier.arg_key == "alias" and isinstance(parent.parent, exp.Select):
        parent.parent.meta.setdefault("aliases", set()).add(identifier.this.lower())
    elif isinstance(parent, exp.Join) and identifier.arg_key == "using" and isinstance(parent.parent, exp.Select):
        parent.parent.meta.setdefault("merged", set()).add(identifier.this.lower())   # qualifying makes it ON
    elif isinstance(parent, exp.TableAlias) and identifier.arg_key == "columns" and \
            isinstance(parent.parent, (exp.Subquery, exp.CTE)) and isinstance(parent.parent.this, exp.Query):
        query = parent.parent.this
        query.meta.setdefault("listed", []).append((identifier.this.lower(), identifier.this))


def read(query: exp.Query, inputs: Mapping[str, tuple[str, ...]], partial: frozenset[str],
         spelled: Mapping[str, Mapping[str, str]]) -> Reading:
    """Read a qualified query. `inputs`: the columns (lower case) of each input, by lower-case
    schema.name; `partial`: inputs that may have more (their engine names some); `spelled`: each
    input's column names as declared, by their lower case."""
    return _Reader(query, inputs, partial, spelled).read()


class _Scopes:
    """What each scope of a qualified query selects from and gives: its sources by alias, the columns
    it gives, the source a column names; each worked out once per scope."""

    def __init__(self, query: exp.Query, inputs, partial, spelled):
        self.query, self.inputs, self.partial, self.spelled = query, inputs, partial, spelled
        self.scopes = traverse_scope(query)
        self.by_expression = {id(scope.expression): scope for scope in self.scopes}
        self._sources: dict[int, dict[str, _Source]] = {}
        self._outputs: dict[int, list[tuple[str, str, bool]] | None] = {}
        self._lineage: dict[tuple[int, int], frozenset[Pair] | None] = {}
        self._chains: dict[int, list[Scope]] = {}

    # -- sources ----------------------------------------------------------------------------
    def sources(self, scope: Scope) -> dict[str, _Source]:
        """The sources a scope selects from, by alias, in the order it names them."""
        if id(scope) not in self._sources:
            found = {alias: self._source(alias, source) for alias, (_, source) in scope.selected_sources.items()}
            if scope.lateral_sources or scope.pivots:   # what these give is sqlglot's guess: nothing is certain
                found = {alias: _Source(s.alias, s.what, s.columns, False, s.table, s.scope)
                         for alias, s in found.items()}
                found[""] = _Source("", "", (), False)
            self._sources[id(scope)] = found
        return self._sources[id(scope)]

    def _source(self, alias: str, source: exp.Table | Scope) -> _Source:
        if isinstance(source, exp.Table):
            name = ".".join(part.name for part in source.parts).lower()
            columns = self.inputs.get(name) if isinstance(source.this, exp.Identifier) else None
            if columns is None:   # a table function, or what is not an input here: not known
                return _Source(alias, name or alias, (), False)
            return _Source(alias, name, columns, name not in self.partial, table=name)
        expression = source.expression
        if isinstance(expression, (exp.Values, exp.Unnest)):   # named by their alias, if it names them all
            given = expression.args.get("alias")
            written = [c for c in given.columns if c.meta.get("line")] if given is not None else []
            named = tuple(c.name.lower() for c in written)
            if len(written) != len(given.columns if given is not None else ()):
                named = ()   # sqlglot named them (_col_0): DuckDB says col0, PostgreSQL column1
            rows = expression.expressions[0].expressions if isinstance(expression, exp.Values) and \
                expression.expressions and isinstance(expression.expressions[0], exp.Tuple) else None
            return _Source(alias, alias, named, bool(named) and (rows is None or len(rows) == len(named)),
                           scope=source)
        outputs = self.outputs(source)
        if outputs is None:
            return _Source(alias, alias, (), False, scope=source)
        return _Source(alias, alias, tuple(name for name, _, _ in outputs), all(named for _, _, named in outputs),
                       scope=source)

    def outputs(self, scope: Scope) -> list[tuple[str, str, bool]] | None:
        """(name in lower case, as written, whether the statement names it) for each column a scope
        gives, in order; None where a `*` could not be expanded (its sources are not all known)."""
        key = id(scope)
        if key in self._outputs:
            return self._outputs[key]
        self._outputs[key] = None   # a scope that reads itself (recursion) gives what is not known
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):   # its columns are its first branch's
            first = next((s for s in scope.set_operation_scopes[:1]), None)
            result = self.outputs(first) if first is not None else None
        elif isinstance(expression, exp.Select):
            result = []
            for item in expression.selects:
                if item.is_star:
                    result = None
                    break
                result.append(self._output(scope, item))
        else:
            result = [(n.lower(), n, True) for n in expression.alias_column_names] or None
        listed = expression.meta.get("listed", [])   # named by an alias list, whatever they compute
        if result is not None and listed:
            result = [(*listed[at], True) if at < len(listed) else given for at, given in enumerate(result)]
        self._outputs[key] = result
        return result

    def _output(self, scope: Scope, item: exp.Expression) -> tuple[str, str, bool]:
        name = item.alias_or_name.lower()
        written = item.args.get("alias") if isinstance(item, exp.Alias) else None
        if written is not None and written.meta.get("line"):   # an alias, or a column list, as written
            return name, written.meta.get("spelled", written.name), True
        value = item.this if isinstance(item, exp.Alias) else item
        if isinstance(value, exp.Coalesce) and all(_made(c) for c in value.find_all(exp.Column)):
            value = value.this   # a USING column: its first source's
        if isinstance(value, exp.Dot):
            return name, value.expression.meta.get("spelled", value.expression.name), True
        if not isinstance(value, exp.Column):   # an expression: each engine names it its own way
            return name, name, False
        if not _made(value):
            return name, value.this.meta.get("spelled", value.name), True
        source = self._source_of(scope, value)   # made by expanding `*`: named as its source names it
        if source is None or not source.complete:   # a name sqlglot made up (VALUES' _col_0)
            return name, name, False
        if source.table is not None:
            return name, self.spelled.get(source.table, {}).get(name, name), True
        given = self.outputs(source.scope) if source.scope is not None else None
        found = next((written for lower, written, _ in given or () if lower == name), None)
        return (name, found, True) if found is not None else (name, name, False)   # not a name it gives

    def _levels(self, scope: Scope) -> list[Scope]:
        """The scope, then the ones a correlated subquery in it may also read, innermost first."""
        levels = self._chains.get(id(scope))
        if levels is None:
            levels = self._chains[id(scope)] = [scope]
            while levels[-1].can_be_correlated and levels[-1].parent is not None:
                levels.append(levels[-1].parent)
        return levels

    def _source_of(self, scope: Scope, column: exp.Column, having: str | None = None) -> _Source | None:
        """The source a qualified column names: its own scope's first, then an enclosing one's (`having`: an
        enclosing source of that name that has the column, where the nearer one does not: DuckDB reads it)."""
        table = column.table
        nearest = self.sources(scope).get(table)
        if nearest is not None and (having is None or having in nearest.columns):
            return nearest
        found = self._named(scope, table)
        if having is not None:
            return next((s for s in found if having in s.columns), found[0] if found else None)
        return found[0] if found else None

    def _named(self, scope: Scope, alias: str) -> list[_Source]:
        """Every source called `alias` that a column of `scope` can see, innermost first."""
        found = []
        for level in self._levels(scope):
            source = self.sources(level).get(alias)
            if source is not None:
                found.append(source)
        return found

    def _owner(self, column: exp.Expression) -> Scope | None:
        node = column.find_ancestor(exp.Select, exp.SetOperation)
        return self.by_expression.get(id(node)) if node is not None else None

    def _written(self, source: _Source) -> tuple[str, ...]:
        if source.table is not None:
            spelled = self.spelled.get(source.table, {})
            return tuple(spelled.get(c, c) for c in source.columns)
        given = self.outputs(source.scope) if source.scope is not None else None
        return tuple(written for _, written, _ in given) if given else source.columns


class _Reader(_Scopes):
    """A qualified query read: what each scope's columns refer to, those that certainly bind nowhere,
    and what each output column is computed from."""

    def read(self) -> Reading:
        root = self.scopes[-1]
        outputs = self.outputs(root)
        reading = Reading(None if outputs is None else [name for _, name, named in outputs if named],
                          sum(not named for _, _, named in outputs or ()))
        used = _used(root)
        for scope in self.scopes:
            if id(scope) in used:   # a CTE nothing reads is not bound by DuckDB: never a problem here
                self._columns(scope, reading)
        if outputs is not None:
            reading.problems += self._duplicates(root, outputs)
            for index, (name, _, named) in enumerate(outputs):
                pairs = self.lineage(root, index)
                if named and pairs is not None:
                    reading.derived[name] = set(pairs)
        return reading

    # -- references --------------------------------------------------------------------------
    def _columns(self, scope: Scope, reading: Reading) -> None:
        """The scope's own column references: what each reads, and which certainly bind nowhere."""
        expression = scope.expression
        outputs = {name for s in expression.selects for name in _names(s)} if isinstance(expression, exp.Query) \
            else set()   # what a clause may name: each output, by its alias or by the column it gives
        first = _first_select(scope) if isinstance(expression, exp.SetOperation) else scope
        outputs |= first.expression.meta.get("aliases", set()) if first is not None else set()
        #  ^ as written, before an alias list renamed them
        items = {id(s) for s in expression.selects} if isinstance(expression, exp.Select) else set()
        for column in scope.columns:
            if self._owner(column) is not scope:
                continue   # sqlglot lends a subquery's outer references to the enclosing scope too
            if column.table:
                source = self._source_of(scope, column, column.name.lower())
                if source is None:
                    reading.problems += self._unknown_table(scope, column)
                elif column.name.lower() in source.columns or column.name == "*":
                    if source.table is not None:
                        reading.reads.setdefault(source.table, set()).add(column.name.lower())
                elif all(s.complete for s in self._named(scope, column.table)):   # an outer one may have it
                    reading.problems.append(Problem(
                        *position(column.this), f"column {column.table}.{column.name} does not exist: {source.what} "
                        f"has no column {column.name}", column.name, self._written(source)))
            elif column.name.lower() in PSEUDOCOLUMNS or (
                    column.name.lower() in outputs and not _within(column, items, expression)):
                continue   # ORDER BY (or HAVING) naming an output column: sqlglot leaves those as written
            else:
                reading.problems += self._unresolved(scope, column)
        for whole in scope.table_columns:   # a row read whole (`SELECT t FROM s.x AS t`): all of its columns
            for source in self._named(scope, whole.name)[:1]:
                if source.table is not None:
                    reading.reads.setdefault(source.table, set()).update(source.columns)
        for item in expression.selects if isinstance(expression, exp.Select) else ():
            written = item.args.get("alias") if isinstance(item, exp.Alias) else None
            value = item.this if isinstance(item, exp.Alias) else item
            if written is not None and written.meta.get("line") or not isinstance(value, (exp.Column, exp.Coalesce)):
                continue
            for made in (c for c in value.find_all(exp.Column) if _made(c)):   # given on by a `*` (or USING)
                source = self._source_of(scope, made)
                if source is not None and source.table is not None:
                    reading.stars.add(source.table)

    def _unresolved(self, scope: Scope, column: exp.Column) -> list[Problem]:
        """An unqualified column sqlglot could not give a source: one no source in scope has, or one
        two sources of its innermost scope have; nothing where a source's columns are not all known."""
        name, levels = column.name.lower(), self._levels(scope)
        joined = _joined(column, scope)
        for level in levels:
            sources = list(self.sources(level).values())
            if level is scope and joined is not None:   # in an ON: what is joined so far first; DuckDB then
                group = [s for s in sources if s.alias in joined or s.alias == ""]   # looks further
                owners = [s for s in group if name in s.columns]
                if len(owners) > 1:
                    return [self._ambiguous(column, owners)]
                if owners or not all(s.complete for s in group) or any(name in s.columns for s in sources):
                    return []
            owners = [s for s in sources if name in s.columns]
            if len(owners) > 1 and name in _merged(level):
                return []   # USING's merged column, which the engine may read unqualified: its to decide
            if len(owners) > 1:
                return [self._ambiguous(column, owners)]
            if level is not scope and name in level.expression.meta.get("aliases", set()):
                return []   # DuckDB lets a subquery in a select list name an alias of that list
            if owners or not all(s.complete for s in sources):
                return []   # sqlglot would have given it a source; or one whose columns are not known may have it
        everything = [s for level in levels for s in self.sources(level).values()]
        where = ", ".join(dict.fromkeys(s.what for s in everything)) or "nothing it reads"
        candidates = tuple(dict.fromkeys(c for s in everything for c in self._written(s)))
        if isinstance(scope.expression, exp.SetOperation):   # its ORDER BY: the columns its first branch gives
            where = "the columns of the set operation"
            candidates = tuple(written for _, written, _ in self.outputs(scope) or ())
        return [Problem(*position(column.this), f"column {column.name} does not exist in {where}", column.name,
                        candidates)]

    @staticmethod
    def _ambiguous(column: exp.Column, owners: list[_Source]) -> Problem:
        named = " and ".join(s.what + (f" ({s.alias})" if s.alias != s.what else "") for s in owners[:2])
        return Problem(*position(column.this), f"column {column.name} is ambiguous: {named} both have it; qualify it")

    def _unknown_table(self, scope: Scope, column: exp.Column) -> list[Problem]:
        """`t.c` where no source is called t: certain only when every source in scope is known and has
        no column t (`t.c` would be a field of it)."""
        levels = self._levels(scope)
        everything = [s for level in levels for s in self.sources(level).values()]
        if column.args.get("db") or not all(s.complete for s in everything) or \
                any(column.table.lower() in s.columns for s in everything) or \
                any(column.table in level.sources for level in levels):   # a CTE, say: the engine says what it is
            return []
        return [Problem(*position(column.args["table"]), f"column {column.table}.{column.name} does not exist: "
                        f"nothing here is called {column.table}", column.table,
                        tuple(dict.fromkeys(s.alias for s in everything)))]

    def _duplicates(self, root: Scope, outputs: list[tuple[str, str, bool]]) -> list[Problem]:
        """An output name given twice: DuckDB renames the second, PostgreSQL refuses, readers cannot tell."""
        first = _first_select(root)
        items = first.expression.selects if first is not None else []
        seen: set[str] = set()
        problems = []
        for index, (name, written, named) in enumerate(outputs):
            if named and name in seen:
                item = items[index] if index < len(items) else None
                written_at = [node for node in (item.args.get("alias"), item.unalias().find(exp.Identifier))
                              if node is not None and node.meta.get("line")] if item is not None else []
                where = position(written_at[0]) if written_at else _star_position(first)   # else `*` gave it
                problems.append(Problem(*where, f"column {written} is given twice: name each output column once"))
            seen.add(name)
        return problems

    # -- lineage -----------------------------------------------------------------------------
    def lineage(self, scope: Scope, index: int) -> frozenset[Pair] | None:
        """The input columns a scope's output column at `index` is computed from, through CTEs,
        derived tables, set operations and subqueries; None where that is not known."""
        key = (id(scope), index)
        if key in self._lineage:
            return self._lineage[key]
        self._lineage[key] = None   # recursion: not known
        expression, found = scope.expression, None
        if isinstance(expression, exp.SetOperation):
            branches = [self.lineage(branch, index) for branch in scope.set_operation_scopes]
            found = None if any(b is None for b in branches) else frozenset().union(*branches)
        elif isinstance(expression, exp.Select) and index < len(expression.selects):
            found = self._computed_from(scope, expression.selects[index])
        elif isinstance(expression, exp.Values):
            found = frozenset()   # literals
        self._lineage[key] = found
        return found

    def _computed_from(self, scope: Scope, item: exp.Expression) -> frozenset[Pair] | None:
        columns = list(item.find_all(exp.Column, exp.TableColumn))
        if item.is_star or any(not isinstance(c, exp.Column) or isinstance(c.this, exp.Star) for c in columns):
            return None   # a `*` or a whole row: what is under it is not listed
        pairs: set[Pair] = set()
        for column in columns:
            owner = self._owner(column) or scope
            source = self._source_of(owner, column, column.name.lower()) if column.table else None
            if source is None:
                return None
            if source.table is not None:
                if column.name.lower() not in source.columns:
                    return None
                pairs.add((source.table, column.name.lower()))
                continue
            given = self.outputs(source.scope) if source.scope is not None else None
            at = next((i for i, (name, _, _) in enumerate(given or ()) if name == column.name.lower()), None)
            if at is None:
                return None
            inner = self.lineage(source.scope, at)
            if inner is None:
                return None
            pairs |= inner
        return frozenset(pairs)


def _names(item: exp.Expression) -> set[str]:
    """The names ORDER BY or HAVING may give a select-list item by: its alias, and the name of the column
    it gives (an alias list may have renamed it since); none for a column nothing binds."""
    value = item.unalias()
    if isinstance(value, exp.Column) and not value.table:
        return set()
    return {item.alias_or_name.lower(), *([value.name.lower()] if isinstance(value, (exp.Column, exp.Dot)) else [])}


def _joined(column: exp.Column, scope: Scope) -> set[str] | None:
    """For a column in a JOIN's ON: the sources it can see (those joined so far, back to the last comma,
    which binds less tightly than JOIN); None elsewhere."""
    join = column.find_ancestor(exp.Join, exp.Select)
    select = scope.expression
    if not isinstance(join, exp.Join) or join.parent is not select or not isinstance(select, exp.Select):
        return None
    first = select.args.get("from_")
    seen = {first.this.alias_or_name} if first is not None else set()
    for other in select.args.get("joins") or []:
        if not (other.args.get("on") or other.args.get("using") or other.method or other.side or other.kind):
            seen = set()   # `a, b JOIN c ON ...` is `a, (b JOIN c ON ...)`
        seen.add(other.this.alias_or_name)
        if other is join:
            return seen
    return None


def _used(root: Scope) -> set[int]:
    """The scopes a query runs: all but CTEs that nothing it runs reads."""
    used: set[int] = set()
    stack = [root]
    while stack:
        scope = stack.pop()
        if id(scope) in used:
            continue
        used.add(id(scope))
        stack += [*scope.set_operation_scopes, *scope.table_scopes, *scope.subquery_scopes,
                  *(source for _, source in scope.selected_sources.values() if isinstance(source, Scope))]
    return used


def _merged(scope: Scope) -> set[str]:
    """The columns a USING join of the scope merges (lower case, as `note` kept them): named unqualified,
    each is one column."""
    return scope.expression.meta.get("merged", set())


def _made(column: exp.Column) -> bool:
    """A column sqlglot wrote itself (expanding `*` or USING), not one written in the SQL."""
    return not (column.this.meta or {}).get("line") if isinstance(column.this, exp.Identifier) else False


def _within(node: exp.Expression, items: set[int], select: exp.Expression) -> bool:
    """Whether `node` is inside one of a select list's `items`."""
    while node is not None and node is not select:
        if id(node) in items:
            return True
        node = node.parent
    return False


def _first_select(scope: Scope) -> Scope | None:
    while isinstance(scope.expression, exp.SetOperation) and scope.set_operation_scopes:
        scope = scope.set_operation_scopes[0]
    return scope if isinstance(scope.expression, exp.Select) else None


def _star_position(select: Scope | None) -> tuple[int, int]:
    """Where the first `*` of a select list was (`bind` notes it before sqlglot expands it): the duplicate
    names came from it."""
    stars = (select.expression.meta or {}).get("stars") if select is not None else None
    return tuple(stars[0]) if stars else (1, 1)
