"""What SQL from the folder may do, decided on its parsed tree before anything runs.

SQL in a pull request is hostile code that runs with the CI job's privileges. This module owns
the shapes each kind of object's SQL may have (a view, a MaterializedTable's query and a data
check read and change nothing; a data flow is one INSERT into its target that only appends: an
upsert is declared, and then written by the reconciler) and which functions it may call on each
engine (an allowlist per engine, made from the engine's own catalog: `policy/*.txt`). Never runs
SQL; what an engine confines by itself (DuckDB with its external access disabled) is the
adapters'.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

from sqlglot import exp

# Statements and clauses that change something, wherever they sit in a tree (a DELETE in a CTE, SELECT
# INTO, FOR UPDATE): a query that holds one is not a query, and an INSERT that holds one writes twice.
_EFFECTS = (exp.DML, exp.DDL, exp.Command, exp.Into, exp.Lock, exp.Transaction, exp.Commit, exp.Rollback,
            exp.Set, exp.Pragma, exp.Use)
# What a data flow's INSERT may say besides its target and its query: nothing that rewrites or removes
# rows already there (ON CONFLICT, OR REPLACE, OVERWRITE, REPLACE WHERE) or returns what it wrote.
_PLAIN_INSERT = frozenset({"this", "expression", "with_", "by_name"})
_CLAUSES = {"conflict": "ON CONFLICT", "alternative": "INSERT OR ...", "overwrite": "INSERT OVERWRITE",
            "returning": "RETURNING", "where": "REPLACE WHERE", "ignore": "INSERT IGNORE",
            "partition": "PARTITION (...)", "is_function": "INSERT INTO FUNCTION", "exists": "IF NOT EXISTS",
            "default": "DEFAULT VALUES", "settings": "SETTINGS", "source": "a source clause", "stored": "STORED AS",
            "using": "USING", "hint": "a hint"}


@dataclass(frozen=True)
class Violation:
    """Something SQL may not do, where it does it (1-based, inside the SQL text)."""

    message: str
    line: int = 1
    column: int = 1


def effects(tree: exp.Expression) -> tuple[Violation, ...]:
    """Every part of a statement that changes something, but the statement itself: a data-modifying
    CTE, SELECT INTO, a row lock, and what an INSERT says beyond appending its query's rows."""
    found = [Violation(f"{_named(node)} changes data, and here only reading is allowed", *_position(node))
             for node in tree.walk() if node is not tree and isinstance(node, _EFFECTS)]
    if isinstance(tree, exp.Insert):
        alternative = tree.args.get("alternative")
        for name, value in tree.args.items():
            if name not in _PLAIN_INSERT and value not in (None, False, []):
                clause = f"INSERT OR {alternative}" if name == "alternative" and isinstance(alternative, str) \
                    else _CLAUSES.get(name, name)
                found.append(Violation(f"{clause}: a data flow only appends the rows its query gives",
                                       *_position(value if isinstance(value, exp.Expression) else tree)))
    return tuple(found)


def _named(node: exp.Expression) -> str:
    if isinstance(node, exp.Into):
        return "SELECT INTO"
    if isinstance(node, exp.Lock):
        return "a row lock (FOR UPDATE / FOR SHARE)"
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return node.key.upper()


def _position(node: exp.Expression) -> tuple[int, int]:
    """Where the node's text starts, as near as the parser placed it: its earliest placed token (the
    parser records where names, literals and function calls end)."""
    placed = [part.meta for part in node.walk() if "line" in part.meta and "start" in part.meta]
    if not placed:
        return 1, 1
    first = min(placed, key=lambda meta: meta["start"])
    return first["line"], max(1, first["col"] - (first["end"] - first["start"]))
