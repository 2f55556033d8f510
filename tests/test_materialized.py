"""MaterializedTable: a table whose rows come from a query, on DuckDB and a real PostgreSQL.

Created with CREATE TABLE ... AS, rebuilt when its query or a column it reads changes (the plan
shows the rows before and after, and never calls it data loss), refreshed with `reconciler run`,
checked like any table; what reads it is recreated with it.
"""

from __future__ import annotations

import json

from conftest import EngineLandscape

REVENUE = "environments/dev/sales/mt_region_revenue.yaml"
TRANSACTIONS = "environments/dev/sales/customer_transactions.yaml"
ROWS = ("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'ada@example.com', 'EU', 'ACTIVE', NULL), "
        "(2, 'Bob', NULL, 'EU', 'ACTIVE', NULL); "
        "INSERT INTO sales.customer_transactions VALUES (10, 1, 2500.00, 'EUR', 'web', NULL), "
        "(11, 2, 40.00, 'EUR', 'shop', NULL)")
MATERIALIZED = """kind: MaterializedTable
name: mt_region_revenue
schema: sales
sql: |
  SELECT segment, SUM(revenue) AS revenue, COUNT(*) AS customers
  FROM sales.vw_customer_segmentation
  GROUP BY segment
columns:
  - {name: revenue, type: "DECIMAL(38,2)"}
checks:
  - {unique: segment}
"""
READER = "kind: View\nname: vw_region_top\nschema: sales\nsql: SELECT segment, revenue FROM sales.mt_region_revenue\n"


