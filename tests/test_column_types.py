"""Declared column types are compared exactly (issue 22, break 7: on PostgreSQL, `region` changed from
VARCHAR to VARCHAR(2) planned "No changes"). Length, precision and scale are part of a type on every
engine, and the engine is the oracle of what it keeps of them.

- The normal form of a declared type (`column_types.column_type`) is what the engine itself reports
  for the column it creates, read back through the adapter's inspection: hypothesis-generated types
  on DuckDB and a real PostgreSQL, written in the engine's own dialect and in DuckDB's (a landscape's
  default); a fixed list on Spark (each statement is a round trip to a JVM).
- The value proof is the engine's: a row the narrowing check counts is exactly a row whose value the
  engine's ALTER would change or refuse (hypothesis-generated types and values, on PostgreSQL).
- Per engine and parametrised type, through the CLI on a real tenant: the declared type is created and
  the next plan is empty; a change of length, precision or scale is planned in either direction,
  widened in place where the engine alters in place, narrowed with the value proof (blocked with the
  count of rows that would not fit, applied once all fit), and every plan after an apply is empty.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import EngineLandscape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.desired import column_types, sql
from reconciler.engines.contract import adapter_for
from reconciler.engines.duckdb import ALIAS
from reconciler.model import ObjectKey, Tenant
from reconciler.plan import Detail, Update
from reconciler.state import ColumnState, LiveObject, LiveState

TABLE = "environments/dev/sales/typed.yaml"
KEY = ObjectKey("sales", "typed")


# -- the types generated ------------------------------------------------------------------------

def _sized(name: str, low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{name}({n})")


@st.composite
def _decimals(draw, name: str, widest: int) -> str:
    precision = draw(st.integers(1, widest))
    return draw(st.sampled_from([name, f"{name}({precision})",
                                 f"{name}({precision},{draw(st.integers(0, precision))})"]))


def duckdb_scalars() -> st.SearchStrategy[str]:
    """Column types in DuckDB's dialect that every engine here can hold (a landscape's default dialect)."""
    return st.one_of(
        st.sampled_from(["INTEGER", "BIGINT", "VARCHAR", "TEXT", "STRING", "CHAR", "DOUBLE", "BOOLEAN", "DATE",
                         "TIMESTAMP", "DECIMAL", "NUMERIC", "REAL"]),
        _sized("VARCHAR", 1, 300), _sized("CHAR", 1, 40), _decimals("DECIMAL", 38), _decimals("NUMERIC", 38),
        _sized("FLOAT", 1, 53))


def duckdb_types() -> st.SearchStrategy[str]:
    """DuckDB's own: TIMESTAMP(p), bit strings, intervals with fields, lists, structs and maps."""
    scalars = st.one_of(duckdb_scalars(), _sized("TIMESTAMP", 0, 9), st.sampled_from(
        ["TIMESTAMPTZ", "TIME", "INTERVAL", "INTERVAL YEAR TO MONTH", "INTERVAL DAY TO SECOND", "BIT", "BIT(3)",
         "BPCHAR", "BPCHAR(4)", "VARBIT(5)", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "UUID", "BLOB"]))
    return st.recursive(scalars, lambda inner: st.one_of(
        inner.map(lambda kind: f"{kind}[]"),
        st.tuples(inner, inner).map(lambda pair: f"STRUCT(a {pair[0]}, b {pair[1]})"),
        st.tuples(st.sampled_from(["VARCHAR", "VARCHAR(3)", "INTEGER"]), inner).map(
            lambda pair: f"MAP({pair[0]}, {pair[1]})")), max_leaves=3)


