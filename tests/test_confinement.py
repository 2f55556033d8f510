"""Nothing the reconciler runs on someone's behalf reads, leaks or writes beyond what was declared
(issue 22): SQL in a pull request is hostile code. Each test names the break it proves closed, and
runs on DuckDB and on a real PostgreSQL (`engine_landscape`) where the engines differ.
"""

from __future__ import annotations

import json

import pytest
from conftest import EngineLandscape

FLOW = "environments/dev/integration/df_hostile.yaml"


def flow(landscape: EngineLandscape, sql: str, extra: str = "") -> None:
    """A data flow into sales.customer_master, as a pull request would add it."""
    body = "\n".join(f"  {line}" for line in sql.strip().splitlines())
    landscape.write(FLOW, "kind: DataFlow\nname: df_hostile\nschema: integration\nstatus: active\n"
                          f"connection: Connection_ERP\ntarget: sales.customer_master\n{extra}sql: |\n{body}\n")


def applied(landscape: EngineLandscape) -> EngineLandscape:
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    landscape.sql("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'ada@example.com', 'EU', 'ACTIVE', NULL), "
                  "(2, 'Bob', NULL, 'EU', 'ACTIVE', NULL)")
    landscape.sql("INSERT INTO sales.customer_transactions VALUES (10, 1, 25.00, 'EUR', 'web', NULL), "
                  "(11, 2, 5.00, 'EUR', 'web', NULL), (12, 2, 7.50, 'EUR', 'shop', NULL)")
    return landscape


def test_1_a_flow_that_deletes_from_another_table_through_a_cte_is_refused(engine_landscape: EngineLandscape) -> None:
    landscape = applied(engine_landscape)
    flow(landscape, """
        WITH d AS (DELETE FROM sales.customer_transactions RETURNING customer_id)
        INSERT INTO sales.customer_master (id, name) SELECT DISTINCT customer_id + 1000, 'x' FROM d""")
    landscape.commit("a flow that deletes")
    before = landscape.state()

    validated = landscape.run("validate", "dev")
    run = landscape.run("run", "dev", "df_hostile")

    assert validated.code == 1, validated.output
    assert "df_hostile.yaml:8:26:" in validated.stderr and "DELETE changes data" in validated.stderr, validated.stderr
    assert run.code == 1, run.output
    assert landscape.state() == before
    assert landscape.sql("SELECT count(*) FROM sales.customer_transactions") == [(3,)]


@pytest.mark.parametrize("sql, clause", [
    ("INSERT OR REPLACE INTO sales.customer_master (id, name) SELECT id, 'PWNED' FROM sales.customer_master",
     "INSERT OR REPLACE"),
    ("INSERT INTO sales.customer_master (id, name) SELECT id, 'PWNED' FROM sales.customer_master "
     "ON CONFLICT (id) DO UPDATE SET name = 'PWNED'", "ON CONFLICT"),
], ids=["or_replace", "on_conflict"])
def test_2_a_flow_that_rewrites_rows_in_secret_is_refused(engine_landscape: EngineLandscape, sql: str,
                                                        clause: str) -> None:
    landscape = applied(engine_landscape)
    flow(landscape, sql)
    landscape.commit("a flow that rewrites rows")
    before = landscape.state()

    validated = landscape.run("validate", "dev")
    run = landscape.run("run", "dev", "df_hostile")

    assert validated.code == 1 and f"{clause}: a data flow only appends" in validated.stderr, validated.output
    assert run.code == 1 and landscape.state() == before


def test_2_an_upsert_is_declared_and_audited_as_rows_inserted_and_updated(engine_landscape: EngineLandscape) -> None:
    landscape = applied(engine_landscape)
    flow(landscape, "INSERT INTO sales.customer_master (id, name, region) "
                    "SELECT customer_id, 'customer ' || CAST(customer_id AS VARCHAR), 'EU' "
                    "FROM sales.customer_transactions GROUP BY customer_id "
                    "UNION ALL SELECT 3, 'Cy', 'US'", "mode: upsert\nunique_key: [id]\n")
    landscape.commit("an upsert")
    assert landscape.run("apply", "dev", "--yes").code == 0

    result = landscape.run("run", "dev", "df_hostile")

    assert result.code == 0, result.output
    assert "1 row inserted; 2 rows updated" in result.stdout
    assert landscape.sql("SELECT id, name, email FROM sales.customer_master ORDER BY id") == [
        (1, "customer 1", "ada@example.com"), (2, "customer 2", None), (3, "Cy", None)]
    history = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    assert json.loads(history[-1]["summary"]) == {"rows inserted": 1, "rows updated": 2, "rows deleted": 0}


@pytest.mark.parametrize("extra, message", [
    ("mode: upsert\n", "needs the `unique_key:`"),
    ("mode: upsert\nunique_key: [name]\n", "unique_key: an upsert replaces a row by the primary key of "
                                           "sales.customer_master: [id]"),
    ("unique_key: [id]\n", "`unique_key:` is for mode: upsert"),
], ids=["no_key", "not_the_primary_key", "key_without_upsert"])
def test_an_upsert_names_the_targets_primary_key(engine_landscape: EngineLandscape, extra: str, message: str) -> None:
    flow(engine_landscape, "INSERT INTO sales.customer_master (id, name) SELECT 9, 'x'", extra)

    validated = engine_landscape.run("validate", "dev")

    assert validated.code == 1 and message in validated.stderr, validated.output
    assert "df_hostile.yaml:" in validated.stderr
