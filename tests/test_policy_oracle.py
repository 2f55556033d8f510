"""The SQL policy against the engines themselves (issue 22): generated statements, each run by the
engine inside a transaction that is rolled back, and the policy's verdict on its parsed tree.

The property: whatever an engine lets a statement change beyond what its kind may (a query changes
nothing; a data flow appends rows to its target), the policy refused. The generator mixes reading
pieces with writing ones in every position a parser accepts (CTEs, derived tables, UNION branches,
subqueries, row locks, SELECT INTO, INSERT clauses).
"""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.desired import policy

SETUP = ["CREATE SCHEMA s", "CREATE TABLE s.a (id INTEGER PRIMARY KEY, v INTEGER)",
         "CREATE TABLE s.b (id INTEGER PRIMARY KEY, v INTEGER)", "CREATE TABLE s.t (id INTEGER PRIMARY KEY, v INTEGER)",
         "INSERT INTO s.a VALUES (1, 10), (2, 20)", "INSERT INTO s.b VALUES (1, 100), (3, 300)",
         "INSERT INTO s.t VALUES (1, 1), (2, 2)"]
READS = ["SELECT id, v FROM s.a", "SELECT id + 10 AS id, v FROM s.b WHERE v > 0", "SELECT 7 AS id, 7 AS v"]
WRITES = ["DELETE FROM s.b RETURNING id, v", "UPDATE s.b SET v = v + 1 RETURNING id, v",
          "INSERT INTO s.b VALUES (50, 5) RETURNING id, v", "DELETE FROM s.t RETURNING id, v"]


@st.composite
def queries(draw, depth: int = 2) -> str:
    """A query whose pieces may write: `piece` is a reading or a writing statement giving (id, v)."""
    piece = draw(st.sampled_from(READS + WRITES))
    shape = draw(st.integers(0, 6 if depth else 1))
    inner = draw(queries(depth - 1)) if depth and shape in (4, 5) else "SELECT id, v FROM s.a"
    return [
        f"WITH x AS ({piece}) SELECT id, v FROM x",
        f"SELECT id, v FROM ({piece if piece in READS else 'SELECT 1 AS id, 1 AS v'}) AS d",
        "SELECT id, v FROM s.a FOR UPDATE",
        "SELECT id, v FROM s.a WHERE id IN (SELECT id FROM s.b) FOR SHARE",
        f"SELECT id, v FROM s.a UNION ALL {inner}",
        f"WITH y AS ({inner}) SELECT id, v FROM y WHERE EXISTS (SELECT 1 FROM s.b)",
        "SELECT id, v FROM s.a WHERE v > (SELECT count(*) FROM s.b)",
    ][shape]


@st.composite
def flows(draw) -> str:
    query = draw(queries())
    tail = draw(st.sampled_from(["", " ON CONFLICT (id) DO NOTHING", " ON CONFLICT (id) DO UPDATE SET v = 0",
                                 " RETURNING id"]))
    head = draw(st.sampled_from(["INSERT INTO s.t (id, v) ", "INSERT INTO s.t "]))
    if head == "INSERT INTO s.t " and draw(st.booleans()):
        head = "INSERT OR REPLACE INTO s.t "
    return f"{head}{query}{tail}"


def state(execute) -> dict:
    return {table: sorted(execute(f"SELECT id, v FROM s.{table}")) for table in ("a", "b", "t")} | {
        "tables": sorted(execute("SELECT table_schema, table_name FROM information_schema.tables "
                                 "WHERE table_schema = 's'"))}


def changed_beyond(kind: str, before: dict, after: dict) -> list[str]:
    """What the statement changed that its kind may not: a flow may only add rows to s.t."""
    changes = [name for name in ("a", "b", "tables") if before[name] != after[name]]
    if kind == "query" and before["t"] != after["t"]:
        changes.append("t")
    if kind == "flow" and not set(before["t"]) <= set(after["t"]):
        changes.append("t (rows rewritten or removed)")
    return changes


def verdict(statement: str, dialect: str) -> tuple[policy.Violation, ...] | None:
    """The policy's violations, or None where sqlglot cannot read the statement (then validate
    refuses it as SQL that does not parse, before any policy)."""
    try:
        return policy.effects(sqlglot.parse_one(statement, read=dialect))
    except sqlglot.errors.SqlglotError:
        return None


class DuckDB:
    def __init__(self) -> None:
        self.connection = duckdb.connect()
        for statement in SETUP:
            self.connection.execute(statement)

    def rows(self, query: str) -> list[tuple]:
        return self.connection.execute(query).fetchall()

    def attempt(self, statement: str) -> dict | None:
        """The state after `statement` ran in a transaction (then rolled back); None when refused."""
        self.connection.execute("BEGIN")
        try:
            self.connection.execute(statement)
            return state(self.rows)
        except duckdb.Error:
            return None
        finally:
            self.connection.execute("ROLLBACK")


class Postgres:
    def __init__(self, url: str) -> None:
        import psycopg

        self.error = psycopg.Error
        self.connection = psycopg.connect(url, autocommit=True)
        for statement in SETUP:
            self.connection.execute(statement)

    def rows(self, query: str) -> list[tuple]:
        return self.connection.execute(query).fetchall()

    def attempt(self, statement: str) -> dict | None:
        self.connection.execute("BEGIN")
        try:
            self.connection.execute(statement)
            return state(self.rows)
        except self.error:
            return None
        finally:
            self.connection.execute("ROLLBACK")


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def engine(request):
    if request.param == "duckdb":
        return "duckdb", DuckDB()
    return "postgres", Postgres(request.getfixturevalue("module_postgres_database"))


@pytest.fixture(scope="module")
def module_postgres_database(postgres_server) -> str:
    import psycopg

    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS policy_oracle")
        connection.execute("CREATE DATABASE policy_oracle")
    return f"postgresql://postgres@/policy_oracle?host={postgres_server.get_uri().split('host=')[1]}"


def _agree(engine, kind: str, statement: str) -> None:
    dialect, database = engine
    found = verdict(statement, dialect)
    before = state(database.rows)
    after = database.attempt(statement)
    if after is None or found is None:
        return   # the engine (or the parser) refuses it: nothing ran
    escaped = changed_beyond(kind, before, after)
    assert not escaped or found, f"{statement!r} changed {escaped} on {dialect} and the policy allowed it"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statement=queries())
def test_a_query_the_policy_allows_changes_nothing_on_the_engine(engine, statement: str) -> None:
    _agree(engine, "query", statement)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statement=flows())
def test_a_flow_the_policy_allows_only_appends_to_its_target_on_the_engine(engine, statement: str) -> None:
    _agree(engine, "flow", statement)


@pytest.mark.parametrize("statement", [WRITE for WRITE in WRITES] + [
    "SELECT id, v INTO s.c FROM s.a", "INSERT INTO s.t SELECT id, v FROM s.a ON CONFLICT (id) DO UPDATE SET v = 0"])
def test_every_writing_piece_is_seen_by_the_engine_and_refused_by_the_policy(engine, statement: str) -> None:
    """The generator's writing pieces do change something where the engine runs them (so the properties
    above are not vacuous), and the policy refuses each wherever it sits."""
    dialect, database = engine
    wrapped = f"WITH x AS ({statement}) SELECT id, v FROM x" if statement in WRITES else statement
    if database.attempt(statement) is not None:
        assert changed_beyond("flow" if statement.startswith("INSERT") else "query", state(database.rows),
                              database.attempt(statement))
    assert verdict(wrapped, dialect), wrapped
