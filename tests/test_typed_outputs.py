"""Typed outputs (issue 23, item 6): every view's columns typed from the declared tables where every
engine gives the same type, UNKNOWN elsewhere; those types, not the select list's text, decide which
readers a replaced view recreates, and a view column's checks are type-checked at validate."""

from __future__ import annotations

import json

import duckdb
import pytest
import sqlglot
from conftest import EngineLandscape, Landscape

from reconciler.desired import bind

CODES = "environments/dev/sales/codes.yaml"
PAIR = "environments/dev/sales/views/vw_codes_pair.yaml"


def codes(landscape: Landscape, pair: str) -> None:
    """A table, a view over it (`pair`), and two readers of that view: one by name, one through `*`."""
    landscape.write(CODES, "kind: Table\nname: codes\nschema: sales\nstatus: active\n"
                    "columns:\n  - {name: id, type: BIGINT, nullable: false}\n  - {name: code, type: INTEGER}\n"
                    "  - {name: label, type: VARCHAR}\nprimary_key: [id]\n")
    for name, query in {"vw_codes_pair": pair,
                        "vw_codes_loud": "SELECT id, upper(label) AS loud FROM sales.vw_codes_pair",
                        "vw_codes_every": "SELECT * FROM sales.vw_codes_pair"}.items():
        landscape.write(f"environments/dev/sales/views/{name}.yaml",
                        f"kind: View\nname: {name}\nschema: sales\nstatus: active\nsql: {query}\n")


def planned(landscape: EngineLandscape) -> list[tuple[str, str, str]]:
    changes = json.loads(landscape.run("plan", "dev", "--format", "json").stdout)["tenants"][0]["changes"]
    return [(c["object"], c["action"], c["reason"]) for c in changes]


