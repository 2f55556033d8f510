"""The behavioural guarantees of plan and apply, on every engine: DuckDB, a real PostgreSQL and a
real Spark Connect server.

Each test runs once per engine through the `every_engine` fixture; assertions read the tenant
through information_schema (Spark: its catalog) so that they hold for every engine. Where an
engine's promise differs (Spark commits statement by statement and compensates; its parquet
tables keep no NOT NULL), the test says so.
"""

from __future__ import annotations

import json

import pytest
from conftest import DEMO_ROWS, EngineLandscape

VIEW = "environments/dev/sales/views/vw_customer_active.yaml"
MASTER = "environments/dev/sales/customer_master.yaml"
ROWS = ("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'ada@example.com', 'EU', 'ACTIVE', NULL), "
        "(2, 'Bob', NULL, 'EU', 'ACTIVE', NULL); "
        "INSERT INTO sales.customer_transactions VALUES (10, 1, 2500.00, 'EUR', 'web', NULL)")


def applied(landscape: EngineLandscape) -> EngineLandscape:
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    landscape.sql(ROWS)
    return landscape


def test_apply_then_plan_is_empty(every_engine: EngineLandscape) -> None:
    applied(every_engine)
    result = every_engine.run("plan", "dev", "--detailed-exitcode")
    assert result.code == 0, result.output
    assert every_engine.run("apply", "dev", "--yes").stdout.count("no-changes") == 1


def test_rows_survive_a_new_column_and_recreated_views(every_engine: EngineLandscape) -> None:
    landscape = applied(every_engine)
    landscape.edit(MASTER, "primary_key", "  - {name: tier, type: VARCHAR, default: \"'BASIC'\"}\nprimary_key")
    landscape.edit(VIEW, "region, created_at", "upper(region) AS region, created_at, tier")
    plan = landscape.run("plan", "dev")
    assert "sales.vw_customer_segmentation: recreated: its column region changes with " \
           "sales.vw_customer_lifetime_value" in plan.stdout
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert landscape.sql("SELECT id, name, tier FROM sales.customer_master ORDER BY id") == \
        [(1, "Ada", "BASIC"), (2, "Bob", "BASIC")]
    assert landscape.columns("sales", "vw_customer_active")[-1] == "tier"
    assert landscape.sql("SELECT customer_id, segment FROM sales.vw_customer_segmentation") == [(1, "GOLD")]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_dropping_a_column_needs_that_object_acknowledged_is_backed_up_and_pruned_when_old(
        every_engine: EngineLandscape) -> None:
    landscape = applied(every_engine)
    before = landscape.state()
    landscape.edit(MASTER, "  - {name: email, type: VARCHAR}\n", "")
    landscape.edit(VIEW, "SELECT id, name, email, region", "SELECT id, name, region")
    landscape.edit("environments/dev/integration/df_customer_enrichment.yaml", "name, email, region", "name, region")
    refused = landscape.run("apply", "dev", "--yes")
    assert refused.code == 3 and "--allow-data-loss sales.customer_master" in refused.stderr
    assert landscape.state() == before
    result = landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.customer_master")
    assert result.code == 0, result.output
    assert "email" not in landscape.columns("sales", "customer_master")
    [backup] = json.loads(landscape.run("backups", "dev", "--format", "json").stdout)
    assert backup["row_count"] == 2
    assert landscape.sql(f'SELECT email FROM _reconciler_backup."{backup["name"]}" ORDER BY id') == \
        [("ada@example.com",), (None,)]
    if landscape.engine == "spark":   # parquet: no UPDATE, the index is rewritten
        aged(landscape, "backups", "name, schema_name, table_name, run_id, {created_at}, row_count")
        # the apply's checkpoint names the same copy (no row copied twice): it stays while that is kept
        kept = landscape.run("prune-backups", "dev", "--older-than", "30", "--yes")
        assert kept.code == 0 and "no backup is older than the retention" in kept.stdout, kept.output
        aged(landscape, "checkpoints", "name, environment, tenant, schema_name, table_name, kind, restore_point, "
                                       "commit, run_id, {created_at}, row_count, structure, linked_to")
    else:
        landscape.sql("UPDATE _reconciler.backups SET created_at = created_at - INTERVAL '40 days'")
    pruned = landscape.run("prune-backups", "dev", "--older-than", "30", "--yes")
    assert pruned.code == 0 and f"dropped dev: {backup['name']}" in pruned.stdout, pruned.output
    assert json.loads(landscape.run("backups", "dev", "--format", "json").stdout) == []
    if landscape.engine == "spark":
        assert not landscape.spark.catalog.tableExists(f"_reconciler_backup.{backup['name']}")
    else:
        assert landscape.columns("_reconciler_backup", backup["name"]) == []