def built(landscape: EngineLandscape) -> EngineLandscape:
    """The demo with rows, then a MaterializedTable over it and a view reading that, applied."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql(ROWS)
    landscape.write(REVENUE, MATERIALIZED)
    landscape.write("environments/dev/sales/views/vw_region_top.yaml", READER)
    plan = landscape.run("plan", "dev")
    assert "+ MaterializedTable sales.mt_region_revenue: new object; 2 rows from its query" in plan.stdout
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    return landscape


def test_a_materialized_table_holds_its_querys_rows_with_the_types_it_pins(engine_landscape: EngineLandscape) -> None:
    landscape = built(engine_landscape)
    assert landscape.sql("SELECT segment, revenue, customers FROM sales.mt_region_revenue ORDER BY segment") == \
        [("GOLD", 2500, 1), ("STANDARD", 40, 1)]
    assert landscape.sql("SELECT data_type FROM information_schema.columns WHERE table_name = 'mt_region_revenue' "
                         "AND column_name = 'revenue'")[0][0].upper().startswith(("DECIMAL(38,2)", "NUMERIC"))
    assert landscape.sql("SELECT count(*) FROM sales.vw_region_top") == [(2,)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_changed_query_rebuilds_it_with_its_readers_and_rows_counted(engine_landscape: EngineLandscape) -> None:
    landscape = built(engine_landscape)
    landscape.sql("INSERT INTO sales.customer_master VALUES (3, 'Cy', NULL, 'EU', 'ACTIVE', NULL); "
                  "INSERT INTO sales.customer_transactions VALUES (12, 3, 20000.00, 'EUR', 'web', NULL)")
    landscape.edit(REVENUE, "COUNT(*) AS customers", "COUNT(*) AS customers, MAX(revenue) AS best")

    plan = landscape.run("plan", "dev")
    assert "-/+ MaterializedTable sales.mt_region_revenue: its query changed: rebuilt from it (its rows are " \
           "computed again); 2 rows now, 3 rows from its query" in plan.stdout
    assert "View sales.vw_region_top: recreated" in plan.stdout
    result = landscape.run("apply", "dev", "--yes")   # no --allow-data-loss: its rows are the query's

    assert result.code == 0, result.output
    assert landscape.sql("SELECT segment, best FROM sales.mt_region_revenue ORDER BY segment") == \
        [("GOLD", 2500), ("PLATINUM", 20000), ("STANDARD", 40)]
    assert landscape.sql("SELECT count(*) FROM sales.vw_region_top") == [(3,)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_an_upstream_column_change_rebuilds_it(engine_landscape: EngineLandscape) -> None:
    landscape = built(engine_landscape)
    landscape.edit(TRANSACTIONS, '{name: amount, type: "DECIMAL(18,2)"}', '{name: amount, type: "DECIMAL(20,2)"}')
    plan = landscape.run("plan", "dev")
    assert "MaterializedTable sales.mt_region_revenue: rebuilt from its query: its columns revenue, segment change with " \
           "sales.vw_customer_segmentation; 2 rows now, its query's rows are counted at apply" in plan.stdout
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert landscape.sql("SELECT count(*) FROM sales.mt_region_revenue") == [(2,)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_run_refreshes_it_and_its_checks_guard_the_refresh(engine_landscape: EngineLandscape) -> None:
    landscape = built(engine_landscape)
    landscape.sql("INSERT INTO sales.customer_master VALUES (3, 'Cy', NULL, 'EU', 'ACTIVE', NULL); "
                  "INSERT INTO sales.customer_transactions VALUES (12, 3, 20000.00, 'EUR', 'web', NULL)")

    result = landscape.run("run", "dev", "mt_region_revenue")

    assert result.code == 0, result.output
    assert "sales.mt_region_revenue refreshed from its query: 2 rows deleted; 3 rows inserted" in result.stdout
    assert landscape.sql("SELECT count(*) FROM sales.mt_region_revenue") == [(3,)]
    history = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    assert (history[-1]["operation"], json.loads(history[-1]["summary"])) == ("run", {"rows inserted": 3, "rows updated": 0, "rows deleted": 2})

    landscape.edit(REVENUE, "  - {unique: segment}", "  - {unique: segment}\n"
                   "  - {column: customers, accepted_range: {max: 1}}")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (4, 'Di', NULL, 'EU', 'ACTIVE', NULL); "
                  "INSERT INTO sales.customer_transactions VALUES (13, 4, 30000.00, 'EUR', 'web', NULL)")
    refused = landscape.run("run", "dev", "mt_region_revenue")
    assert refused.code == 3, refused.output
    assert "sales.mt_region_revenue: accepted_range(customers): failed (1 offending row)" in refused.stderr
    assert "segment='PLATINUM'" in refused.stderr
    assert landscape.sql("SELECT count(*) FROM sales.mt_region_revenue") == [(3,)]


def test_removing_it_is_acknowledged_like_any_table(engine_landscape: EngineLandscape) -> None:
    """Only the catalog says its rows came from a query; what the tenant holds is a table with rows."""
    landscape = built(engine_landscape)
    landscape.remove("environments/dev/sales/views/vw_region_top.yaml")
    landscape.remove(REVENUE)
    refused = landscape.run("apply", "dev", "--yes")
    assert refused.code == 3 and "--allow-data-loss sales.mt_region_revenue" in refused.stderr
    assert landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.mt_region_revenue").code == 0
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_pinned_columns_are_the_querys_own_as_snowflake_resolves_names() -> None:
    """The cast that pins a type selects the query's columns by name: a plain lower-case name unquoted, so it
    folds as the query's unquoted alias does (Snowflake: REVENUE; quoted, "revenue" is another column, and
    "q" another alias), a name written quoted stays quoted. sqlglot's Snowflake qualifier resolves it."""
    import sqlglot
    from sqlglot.optimizer.qualify import qualify

    from reconciler.desired.sql.rendering import materialized

    query = 'SELECT currency, SUM(amount) AS revenue, COUNT(*) AS "Count Of" FROM sales.t GROUP BY currency'
    pinned = materialized(query, [("revenue", "DECIMAL(38,2)")], ["currency", "revenue", "Count Of"], "duckdb")
    on_snowflake = sqlglot.transpile(pinned, read="duckdb", write="snowflake")[0]
    resolved = qualify(sqlglot.parse_one(on_snowflake, read="snowflake"), dialect="snowflake",
                       schema={"sales": {"t": {"CURRENCY": "VARCHAR", "AMOUNT": "DECIMAL(18,2)"}}})
    assert resolved.named_selects == ["CURRENCY", "REVENUE", "Count Of"]
