"""The names engines give a query's outputs (`naming`), with DuckDB as the oracle: generated select
lists, each named by `naming.output_names` and by DuckDB running the query, must agree; rendered for
Spark, every output the engine would name itself carries that name as its alias."""

from __future__ import annotations

import duckdb
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.desired import naming, sql

TABLE = "CREATE TABLE t (a INTEGER, x DOUBLE, b VARCHAR, d DATE)"

number = st.recursive(
    st.sampled_from(["a", "x", "t.a", "1", "2.5", "-3"]),
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%"]), inner).map(lambda p: f"({p[0]} {p[1]} {p[2]})"),
        inner.map(lambda e: f"-({e})"),
        st.sampled_from(["abs", "round", "ceil", "floor", "sign"]).flatmap(lambda f: inner.map(lambda e: f"{f}({e})")),
        inner.map(lambda e: f"round({e}, 2)"),
        inner.map(lambda e: f"CAST({e} AS BIGINT)"),
        inner.map(lambda e: f"{e}::DOUBLE"),
        st.tuples(inner, inner, inner).map(lambda p: f"CASE WHEN {p[0]} > {p[1]} THEN {p[2]} ELSE 0 END"),
        st.tuples(inner, inner).map(lambda p: f"coalesce({p[0]}, {p[1]})"),
        st.just("extract(year FROM d)"), st.just("length(b)")),
    max_leaves=4)
text = st.sampled_from(["b", "'lit'", "upper(b)", "b || 'x'", "substring(b, 1, 2)", "concat(b, 'y')", "trim(b)"])
truth = st.one_of(number.map(lambda e: f"{e} > 1"), st.just("b IS NULL"), st.just("b IN ('x', 'y')"),
                  number.map(lambda e: f"{e} BETWEEN 1 AND 2"), st.just("NOT (a = 1)"), st.just("b LIKE 'a%'"))
aggregate = st.one_of(st.sampled_from(["sum", "avg", "min", "max", "count"]).flatmap(
    lambda f: number.map(lambda e: f"{f}({e})")), st.just("count(*)"), st.just("count(DISTINCT a)"),
    st.just("string_agg(b, ',')"))
item = st.one_of(number, text, truth, aggregate, st.sampled_from(["a", "t.b", "*", "a AS alias_a", "sum(x) AS total"]))


@settings(max_examples=200, deadline=None)
@given(items=st.lists(item, min_size=1, max_size=5), shape=st.sampled_from(["plain", "cte", "union"]))
def test_an_outputs_name_is_the_one_duckdb_gives_it(items: list[str], shape: str) -> None:
    select = f"SELECT {', '.join(items)} FROM t GROUP BY ALL"
    query = {"plain": select, "cte": f"WITH c AS (SELECT 1 AS one) {select}",
             "union": f"{select} UNION ALL {select}"}[shape]
    with duckdb.connect() as connection:
        connection.execute(TABLE)
        engine = [column[0] for column in connection.execute(f"{query} LIMIT 0").description]
    names = naming.output_names(query, "duckdb")
    assert names is not None and len(names) == len(items)
    expanded = [name for item, name in zip(items, names) for name in (("a", "x", "b", "d") if item == "*" else (name,))]
    assert expanded == engine

    spark = sqlglot.parse_one(sql.render(query, "duckdb", "spark", {}, {}, names=names), read="spark")
    while not isinstance(spark, sqlglot.exp.Select):
        spark = spark.left
    assert [e.alias_or_name for e in spark.expressions if not isinstance(e, sqlglot.exp.Star)] == \
        [name for item, name in zip(items, names) if item != "*"]


def test_names_are_not_guessed_for_another_dialect_or_what_duckdb_does_not_read() -> None:
    assert naming.output_names("SELECT sum(a) FROM t", "postgres") is None
    assert naming.output_names("SELECT FROM WHERE", "duckdb") is None
    assert naming.output_names("SELECT 1; SELECT 2", "duckdb") is None
