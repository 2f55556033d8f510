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
    assert late.code == 3 and "sales.orders: columns changed; blocked: NULL in note, which becomes " \
        "NOT NULL" in late.stderr
    assert snapshot(landscape.tenant(), audit=False) == before

    plan = landscape.run("plan", "dev")
    assert "blocked: NULL in note, which becomes NOT NULL: 2 rows" in plan.stdout
    assert landscape.run("apply", "dev", "--yes").code == 3
    assert snapshot(landscape.tenant(), audit=False) == before

    landscape.edit(ORDERS, "primary_key", "  - {name: code, type: VARCHAR, nullable: false}\nprimary_key")
    landscape.edit(ORDERS, "{name: note, type: VARCHAR, nullable: false}", "{name: note, type: VARCHAR}")
    assert "no value for the new NOT NULL column code (give it a default): 4 rows" in \
        landscape.run("plan", "dev").stdout


def test_narrowing_counts_the_values_that_would_not_fit(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.edit(ORDERS, "{name: qty, type: INTEGER}", "{name: qty, type: SMALLINT}")
    before = snapshot(landscape.tenant(), audit=False)
    plan = landscape.run("plan", "dev")
    assert "blocked: a value in qty that would not fit SMALLINT unchanged: 1 row" in plan.stdout
    assert landscape.run("apply", "dev", "--yes").code == 3
    assert snapshot(landscape.tenant(), audit=False) == before
    landscape.sql("UPDATE sales.orders SET qty = 7 WHERE id = 3")
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert rows(landscape) == [(1, 5, "a"), (2, None, None), (3, 7, "c")]


def test_renamed_from_renames_columns_and_tables_in_place_keeping_values(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.edit(ORDERS, "{name: note, type: VARCHAR}", "{name: remark, type: VARCHAR, renamed_from: note}")
    plan = landscape.run("plan", "dev")
    assert "~ Table sales.orders: renames column note to remark (values kept)" in plan.stdout
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.sql("SELECT id, remark FROM sales.orders ORDER BY id") == [(1, "a"), (2, None), (3, "c")]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0   # renamed_from may stay in the file

    landscape.remove(ORDERS)
    landscape.write("environments/dev/sales/purchase_orders.yaml",
                    ORDERS_YAML.replace("name: orders", "name: purchase_orders\nrenamed_from: orders")
                    .replace("{name: note, type: VARCHAR}", "{name: remark, type: VARCHAR}"))
    plan = landscape.run("plan", "dev")
    assert "Table sales.purchase_orders: renamed from sales.orders (rows kept)" in plan.stdout
    assert "0 to create, 1 to update, 0 to replace, 0 to delete" in plan.stdout   # no delete + create
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.sql("SELECT id, qty, remark FROM sales.purchase_orders ORDER BY id") == \
        [(1, 5, "a"), (2, None, None), (3, 70000, "c")]
    assert landscape.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'orders'") == [(0,)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_table_renamed_and_rebuilt_at_once_counts_the_rows_of_the_table_it_renames(landscape: Landscape) -> None:
    """Renamed and given another primary key in one change: a rebuild of the table it renames, whose
    rows (the old name's: the new one does not exist yet) the plan counts and the apply keeps."""
    with_orders(landscape)
    landscape.remove(ORDERS)
    landscape.write("environments/dev/sales/purchase_orders.yaml",
                    ORDERS_YAML.replace("name: orders", "name: purchase_orders\nrenamed_from: orders")
                    .replace("primary_key: [id]", "primary_key: [id, qty]").replace(
                        "{name: qty, type: INTEGER}", "{name: qty, type: INTEGER, nullable: false}"))
    landscape.sql("UPDATE sales.orders SET qty = 0 WHERE qty IS NULL")
    plan = landscape.run("plan", "dev")
    assert plan.code == 0, plan.output
    assert "-/+ Table sales.purchase_orders: renamed from sales.orders" in plan.stdout
    assert "(3 rows now)" in plan.stdout
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.sql("SELECT id, qty, note FROM sales.purchase_orders ORDER BY id") == \
        [(1, 5, "a"), (2, 0, None), (3, 70000, "c")]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_saved_plan_that_rebuilds_a_table_still_applies_after_another_writer_adds_rows(
        landscape: Landscape) -> None:
    """The rows a rebuild copies are said at plan time, for people: a row written since (a table that
    takes data all day) leaves the saved plan what apply runs, and the row is copied too."""
    with_orders(landscape)
    landscape.edit(ORDERS, "primary_key: [id]", "primary_key: [id, note]")
    landscape.edit(ORDERS, "{name: note, type: VARCHAR}", "{name: note, type: VARCHAR, nullable: false}")
    landscape.sql("UPDATE sales.orders SET note = 'b' WHERE note IS NULL")
    saved = landscape.root.parent / "rebuild-plan.json"
    assert landscape.run("plan", "dev", "--out", str(saved)).code == 0
    assert "(3 rows now)" in json.loads(saved.read_text())["tenants"][0]["changes"][0]["reason"]
    landscape.sql("INSERT INTO sales.orders VALUES (4, 1, 'd')")
    applied = landscape.run("apply", "dev", "--plan", str(saved), "--yes")
    assert applied.code == 0, applied.output
    assert [row[0] for row in rows(landscape)] == [1, 2, 3, 4]


def test_a_rename_without_renamed_from_is_flagged_as_probable(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.edit(ORDERS, "{name: note, type: VARCHAR}", "{name: remark, type: VARCHAR}")
    plan = landscape.run("plan", "dev")
    assert "probable rename of note to remark: declare `renamed_from: note` on remark to keep its values" \
        in plan.stdout
    landscape.edit(ORDERS, "{name: remark, type: VARCHAR}", "{name: note, type: VARCHAR}")
    landscape.remove(ORDERS)
    landscape.write("environments/dev/sales/purchase_orders.yaml", ORDERS_YAML.replace("name: orders",
                                                                                      "name: purchase_orders"))
    plan = landscape.run("plan", "dev")
    assert plan.stdout.count("probable rename of sales.orders to sales.purchase_orders") == 2


def test_a_rebuild_keeps_every_row_and_renamed_values(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.edit(ORDERS, "primary_key: [id]", "primary_key: [id, code]")
    landscape.edit(ORDERS, "{name: note, type: VARCHAR}", "{name: code, type: VARCHAR, renamed_from: note}")
    landscape.sql("UPDATE sales.orders SET note = 'b' WHERE id = 2")
    plan = json.loads(landscape.run("plan", "dev", "--format", "json").stdout)
    [change] = [c for c in plan["tenants"][0]["changes"] if c["object"] == "sales.orders"]
    assert change["action"] == "replace"
    assert any("would change or lose rows" in s and "EXCEPT ALL" in s for s in change["statements"])
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert rows(landscape) == [(1, 5, "a"), (2, None, "b"), (3, 70000, "c")]
    assert landscape.sql("SELECT constraint_column_names FROM duckdb_constraints() WHERE table_name = 'orders' "
                         "AND constraint_type = 'PRIMARY KEY'") == [(["id", "code"],)]


def test_retyping_a_key_column_rebuilds_the_table(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.edit(ORDERS, "{name: id, type: BIGINT, nullable: false}", "{name: id, type: HUGEINT, nullable: false}")
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert rows(landscape) == [(1, 5, "a"), (2, None, None), (3, 70000, "c")]
    assert landscape.sql("SELECT data_type FROM duckdb_columns() WHERE table_name = 'orders' "
                         "AND column_name = 'id'") == [("HUGEINT",)]