def postgres_types() -> st.SearchStrategy[str]:
    """PostgreSQL's parametrised types, spelled as people write them, and arrays of them."""
    fields = st.sampled_from(["YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND", "YEAR TO MONTH", "DAY TO HOUR",
                              "DAY TO MINUTE", "DAY TO SECOND", "HOUR TO MINUTE", "HOUR TO SECOND", "MINUTE TO SECOND"])
    seconds = st.tuples(st.sampled_from(["SECOND", "DAY TO SECOND", "HOUR TO SECOND", "MINUTE TO SECOND"]),
                        st.integers(0, 9)).map(lambda pair: f"INTERVAL {pair[0]}({pair[1]})")
    scalars = st.one_of(
        st.sampled_from(["INTEGER", "BIGINT", "TEXT", "VARCHAR", "CHAR", "BPCHAR", "CHARACTER VARYING", "BOOLEAN",
                         "DATE", "TIMESTAMP", "TIMESTAMPTZ", "TIME", "TIMETZ", "INTERVAL", "NUMERIC", "DECIMAL",
                         "BIT", "VARBIT", "BIT VARYING", "DOUBLE PRECISION", "REAL", "FLOAT", "BYTEA"]),
        _sized("VARCHAR", 1, 500), _sized("CHARACTER VARYING", 1, 50), _sized("CHAR", 1, 40),
        _sized("CHARACTER", 1, 40), _sized("BPCHAR", 1, 40), _decimals("NUMERIC", 60), _decimals("DECIMAL", 60),
        _sized("TIMESTAMP", 0, 9), _sized("TIMESTAMPTZ", 0, 9), _sized("TIME", 0, 9), _sized("TIMETZ", 0, 9),
        st.integers(0, 9).map(lambda n: f"TIMESTAMP({n}) WITH TIME ZONE"), _sized("INTERVAL", 0, 9),
        fields.map(lambda f: f"INTERVAL {f}"), seconds, _sized("BIT", 1, 64), _sized("VARBIT", 1, 64),
        _sized("BIT VARYING", 1, 64), _sized("FLOAT", 1, 53))
    return st.one_of(scalars, scalars.map(lambda kind: f"{kind}[]"), scalars.map(lambda kind: f"{kind}[][]"))


def columns_of(kinds: list[str]) -> str:
    return ", ".join(f"c{index} {kind}" for index, kind in enumerate(kinds))


# -- the engine reports what the normal form says -----------------------------------------------

@pytest.fixture(scope="module")
def duckdb_reports():
    """The column types DuckDB's adapter reads back for a table created with the types given; None
    where DuckDB refuses them. One connection for every example."""
    adapter = adapter_for(Tenant(name="dev", url="duckdb:///oracle.duckdb"), Path("."))
    with duckdb.connect(":memory:") as connection:
        connection.execute(f"ATTACH ':memory:' AS {ALIAS}")
        connection.execute(f"USE {ALIAS}")
        connection.execute("CREATE SCHEMA sales")

        def reports(kinds: list[str]) -> list[str] | None:
            try:
                connection.execute(f"CREATE OR REPLACE TABLE sales.typed ({columns_of(kinds)})")
            except duckdb.Error:
                return None
            objects, _ = adapter.engine_objects(connection)
            return [column.type for column in objects[KEY].columns]

        yield reports


@settings(max_examples=120, deadline=None)
@given(kinds=st.lists(duckdb_types(), min_size=1, max_size=6))
def test_duckdb_reports_every_declared_type_as_its_normal_form(duckdb_reports, kinds: list[str]) -> None:
    """What a plan creates is read back as its normal form; and where DuckDB takes the declaration as
    written (it has no VARBIT, which a landscape for PostgreSQL may declare), it makes that of it too."""
    normal = [column_types.column_type(kind, "duckdb", "duckdb") for kind in kinds]
    assert duckdb_reports(normal) == normal
    for kind, expected in zip(kinds, normal):
        assert duckdb_reports([kind]) in (None, [expected]), kind
    own = [kind for kind in kinds if "VARBIT" not in kind]
    assert not own or duckdb_reports(own) is not None   # the grammar writes what DuckDB takes


