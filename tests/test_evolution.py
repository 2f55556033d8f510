"""Table evolution keeps rows: in-place alters, counted refusals, renames, rebuilds."""

from __future__ import annotations

import json

from conftest import Landscape, snapshot

ORDERS = "environments/dev/sales/orders.yaml"
ORDERS_YAML = """kind: Table
name: orders
schema: sales
status: active
columns:
  - {name: id, type: BIGINT, nullable: false}
  - {name: qty, type: INTEGER}
  - {name: note, type: VARCHAR}
primary_key: [id]
"""


def with_orders(landscape: Landscape, rows: str = "(1, 5, 'a'), (2, NULL, NULL), (3, 70000, 'c')") -> None:
    landscape.write(ORDERS, ORDERS_YAML)
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql(f"INSERT INTO sales.orders VALUES {rows}")


def rows(landscape: Landscape) -> list[tuple]:
    return landscape.sql("SELECT * FROM sales.orders ORDER BY id")


def test_adding_columns_and_widening_types_happen_in_place(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.edit(ORDERS, "{name: qty, type: INTEGER}", "{name: qty, type: BIGINT}")
    landscape.edit(ORDERS, "primary_key", "  - {name: channel, type: VARCHAR, default: \"'web'\"}\n"
                                          "  - {name: comment, type: VARCHAR}\nprimary_key")
    plan = json.loads(landscape.run("plan", "dev", "--format", "json").stdout)
    [change] = [c for c in plan["tenants"][0]["changes"] if c["object"] == "sales.orders"]
    assert change["action"] == "update" and not change["data_loss"]
    assert all(s.startswith('ALTER TABLE "sales"."orders"') for s in change["statements"])
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert rows(landscape) == [(1, 5, "a", "web", None), (2, None, None, "web", None), (3, 70000, "c", "web", None)]


def test_not_null_is_refused_with_the_count_at_plan_time_and_inside_the_transaction(landscape: Landscape,
                                                                                  tmp_path) -> None:
    with_orders(landscape, "(1, 5, 'a'), (2, 6, 'b')")
    landscape.edit(ORDERS, "{name: note, type: VARCHAR}", "{name: note, type: VARCHAR, nullable: false}")
    saved = tmp_path / "plan.json"
    assert landscape.run("plan", "dev", "--out", str(saved)).code == 0     # no NULLs yet: allowed
    landscape.sql("INSERT INTO sales.orders VALUES (3, 7, NULL), (4, 8, NULL)")   # rows arrive after the plan
    before = snapshot(landscape.tenant(), audit=False)

    late = landscape.run("apply", "dev", "--plan", str(saved), "--yes")
    assert late.code == 3 and "sales.orders: 2 rows have NULL in note, which becomes NOT NULL" in late.stderr
    assert snapshot(landscape.tenant(), audit=False) == before

    plan = landscape.run("plan", "dev")
    assert "blocked: 2 rows have NULL in note, which becomes NOT NULL" in plan.stdout
    assert landscape.run("apply", "dev", "--yes").code == 3
    assert snapshot(landscape.tenant(), audit=False) == before

    landscape.edit(ORDERS, "primary_key", "  - {name: code, type: VARCHAR, nullable: false}\nprimary_key")
    landscape.edit(ORDERS, "{name: note, type: VARCHAR, nullable: false}", "{name: note, type: VARCHAR}")
    assert "4 rows would have no value for the new NOT NULL column code (give it a default)" in \
        landscape.run("plan", "dev").stdout


def test_narrowing_counts_the_values_that_would_not_fit(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.edit(ORDERS, "{name: qty, type: INTEGER}", "{name: qty, type: SMALLINT}")
    before = snapshot(landscape.tenant(), audit=False)
    plan = landscape.run("plan", "dev")
    assert "blocked: 1 values in qty would not fit SMALLINT unchanged" in plan.stdout
    assert landscape.run("apply", "dev", "--yes").code == 3
    assert snapshot(landscape.tenant(), audit=False) == before
    landscape.sql("UPDATE sales.orders SET qty = 7 WHERE id = 3")
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert rows(landscape) == [(1, 5, "a"), (2, None, None), (3, 7, "c")]
