"""Data safety: nothing a table holds is lost without a per-object acknowledgement and a backup."""

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
  - {name: amount, type: "DECIMAL(18,2)"}
  - {name: note, type: VARCHAR}
primary_key: [id]
"""


def with_orders(landscape: Landscape) -> Landscape:
    landscape.write(ORDERS, ORDERS_YAML)
    landscape.commit("orders")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.orders VALUES (1, 10.50, 'a'), (2, 20.00, NULL), (3, 0.99, 'c')")
    return landscape


def test_removing_a_table_is_a_blocked_delete_until_that_object_is_acknowledged(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.remove(ORDERS)
    before = snapshot(landscape.tenant())

    plan = landscape.run("plan", "dev")
    assert "- Table sales.orders: removed from the folder: drops the table and its rows [risk high, 3 rows]" \
        in plan.stdout
    assert "! blocked: loses data; apply needs --allow-data-loss sales.orders" in plan.stdout
    for args in ((), ("--allow-data-loss", "sales.customer_master")):
        refused = landscape.run("apply", "dev", "--yes", *args)
        assert refused.code == 3 and "rerun with --allow-data-loss sales.orders" in refused.stderr
        assert snapshot(landscape.tenant()) == before
    assert landscape.run("apply", "dev", "--yes", "--allow-data-loss").code == 64   # name the object

    applied = landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.orders")
    assert applied.code == 0, applied.output
    assert landscape.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'orders' "
                         "AND schema_name = 'sales'") == [(0,)]
    [backup] = json.loads(landscape.run("backups", "dev", "--format", "json").stdout)
    assert backup["table_name"] == "orders" and backup["row_count"] == 3 and backup["tenant"] == "dev"
    assert landscape.sql(f'SELECT id, amount::VARCHAR, note FROM _reconciler_backup."{backup["name"]}" ORDER BY id') == \
        [(1, "10.50", "a"), (2, "20.00", None), (3, "0.99", "c")]
    assert backup["name"] in landscape.run("backups", "dev").stdout


def test_the_environment_can_acknowledge_data_loss_for_ci(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.edit(ORDERS, "  - {name: note, type: VARCHAR}\n", "")
    landscape.edit("environments/dev/environment.yaml", "rules:", "allow_data_loss: [sales.orders]\nrules:")
    plan = landscape.run("plan", "dev")
    assert "! loses data: acknowledged in environment.yaml (allow_data_loss); backed up first" in plan.stdout
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.sql("SELECT id, amount::VARCHAR FROM sales.orders ORDER BY id") == \
        [(1, "10.50"), (2, "20.00"), (3, "0.99")]
    [backup] = json.loads(landscape.run("backups", "dev", "--format", "json").stdout)
    assert landscape.sql(f'SELECT note FROM _reconciler_backup."{backup["name"]}" ORDER BY id') == \
        [("a",), (None,), ("c",)]


def test_generated_sql_quotes_every_name_so_hostile_names_run_nothing_else(tmp_path) -> None:
    """Validation refuses such names (tests/cases/invalid/not_plain_names, hostile_environment_names);
    this proves the second wall: even a hostile name that got through is only ever an identifier."""
    import duckdb

    from reconciler.engines.duckdb import DuckDBAdapter
    from reconciler.model import ObjectKey, Tenant
    from reconciler.plan import Create
    from reconciler.state import ColumnState, DesiredState, LiveState, ObjectState

    hostile = 'x"; DROP TABLE y; --'  # the example; names never hold '.'
    key = ObjectKey(hostile, hostile)
    table = ObjectState(key, "Table", {}, columns=(ColumnState(hostile, "INTEGER"),), primary_key=(hostile,))
    view = ObjectState(ObjectKey(hostile, "v"), "View", {}, dependencies=(key,),
                       sql=f'SELECT * FROM "{hostile.replace(chr(34), chr(34) * 2)}"."{hostile.replace(chr(34), chr(34) * 2)}"')
    desired = DesiredState("dev", "dev", "duckdb", None, {key: table, view.key: view}, "duckdb")
    live = LiveState({}, {}, frozenset({"main"}))
    adapter = DuckDBAdapter(Tenant(name="dev", url=f"duckdb:///{tmp_path}/t.duckdb"), tmp_path)
    changes = adapter.compile([Create(kind="Table", object=str(key), risk="low", reason="r"),
                               Create(kind="View", object=str(view.key), risk="low", reason="r")],
                              desired, live)
    with duckdb.connect(str(tmp_path / "t.duckdb")) as connection:
        connection.execute("CREATE TABLE main.y (a INTEGER)")
        for change in changes:
            for statement in change.statements:
                connection.execute(statement)
        tables = connection.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY 1").fetchall()
        assert tables == [("main", "y"), (hostile, hostile)]
        assert connection.execute("SELECT column_name FROM duckdb_columns() WHERE table_name = ?",
                                  [hostile]).fetchall() == [(hostile,)]


def test_an_unmanaged_view_that_would_break_blocks_the_change(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.sql("CREATE VIEW sales.finance_report AS SELECT id, note FROM sales.orders")
    landscape.remove(ORDERS)
    before = snapshot(landscape.tenant())
    plan = landscape.run("plan", "dev")
    assert "blocked: unmanaged view sales.finance_report reads it and would break" in plan.stdout
    refused = landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.orders")
    assert refused.code == 3 and "never uses CASCADE" in refused.stderr
    assert snapshot(landscape.tenant()) == before

    landscape.write(ORDERS, ORDERS_YAML.replace("  - {name: note, type: VARCHAR}\n", ""))
    dropped_column = landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.orders")
    assert dropped_column.code == 3 and "sales.finance_report reads it" in dropped_column.stderr
    assert snapshot(landscape.tenant()) == before


def test_every_view_is_bound_before_commit_and_a_broken_one_rolls_back(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("CREATE VIEW sales.region_report AS SELECT region, count(*) AS n "
                  "FROM sales.vw_customer_active GROUP BY region")
    before = snapshot(landscape.tenant(), audit=False)
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "email, region, created_at",
                   "email, created_at")
    landscape.edit("environments/dev/sales/views/vw_transaction_detail.yaml", "c.region", "'EU' AS region")
    landscape.edit("environments/dev/integration/df_customer_enrichment.yaml", "email, region, 'ACTIVE'",
                   "email, 'EU', 'ACTIVE'")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 1, result.output
    assert "view sales.region_report no longer works after the changes" in result.stderr
    assert "the tenant was rolled back" in result.stderr
    assert snapshot(landscape.tenant(), audit=False) == before


def test_restore_brings_a_backup_back_through_a_normal_apply(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.remove(ORDERS)
    assert landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.orders").code == 0
    [backup] = json.loads(landscape.run("backups", "dev", "--format", "json").stdout)

    missing = landscape.run("restore", "dev", backup["name"], "--yes")
    assert missing.code == 3 and "put it back in the folder" in missing.stderr
    landscape.write(ORDERS, ORDERS_YAML)
    pending = landscape.run("restore", "dev", backup["name"], "--yes")
    assert pending.code == 3 and "apply dev first" in pending.stderr
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.run("restore", "dev", "no-such-backup", "--yes").code == 1

    restored = landscape.run("restore", "dev", backup["name"], "--yes")
    assert restored.code == 0, restored.output
    assert landscape.sql("SELECT id, note FROM sales.orders ORDER BY id") == [(1, "a"), (2, None), (3, "c")]
    runs = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    assert runs[-1]["operation"] == "restore" and runs[-1]["outcome"] == "applied"
    assert len(json.loads(landscape.run("backups", "dev", "--format", "json").stdout)) == 2  # the empty table too
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_old_backups_are_pruned_only_when_asked(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.remove(ORDERS)
    assert landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.orders").code == 0
    [backup] = json.loads(landscape.run("backups", "dev", "--format", "json").stdout)
    assert landscape.run("prune-backups", "dev").code == 3                       # no retention declared
    assert "no backup is older" in landscape.run("prune-backups", "dev", "--older-than", "30").stdout
    landscape.sql("UPDATE _reconciler.backups SET created_at = created_at - INTERVAL 40 DAY")

    listed = landscape.run("prune-backups", "dev", "--older-than", "30")
    assert f"would drop dev: {backup['name']} (3 rows" in listed.stdout and "nothing was dropped" in listed.stdout
    assert landscape.sql(f'SELECT count(*) FROM _reconciler_backup."{backup["name"]}"') == [(3,)]
    landscape.edit("environments/dev/environment.yaml", "rules:", "backup_retention_days: 30\nrules:")
    dropped = landscape.run("prune-backups", "dev", "--yes")
    assert dropped.code == 0 and f"dropped dev: {backup['name']}" in dropped.stdout
    assert json.loads(landscape.run("backups", "dev", "--format", "json").stdout) == []
    assert landscape.sql("SELECT count(*) FROM duckdb_tables() WHERE schema_name = '_reconciler_backup' AND table_name "
                         "NOT IN (SELECT restore_point FROM _reconciler.checkpoints)") == [(0,)]   # the apply's is young
