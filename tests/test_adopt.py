"""`reconciler adopt`: a database built by SQL alone becomes a landscape whose next apply records it as
managed without running a statement and leaves the plan empty; what cannot be written faithfully is
listed, never guessed, and no file is overwritten (issue 27, item 2)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml
from test_init import initialised

BUILT_BY_SQL = """
CREATE SCHEMA sales;
CREATE TABLE sales.customer_master (id BIGINT PRIMARY KEY, name VARCHAR NOT NULL, region VARCHAR DEFAULT 'EU',
                                    revenue DECIMAL(18, 2), created_at TIMESTAMP);
CREATE TABLE sales.orders (id BIGINT NOT NULL, customer_id BIGINT, amount DECIMAL(18, 2));
CREATE VIEW sales.vw_customer_active AS SELECT id, region FROM sales.customer_master WHERE region = 'EU';
CREATE VIEW sales.vw_order_totals AS
  SELECT c.id, c.name, SUM(o.amount) AS total FROM sales.customer_master AS c
  JOIN sales.orders AS o ON o.customer_id = c.id GROUP BY c.id, c.name;
CREATE TABLE sales."Odd Name" (x INTEGER);
CREATE SCHEMA _reconciler_backup;
CREATE TABLE _reconciler_backup.kept (x INTEGER);
INSERT INTO sales.customer_master VALUES (1, 'Ada', 'EU', 10.5, NULL), (2, 'Bob', 'US', NULL, NULL);
INSERT INTO sales.orders VALUES (10, 1, 2.50);
"""


def test_a_database_built_by_sql_is_adopted_applied_without_statements_and_then_changed(tmp_path: Path) -> None:
    landscape = initialised(tmp_path / "mine", "--environments", "dev")
    landscape.path(".tenants").mkdir()
    with duckdb.connect(str(landscape.tenant("dev"))) as connection:
        connection.execute(BUILT_BY_SQL)
    adopted = landscape.run("adopt", "dev", "--tenant", "dev")
    assert adopted.code == 0, adopted.output
    assert "adopted 4 objects" in adopted.stdout
    assert "not adopted: sales.Odd Name: 'Odd Name' is not a plain identifier" in adopted.stderr
    assert not landscape.path("environments/dev/_reconciler_backup").exists()
    table = yaml.safe_load(landscape.path("environments/dev/sales/customer_master.yaml").read_text())
    assert table["primary_key"] == ["id"]
    assert table["columns"][1] == {"name": "name", "type": "TEXT", "nullable": False}
    assert table["columns"][2]["default"] == "'EU'"
    landscape.commit("adopt dev")

    plan = landscape.run("plan", "dev")
    assert plan.stdout.count("adopting an identical object") == 4, plan.output
    assert "Plan: adopt 4 objects, 0 changes." in plan.stdout, plan.output
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.sql("SELECT count(*) FROM sales.customer_master") == [(2,)]   # nothing rebuilt
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0

    again = landscape.run("adopt", "dev", "--tenant", "dev")   # managed now: nothing written, nothing overwritten
    assert again.code == 0 and "adopted 0 objects" in again.stdout, again.output

    landscape.edit("environments/dev/sales/vw_customer_active.yaml", "region\n", "region, name\n")
    landscape.commit("dev: name in vw_customer_active")
    changed = landscape.run("plan", "dev")
    assert "View sales.vw_customer_active: the view's columns change" in changed.stdout, changed.output
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.sql("SELECT * FROM sales.vw_customer_active") == [(1, "EU", "Ada")]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_adopt_refuses_unknown_names_and_never_overwrites_a_file(tmp_path: Path) -> None:
    landscape = initialised(tmp_path / "mine", "--environments", "dev")
    landscape.path(".tenants").mkdir()
    with duckdb.connect(str(landscape.tenant("dev"))) as connection:
        connection.execute(BUILT_BY_SQL)
    tenant = landscape.run("adopt", "dev", "--tenant", "dve")
    assert tenant.code == 64 and "no tenant dve (did you mean dev?)" in tenant.stderr, tenant.output
    schema = landscape.run("adopt", "dev", "--tenant", "dev", "--schema", "sale")
    assert schema.code == 64 and "no schema sale (did you mean sales?)" in schema.stderr, schema.output
    mine = "# a person's own, of another object\nkind: Table\nname: legacy\nschema: sales\ncolumns: [{name: x, type: INTEGER}]\n"
    landscape.write("environments/dev/sales/orders.yaml", mine)
    adopted = landscape.run("adopt", "dev", "--tenant", "dev", "--schema", "sales")
    assert "not adopted: sales.orders: environments/dev/sales/orders.yaml exists; never overwritten" in adopted.stderr
    assert landscape.path("environments/dev/sales/orders.yaml").read_text() == mine
