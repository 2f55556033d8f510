"""The functions SQL from the folder may call on each engine, made from the engine's own catalog.

`python tests/tools/allowlists.py duckdb|postgres URL|spark sc://HOST:PORT` rewrites
`reconciler/allowlists/<engine>.txt`; tests/test_allowlists.py asks the engines again and fails when
a committed list is not what its engine and these rules give (a new engine version, a changed rule).

The rules, per engine: the engine's built-in scalar, aggregate and window functions that do not change
state and whose value depends only on their arguments or the query (no side effects, not volatile),
minus what reads outside the statement's declared inputs (settings, other sessions, files, the
catalog of other objects, SQL passed as text), plus a few harmless volatile ones (random numbers,
UUIDs, the clock), plus the table functions that only expand values. A data flow may also take
sequence values (`FLOW_ONLY`). Forms of the grammar that look like calls but are not in the catalog
(COALESCE, CAST, ...) are listed with their engine: each is tested to run there.
"""

from __future__ import annotations

import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "reconciler" / "allowlists"

# -- DuckDB ----------------------------------------------------------------------------------------
DUCKDB_EXCLUDED = {
    "current_setting": "reads the database's settings (credentials of extensions among them)",
    "getvariable": "reads session variables set outside the statement",
    "current_query": "returns the SQL text running, which may be another's",
    "duckdb_logs_parsed": "reads the database's logs",
    "duckdb_profiling_settings": "reads settings",
    "get_block_size": "reads storage internals",
    "pg_sleep": "holds the session (and the tenant lock) for as long as it is told",
    "pg_conf_load_time": "reads the server's state",
    "pg_postmaster_start_time": "reads the server's state",
}
DUCKDB_EXCLUDED_PREFIXES = {
    "pg_": "PostgreSQL's catalog functions, as DuckDB imitates them (other objects' definitions)",
    "has_": "privileges of roles on other objects",
    "duckdb_": "the database's own state",
}
DUCKDB_EXCLUDED_DESCRIPTIONS = {"obj_description", "col_description", "shobj_description"}   # comments of others
DUCKDB_VOLATILE_ALLOWED = {"random", "uuid", "gen_random_uuid", "uuidv4", "uuidv7"}
DUCKDB_TABLE_FUNCTIONS = {"range", "generate_series", "unnest", "json_each", "json_tree", "generate_subscripts"}
DUCKDB_GRAMMAR = {"coalesce", "ifnull", "cast", "try_cast", "extract", "exists", "columns", "unpack", "grouping",
                  "grouping_id", "trim", "position", "substring", "overlay", "row", "struct_pack", "current_date",
                  "current_time", "current_timestamp", "localtime", "localtimestamp"}
DUCKDB_FLOW_ONLY = {"nextval", "currval"}


def duckdb_lists() -> dict[str, set[str]]:
    import duckdb

    with duckdb.connect() as connection:
        rows = connection.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() WHERE internal AND function_type IN "
            "('scalar', 'aggregate', 'window', 'macro') AND NOT coalesce(has_side_effects, false) "
            "AND coalesce(stability, '') <> 'VOLATILE'").fetchall()
        every = {row[0] for row in connection.execute("SELECT DISTINCT function_name FROM duckdb_functions()").fetchall()}
    pure = {name for (name,) in rows if not name.startswith(tuple(DUCKDB_EXCLUDED_PREFIXES))} \
        - set(DUCKDB_EXCLUDED) - DUCKDB_EXCLUDED_DESCRIPTIONS
    return {"functions": pure | (DUCKDB_VOLATILE_ALLOWED | DUCKDB_TABLE_FUNCTIONS) & every,
            "grammar": DUCKDB_GRAMMAR, "flows": DUCKDB_FLOW_ONLY & every}


