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
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

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


# -- functions ---------------------------------------------------------------------------------------
SYSTEM_SCHEMAS = {"duckdb": frozenset({"main", "system.main", "pg_catalog", "system.pg_catalog"}),
                  "postgres": frozenset({"pg_catalog"}), "spark": frozenset({"builtin", "system.builtin"})}


@dataclass(frozen=True)
class Allowlist:
    """What SQL may call on one engine (`allowlists/<engine>.txt`, made from the engine's catalog)."""

    functions: frozenset[str]   # anywhere
    grammar: frozenset[str]     # forms of the engine's grammar that read like calls (CAST, COALESCE, ...)
    flows: frozenset[str]       # in a data flow only (sequence values)


_LISTS: dict[str, str] = {}   # the lists of engines whose adapters come from other packages (`register`)


def register(engine: str, text: str) -> None:
    """An adapter of another package gives its engine's list (the format of `allowlists/*.txt`)."""
    _LISTS[engine] = text
    allowlist.cache_clear()


def known(engine: str) -> bool:
    """Whether `engine` has a list: SQL that calls a function on an engine without one is refused."""
    return engine in _LISTS or resources.files("reconciler").joinpath("allowlists", f"{engine}.txt").is_file()


@functools.cache
def allowlist(engine: str) -> Allowlist:
    """The engine's allowlist; an engine without one may call nothing (never everything)."""
    try:
        text = _LISTS.get(engine) or resources.files("reconciler").joinpath("allowlists", f"{engine}.txt").read_text()
    except FileNotFoundError:
        return Allowlist(frozenset(), frozenset(), frozenset())
    sections: dict[str, set[str]] = {"functions": set(), "grammar": set(), "flows": set()}
    current = None
    for line in (line.strip() for line in text.splitlines()):
        if line.startswith("[") and line.endswith("]"):
            current = sections[line[1:-1]]
        elif line and not line.startswith("#") and current is not None:
            current.add(line)
    return Allowlist(*(frozenset(sections[name]) for name in ("functions", "grammar", "flows")))


UNREADABLE = "?"   # the call of a statement sqlglot cannot write for an engine and read back: never allowed


@dataclass(frozen=True)
class Call:
    """One function call as the engine will see it: its name (lower case), the schema it is qualified
    with (lower case, or empty) and where it is written (1-based, inside the SQL text)."""

    name: str
    schema: str
    line: int
    column: int


def calls(tree: exp.Expression, engine: str, text: str = "", private: bool = False) -> tuple[Call, ...]:
    """Every function a statement calls when it runs on `engine`: the statement is written for the
    engine (sqlglot renames what it knows, and may write one function as others: DuckDB gets
    `TO_BOOLEAN(x)` as a CASE calling ERROR) and read back, and each call is named as that text spells
    it. Forms that are not written as a call (`a || b`, `x::INT`, CASE) call nothing. `text`: the
    statement as written, where a call is placed for people (else at its start). `private`: the tree is
    the caller's to throw away, written for the engine in place (sqlglot's generator rewrites what it
    writes) instead of on a copy."""
    dialect = Dialect.get_or_raise(engine)
    written = {name: (line, column) for name, _, line, column in _spelled_calls(tree, text)}
    try:
        sent = tree.sql(dialect=dialect, copy=not private)
        read_back = dialect.parse(sent)[0]
    except Exception:   # noqa: BLE001 - sqlglot cannot write or read it back: what it calls there is unknown
        return (Call(UNREADABLE, "", 1, 1),)
    found = []
    for name, schema, _, _ in _spelled_calls(read_back, sent):
        found.append(Call(name, schema, *written.get(name, next(iter(written.values()), (1, 1)))))
    return tuple(found)


def _spelled_calls(tree: exp.Expression, text: str) -> list[tuple[str, str, int, int]]:
    """(name, qualifier, line, column) of every call in a tree read from `text`, named as `text` spells
    it (the parser places a call's name); a call it did not place is named as its node is written."""
    found = []
    for node in tree.walk():
        if not isinstance(node, exp.Func):
            continue
        meta = node.meta
        if text and "start" in meta and "end" in meta:
            name = text[meta["start"]:meta["end"] + 1].strip('"`[]').lower()
        else:
            name = _leading_call(node) or ""
        if name:
            found.append((name, _qualifier(node), *_position(node)))
    return found


def _leading_call(node: exp.Func) -> str | None:
    """The name before the first parenthesis of the node as sqlglot writes it, when that is one word
    (`DATE_TRUNC(...)`); None for what starts otherwise (`CASE WHEN ...`, `x::INT`)."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    try:
        head, parenthesis, _ = node.sql().partition("(")
    except Exception:   # noqa: BLE001 - sqlglot's generator cannot write it: no name to judge
        return None
    word = head.strip()
    return word.lower() if parenthesis and word.replace("_", "").isalnum() else None


def _qualifier(node: exp.Func) -> str:
    """`pg_catalog` of `pg_catalog.pg_read_file(...)`, `main` of `FROM main.read_csv(...)`."""
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        return parent.this.sql().lower().replace('"', "").replace("`", "")
    if isinstance(parent, exp.Table) and parent.this is node:
        return ".".join(part.name.lower() for part in (parent.args.get("catalog"), parent.args.get("db")) if part)
    return ""


def refused_calls(found: Iterable[Call], engine: str, flow: bool = False,
                  allowed: frozenset[str] = frozenset()) -> tuple[Violation, ...]:
    """The calls SQL of its kind may not make on `engine`: names not on the engine's allowlist (sequence
    values outside a data flow), and functions of other schemas, unless `allowed` (the environment's
    `allow_functions`, as `name` or `schema.name`) names them."""
    lists = allowlist(engine)
    permitted = lists.functions | lists.grammar | (lists.flows if flow else frozenset())
    refused = []
    for call in found:
        if call.name == UNREADABLE:
            refused.append(Violation(f"sqlglot cannot write this SQL for {engine} and read it back, so what it would "
                                     "call there cannot be checked", call.line, call.column))
            continue
        spelled = f"{call.schema}.{call.name}" if call.schema else call.name
        if spelled in allowed or (call.name in permitted and (
                not call.schema or call.schema in SYSTEM_SCHEMAS.get(engine, frozenset()))):
            continue
        why = ("takes a sequence's value, which only a data flow may" if call.name in lists.flows else
               f"is not a function SQL from the folder may call on {engine}: it reads or changes something besides "
               "the rows of what the SQL names, or is not one of the engine's own; `allow_functions:` in "
               "environment.yaml allows a function of the tenant's" if known(engine) else
               f"is not a function SQL from the folder may call on {engine}: its adapter gives no list of the "
               "functions it allows (`function_allowlist`)")
        refused.append(Violation(f"{spelled}() {why}", call.line, call.column))
    return tuple(refused)