@pytest.fixture(scope="module")
def postgres_reports(postgres_server):
    """As `duckdb_reports`, on a database of the test server of its own, through one connection."""
    import psycopg

    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as server:
        server.execute('DROP DATABASE IF EXISTS "column_types_oracle"')
        server.execute('CREATE DATABASE "column_types_oracle"')
    url = f"postgresql://postgres@/column_types_oracle?host={postgres_server.get_uri().split('host=')[1]}"
    adapter = adapter_for(Tenant(name="dev", url=url), Path("."))
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE SCHEMA sales")

        def reports(kinds: list[str]) -> list[str]:
            connection.execute("DROP TABLE IF EXISTS sales.typed")
            connection.execute(f"CREATE TABLE sales.typed ({columns_of(kinds)})")
            objects, _ = adapter.engine_objects(connection)
            return [column.type for column in objects[KEY].columns]

        yield reports


@settings(max_examples=120, deadline=None)
@given(kinds=st.lists(postgres_types(), min_size=1, max_size=6), in_duckdb=st.lists(duckdb_scalars(), max_size=4))
def test_postgresql_reports_every_declared_type_as_its_normal_form(postgres_reports, kinds: list[str],
                                                                   in_duckdb: list[str]) -> None:
    """Declared in PostgreSQL's dialect (as written, and as a plan writes it) and in DuckDB's (a
    landscape's default dialect, transpiled): PostgreSQL reports each as its normal form."""
    normal = [column_types.column_type(kind, "postgres", "postgres") for kind in kinds]
    transpiled = [column_types.column_type(kind, "duckdb", "postgres") for kind in in_duckdb]
    assert postgres_reports([*normal, *transpiled]) == [*normal, *transpiled]
    assert postgres_reports(kinds) == normal


SPARK_TYPES = [   # (declared, dialect): Spark's parametrised types, nested too, and DECIMAL's default
    ("VARCHAR(2)", "spark"), ("CHAR(3)", "spark"), ("DECIMAL", "spark"), ("DECIMAL(5)", "spark"),
    ("DECIMAL(38,10)", "spark"), ("NUMERIC(5,2)", "spark"), ("ARRAY<VARCHAR(2)>", "spark"),
    ("ARRAY<DECIMAL>", "spark"), ("STRUCT<a: CHAR(2), b: DECIMAL(5,2)>", "spark"),
    ("MAP<VARCHAR(3), DECIMAL>", "spark"), ("VARCHAR(2)", "duckdb"), ("CHAR(4)", "duckdb"), ("VARCHAR", "duckdb"),
    ("DECIMAL", "duckdb"), ("DECIMAL(7)", "duckdb"),
    ("VARCHAR(2)[]", "duckdb"), ("STRUCT(a VARCHAR(2), b DECIMAL)", "duckdb"), ("TIMESTAMP(3)", "duckdb"),
    ("FLOAT(10)", "duckdb"), ("FLOAT(30)", "duckdb"), ("DECIMAL", "postgres"), ("BPCHAR(3)", "postgres"),
]


def test_spark_reports_every_declared_type_as_its_normal_form(spark_server: str, spark) -> None:
    """What a plan creates, and what Spark makes of its own dialect's declarations as written."""
    adapter = adapter_for(Tenant(name="dev", url=spark_server), Path("."))

    def reports(kinds: list[str]) -> list[str]:
        spark.sql(f"CREATE TABLE sales.typed ({columns_of(kinds)}) USING parquet")
        with adapter.reading() as session:
            found = [column.type for column in session.inspect().objects[KEY].columns]
        spark.sql("DROP TABLE sales.typed")
        return found

    spark.sql("CREATE SCHEMA sales")
    normal = [column_types.column_type(kind, dialect, "spark") for kind, dialect in SPARK_TYPES]
    assert reports(normal) == normal
    own = [kind for kind, dialect in SPARK_TYPES if dialect == "spark"]
    assert reports(own) == [column_types.column_type(kind, "spark", "spark") for kind in own]


@settings(max_examples=400, deadline=None)
@given(kind=st.one_of(duckdb_types(), postgres_types()), engine=st.sampled_from(["duckdb", "postgres", "spark"]))
def test_a_normal_form_read_back_is_itself(kind: str, engine: str) -> None:
    """What a plan writes and what the engine reports are compared in one form, so reading the normal form
    back as an engine's report must give it again (`INTERVAL(3)` once came back as `INTERVAL 3`)."""
    for dialect in ("duckdb", "postgres", "spark"):
        try:
            normal = column_types.column_type(kind, dialect, engine)
        except column_types.SqlProblem:
            continue
        assert column_types.engine_type(normal, engine) == normal, (kind, dialect)


