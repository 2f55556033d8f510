"""The names an engine gives a query's output columns.

Owns the name each item of a query's select list gets from the engine of the landscape's dialect:
its alias, a column's own name, and otherwise the engine's own name for the expression (DuckDB's
`sum((a * b))`, `count_star()`), which engines choose differently (PostgreSQL says `sum`, Spark
`sum((a * b))` and refuses it in a permanent view). DuckDB names an expression by printing its parse
tree, so its names come from DuckDB's own parser (`json_serialize_sql` and back): exact, and nothing
is bound or run. Never touches a tenant; knows no other engine's names yet.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import threading

from .cache import NO_CACHE, Cache, content_key

NAMING_VERSION = "1"   # part of the cache key: a new value when what it computes changes
_EMPTY_FROM = {"type": "EMPTY", "alias": "", "sample": None}
_lock = threading.Lock()   # one parser connection for the process; a DuckDB connection is not shared by threads


def output_names(text: str, dialect: str, cache: Cache = NO_CACHE) -> tuple[str | None, ...] | None:
    """The name `dialect`'s engine gives each item of the query's outermost select list (the first
    branch's, for a set operation), in order; None for an item it gives many names or none (`*`,
    `COLUMNS(...)`); None for the whole when the dialect's names are not known here or the engine does
    not read the query as one select."""
    if dialect != "duckdb":
        return None
    key = content_key("names", NAMING_VERSION, _duckdb_version(), text)
    cached = cache.get("names", key)
    if cached is not None:
        return tuple(cached["names"]) if cached["names"] is not None else None
    names = _duckdb_names(text)
    cache.put("names", key, {"names": list(names) if names is not None else None})
    return names


def _duckdb_names(text: str) -> tuple[str | None, ...] | None:
    tree = json.loads(_parsed("SELECT json_serialize_sql(?)", text) or "{}")
    if tree.get("error", True) or len(tree.get("statements", ())) != 1:
        return None
    node = tree["statements"][0]["node"]
    while node.get("type") == "SET_OPERATION_NODE":   # DuckDB names a set operation's columns by its first branch
        node = node.get("left") or node["children"][0]
    if node.get("type") != "SELECT_NODE":
        return None
    return tuple(_name(item, node) for item in node["select_list"])


def _name(item: dict, node: dict) -> str | None:
    """The item's name: DuckDB prints an unnamed expression's parse tree for it, here as the only item
    of a SELECT with nothing else (the node's own shape, emptied)."""
    if item.get("alias"):
        return item["alias"]
    if item.get("class") == "STAR":
        return None
    if item.get("class") == "COLUMN_REF":
        return item["column_names"][-1]
    alone = {**node, "select_list": [item], "where_clause": None, "group_expressions": [], "group_sets": [],
             "having": None, "qualify": None, "sample": None, "modifiers": [], "cte_map": {"map": []},
             "aggregate_handling": "STANDARD_HANDLING",
             "from_table": {**_EMPTY_FROM, "query_location": node["from_table"].get("query_location")}}
    printed = _parsed("SELECT json_deserialize_sql(?::JSON)",
                      json.dumps({"error": False, "statements": [{"node": alone}]}))
    return printed.removeprefix("SELECT ") if printed and printed.startswith("SELECT ") else None


@functools.cache
def _duckdb_version() -> str:
    """The installed DuckDB's version, from its package's metadata: a warm cache answers every name
    without loading DuckDB (about 40 MB and 0.2 s of a validate that touches no tenant)."""
    return importlib.metadata.version("duckdb")


def _parsed(question: str, argument: str) -> str | None:
    """DuckDB's parser asked `question` (a serialisation either way) of `argument`; None when it cannot."""
    import duckdb  # here, not at the top: see `_duckdb_version`

    with _lock:
        try:
            return _parser().execute(question, [argument]).fetchone()[0]
        except duckdb.Error:
            return None


@functools.cache
def _parser():
    """An in-memory DuckDB that only parses and prints: nothing is attached, nothing reaches outside."""
    import duckdb

    connection = duckdb.connect()
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection
