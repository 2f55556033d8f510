"""Columns bound with sqlglot against the landscape's own declarations.

Owns which columns every object exposes and reads: a table's are declared; a view's are derived,
in dependency order, from the scope extract of its SQL (`scopes`: sqlglot's scopes, walked once
when the statement was analysed), `*` expanded from its sources; a data flow's INSERT column list
and arity are checked against its target. Every column that resolves to no source, or to two, is
a problem at its line and column inside the SQL. Never touches a tenant; never parses SQL again;
an object whose inputs could not be bound is skipped rather than reported twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import sqlglot

from . import sql
from .cache import NO_CACHE, Cache, content_key

BIND_VERSION = "4"
Columns = dict[str, str]   # column name -> its type in the landscape's dialect (UNKNOWN for views), in order


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
    derived: dict[str, list[list[str]]] = field(default_factory=dict)
    # ^ a view's output column (lower case) -> the [input, column] pairs its values are computed from
    stars: list[str] = field(default_factory=list)   # inputs a `*` gives on whole: their new columns show


def bind(text: str, dialect: str, inputs: Mapping[str, Columns], target: str | None = None,
         cache: Cache = NO_CACHE) -> Bound:
    """Bind one view's query, or a data flow's INSERT (into `target`), against `inputs`: the columns
    of every object it reads, by lower-case `schema.name`. Works on the statement's scope extract
    (`sql.scopes`, made when it was analysed), never on a new parse; cached by the SQL and inputs."""
    key = content_key("bind", BIND_VERSION, sqlglot.__version__, dialect, text, target or "",
                      json.dumps(sorted((k, list(v.items())) for k, v in inputs.items())))
    cached = cache.get("bind", key)
    if cached is not None:
        return Bound(cached["outputs"], tuple(Problem(p[0], p[1], p[2], p[3], tuple(p[4])) for p in cached["problems"]),
                     cached["reads"], cached["derived"], cached["stars"])
    extract = sql.scopes(text, dialect, cache)
    result = Bound(None) if extract.get("unreadable") else _Binder(extract, inputs).bind(target)
    cache.put("bind", key, {"outputs": result.outputs, "reads": result.reads, "derived": result.derived,
                            "stars": result.stars,
                            "problems": [[p.line, p.column, p.message, p.word, list(p.candidates)]
                                         for p in result.problems]})
    return result


class Source(NamedTuple):
    alias: str                   # its name in the query
    what: str                    # an input's lower-case schema.name, or the alias of a derived scope
    columns: list[str] | None    # its column names, if known
    scope: int | None = None     # a derived source's scope index


class _Binder:
    """One statement's scope extract resolved against the columns of its inputs."""

    def __init__(self, extract: dict, inputs: Mapping[str, Columns]):
        self.scopes, self.root, self.insert = extract["scopes"], extract["root"], extract["insert"]
        self.inputs = inputs
        self._exposed: dict[int, list[str] | None] = {}
        self._owners: dict[int, dict[int, list[tuple[Source, str]] | None]] = {}   # scope -> item -> refs
        self._derived: dict[int, dict[str, set[tuple[str, str]] | None]] = {}

    def bind(self, target: str | None) -> Bound:
        problems, reads, stars = self.resolve()
        outputs = self.exposed(self.root) if self.root is not None else None
        if self.insert is not None:
            return Bound(None, tuple(problems + self.insert_problems(target, outputs, not problems)), reads)
        if outputs is None:
            return Bound(None, tuple(problems), reads)
        everything = sorted({(source, column) for source, columns in reads.items() for column in columns})
        derived = {name: sorted(found) if found is not None else everything
                   for name, found in self.derived(self.root).items()}
        return Bound({name: "UNKNOWN" for name in outputs}, tuple(problems), reads,
                     {name: [list(pair) for pair in pairs] for name, pairs in derived.items()}, stars)

    def exposed(self, index: int) -> list[str] | None:
        """The column names a scope gives (`*` expanded from its sources), or None when not known."""
        if index not in self._exposed:
            self._exposed[index] = None   # a scope that reads itself (recursion) stays unknown
            scope, names = self.scopes[index], []
            sources = self.sources(scope)
            for kind, value in scope["items"]:
                if kind == "name" and value:
                    names.append(value)
                    continue
                if kind == "name":   # an expression without a name: the engine names it; not known here
                    continue
                chosen = [s for s in sources if value in ("", s.alias)]
                if not chosen or any(s.columns is None for s in chosen):
                    return None
                names += [c for s in chosen for c in s.columns]
            self._exposed[index] = names
        return self._exposed[index]

    def derived(self, index: int) -> dict[str, set[tuple[str, str]] | None]:
        """For each column a scope gives (lower case): the input columns its values are computed from,
        through derived tables and CTEs; None where that is not known (a subquery in the select list,
        a UNION, a table function): the caller then assumes everything the statement reads."""
        if index in self._derived:
            return self._derived[index]
        self._derived[index] = {}   # recursion: nothing known
        scope, result = self.scopes[index], {}
        sources = self.sources(scope)
        owners = self._owners.get(index, {})
        for position, (kind, value) in enumerate(scope["items"]):
            if kind == "name" and value:
                refs = owners.get(position, [])
                known = not scope["union"] and position not in scope["opaque"] and refs is not None
                found = set() if known else None
                for source, name in refs if known else ():
                    pairs = self._pairs(source, name)
                    if pairs is None:
                        found = None
                        break
                    found |= pairs
                result[value.lower()] = found
            elif kind == "star":
                for source in (s for s in sources if value in ("", s.alias)):
                    for name in source.columns or ():
                        result[name.lower()] = self._pairs(source, name)
        self._derived[index] = result
        return result

    def _pairs(self, source: Source, name: str) -> set[tuple[str, str]] | None:
        if source.what in self.inputs and source.scope is None:
            return {(source.what, name.lower())}
        if source.scope is not None:
            return self.derived(source.scope).get(name.lower())
        return None

    def sources(self, scope: dict) -> list[Source]:
        found: list[Source] = []
        for alias, kind, ref in scope["sources"]:
            if kind == "table":
                columns = self.inputs.get(ref)
                found.append(Source(alias, ref, list(columns) if columns is not None else None))
            elif kind == "derived":
                found.append(Source(alias, alias, self.exposed(ref), ref))
            else:
                found.append(Source(alias, alias, None))
        return found

    def resolve(self) -> tuple[list[Problem], dict[str, list[str]], list[str]]:
        """Every column reference that names no column of its sources, or a column two sources have;
        the columns of the inputs it refers to (`*` reads them all) and the inputs a `*` gives on.
        Where a source's columns are not known (a table function, a derived `SELECT *` of one),
        nothing that could come from it is reported."""
        problems: list[Problem] = []
        reads: dict[str, set[str]] = {}
        stars: set[str] = set()
        for index, scope in enumerate(self.scopes):
            chain = [scope]
            while chain[-1]["parent"] is not None:   # a correlated subquery reads its outer scopes too
                chain.append(self.scopes[chain[-1]["parent"]])
            levels = [self.sources(level) for level in chain]
            owners = self._owners.setdefault(index, {})
            for table, name, line, column, own, item in scope["columns"]:
                allowed = set(scope["using"]) | {alias for alias in scope["aliases"] if alias != own}
                problem, owner = _check(table, name, line, column, levels, allowed)
                if problem is not None:
                    problems.append(problem)
                elif owner is not None and owner.what in self.inputs and owner.scope is None:
                    reads.setdefault(owner.what, set()).add(name.lower())
                if item is not None and owners.get(item, []) is not None:
                    # a reference that resolves to nothing known (an alias, USING, an outer scope's
                    # column) leaves what the item computes from unknown
                    known = owner is not None and owner in levels[0]
                    owners[item] = [*owners.get(item, []), (owner, name)] if known else None
            for kind, value in scope["items"] if not scope["union"] else ():
                for source in levels[0] if kind == "star" else ():
                    if source.what in self.inputs and source.columns is not None and value in ("", source.alias):
                        reads.setdefault(source.what, set()).update(c.lower() for c in source.columns)
                        stars.add(source.what)
                    elif source.scope is not None and value in ("", source.alias):
                        stars.update(self._stars_under(source.scope))
        return problems, {source: sorted(columns) for source, columns in sorted(reads.items())}, sorted(stars)

    def _stars_under(self, index: int) -> set[str]:
        """The inputs a derived scope gives on through a `*` of its own."""
        found = set()
        for kind, value in self.scopes[index]["items"]:
            for source in self.sources(self.scopes[index]) if kind == "star" else ():
                if value in ("", source.alias):
                    found |= {source.what} if source.scope is None and source.what in self.inputs \
                        else self._stars_under(source.scope) if source.scope is not None else set()
        return found

    def insert_problems(self, target: str | None, selected: list[str] | None, bound: bool) -> list[Problem]:
        """A data flow: the columns it names exist in the target, and it selects as many values as it
        inserts (checked only once its SELECT bound)."""
        columns = self.inputs.get((target or "").lower())
        if columns is None:
            return []
        problems = []
        known = {name.lower() for name in columns}
        for name, line, column in self.insert["listed"]:
            if name.lower() not in known:
                problems.append(Problem(line, column, f"column {name} does not exist in {target}", name,
                                        tuple(columns)))
        count = self.insert["selected"] if self.insert["selected"] is not None else \
            (len(selected) if selected is not None else None)
        wanted = len(self.insert["listed"]) or len(columns)
        if bound and not problems and count is not None and count != wanted:
            names = "the columns it lists" if self.insert["listed"] else f"{target}'s columns"
            problems.append(Problem(*self.insert["at"], f"the SELECT gives {count} values for {wanted} of {names}"))
        return problems