UNCHANGED = ["BIGINT", "INTEGER", "VARCHAR", "TEXT", "STRING", "CHAR", "BOOLEAN", "DATE", "TIMESTAMP", "TIMESTAMPTZ",
             "DOUBLE", "DECIMAL(18,2)", "DECIMAL", "VARCHAR[]", "INTEGER[]", "STRUCT(a VARCHAR, b BIGINT)",
             "MAP(VARCHAR, INTEGER)", "DECIMAL(38,2)", "INTERVAL", "UUID", "BLOB"]


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_a_type_without_a_dropped_length_keeps_the_form_it_had(engine: str) -> None:
    """The demo's types, and the others a DuckDB-dialect landscape writes with nothing its dialect drops,
    are spelled as before on every engine (as the dialect casts them, `sql.normalize_type`): a new
    spelling would plan a retype of every such column on every tenant after an upgrade."""
    for kind in UNCHANGED:
        if engine == "postgres" and kind.startswith(("STRUCT", "MAP")):
            continue   # PostgreSQL has neither: refused at validate now, by CREATE TABLE before
        assert column_types.column_type(kind, "duckdb", engine) == sql.normalize_type(kind, "duckdb", engine), kind


# -- the value proof is the engine's ------------------------------------------------------------

@st.composite
def retypes(draw) -> tuple[str, str, list[str]]:
    """(old type, new type, values as PostgreSQL literals of the old type) in one family."""
    family = draw(st.sampled_from(["varchar", "char", "numeric", "timestamp", "varbit", "interval"]))
    if family in ("varchar", "char"):
        old, new = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        words = st.text(alphabet="ab ", min_size=0, max_size=old).map(lambda text: f"'{text}'")
        return f"{family.upper()}({old})", f"{family.upper()}({new})", draw(st.lists(words, min_size=1, max_size=5))
    if family == "numeric":
        precision, scale = draw(st.integers(1, 8)), draw(st.integers(0, 4))
        numbers = st.decimals(min_value=-99, max_value=99, places=min(scale, 3)).filter(lambda d: d.is_finite())
        old = f"NUMERIC(12,{scale})"
        return old, f"NUMERIC({max(precision, scale)},{draw(st.integers(0, 4))})", \
            draw(st.lists(numbers.map(str), min_size=1, max_size=5))
    if family == "timestamp":
        microseconds = st.integers(0, 999_999).map(lambda us: f"TIMESTAMP '2024-03-01 10:00:00.{us:06}'")
        return "TIMESTAMP(6)", f"TIMESTAMP({draw(st.integers(0, 6))})", draw(st.lists(microseconds, min_size=1,
                                                                                         max_size=5))
    if family == "varbit":
        bits = st.text(alphabet="01", min_size=0, max_size=6).map(lambda text: f"B'{text}'")
        return "VARBIT(6)", f"VARBIT({draw(st.integers(1, 6))})", draw(st.lists(bits, min_size=1, max_size=5))
    spans = st.sampled_from(["'1 year 2 months'", "'3 days'", "'04:05:06.789'", "'1 day 00:00:01'", "'0'"])
    return "INTERVAL", draw(st.sampled_from(["INTERVAL YEAR TO MONTH", "INTERVAL DAY", "INTERVAL DAY TO SECOND(0)",
                                             "INTERVAL SECOND(1)", "INTERVAL(2)"])), \
        draw(st.lists(spans, min_size=1, max_size=5))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(retype=retypes())
