"""`reconciler adopt`: a database built by SQL alone becomes a landscape whose next apply records it as
managed without running a statement and leaves the plan empty; what cannot be written faithfully is
listed, never guessed, and no file is overwritten (issue 27, item 2)."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import yaml
from conftest import Landscape
from test_init import initialised, run_readme_block

RECONCILER = str(Path(sys.executable).parent / "reconciler")

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


def built(landscape: Landscape, *statements: str) -> None:
    landscape.path(".tenants").mkdir(exist_ok=True)
    with duckdb.connect(str(landscape.tenant("dev"))) as connection:
        connection.execute(BUILT_BY_SQL + ";\n".join(statements))


def test_a_type_the_landscape_cannot_spell_is_listed_with_its_reason_and_the_rest_adopted(tmp_path: Path) -> None:
    """A landscape written in PostgreSQL's SQL over a DuckDB tenant: DuckDB's TIMESTAMP_NS has no
    PostgreSQL spelling that DuckDB keeps as TIMESTAMP_NS, so that table is left, never guessed."""
    landscape = initialised(tmp_path / "mine", "--environments", "dev")
    landscape.edit("environments/dev/environment.yaml", "dialect: duckdb", "dialect: postgres")
    landscape.commit("dev is written in PostgreSQL's SQL")
    built(landscape, "CREATE TABLE sales.events (id BIGINT, happened TIMESTAMP_NS)")
    adopted = landscape.run("adopt", "dev", "--tenant", "dev", "--schema", "sales")
    assert adopted.code == 0, adopted.output
    assert ("not adopted: sales.events: its type TIMESTAMP_NS has no spelling in postgres that duckdb keeps as "
            "TIMESTAMP_NS") in adopted.stderr
    assert not landscape.path("environments/dev/sales/events.yaml").exists()
    assert "adopted 4 objects" in adopted.stdout   # the rest, each written
    landscape.commit("adopt dev")
    plan = landscape.run("plan", "dev")
    assert "Plan: adopt 4 objects, 0 changes." in plan.stdout, plan.output


def test_select_adopts_what_it_names_and_what_that_reads(tmp_path: Path) -> None:
    landscape = initialised(tmp_path / "mine", "--environments", "dev")
    built(landscape)
    adopted = landscape.run("adopt", "dev", "--tenant", "dev", "--select", "+sales.vw_order_totals")
    assert adopted.code == 0, adopted.output
    assert sorted(p.name for p in landscape.path("environments/dev/sales").iterdir()) == [
        "customer_master.yaml", "orders.yaml", "vw_order_totals.yaml"]
    unknown = landscape.run("adopt", "dev", "--tenant", "dev", "--select", "vw_order_total")
    assert unknown.code == 64 and "no object 'vw_order_total'" in unknown.stderr, unknown.output


def test_a_locked_tenant_is_refused_with_exit_4_and_nothing_written(tmp_path: Path, hold) -> None:
    landscape = initialised(tmp_path / "mine", "--environments", "dev")
    built(landscape)
    landscape.write("environments/dev/ops/runs.yaml", "kind: Table\nname: runs\nschema: ops\n"
                                                      "columns: [{name: id, type: BIGINT}]\n")
    landscape.commit("dev: ops.runs")
    apply = hold.popen([RECONCILER, "--repo", str(landscape.root), "apply", "dev", "--yes"], hold.env())
    hold.held(apply)
    try:
        locked = landscape.run("adopt", "dev", "--tenant", "dev")
    finally:
        hold.release(apply)
    assert apply.wait(timeout=60) == 0, apply.stderr.read()
    assert locked.code == 4 and "is locked by run" in locked.stderr, locked.output
    assert not landscape.path("environments/dev/sales").exists()


def test_objects_another_environment_manages_are_never_adopted(tmp_path: Path) -> None:
    """qa's tenant is dev's database: what dev's applies record there is dev's, not qa's to adopt."""
    landscape = initialised(tmp_path / "mine", "--environments", "dev,qa")
    landscape.edit("environments/qa/environment.yaml", ".tenants/qa.duckdb", ".tenants/dev.duckdb")
    landscape.commit("qa shares dev's database")
    built(landscape)
    assert landscape.run("adopt", "dev", "--tenant", "dev", "--select", "sales.orders").code == 0
    landscape.commit("dev adopts sales.orders")
    assert landscape.run("apply", "dev", "--yes").code == 0
    adopted = landscape.run("adopt", "qa", "--tenant", "qa")
    assert adopted.code == 0 and "adopted 3 objects" in adopted.stdout, adopted.output
    assert not landscape.path("environments/qa/sales/orders.yaml").exists()


def test_the_readme_bring_an_existing_database_runs_as_written(tmp_path: Path) -> None:
    run_readme_block("adopt", tmp_path)
    shop = tmp_path / "shop"
    orders = yaml.safe_load((shop / "environments/dev/sales/orders.yaml").read_text())
    assert orders["description"] == "One row per order" and orders["primary_key"] == ["id"]
    with duckdb.connect(str(shop / ".tenants" / "dev.duckdb"), read_only=True) as connection:
        assert connection.execute("SELECT * FROM sales.daily_revenue").fetchall() == [
            (dt.date(2024, 5, 1), Decimal("9.50"))]   # adopted, not rebuilt: the row is there
