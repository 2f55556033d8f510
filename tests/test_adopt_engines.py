"""Issue 27, done when: a database built by SQL alone (the demo's tables and views, the TPC-H tables and
its 22 queries as views), created directly on DuckDB and on PostgreSQL, becomes a landscape with `init`
and `adopt`; committed, its plan adopts every object and changes nothing, the apply records them
without a statement (every row stays) and leaves the plan empty, and a view changed through its YAML
applies like any other. The same on Spark, with the demo's tables and two of its views; a Spark table in
another format than its tenant's is listed, never written."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
import yaml
from conftest import DEMO_ROWS, EngineLandscape
from test_init import initialised
from test_tpc import Corpus, corpus  # noqa: F401  (the session's TPC corpus, made once)

# The demo's tables and views as a team would have created them by hand, written in PostgreSQL's SQL
# (DuckDB reads it as it is), its descriptions as comments.
DEMO_BY_SQL = """
CREATE SCHEMA sales;
CREATE TABLE sales.customer_master (id BIGINT NOT NULL PRIMARY KEY, name VARCHAR, email VARCHAR, region VARCHAR,
                                    status VARCHAR DEFAULT 'ACTIVE', created_at TIMESTAMP);
COMMENT ON TABLE sales.customer_master IS 'Customer master data from the ERP';
CREATE TABLE sales.customer_transactions (id BIGINT NOT NULL PRIMARY KEY, customer_id BIGINT NOT NULL,
                                          amount DECIMAL(18, 2), currency VARCHAR, channel VARCHAR,
                                          transaction_ts TIMESTAMP);
CREATE VIEW sales.vw_customer_active AS
  SELECT id, name, email, region, created_at FROM sales.customer_master WHERE status = 'ACTIVE' AND region = 'EU';
COMMENT ON VIEW sales.vw_customer_active IS 'Active customers of this tenant''s region';
CREATE VIEW sales.vw_transaction_detail AS
  SELECT t.id AS transaction_id, t.customer_id, c.name AS customer_name, c.region, t.amount, t.currency, t.channel,
         t.transaction_ts
  FROM sales.customer_transactions AS t JOIN sales.vw_customer_active AS c ON c.id = t.customer_id;
CREATE VIEW sales.vw_customer_lifetime_value AS
  WITH per_customer AS (
    SELECT customer_id, customer_name, region, SUM(amount) AS revenue, COUNT(*) AS orders,
           MIN(transaction_ts) AS first_order, MAX(transaction_ts) AS last_order
    FROM sales.vw_transaction_detail GROUP BY customer_id, customer_name, region)
  SELECT customer_id, customer_name, region, revenue, orders, first_order, last_order FROM per_customer;
CREATE VIEW sales.vw_customer_segmentation AS
  SELECT customer_id, customer_name, region, revenue,
         CASE WHEN revenue >= 10000 THEN 'PLATINUM' WHEN revenue >= 1000 THEN 'GOLD' ELSE 'STANDARD' END AS segment
  FROM sales.vw_customer_lifetime_value;
"""


def built_by_sql(corpus: Corpus, engine: str) -> list[str]:  # noqa: F811
    """Every statement that builds the database, in `engine`'s SQL: the TPC-H tables with the
    generator's columns and its queries as views (published in DuckDB's SQL, transpiled by sqlglot
    for PostgreSQL: the test's own setup, not what is tested)."""
    statements = [s for s in DEMO_BY_SQL.split(";\n") if s.strip()] + list(DEMO_ROWS)
    statements.append("CREATE SCHEMA tpch")
    for table, columns in corpus.tables["tpch"].items():
        declared = ", ".join(f"{c['name']} {c['type']}{'' if c['nullable'] else ' NOT NULL'}" for c in columns)
        statements.append(f"CREATE TABLE tpch.{table} ({declared})")
    for query in (q for q in corpus.queries if q.schema == "tpch"):
        text = query.text if engine == "duckdb" else sqlglot.transpile(query.text, read="duckdb", write="postgres")[0]
        statements.append(f"CREATE VIEW {query.id} AS {text}")
    return statements