def test_a_select_list_rewritten_with_the_same_names_and_types_recreates_no_reader(
        engine_landscape: EngineLandscape) -> None:
    """Reordered, qualified and cast to the type it already has: the view's columns keep their names and
    types, so nothing reading them is recreated for it (on PostgreSQL a reordered view is dropped and
    created again, which takes its readers with it: that is the engine's pin, never a column change).
    A rewrite that keeps the order too replaces the view in place, and on PostgreSQL as well nothing
    else moves."""
    landscape = engine_landscape
    codes(landscape, "SELECT id, code, label FROM sales.codes")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.codes VALUES (1, 7, 'seven')")

    landscape.edit(PAIR, "SELECT id, code, label FROM sales.codes",
                   "SELECT CAST(label AS VARCHAR) AS label, codes.id, code FROM sales.codes")
    changes = planned(landscape)
    assert ("sales.vw_codes_pair", "replace", "the view's columns change") in changes
    assert not any("column" in reason for name, _, reason in changes if name != "sales.vw_codes_pair")
    if landscape.engine == "duckdb":
        assert [name for name, _, _ in changes] == ["sales.vw_codes_pair"]
    else:
        assert {name for name, _, _ in changes} == {"sales.vw_codes_pair", "sales.vw_codes_loud",
                                                    "sales.vw_codes_every"}
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert landscape.sql("SELECT id, loud FROM sales.vw_codes_loud") == [(1, "SEVEN")]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0

    landscape.edit(PAIR, "codes.id, code FROM sales.codes", "id, codes.code FROM sales.codes WHERE code > 0")
    assert planned(landscape) == [("sales.vw_codes_pair", "update", "query changed, same columns")]
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert landscape.sql("SELECT label, id, code FROM sales.vw_codes_pair") == [("seven", 1, 7)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_retyped_output_column_recreates_its_readers(engine_landscape: EngineLandscape) -> None:
    landscape = engine_landscape
    codes(landscape, "SELECT id, code, label FROM sales.codes")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.codes VALUES (1, 7, 'seven')")

    landscape.edit(PAIR, "SELECT id, code, label", "SELECT id, CAST(code AS VARCHAR) AS code, label")
    changes = planned(landscape)
    assert ("sales.vw_codes_every", "replace", "recreated: its column code changes with sales.vw_codes_pair") \
        in changes
    if landscape.engine == "duckdb":   # the reader by name does not read `code`
        assert [name for name, _, _ in changes] == ["sales.vw_codes_pair", "sales.vw_codes_every"]
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert landscape.sql("SELECT code FROM sales.vw_codes_every") == [("7",)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


TABLES = {"s.a": {"id": "BIGINT", "customer_id": "BIGINT", "v": "DOUBLE", "d": "DECIMAL(18,3)", "dt": "DATE",
                  "flag": "BOOLEAN"},
          "s.b": {"customer_id": "BIGINT", "name": "VARCHAR", "code": "INTEGER", "seen_at": "TIMESTAMP"}}
QUERIES = [
    "SELECT id, v, d, dt, flag FROM s.a",
    "SELECT a.id, b.name, b.code, b.seen_at FROM s.a AS a JOIN s.b AS b ON a.customer_id = b.customer_id",
    "SELECT CAST(id AS VARCHAR) AS t, CAST(v AS INTEGER) AS i, CAST(d AS DOUBLE) AS f, id::SMALLINT AS small_id "
    "FROM s.a",
    "SELECT customer_id, count(*) AS n, count(DISTINCT id) AS k, sum(d) AS total, avg(id) AS mean, max(v) AS top "
    "FROM s.a GROUP BY customer_id",
    "SELECT id > 1 AS big, name LIKE 'a%' AS a_name, code IN (1, 2) AS small, seen_at IS NULL AS never, "
    "id BETWEEN 1 AND 2 AS low FROM s.a, s.b",
    "SELECT id + 1 AS next, v * 2 AS twice, d * d AS square, round(d, 2) AS r, upper(name) AS loud, "
    "coalesce(name, 'x') AS named, dt + INTERVAL 1 DAY AS later, NULL AS nothing FROM s.a, s.b",
    "WITH per AS (SELECT customer_id, count(id) AS n, sum(v) AS s FROM s.a GROUP BY customer_id) "
    "SELECT b.name, per.n, per.s FROM s.b AS b LEFT JOIN per ON b.customer_id = per.customer_id",
    "SELECT c_count, count(*) AS dist FROM (SELECT customer_id, count(id) FROM s.a GROUP BY customer_id) "
    "AS c_orders (cid, c_count) GROUP BY c_count",
    "SELECT customer_id FROM s.a UNION ALL SELECT code FROM s.b",
    "SELECT * FROM s.a JOIN s.b USING (customer_id)",
    "SELECT q.* FROM (SELECT id, name, CAST(code AS BIGINT) AS code FROM s.a, s.b) AS q",
]

CERTAIN = {"id", "v", "d", "dt", "flag", "name", "code", "seen_at", "t", "i", "f", "small_id", "n", "k", "big",
           "a_name", "small", "never", "low", "c_count", "dist"}   # pass-through, cast, count, comparison


def engine_type(kind: str, dialect: str) -> str:
    return sqlglot.parse_one(kind, read=dialect, into=sqlglot.exp.DataType).sql(dialect=dialect)


@pytest.mark.parametrize("query", QUERIES)
def test_output_types_are_the_ones_duckdb_gives_or_unknown(query: str) -> None:
    """The engine is the oracle: each view column's type is the one DESCRIBE shows, or UNKNOWN; never
    another. Pass-through columns, casts, counts and comparisons are known."""
    connection = duckdb.connect()
    for name, columns in TABLES.items():
        schema, table = name.split(".")
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        connection.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
    connection.execute(f"CREATE VIEW s.v AS {query}")
    described = {name: kind for name, kind, *_ in connection.execute("DESCRIBE s.v").fetchall()}
    typed = bind.bind(query, "duckdb", TABLES).outputs
    assert typed is not None and list(typed) == [name for name in described if name in typed]
    for name, kind in typed.items():
        assert kind == "UNKNOWN" or engine_type(kind, "duckdb") == engine_type(described[name], "duckdb"), name
    known = {name for name, kind in typed.items() if kind != "UNKNOWN"}
    assert known >= CERTAIN & set(typed)


def test_output_types_are_the_ones_postgresql_gives_or_unknown(postgres_database: str) -> None:
    import psycopg

    tables = {name: {column: kind.replace("DOUBLE", "DOUBLE PRECISION") for column, kind in columns.items()}
              for name, columns in TABLES.items()}
    known = set()
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA s")
        for name, columns in tables.items():
            connection.execute(f"CREATE TABLE {name} ({', '.join(f'{c} {t}' for c, t in columns.items())})")
        for index, query in enumerate(QUERIES):
            query = sqlglot.transpile(query, read="duckdb", write="postgres")[0]
            connection.execute(f"CREATE VIEW s.v{index} AS {query}")
            described = dict(connection.execute(
                "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum", [f"s.v{index}"]).fetchall())
            typed = bind.bind(query, "postgres", tables).outputs
            assert typed is not None
            for name, kind in typed.items():
                assert kind == "UNKNOWN" or engine_type(kind, "postgres") == engine_type(
                    described[name], "postgres"), (query, name, kind, described[name])
            known |= {name for name, kind in typed.items() if kind != "UNKNOWN"}
    assert known >= CERTAIN


def test_a_check_on_a_view_column_of_another_type_is_an_error_at_validate(landscape: Landscape) -> None:
    """As on a table: numeric bounds on a text column, text values for a number column, at their place."""
    codes(landscape, "SELECT id, CAST(code AS VARCHAR) AS code, label FROM sales.codes")
    landscape.edit(PAIR, "sql:", "checks:\n  - {column: code, accepted_range: {min: 0}}\n"
                   "  - {column: id, accepted_values: [one, two]}\nsql:")
    result = landscape.run("validate", "dev")
    assert result.code == 1, result.output
    assert (f"{PAIR}:6:36: error[check]: check accepted_range(code): accepted_range compares numbers, and the "
            "column is TEXT") in result.stderr
    assert f"{PAIR}:7:35: error[check]: check accepted_values(id): 'one' is not a number, and the column is " \
           "BIGINT" in result.stderr
    assert "internal error" not in result.stderr


def test_a_view_recorded_before_typed_outputs_changes_nothing_and_falls_back_to_its_select_list(
        landscape: Landscape) -> None:
    """A catalog written before views' columns were typed: the next plan shows no change (the types are
    no part of what the view is), and a rewrite is judged as before, by its select-list entries."""
    codes(landscape, "SELECT id, code, label FROM sales.codes")
    assert landscape.run("apply", "dev", "--yes").code == 0
    with duckdb.connect(str(landscape.tenant())) as connection:
        for schema, name, definition in connection.execute(
                "SELECT schema_name, name, definition FROM _reconciler.objects").fetchall():
            recorded = json.loads(definition)
            if recorded.pop("outputs", None) is not None:
                connection.execute("UPDATE _reconciler.objects SET definition = ? WHERE schema_name = ? AND name = ?",
                                   [json.dumps(recorded, sort_keys=True), schema, name])
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0

    landscape.edit(PAIR, "SELECT id, code, label FROM sales.codes",
                   "SELECT CAST(label AS VARCHAR) AS label, id, code FROM sales.codes")
    changes = json.loads(landscape.run("plan", "dev", "--format", "json").stdout)["tenants"][0]["changes"]
    assert ("sales.vw_codes_loud", "recreated: its column loud changes with sales.vw_codes_pair") in [
        (c["object"], c["reason"]) for c in changes]
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert ["label", "TEXT"] in json.loads(landscape.sql(
        "SELECT definition FROM _reconciler.objects WHERE name = 'vw_codes_pair'")[0][0])["outputs"]