def aged(landscape: EngineLandscape, table: str, columns: str) -> None:
    """A Spark catalog table's rows made 40 days older (parquet has no UPDATE: the table is rewritten)."""
    listed = columns.format(created_at="created_at - INTERVAL 40 DAYS AS created_at")
    for statement in (f"CREATE TABLE _reconciler.aged USING parquet AS SELECT {listed} FROM _reconciler.{table}",
                      f"INSERT OVERWRITE TABLE _reconciler.{table} SELECT * FROM _reconciler.aged",
                      "DROP TABLE _reconciler.aged"):
        landscape.spark.sql(statement).collect()


def test_a_failing_statement_leaves_the_tenant_as_it_was(every_engine: EngineLandscape) -> None:
    landscape = applied(every_engine)
    before = landscape.state()
    landscape.edit(MASTER, "primary_key", "  - {name: tier, type: VARCHAR}\nprimary_key")
    landscape.edit(VIEW, "region, created_at", "region, created_at, to_json(id, id) AS x")   # only the engine knows
    result = landscape.run("apply", "dev", "--yes")
    undone = "compensated from its journal" if landscape.engine == "spark" else "rolled back"
    assert result.code == 1 and "to_json" in result.stderr.lower() and undone in result.stderr
    assert landscape.state() == before


def test_not_null_is_counted_and_refused(every_engine: EngineLandscape) -> None:
    if every_engine.engine == "spark":
        pytest.skip("parquet tables keep no NOT NULL (README, Engines): the desired state is rendered without it")
    landscape = applied(every_engine)
    landscape.edit(MASTER, "{name: email, type: VARCHAR}", "{name: email, type: VARCHAR, nullable: false}")
    before = landscape.state()
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 3 and "NULL in email, which becomes NOT NULL: 1 row" in result.stderr
    assert landscape.state() == before