@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_a_database_built_by_sql_alone_is_adopted_planned_to_nothing_and_then_changed(
        engine: str, corpus: Corpus, tmp_path: Path, request) -> None:  # noqa: F811
    url = request.getfixturevalue("postgres_database") if engine == "postgres" else None
    landscape = initialised(tmp_path / "mine", "--engine", "postgresql" if url else "duckdb",
                            "--environments", "dev")
    if url:   # the tenant init names is a placeholder to edit: this test's database
        environment = yaml.safe_load(landscape.path("environments/dev/environment.yaml").read_text())
        environment["tenants"] = [{"name": "dev", "url": url}]
        landscape.write("environments/dev/environment.yaml", yaml.safe_dump(environment, sort_keys=False))
        landscape.commit("dev's tenant")
    tenant = EngineLandscape.__new__(EngineLandscape)   # its readers of the tenant, on the landscape init wrote
    tenant.root, tenant.engine, tenant.postgres_url = landscape.root, engine, url
    landscape.path(".tenants").mkdir(exist_ok=True)
    tenant.sql(";\n".join(built_by_sql(corpus, engine)))
    before = tenant.state()

    adopted = landscape.run("adopt", "dev", "--tenant", "dev")
    objects = 6 + len(corpus.tables["tpch"]) + 22
    assert adopted.code == 0 and f"adopted {objects} objects" in adopted.stdout, adopted.output
    table = yaml.safe_load(landscape.path("environments/dev/sales/customer_master.yaml").read_text())
    assert table["description"] == "Customer master data from the ERP"
    assert table["primary_key"] == ["id"]
    view = yaml.safe_load(landscape.path("environments/dev/sales/vw_customer_active.yaml").read_text())
    assert view["description"] == "Active customers of this tenant's region"
    landscape.commit("adopt dev")

    plan = landscape.run("plan", "dev")
    assert plan.code == 0, plan.output
    assert f"adopt {objects} objects, 0 changes" in plan.stdout, plan.output
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert tenant.state() == before   # recorded as managed, not a statement run on the objects: every row stays
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0

    landscape.edit("environments/dev/sales/vw_customer_active.yaml", "created_at\n", "created_at, status\n")
    landscape.commit("dev: status in vw_customer_active")
    changed = landscape.run("plan", "dev")
    assert "View sales.vw_customer_active: the view's columns change" in changed.stdout, changed.output
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert tenant.columns("sales", "vw_customer_active")[-1] == "status"
    assert tenant.sql("SELECT count(*) FROM sales.vw_customer_segmentation") == [(2,)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


SPARK_BY_SQL = (
    "CREATE SCHEMA sales",
    "CREATE TABLE sales.customer_master (id BIGINT, name STRING, email STRING, region STRING, "
    "status STRING DEFAULT 'ACTIVE', created_at TIMESTAMP_NTZ) USING parquet",
    "CREATE TABLE sales.customer_transactions (id BIGINT, customer_id BIGINT, amount DECIMAL(18, 2), "
    "currency STRING, channel STRING, transaction_ts TIMESTAMP_NTZ) USING parquet",
    "CREATE VIEW sales.vw_customer_active AS SELECT id, name, email, region, created_at FROM sales.customer_master "
    "WHERE status = 'ACTIVE' AND region = 'EU'",
    "CREATE VIEW sales.vw_transaction_detail AS SELECT t.id AS transaction_id, t.customer_id, c.name AS "
    "customer_name, c.region, t.amount FROM sales.customer_transactions AS t JOIN sales.vw_customer_active AS c "
    "ON c.id = t.customer_id",
    "INSERT INTO sales.customer_master VALUES (1, 'Ada', NULL, 'EU', 'ACTIVE', NULL)",
)


def test_a_spark_database_built_by_sql_alone_is_adopted_planned_to_nothing_and_then_changed(
        tmp_path: Path, spark_server: str, spark) -> None:
    landscape = initialised(tmp_path / "mine", "--engine", "sc", "--environments", "dev")
    landscape.edit("environments/dev/environment.yaml", "sc://localhost:15002", spark_server)
    landscape.commit("dev's tenant")
    for statement in SPARK_BY_SQL:
        spark.sql(statement).collect()

    adopted = landscape.run("adopt", "dev", "--tenant", "dev")
    assert adopted.code == 0 and "adopted 4 objects" in adopted.stdout, adopted.output
    table = yaml.safe_load(landscape.path("environments/dev/sales/customer_master.yaml").read_text())
    assert table["columns"][-1] == {"name": "created_at", "type": "TIMESTAMP_NTZ"}
    landscape.commit("adopt dev")
    plan = landscape.run("plan", "dev")
    assert plan.code == 0 and "Plan: adopt 4 objects, 0 changes." in plan.stdout, plan.output
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    assert [tuple(row) for row in spark.sql("SELECT id, name FROM sales.customer_master").collect()] == [(1, "Ada")]

    landscape.edit("environments/dev/sales/vw_customer_active.yaml", "created_at\n", "created_at,\n  status\n")
    landscape.commit("dev: status in vw_customer_active")
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert [f.name for f in spark.table("sales.vw_customer_active").schema.fields][-1] == "status"
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0



def test_a_table_in_another_format_than_the_tenants_is_listed_and_the_rest_adopted(
        tmp_path: Path, delta_server: str, delta_spark) -> None:
    """A Spark tenant's tables are made in one format (its rules' table_format, parquet when unset): a
    Delta table in a parquet tenant cannot be written as a file that adopts it, so it is listed."""
    landscape = initialised(tmp_path / "mine", "--engine", "sc", "--environments", "dev")
    landscape.edit("environments/dev/environment.yaml", "sc://localhost:15002", delta_server)
    landscape.commit("dev's tenant")
    for statement in ("CREATE SCHEMA sales", "CREATE TABLE sales.kept (id BIGINT) USING parquet",
                      "CREATE TABLE sales.ledger (id BIGINT) USING delta"):
        delta_spark.sql(statement).collect()
    adopted = landscape.run("adopt", "dev", "--tenant", "dev")
    assert adopted.code == 0 and "adopted 1 object;" in adopted.stdout, adopted.output
    assert ("not adopted: sales.ledger: it is a delta table, and tenant dev's tables are parquet (its rules' "
            "table_format)") in adopted.stderr
    landscape.commit("adopt dev")
    assert "Plan: adopt 1 object, 0 changes." in landscape.run("plan", "dev").stdout