# -- PostgreSQL ------------------------------------------------------------------------------------
POSTGRES_EXCLUDED_PREFIXES = {
    "pg_": "the server's own administration and introspection (files, sessions, locks, catalogs)",
    "has_": "privileges of roles on other objects",
    "txid_": "the server's transaction counters",
    "inet_": "the server's and client's addresses",
    "query_to_": "runs SQL given as text, outside the statement's declared inputs",
    "table_to_": "reads a table named as text",
    "schema_to_": "reads a schema named as text",
    "database_to_": "reads the whole database",
    "cursor_to_": "reads an open cursor",
    "to_reg": "looks objects up in the catalog by name",
    "acl": "privileges",
    "makeaclitem": "privileges",
}
POSTGRES_EXCLUDED = {
    "current_setting": "reads the server's settings",
    "version": "the server's build",
    "obj_description": "comments of other objects",
    "col_description": "comments of other objects",
    "shobj_description": "comments of other objects",
    "row_security_active": "policies of other objects",
    "format_type": "the catalog's types",
    "brin_desummarize_range": "maintenance", "brin_summarize_new_values": "maintenance",
    "brin_summarize_range": "maintenance", "gin_clean_pending_list": "maintenance",
    "binary_upgrade_set_next_toast_pg_class_oid": "upgrade internals",
}
POSTGRES_VOLATILE_ALLOWED = {"random", "random_normal", "gen_random_uuid", "clock_timestamp", "timeofday"}
POSTGRES_GRAMMAR = {"current_date", "current_time", "current_timestamp", "localtime", "localtimestamp",
                    "coalesce", "nullif", "greatest", "least", "cast", "extract", "exists", "row", "array",
                    "grouping", "overlay", "position", "substring", "trim", "collation", "normalize", "any", "all",
                    "some", "xmlelement", "xmlforest", "xmlconcat", "xmlparse", "xmlpi", "xmlroot", "xmlserialize",
                    "xmlexists", "treat", "json_object", "json_array", "json_scalar", "json_serialize", "json"}
POSTGRES_FLOW_ONLY = {"nextval", "currval"}
_INTERNAL_TYPES = ("internal", "trigger", "event_trigger", "language_handler", "fdw_handler", "index_am_handler",
                   "tsm_handler", "table_am_handler", "cstring")


def postgres_lists(url: str) -> dict[str, set[str]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT p.proname, p.provolatile FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
            "ON n.oid = p.pronamespace WHERE n.nspname = 'pg_catalog' AND p.prokind IN ('f', 'a', 'w') "
            "AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[] || p.prorettype) t(oid) "
            "JOIN pg_catalog.pg_type y ON y.oid = t.oid WHERE y.typname = ANY(%s))",
            [list(_INTERNAL_TYPES)]).fetchall()
    names = {name for name, _ in rows}
    stable = {name for name, volatility in rows if volatility in ("i", "s")}
    unstable = {name for name, volatility in rows if volatility == "v"}
    allowed = {name for name in stable - unstable
               if name not in POSTGRES_EXCLUDED and not name.startswith(tuple(POSTGRES_EXCLUDED_PREFIXES))}
    return {"functions": allowed | POSTGRES_VOLATILE_ALLOWED & names, "grammar": POSTGRES_GRAMMAR,
            "flows": POSTGRES_FLOW_ONLY & names}


# -- Spark -----------------------------------------------------------------------------------------
SPARK_EXCLUDED = {
    "reflect": "calls any Java method (System.getenv among them)",
    "java_method": "calls any Java method",
    "try_reflect": "calls any Java method",
    "input_file_name": "names the files under a table",
    "input_file_block_start": "reads the files under a table",
    "input_file_block_length": "reads the files under a table",
    "raise_error": "puts any value into an error message",
    "assert_true": "puts any value into an error message",
    "current_catalog": "the session's state",
    "version": "the server's build",
    "sql_keywords": "the parser's state",
    "spark_partition_id": "the engine's execution",
}
SPARK_GRAMMAR = {"cast", "try_cast", "extract", "exists", "coalesce", "position", "substring", "trim", "overlay",
                 "current_date", "current_timestamp"}


def spark_lists(url: str) -> dict[str, set[str]]:
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(url).create()
    try:
        names = {row[0] for row in session.sql("SHOW SYSTEM FUNCTIONS").collect()}
    finally:
        session.stop()
    return {"functions": names - set(SPARK_EXCLUDED), "grammar": SPARK_GRAMMAR, "flows": set()}


def render(engine: str, lists: dict[str, set[str]]) -> str:
    """The committed file: the rules' output, one name per line, by section."""
    lines = [f"# Functions SQL from the folder may call on {engine}; made by tests/tools/allowlists.py from the",
             "# engine's own catalog and the rules in that file (tests/test_allowlists.py checks it). Edit the rules,",
             "# not this file."]
    for section in ("functions", "grammar", "flows"):   # operators (`+`, `~~`) are never written as calls
        lines += ["", f"[{section}]", *sorted({name.lower() for name in lists[section] if name.isidentifier()})]
    return "\n".join(lines) + "\n"


def made(engine: str, where: str | None = None) -> str:
    lists = {"duckdb": lambda: duckdb_lists(), "postgres": lambda: postgres_lists(where or ""),
             "spark": lambda: spark_lists(where or "")}[engine]()
    return render(engine, lists)


if __name__ == "__main__":
    engine = sys.argv[1]
    (OUT / f"{engine}.txt").write_text(made(engine, sys.argv[2] if len(sys.argv) > 2 else None))
    print(f"wrote {OUT / f'{engine}.txt'}")