def test_postgresql_narrowing_counts_exactly_the_values_its_alter_would_change(postgres_database: str,
                                                                              retype: tuple) -> None:
    """Each row alone: counted by the check exactly when PostgreSQL's ALTER ... TYPE (what apply runs)
    refuses its value or changes it (its value cast back to the old type differs)."""
    import psycopg

    from reconciler.engines.postgres import PostgresCompiler

    old, new = (column_types.column_type(kind, "postgres", "postgres") for kind in retype[:2])
    compiler = PostgresCompiler()
    found = LiveObject(KEY, "Table", (ColumnState("v", old),))
    change = Update(kind="Table", object=str(KEY), risk="medium", reason="r",
                    details=(Detail(field="columns.v.type", op="change", before=old, after=new),))
    [check] = compiler.checks(change, LiveState({KEY: found}, {}, frozenset({"sales"})))
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS sales CASCADE")
        connection.execute("CREATE SCHEMA sales")
        for value in retype[2]:
            connection.execute(f"CREATE TABLE sales.typed (v {old})")
            connection.execute(f"INSERT INTO sales.typed VALUES ({value})")
            counted = connection.execute(check.query).fetchone()[0]
            connection.execute("CREATE TABLE sales.kept AS SELECT v FROM sales.typed")
            try:
                connection.execute(compiler.retype('"sales"."typed"', '"v"', new))
                changed = connection.execute(f"SELECT count(*) FROM sales.typed t, sales.kept k WHERE "
                                             f"CAST(t.v AS {old}) IS DISTINCT FROM k.v").fetchone()[0]
            except psycopg.Error:
                changed = 1
            connection.execute("DROP TABLE sales.typed, sales.kept")
            assert counted == changed, (old, new, value)


# -- through the CLI, per engine and parametrised type ------------------------------------------

@dataclass(frozen=True)
class Retype:
    to: str
    misfits: tuple[int, ...] = ()   # ids of the rows whose values would not fit: blocked, then deleted


@dataclass(frozen=True)
class TypeCase:
    engine: str
    declared: str                   # in the landscape's dialect (DuckDB's, the demo's)
    rows: tuple[str, ...]           # values as SQL literals; row i has id i + 1
    steps: tuple[Retype, ...]

    @property
    def id(self) -> str:
        return f"{self.engine}-{self.declared}"


