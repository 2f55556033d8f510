"""The functions SQL from the folder may call (issue 22), against the engines themselves.

The committed allowlists are what each engine's catalog and the rules in tests/tools/allowlists.py
give (a new engine version or a changed rule shows up here, not in production); every form of the
grammar a list names runs on its engine; and generated calls, in every position and spelling a
pull request could use, are refused exactly when their name is not on the engine's list.
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType
from tools import allowlists

from reconciler.desired import policy, sql

ENGINES = ("duckdb", "postgres", "spark")


def committed(engine: str) -> str:
    return (allowlists.OUT / f"{engine}.txt").read_text()


def test_duckdbs_list_is_what_its_catalog_gives() -> None:
    assert committed("duckdb") == allowlists.made("duckdb"), \
        "run `python tests/tools/allowlists.py duckdb` and review the difference"


def test_postgresqls_list_is_what_its_catalog_gives(postgres_database: str) -> None:
    assert committed("postgres") == allowlists.made("postgres", postgres_database), \
        "run `python tests/tools/allowlists.py postgres URL` and review the difference"


def test_sparks_list_is_what_its_catalog_gives(spark_server: str) -> None:
    assert committed("spark") == allowlists.made("spark", spark_server), \
        "run `python tests/tools/allowlists.py spark sc://HOST:PORT` and review the difference"


# Each form of the grammar a list names, written in the engine's own SQL.
GRAMMAR = {
    "coalesce": "COALESCE(NULL, 1)", "ifnull": "IFNULL(NULL, 1)", "cast": "CAST('1' AS INT)",
    "try_cast": "TRY_CAST('x' AS INT)", "extract": "EXTRACT(YEAR FROM DATE '2024-01-02')",
    "exists": "EXISTS (SELECT 1)", "columns": None, "unpack": None, "grouping": None, "grouping_id": None,
    "trim": "TRIM('  a ')", "position": "POSITION('b' IN 'abc')", "substring": "SUBSTRING('abc', 2, 1)",
    "overlay": "OVERLAY('abc' PLACING 'x' FROM 2 FOR 1)", "row": "ROW(1, 2)", "struct_pack": "STRUCT_PACK(a := 1)",
    "nullif": "NULLIF(1, 2)", "greatest": "GREATEST(1, 2)", "least": "LEAST(1, 2)", "array": "ARRAY[1, 2]",
}


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_every_form_of_the_grammar_a_list_names_runs_on_its_engine(engine: str, request) -> None:
    """The grammar sections say which call-like forms are not in the catalog; each that has an example
    here runs on its engine (the others are used only inside grouping sets or star expressions)."""
    forms = policy.allowlist(engine).grammar
    examples = {name: GRAMMAR[name] for name in forms if GRAMMAR.get(name)}
    if engine == "duckdb":
        with duckdb.connect() as connection:
            for name, example in examples.items():
                connection.execute(f"SELECT {example}").fetchall()
    else:
        import psycopg

        with psycopg.connect(request.getfixturevalue("postgres_database"), autocommit=True) as connection:
            for name, example in examples.items():
                if name in ("ifnull", "try_cast", "struct_pack"):
                    continue   # DuckDB's own; named on PostgreSQL's list only if it had them
                connection.execute(f"SELECT {example}").fetchall()
    assert examples


# -- generated calls ---------------------------------------------------------------------------------
def catalog_names(engine: str) -> list[str]:
    """Names an engine knows that its list leaves out (what a hostile pull request would reach for)."""
    if engine == "duckdb":
        with duckdb.connect() as connection:
            every = {row[0] for row in connection.execute("SELECT DISTINCT function_name FROM duckdb_functions() "
                                                          "WHERE function_name SIMILAR TO '[a-z_][a-z0-9_]*'").fetchall()}
    else:
        every = {"pg_read_file", "pg_ls_dir", "lo_import", "lo_export", "dblink", "current_setting", "set_config",
                 "query_to_xml", "table_to_xml", "pg_stat_get_activity", "setval", "pg_sleep", "pg_terminate_backend",
                 "pg_advisory_lock", "reflect", "java_method", "input_file_name", "raise_error", "read_files"}
    return sorted(every - policy.allowlist(engine).functions - policy.allowlist(engine).grammar)


POSITIONS = [
    "SELECT {call} AS x FROM sales.t",
    "SELECT id FROM sales.t WHERE {call} IS NOT NULL",
    "WITH c AS (SELECT {call} AS x FROM sales.t) SELECT x FROM c",
    "SELECT x FROM (SELECT {call} AS x FROM sales.t) AS d",
    "SELECT id, (SELECT {call}) AS x FROM sales.t",
    "SELECT a.id FROM sales.t AS a JOIN sales.t AS b ON b.id = a.id AND {call} IS NULL",
    "SELECT id FROM sales.t ORDER BY {call}",
    "SELECT id FROM sales.t UNION ALL SELECT {call} FROM sales.t",
    "SELECT * FROM {call} AS f",
    "SELECT id FROM sales.t WHERE EXISTS (SELECT 1 FROM {call} AS f)",
]


@st.composite
def spelled(draw, name: str, engine: str) -> str:
    """`name` called the ways SQL lets one spell a call: any case, quoted, or qualified with the engine's
    own schema."""
    case = draw(st.sampled_from([str.lower, str.upper, lambda text: text[:1].upper() + text[1:]]))
    written = case(name)
    if draw(st.booleans()):
        written = f'"{name}"' if engine != "spark" else f"`{name}`"
    schema = draw(st.sampled_from(["", *sorted(policy.SYSTEM_SCHEMAS[engine])]))
    arguments = draw(st.sampled_from(["", "'/etc/hostname'", "1, 2", "'x'"]))
    return f"{schema + '.' if schema else ''}{written}({arguments})"


def reaches_the_engine(statement: str, engine: str, name: str) -> bool:
    """Whether `statement`, as rendered for `engine`, still calls `name` (the engine's tokens: a word and
    an opening parenthesis), when the policy lets it through."""
    try:
        tree = sql.parse(statement, engine)
    except sql.SqlProblem:
        return False   # validate refuses it as SQL
    if policy.refused_calls(sql.calls_in(tree, engine, statement), engine):
        return False
    tokens = Dialect.get_or_raise(engine).tokenize(tree.sql(dialect=engine))
    return any(first.text.lower() == name and second.token_type == TokenType.L_PAREN
               for first, second in zip(tokens, tokens[1:]))


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_function_off_the_list_never_reaches_the_engine_wherever_and_however_it_is_called(engine: str,
                                                                                           data) -> None:
    """Refused, or written by sqlglot as something else (DuckDB's `if(a, b)` is a CASE)."""
    name = data.draw(st.sampled_from(catalog_names(engine)))
    statement = data.draw(st.sampled_from(POSITIONS)).format(call=data.draw(spelled(name, engine)))
    assert not reaches_the_engine(statement, engine, name), f"{statement!r} calls {name} on {engine}"


@pytest.mark.parametrize("engine", ENGINES)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_function_on_the_list_is_never_refused_for_its_name(engine: str, data) -> None:
    name = data.draw(st.sampled_from(sorted(policy.allowlist(engine).functions)))
    statement = data.draw(st.sampled_from(POSITIONS[:8])).format(call=f"{name}(1)")
    try:
        tree = sql.parse(statement, engine)
    except sql.SqlProblem:
        return   # a name sqlglot reads as a form with other arguments (validate says so): no call to judge
    problems = [p for p in policy.refused_calls(sql.calls_in(tree, engine, statement), engine)
                if p.message.startswith(f"{name}()")]   # sqlglot may write a misuse as another name (refused)
    assert not problems, f"{statement!r}: {problems[0].message}"
