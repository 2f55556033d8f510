"""Parsing: one statement, a column default or a check's condition, from text to a sqlglot tree.

Owns the parse (`$$NAME` parameters allowed, sqlglot's messages made readable at their line and
column) and the trees parsed lately, shared so that analysis, binding and rendering parse each text
once per process (`parse`, `parsed`, `take`); where a node's text starts. Never changes a shared tree:
a caller that changes one works on a copy or `take`s it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError

from .problems import SqlProblem, bounded
from .templates import line_column, sqlglot_dialect, tokenize, with_parameters, within_nesting


class _Trees:
    """The trees of the texts parsed last, most recent last (trees are large: enough for one pass over a
    small landscape); tenants are planned on threads, so one at a time."""

    def __init__(self, size: int):
        self.size = size
        self.trees: OrderedDict[tuple[str, str], exp.Expression] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> exp.Expression | None:
        with self.lock:
            tree = self.trees.get(key)
            if tree is not None:
                self.trees.move_to_end(key)
            return tree

    def put(self, key: tuple[str, str], tree: exp.Expression) -> None:
        with self.lock:
            self.trees[key] = tree
            if len(self.trees) > self.size:
                self.trees.popitem(last=False)

    def pop(self, key: tuple[str, str]) -> exp.Expression | None:
        with self.lock:
            return self.trees.pop(key, None)


_TREES = _Trees(1024)


def parse(sql: str, dialect: str) -> exp.Expression:
    """Parse exactly one statement; raise SqlProblem with the parser's message and position.
    Each text is parsed once per process (analysis, binding and rendering share the tree): the
    tree is shared, so a caller that changes it works on a copy, or `take`s it."""
    tree = _TREES.get((sql, dialect))
    if tree is None:
        tree = _parse(sql, dialect)
        _TREES.put((sql, dialect), tree)
    return tree


def parsed(sql: str, dialect: str) -> exp.Expression | None:
    """The shared tree of `sql` when it has been parsed lately, else None (nothing is parsed)."""
    return _TREES.get((sql, dialect))


def take(sql: str, dialect: str, held: exp.Expression | None = None) -> exp.Expression:
    """The tree of `sql` for the caller alone to change (binding qualifies it in place: a copy costs half
    a parse): taken out of the shared trees, so no one is given it again; else `held`, a tree `parse`
    gave the caller that has left them since; else a new parse."""
    tree = _TREES.pop((sql, dialect))
    return tree if tree is not None else held if held is not None else _parse(sql, dialect)


@bounded
def _parse(sql: str, dialect: str) -> exp.Expression:
    statements = _parsed(sql, dialect)
    if not statements:
        raise SqlProblem("the SQL is empty")
    if len(statements) > 1:
        raise SqlProblem(f"exactly one statement is allowed, found {len(statements)}")
    return statements[0]


def _parsed(text: str, dialect: str) -> list[exp.Expression]:
    """What sqlglot parses from `text` (`$$NAME` parameters allowed); SqlProblem at the parser's position."""
    try:
        tokens, written = tokenize(text, dialect)
        statements = [s for s in sqlglot_dialect(dialect).parser().parse(tokens, text) if s is not None]
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        message = _TOKEN_REPR.sub(_token_words, first.get("description") or str(error))
        raise SqlProblem(message, first.get("line") or 1, first.get("col") or 1) from None
    except TokenError as error:
        raise SqlProblem(f"cannot tokenize the SQL: {error}") from None
    if not written:
        return statements
    parsed, names = [], []
    for statement in statements:
        statement, found = with_parameters(statement)
        parsed.append(statement)
        names += found
    for start, name in written:
        if name not in names:
            raise SqlProblem(f"$${name} cannot stand here (a parameter stands where a value does)",
                             *line_column(text, start))
        names.remove(name)
    return parsed


# sqlglot's messages embed a token's repr; people want the token's text
_TOKEN_REPR = re.compile(r"<Token token_type: TokenType\.(\w+), text: (.*?), line: \d+.*?>")


def _token_words(match: re.Match) -> str:
    return "the end of the SQL" if match.group(1) == "SENTINEL" else f"'{match.group(2)}'"


def position(node: exp.Expression) -> tuple[int, int]:
    """Where a node's text starts inside the SQL (sqlglot records where its last character is)."""
    identifier = node if isinstance(node, exp.Identifier) else node.find(exp.Identifier) or node
    meta = identifier.meta or {}
    line, end = meta.get("line", 1), meta.get("col", 1)
    width = len(identifier.name) + (2 if getattr(identifier, "quoted", False) else 0) if identifier.name else 1
    return line, max(end - width + 1, 1)


@bounded
def parse_expression(text: str, dialect: str) -> exp.Expression:
    """One scalar expression (a column default), never a statement."""
    try:
        tokens = sqlglot_dialect(dialect).tokenize(text)
        within_nesting(tokens, text)
        parsed = [e for e in sqlglot_dialect(dialect).parser().parse(tokens, text) if e is not None]
    except SqlglotError as error:
        raise SqlProblem(f"not a SQL expression: {text} ({error})") from None
    if len(parsed) != 1 or isinstance(parsed[0], (exp.Query, exp.DDL, exp.DML, exp.Command, exp.Block)):
        raise SqlProblem(f"not a single SQL expression: {text}")
    return parsed[0]


@bounded
def parse_condition(text: str, dialect: str) -> exp.Expression:
    """One scalar expression of a check (a filter, a boolean over a row), `$$NAME` parameters allowed;
    the tree is the caller's own."""
    parsed = _parsed(text, dialect)
    if len(parsed) != 1 or isinstance(parsed[0], (exp.Query, exp.DDL, exp.DML, exp.Command, exp.Block)):
        raise SqlProblem("not a single SQL expression")
    return parsed[0]
