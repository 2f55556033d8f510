"""The tree of a statement one process shares (`parsing.parse`: binding and rendering take it after
validation has read it) stays as its text reads: reading a statement's facts and the functions it calls
on every engine never rewrites it, though writing SQL for an engine rewrites what it writes (QUALIFY and
DISTINCT ON for engines without them) and the calls are read with parameters as literals."""

from __future__ import annotations

import pytest

from reconciler.desired.sql import facts, parsing

ENGINES = ("duckdb", "postgres", "spark", "snowflake")
STATEMENTS = [
    ("duckdb", "SELECT id, ROW_NUMBER() OVER (PARTITION BY a ORDER BY b) AS rn FROM s.t QUALIFY rn = 1"),
    ("duckdb", "SELECT DISTINCT ON (a) a, lower(b) AS b FROM s.t ORDER BY a, b"),
    ("postgres", "SELECT DISTINCT ON (a) a, upper(b) AS b FROM s.t WHERE d > $$SINCE ORDER BY a"),
    ("duckdb", "INSERT INTO s.t (a, b) SELECT a, date_trunc('day', b) FROM s.u WHERE c = $$SOURCE"),
    ("snowflake", "SELECT a, IFF(b > 0, 'yes', 'no') AS c FROM s.t QUALIFY ROW_NUMBER() OVER (ORDER BY a) = 1"),
    ("spark", "WITH x AS (SELECT 1 AS a) SELECT a, nvl(a, $$DEFAULT) AS b FROM x"),
]


@pytest.mark.parametrize(("dialect", "statement"), STATEMENTS)
def test_reading_a_statement_leaves_the_tree_it_shares_as_parsed(dialect: str, statement: str) -> None:
    shared = parsing.parse(statement, dialect)
    as_parsed = shared.copy()
    facts.analyze(statement, dialect)
    for engine in ENGINES:
        assert facts.calls(statement, dialect, engine), engine   # each statement calls a function somewhere
        facts.sequence_calls(statement, engine)
    assert parsing.parse(statement, dialect) is shared
    assert shared == as_parsed, (shared.sql(dialect), as_parsed.sql(dialect))
    assert shared.sql(dialect) == as_parsed.sql(dialect)