def test_renamed_from_keeps_values(every_engine: EngineLandscape) -> None:
    landscape = applied(every_engine)
    landscape.edit(MASTER, "{name: email, type: VARCHAR}", "{name: mail, type: VARCHAR, renamed_from: email}")
    landscape.edit(VIEW, "SELECT id, name, email, region", "SELECT id, name, mail AS email, region")
    landscape.edit("environments/dev/integration/df_customer_enrichment.yaml", "(id, name, email,", "(id, name, mail,")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert landscape.sql("SELECT id, mail FROM sales.customer_master ORDER BY id") == \
        [(1, "ada@example.com"), (2, None)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_git_revert_returns_to_the_earlier_state(every_engine: EngineLandscape) -> None:
    landscape = applied(every_engine)
    state_a = landscape.state()
    landscape.edit(MASTER, "primary_key", "  - {name: tier, type: VARCHAR}\nprimary_key")
    landscape.edit(VIEW, "region, created_at", "region, created_at, tier")
    commit_b = landscape.commit("B")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.repo.git.revert(commit_b, "--no-edit")
    assert landscape.run("apply", "dev", "--yes").code == 3
    result = landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.customer_master")
    assert result.code == 0, result.output
    assert landscape.state() == state_a


def test_an_unmanaged_view_that_would_break_blocks_the_change(every_engine: EngineLandscape) -> None:
    landscape = applied(every_engine)
    landscape.sql("CREATE VIEW sales.mailing AS SELECT email FROM sales.customer_master")
    landscape.edit(MASTER, "  - {name: email, type: VARCHAR}\n", "")
    landscape.edit(VIEW, "SELECT id, name, email, region", "SELECT id, name, region")
    landscape.edit("environments/dev/integration/df_customer_enrichment.yaml", "name, email, region", "name, region")
    result = landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.customer_master")
    assert result.code == 3 and "unmanaged view sales.mailing reads it" in result.stderr


def test_a_second_apply_is_refused_while_the_tenant_is_held(every_engine: EngineLandscape) -> None:
    import subprocess
    import sys

    landscape = applied(every_engine)
    landscape.edit(VIEW, "SELECT id, name", "SELECT DISTINCT id, name")
    if landscape.engine == "spark":   # the lock table a run on another machine would have created
        landscape.sql("CREATE TABLE _reconciler.lock_00000099 (held BOOLEAN) USING parquet TBLPROPERTIES "
                      "('run_id' = 'r-1', 'actor' = 'someone', 'host' = 'elsewhere', 'pid' = '1', "
                      "'lease_until' = '9999-01-01 00:00:00')")
        hold = ("import sys; print('ready', flush=True); sys.stdin.read()", "")
    elif landscape.engine == "duckdb":
        hold = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
                "sys.stdin.read()", str(landscape.tenant()))
    else:   # the same advisory lock a run takes, held by another session
        hold = ("import psycopg, sys; c = psycopg.connect(sys.argv[1], autocommit=True, application_name="
                "'reconciler run r-1 by someone'); c.execute('SELECT pg_advisory_lock(7301968421)'); "
                "print('ready', flush=True); sys.stdin.read()", landscape.postgres_url)
    holder = subprocess.Popen([sys.executable, "-c", *hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = landscape.run("apply", "dev", "--yes")
        assert result.code == 4, result.output
        assert "is locked by" in result.stderr
        if landscape.engine == "postgres":
            assert "reconciler run r-1 by someone" in result.stderr
        if landscape.engine == "spark":
            assert "run r-1 of someone on elsewhere (pid 1)" in result.stderr
            landscape.sql("ALTER TABLE _reconciler.lock_00000099 SET TBLPROPERTIES ('released' = 'true')")
    finally:
        holder.kill()
        holder.wait()
    assert landscape.run("apply", "dev", "--yes", "--lock-timeout", "10").code == 0


def test_one_landscape_on_duckdb_and_postgresql_gives_the_same_rows(landscape, postgres_database) -> None:
    import psycopg

    url = postgres_database
    landscape.edit("environments/dev/environment.yaml", "    create: true\n",
                   f"    create: true\n  - name: dev-pg\n    url: {url}\n")
    landscape.commit("dev on both engines")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert "Tenant dev-pg (postgres)" in result.stdout
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in DEMO_ROWS:
            landscape.sql(statement)
            connection.execute(statement)
        for view in ("vw_customer_active", "vw_transaction_detail", "vw_customer_lifetime_value",
                     "vw_customer_segmentation"):
            on_duckdb = sorted(tuple(map(str, row)) for row in landscape.sql(f"SELECT * FROM sales.{view}"))
            on_postgres = sorted(tuple(map(str, row)) for row in connection.execute(f"SELECT * FROM sales.{view}"))
            assert on_duckdb == on_postgres, view
            assert on_duckdb, view
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_killed_apply_leaves_the_old_state(every_engine: EngineLandscape) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    landscape = applied(every_engine)
    before = landscape.state()
    landscape.edit(MASTER, "primary_key", "  - {name: tier, type: VARCHAR, default: \"'BASIC'\"}\nprimary_key")
    landscape.edit(VIEW, "region, created_at", "upper(region) AS region, created_at, tier")   # 4 views
    killed = subprocess.run([str(Path(sys.executable).parent / "reconciler"), "--repo", str(landscape.root),
                             "apply", "dev", "--yes"], env={**os.environ, "RECONCILER_FAULT": "SIGKILL:4"},
                            capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    if landscape.engine != "spark":   # Spark committed what ran: the next apply compensates it first
        assert landscape.state() == before
    assert "! interrupted run" in landscape.run("plan", "dev").stdout
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.sql("SELECT id, tier FROM sales.customer_master ORDER BY id") == [(1, "BASIC"), (2, "BASIC")]


def test_narrowing_is_counted_and_a_rebuild_keeps_rows(every_engine: EngineLandscape) -> None:
    landscape = applied(every_engine)
    landscape.sql("INSERT INTO sales.customer_master VALUES (70000, 'Big', NULL, 'EU', 'ACTIVE', NULL)")
    landscape.edit(MASTER, "{name: id, type: BIGINT, nullable: false}", "{name: id, type: SMALLINT, nullable: false}")
    before = landscape.state()
    refused = landscape.run("apply", "dev", "--yes")
    assert refused.code == 3 and "a value in id that would not fit SMALLINT unchanged: 1 row" in refused.stderr
    assert landscape.state() == before
    landscape.edit(MASTER, "{name: id, type: SMALLINT, nullable: false}", "{name: id, type: BIGINT, nullable: false}")
    landscape.edit(MASTER, "primary_key: [id]", "primary_key: [id, region]")
    landscape.edit(MASTER, "{name: region, type: VARCHAR}", "{name: region, type: VARCHAR, nullable: false}")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert landscape.sql("SELECT id, name, region FROM sales.customer_master ORDER BY id") == \
        [(1, "Ada", "EU"), (2, "Bob", "EU"), (70000, "Big", "EU")]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_removed_table_is_blocked_backed_up_and_restorable(every_engine: EngineLandscape) -> None:
    landscape = applied(every_engine)
    landscape.write("environments/dev/sales/orders.yaml", "kind: Table\nname: orders\nschema: sales\nstatus: active\n"
                    "columns:\n  - {name: id, type: BIGINT, nullable: false}\n  - {name: note, type: VARCHAR}\n"
                    "primary_key: [id]\n")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.orders VALUES (1, 'a'), (2, 'b')")
    landscape.remove("environments/dev/sales/orders.yaml")
    before = landscape.state()
    refused = landscape.run("apply", "dev", "--yes")
    assert refused.code == 3 and "(2 rows) would lose data" in refused.stderr and landscape.state() == before
    assert landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.orders").code == 0
    [backup] = json.loads(landscape.run("backups", "dev", "--format", "json").stdout)
    landscape.write("environments/dev/sales/orders.yaml", "kind: Table\nname: orders\nschema: sales\nstatus: active\n"
                    "columns:\n  - {name: id, type: BIGINT, nullable: false}\n  - {name: note, type: VARCHAR}\n"
                    "primary_key: [id]\n")
    assert landscape.run("apply", "dev", "--yes").code == 0
    restored = landscape.run("restore", "dev", backup["name"], "--yes")
    assert restored.code == 0, restored.output
    assert landscape.sql("SELECT id, note FROM sales.orders ORDER BY id") == [(1, "a"), (2, "b")]


def test_five_applies_at_once_change_the_tenant_once(every_engine: EngineLandscape, hold) -> None:
    import subprocess
    import sys
    from pathlib import Path

    landscape = applied(every_engine)
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    command = [str(Path(sys.executable).parent / "reconciler"), "--repo", str(landscape.root), "apply", "dev", "--yes"]
    first = hold.popen(command, hold.env())
    hold.held(first)
    others = [subprocess.run(command, capture_output=True, text=True) for _ in range(4)]   # while it is held
    hold.release(first)
    assert first.wait(timeout=60) == 0, first.stderr.read()
    runs = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    applied_runs = [r["run_id"] for r in runs if r["outcome"] == "applied"]
    assert len(applied_runs) == 2            # the demo's first apply, and exactly one of these five
    for other in others:
        assert other.returncode == 4, other.stderr
        assert f"run {applied_runs[-1]}" in other.stderr
    assert landscape.columns("sales", "vw_customer_active")[-1] == "status"


def test_a_postgresql_tenant_lock_timeout_stops_a_blocked_statement(landscape, postgres_database) -> None:
    import psycopg

    url = postgres_database
    landscape.edit("environments/dev/environment.yaml", "duckdb:///.tenants/dev.duckdb",
                   f"{url}\n    lock_timeout: 300ms")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(MASTER, "primary_key", "  - {name: tier, type: VARCHAR}\nprimary_key")
    with psycopg.connect(url) as blocker:   # a reader holding the table in an open transaction
        blocker.execute("SELECT * FROM sales.customer_master")
        result = landscape.run("apply", "dev", "--yes")
    assert result.code == 1 and "lock timeout" in result.stderr and "rolled back" in result.stderr
    assert landscape.run("apply", "dev", "--yes").code == 0


def test_rollback_execute_and_its_undo(every_engine: EngineLandscape) -> None:
    landscape = applied(every_engine)
    state_a, commit_a = landscape.state(), landscape.repo.head.commit.hexsha
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    landscape.write("environments/dev/sales/views/vw_eu.yaml", "kind: View\nname: vw_eu\nschema: sales\n"
                    "status: active\nsql: SELECT id FROM sales.customer_master WHERE region = 'EU'\n")
    landscape.commit("B")
    assert landscape.run("apply", "dev", "--yes").code == 0
    state_b = landscape.state()
    result = landscape.run("rollback", "dev", "--to", commit_a, "--execute")
    assert result.code == 0, result.output
    assert landscape.state() == state_a
    [tag] = landscape.repo.tags
    undo = landscape.run("rollback", "dev", "--to", f"{tag.name}^", "--execute")
    assert undo.code == 0, undo.output
    assert landscape.state() == state_b


def test_hostile_names_are_only_ever_identifiers(every_engine: EngineLandscape) -> None:
    if every_engine.engine == "spark":
        pytest.skip("Spark refuses any table name but letters, digits and underscores")
    from reconciler.engines.ddl import Compiler
    from reconciler.engines.postgres import PostgresCompiler
    from reconciler.model import ObjectKey
    from reconciler.plan import Create
    from reconciler.state import ColumnState, DesiredState, LiveState, ObjectState

    landscape = applied(every_engine)
    landscape.sql("CREATE TABLE y (a INTEGER)")   # in the default schema, where an injected DROP would land
    hostile = 'x"; DROP TABLE y; --'   # names never hold '.': validation refuses it long before this
    key = ObjectKey(hostile, hostile)
    table = ObjectState(key, "Table", {}, columns=(ColumnState(hostile, "INTEGER"),), primary_key=(hostile,))
    compiler = PostgresCompiler() if landscape.engine == "postgres" else Compiler()
    changes = compiler.compile([Create(kind="Table", object=str(key), risk="low", reason="r")],
                               DesiredState("dev", "dev", compiler.engine, None, {key: table}, "duckdb"),
                               LiveState({}, {}, frozenset()))
    for statement in changes[0].statements:   # one by one: the helper splits on ';', the name holds one
        if landscape.engine == "postgres":
            import psycopg

            with psycopg.connect(landscape.postgres_url, autocommit=True) as connection:
                connection.execute(statement)
        else:
            landscape.sql(statement)
    assert landscape.sql("SELECT count(*) FROM y") == [(0,)]
    assert landscape.columns(hostile, hostile) == [hostile]