CASES = [
    TypeCase("postgres", "VARCHAR(4)", ("'ab'", "'abcd'"),
             (Retype("VARCHAR(8)"), Retype("VARCHAR"), Retype("VARCHAR(2)", (2,)))),
    TypeCase("postgres", "CHAR(4)", ("'ab'", "'abcd'"), (Retype("CHAR(6)"), Retype("CHAR(2)", (2,)))),
    TypeCase("postgres", "DECIMAL(6,2)", ("1.25", "1234.5"),
             (Retype("DECIMAL(10,2)"), Retype("DECIMAL(10,4)"), Retype("DECIMAL(5,1)", (1,)),
              Retype("DECIMAL(4,0)", (2,)))),
    TypeCase("postgres", "DECIMAL(10,2)", ("1.25",), (Retype("DECIMAL"), Retype("DECIMAL(3)", (1,)))),
    TypeCase("postgres", "TIMESTAMP(3)", ("TIMESTAMP '2024-01-01 10:00:00'", "TIMESTAMP '2024-01-01 10:00:00.123'"),
             (Retype("TIMESTAMP(6)"), Retype("TIMESTAMP"), Retype("TIMESTAMP(0)", (2,)))),
    TypeCase("postgres", "TIMESTAMPTZ(3)", ("TIMESTAMPTZ '2024-01-01 10:00:00+00'",
                                            "TIMESTAMPTZ '2024-01-01 10:00:00.5+00'"),
             (Retype("TIMESTAMPTZ(6)"), Retype("TIMESTAMPTZ(0)", (2,)))),
    TypeCase("postgres", "TIME(3)", ("TIME '10:00:00'", "TIME '10:00:00.25'"),
             (Retype("TIME(6)"), Retype("TIME(1)", (2,)))),
    TypeCase("postgres", "TIMETZ(3)", ("TIMETZ '10:00:00+00'", "TIMETZ '10:00:00.25+00'"),
             (Retype("TIMETZ(6)"), Retype("TIMETZ(1)", (2,)))),
    TypeCase("postgres", "INTERVAL DAY TO SECOND(3)", ("INTERVAL '1 day'", "INTERVAL '1 day 02:00:00.5'"),
             (Retype("INTERVAL DAY TO SECOND(6)"), Retype("INTERVAL"), Retype("INTERVAL DAY", (2,)))),
    TypeCase("postgres", "INTERVAL(3)", ("INTERVAL '1 second'", "INTERVAL '1.25 seconds'"),
             (Retype("INTERVAL(6)"), Retype("INTERVAL(1)", (2,)))),
    TypeCase("postgres", "BIT(3)", ("B'101'", "NULL"), (Retype("BIT(4)", (1,)), Retype("BIT(2)"))),
    TypeCase("postgres", "VARBIT(3)", ("B'1'", "B'101'"),
             (Retype("VARBIT(5)"), Retype("VARBIT"), Retype("VARBIT(2)", (2,)))),
    TypeCase("postgres", "VARCHAR(4)[]", ("ARRAY['ab']", "ARRAY['ab', 'abcd']"),
             (Retype("VARCHAR(8)[]"), Retype("VARCHAR(2)[]", (2,)))),
    TypeCase("duckdb", "DECIMAL(6,2)", ("1.25", "1234.5"),
             (Retype("DECIMAL(10,2)"), Retype("DECIMAL"), Retype("DECIMAL(5,1)", (1,)))),
    TypeCase("duckdb", "TIMESTAMP(3)", ("TIMESTAMP '2024-01-01 10:00:00'", "TIMESTAMP '2024-01-01 10:00:00.123'"),
             (Retype("TIMESTAMP(9)"), Retype("TIMESTAMP"), Retype("TIMESTAMP(0)", (2,)))),
    # narrowed once the row in the way is deleted: DuckDB's ALTER casts the deleted row's value too
    TypeCase("duckdb", "DECIMAL(6,2)[]", ("[1.25]", "[1.25, 1234.5]"),
             (Retype("DECIMAL(10,2)[]"), Retype("DECIMAL(5,2)[]", (2,)))),
    TypeCase("spark", "VARCHAR(4)", ("'ab'", "'abcd'"), (Retype("VARCHAR(8)"), Retype("VARCHAR(2)", (2,)))),
    TypeCase("spark", "CHAR(3)", ("'abc'", "'ab'"), (Retype("VARCHAR(5)"), Retype("CHAR(5)", (1, 2)))),
    TypeCase("spark", "DECIMAL(6,2)", ("1", "1234.5"),
             (Retype("DECIMAL(10,2)"), Retype("DECIMAL(5,1)"), Retype("DECIMAL(4,0)", (2,)))),
]
IN_PLACE = {"postgres", "duckdb"}   # engines whose ALTER COLUMN ... TYPE keeps the table (Spark rebuilds)


def typed_table(kind: str) -> str:
    return ("kind: Table\nname: typed\nschema: sales\nstatus: active\ncolumns:\n"
            "  - {name: id, type: BIGINT, nullable: false}\n"
            f"  - {{name: v, type: \"{kind}\"}}\nprimary_key: [id]\n")


def live_type(landscape: EngineLandscape) -> str:
    """The column's type as the tenant's adapter reads it."""
    environment = yaml.safe_load(landscape.path("environments/dev/environment.yaml").read_text())
    tenant = Tenant(**{k: v for k, v in environment["tenants"][0].items() if k in ("name", "url")})
    with adapter_for(tenant, landscape.root).reading() as session:
        return {c.name: c.type for c in session.inspect().objects[KEY].columns}["v"]


def converged(landscape: EngineLandscape, kind: str) -> None:
    result = landscape.run("plan", "dev", "--detailed-exitcode")
    assert result.code == 0, result.output
    assert live_type(landscape) == column_types.column_type(kind, "duckdb", landscape.engine)


def delete(landscape: EngineLandscape, ids: tuple[int, ...]) -> None:
    """Rows out of the table (Spark's parquet tables take no DELETE: the others are written over them)."""
    kept = f"SELECT * FROM sales.typed WHERE id NOT IN ({', '.join(map(str, ids))})"
    if landscape.engine != "spark":
        landscape.sql(f"DELETE FROM sales.typed WHERE id IN ({', '.join(map(str, ids))})")
        return
    for statement in (f"CREATE TABLE sales.kept USING parquet AS {kept}",
                      "INSERT OVERWRITE TABLE sales.typed SELECT * FROM sales.kept", "DROP TABLE sales.kept"):
        landscape.spark.sql(statement).collect()