def _check(table: str, name: str, line: int, column: int, levels: Sequence[Sequence[Source]],
           allowed: set[str]) -> tuple[Problem | None, Source | None]:
    """Resolve a column as engines do: its own scope's sources first, then (in a correlated subquery)
    the enclosing ones. (the problem, or None; the source it comes from, when known)."""
    lowered = name.lower()
    sources = [source for level in levels for source in level]
    if table:
        match = [s for s in sources if s.alias.lower() == table.lower()]
        if not match or match[0].columns is None:   # not a source here (a struct's field), or not known
            return None, None
        alias, what, columns, _ = match[0]
        if lowered in {c.lower() for c in columns}:
            return None, match[0]
        return Problem(line, column, f"column {table}.{name} does not exist: {what} has no column {name}", name,
                       tuple(columns)), None
    if lowered in allowed:
        return None, None
    for level in levels:
        owners = [s for s in level if s.columns is not None and lowered in {c.lower() for c in s.columns}]
        if len(owners) == 1:
            return None, owners[0]
        if len(owners) > 1:
            named = " and ".join(what + (f" ({alias})" if alias != what else "") for alias, what, _, _ in owners[:2])
            return Problem(line, column, f"column {name} is ambiguous: {named} both have it; qualify it"), None
        if any(s.columns is None for s in level):   # it may come from a source whose columns are not known
            return None, None
    where = ", ".join(dict.fromkeys(s.what for s in sources)) or "nothing it reads"
    candidates = tuple(dict.fromkeys(c for s in sources for c in s.columns or ()))
    return Problem(line, column, f"column {name} does not exist in {where}", name, candidates), None