@pytest.mark.parametrize("every_engine, case", [pytest.param(case.engine, case, id=case.id) for case in CASES],
                         indirect=["every_engine"])
def test_a_declared_type_round_trips_and_each_change_of_it_is_planned(every_engine: EngineLandscape,
                                                                      case: TypeCase) -> None:
    landscape = every_engine
    for folder in landscape.path("environments/dev").iterdir():   # the table alone: a plan reads little
        if folder.is_dir():
            shutil.rmtree(folder)
    landscape.edit("environments/dev/environment.yaml", "  parameters: {REGION_PARAM: EU}\n", "")
    landscape.write(TABLE, typed_table(case.declared))
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql(f"INSERT INTO sales.typed VALUES {', '.join(f'({i + 1}, {v})' for i, v in enumerate(case.rows))}")
    converged(landscape, case.declared)
    kept = set(range(1, len(case.rows) + 1))
    before = case.declared
    for step in case.steps:
        landscape.write(TABLE, typed_table(step.to))
        plan = json.loads(landscape.run("plan", "dev", "--format", "json").stdout)
        [change] = [c for c in plan["tenants"][0]["changes"] if c["object"] == str(KEY)]
        assert [(d["before"], d["after"]) for d in change["details"] if d["field"] == "columns.v.type"] == \
            [(column_types.column_type(before, "duckdb", landscape.engine),
              column_types.column_type(step.to, "duckdb", landscape.engine))], step
        if landscape.engine in IN_PLACE:
            assert not any("__reconciler_rebuild" in s for s in change["statements"]), change["statements"]
        if step.misfits:
            state = landscape.state()
            refused = landscape.run("apply", "dev", "--yes")
            count = len(step.misfits)
            assert refused.code == 3 and f"a value in v that would not fit " \
                f"{column_types.column_type(step.to, 'duckdb', landscape.engine)} unchanged: {count} " \
                f"row{'s' * (count > 1)}" in refused.stderr, refused.output
            assert landscape.state() == state
            delete(landscape, step.misfits)
            kept -= set(step.misfits)
        result = landscape.run("apply", "dev", "--yes")
        assert result.code == 0, result.output
        converged(landscape, step.to)
        assert {row[0] for row in landscape.sql("SELECT id FROM sales.typed")} == kept
        before = step.to


MASTER = "environments/dev/sales/customer_master.yaml"


def test_region_narrowed_to_varchar_2_is_a_change_where_the_engine_keeps_a_length(
        engine_landscape: EngineLandscape) -> None:
    """The report: `region` VARCHAR -> VARCHAR(2) planned "No changes" on PostgreSQL, its column unbounded.
    There it is a narrowing with the value proof (and the views that read it recreated); DuckDB keeps no
    length, so there the two are one type and the plan is rightly empty."""
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (1, 'Ada', NULL, 'EU', 'ACTIVE', NULL), "
                  "(2, 'Bob', NULL, 'EMEA', 'ACTIVE', NULL)")
    landscape.edit(MASTER, "{name: region, type: VARCHAR}", "{name: region, type: \"VARCHAR(2)\"}")
    if landscape.engine == "duckdb":
        assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
        return
    plan = landscape.run("plan", "dev")
    assert "~ columns.region.type: TEXT -> VARCHAR(2)" in plan.stdout, plan.stdout
    assert "blocked: a value in region that would not fit VARCHAR(2) unchanged: 1 row" in plan.stdout
    state = landscape.state()
    assert landscape.run("apply", "dev", "--yes").code == 3 and landscape.state() == state
    landscape.sql("UPDATE sales.customer_master SET region = 'EU' WHERE id = 2")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert landscape.sql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                         "'sales.customer_master'::regclass AND attname = 'region'") == [("character varying(2)",)]
    assert landscape.sql("SELECT count(*) FROM sales.vw_customer_active") == [(2,)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
