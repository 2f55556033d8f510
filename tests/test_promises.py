"""The README's promises, attacked the way hostile testers did (issue 10): each test names its item.

Run on DuckDB and on a real PostgreSQL (the `engine_landscape` fixture) wherever the engines differ.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import EngineLandscape, Hold, Landscape, a_host_nobody_may_reach, snapshot

ORDERS = "environments/dev/sales/orders.yaml"
ORDERS_YAML = """kind: Table
name: orders
schema: sales
status: active
columns:
  - {name: id, type: BIGINT, nullable: false}
  - {name: amount, type: "DECIMAL(18,2)"}
  - {name: placed, type: TIMESTAMP}
  - {name: note, type: VARCHAR}
primary_key: [id]
"""
RECONCILER = str(Path(sys.executable).parent / "reconciler")


def with_orders(landscape: Landscape) -> Landscape:
    landscape.write(ORDERS, ORDERS_YAML)
    landscape.commit("orders")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    landscape.sql("INSERT INTO sales.orders VALUES (1, 1.25, TIMESTAMP '2024-01-01 10:30:00', 'a'), "
                  "(2, 2.00, TIMESTAMP '2024-01-02 00:00:00', 'b')")
    return landscape


def orders(landscape: Landscape) -> list[tuple]:
    return landscape.sql("SELECT id, CAST(amount AS VARCHAR), CAST(placed AS VARCHAR), note FROM sales.orders "
                         "ORDER BY id")


@pytest.mark.parametrize("column, narrower", [
    ("{name: amount, type: \"DECIMAL(18,2)\"}", "{name: amount, type: \"DECIMAL(5,1)\"}"),
    ("{name: amount, type: \"DECIMAL(18,2)\"}", "{name: amount, type: INTEGER}"),
    ("{name: placed, type: TIMESTAMP}", "{name: placed, type: DATE}"),
], ids=["decimal_scale", "decimal_to_integer", "timestamp_to_date"])
def test_1_a_rebuild_never_narrows_values_silently(engine_landscape: EngineLandscape, column: str,
                                                  narrower: str) -> None:
    landscape = with_orders(engine_landscape)
    before = landscape.state()
    landscape.edit(ORDERS, "primary_key: [id]", "primary_key: [id, note]")   # forces a rebuild
    landscape.edit(ORDERS, column, narrower)
    landscape.edit(ORDERS, "{name: note, type: VARCHAR}", "{name: note, type: VARCHAR, nullable: false}")

    plan = landscape.run("plan", "dev")
    assert "-/+ Table sales.orders" in plan.stdout, plan.stdout
    assert re.search(r"blocked: a value in (amount|placed) that would not fit .* unchanged: 1 row\b", plan.stdout), \
        plan.stdout   # 1.25 (2.00 fits an integer exactly) or 10:30 (midnight fits a date)
    refused = landscape.run("apply", "dev", "--yes")
    assert refused.code == 3 and "would not fit" in refused.stderr, refused.output
    assert landscape.state() == before


def test_1_the_rebuild_itself_proves_every_value_arrived(engine_landscape: EngineLandscape) -> None:
    """The copy-and-swap statements fail on their own when a value changes, even with no check before."""
    from reconciler.engines.ddl import Compiler
    from reconciler.engines.postgres import PostgresCompiler
    from reconciler.model import ObjectKey
    from reconciler.plan import Detail, Replace
    from reconciler.state import ColumnState, ObjectState

    landscape = with_orders(engine_landscape)
    compiler = PostgresCompiler() if landscape.engine == "postgres" else Compiler()
    key = ObjectKey("sales", "orders")
    want = ObjectState(key, "Table", {}, columns=(ColumnState("id", "BIGINT", False),
                                                   ColumnState("amount", "DECIMAL(5, 1)")), primary_key=("id",))
    live = [ColumnState("id", "BIGINT", False), ColumnState("amount", "DECIMAL(18, 2)"),
            ColumnState("placed", "TIMESTAMP"), ColumnState("note", "TEXT")]
    from reconciler.state import LiveObject
    found = LiveObject(key, "Table", tuple(live), ("id",))
    change = Replace(kind="Table", object="sales.orders", risk="medium", reason="r",
                    details=(Detail(field="columns.amount.type", op="change", before="DECIMAL(18, 2)",
                                    after="DECIMAL(5, 1)"),))
    statements = compiler.rebuild_table(key, want, found, change)
    script = "BEGIN; " + "; ".join(statements[:3]) + "; COMMIT"
    if landscape.engine == "postgres":
        import psycopg

        with psycopg.connect(landscape.postgres_url) as connection, pytest.raises(psycopg.Error) as error:
            for statement in statements[:3]:
                connection.execute(statement)
    else:
        import duckdb

        with duckdb.connect(str(landscape.tenant())) as connection, pytest.raises(duckdb.Error) as error:
            connection.execute(script)
    assert "rebuilding sales.orders would change or lose rows" in str(error.value)
    assert orders(landscape)[0][1] == "1.25"


def test_2_a_row_written_during_a_rebuild_waits_and_is_kept(landscape: Landscape, postgres_database: str,
                                                            hold: Hold) -> None:
    """PostgreSQL: the tables a plan changes are locked before its checks, so another session's
    INSERT waits for the commit and lands in the rebuilt table instead of the dropped one."""
    import psycopg

    landscape.edit("environments/dev/environment.yaml", "duckdb:///.tenants/dev.duckdb", postgres_database)
    landscape.write(ORDERS, ORDERS_YAML)
    landscape.commit("orders on postgres")
    assert landscape.run("apply", "dev", "--yes").code == 0
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("INSERT INTO sales.orders VALUES (1, 1.25, NULL, 'a'), (2, 2.00, NULL, 'b')")
    landscape.edit(ORDERS, "primary_key: [id]", "primary_key: [id, note]")
    landscape.edit(ORDERS, "{name: note, type: VARCHAR}", "{name: note, type: VARCHAR, nullable: false}")
    landscape.commit("rebuild")
    # the rebuild's statements: create the copy, copy, prove, drop, rename; hold after the proof
    apply = hold.popen([RECONCILER, "--repo", str(landscape.root), "apply", "dev", "--yes"], hold.env(after=3))
    hold.held(apply)
    writer = psycopg.connect(postgres_database, autocommit=True, application_name="concurrent writer")
    inserted = threading.Thread(target=writer.execute,
                                args=("INSERT INTO sales.orders VALUES (3, 3.00, NULL, 'c')",))
    inserted.start()
    with psycopg.connect(postgres_database, autocommit=True) as watcher:
        # the event: the server lists the writer as waiting for a lock (asked again, round trip by round
        # trip, until it does); an INSERT that finished instead fails the test
        while not watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                                  "'concurrent writer' AND wait_event_type = 'Lock'").fetchone()[0]:
            assert inserted.is_alive(), "the concurrent INSERT was not held back by the apply's lock"
    hold.release(apply)
    assert apply.wait(timeout=60) == 0, apply.stderr.read()
    inserted.join(timeout=60)
    writer.close()
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        assert connection.execute("SELECT id FROM sales.orders ORDER BY id").fetchall() == [(1,), (2,), (3,)]


def test_3_a_saved_plan_is_a_claim_never_a_program(landscape: Landscape, tmp_path: Path) -> None:
    with_orders(landscape)
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "SELECT id,", "SELECT DISTINCT id,")
    landscape.commit("distinct")
    saved = tmp_path / "dev.plan.json"
    assert landscape.run("plan", "dev", "--out", str(saved)).code == 0
    before = snapshot(landscape.tenant(), audit=False)

    from reconciler.plan import Plan

    data = json.loads(saved.read_text())
    data["tenants"][0]["changes"][0]["statements"].append("DELETE FROM sales.orders")
    del data["fingerprint"]
    saved.write_text(json.dumps(data))
    unsigned = landscape.run("apply", "dev", "--plan", str(saved), "--yes")
    assert unsigned.code == 5 and "has no fingerprint" in unsigned.stderr

    data.pop("summary")
    for tenant in data["tenants"]:
        tenant.pop("summary")
    forged = Plan.model_validate(data)
    saved.write_text(forged.to_json())   # a valid fingerprint over the tampered content: anyone can make one
    tampered = landscape.run("apply", "dev", "--plan", str(saved), "--yes")
    assert tampered.code == 5, tampered.output
    assert "the plan file says something other than" in tampered.stderr
    assert snapshot(landscape.tenant(), audit=False) == before
    assert len(orders(landscape)) == 2


def test_4_risk_comes_from_what_the_tenant_is_not_from_the_catalog(engine_landscape: EngineLandscape) -> None:
    landscape = with_orders(engine_landscape)
    landscape.sql("UPDATE _reconciler.objects SET kind = 'View' WHERE name = 'orders'")   # a hand-edited catalog
    landscape.remove(ORDERS)
    landscape.commit("orders removed")
    before = landscape.state()

    plan = landscape.run("plan", "dev")
    assert "- Table sales.orders: removed from the folder: drops the table and its rows [risk high, 2 rows]" \
        in plan.stdout, plan.stdout
    assert landscape.run("apply", "dev", "--yes").code == 3
    assert landscape.state() == before
    assert landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.orders").code == 0
    [backup] = json.loads(landscape.run("backups", "dev", "--format", "json").stdout)
    assert backup["table_name"] == "orders" and backup["row_count"] == 2


def test_7_a_tenant_that_does_not_converge_is_rolled_back_and_never_audited_applied(
        landscape: Landscape, postgres_database: str) -> None:
    """A DBA's event trigger adds a column to every new table: the re-plan inside the transaction
    is not empty, so nothing commits and the audit says failed."""
    import psycopg

    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("""CREATE FUNCTION stamp() RETURNS event_trigger LANGUAGE plpgsql AS $$
            DECLARE r record; BEGIN
              FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() WHERE command_tag = 'CREATE TABLE' LOOP
                EXECUTE format('ALTER TABLE %s ADD COLUMN IF NOT EXISTS stamped_by TEXT', r.object_identity);
              END LOOP; END $$""")
        connection.execute("CREATE EVENT TRIGGER stamp ON ddl_command_end WHEN TAG IN ('CREATE TABLE') "
                           "EXECUTE FUNCTION stamp()")
    landscape.edit("environments/dev/environment.yaml", "duckdb:///.tenants/dev.duckdb", postgres_database)
    landscape.commit("dev on postgres")

    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 1
    assert "a new plan was not empty" in result.stderr and "the tenant was rolled back" in result.stderr
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        assert connection.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'sales'"
                                  ).fetchone() == (0,)
        assert connection.execute("SELECT outcome FROM _reconciler.runs").fetchall() == [("failed",)]


def test_9_types_keep_their_contents_and_junk_after_a_type_is_refused(landscape: Landscape) -> None:
    landscape.write(ORDERS, ORDERS_YAML.replace("{name: note, type: VARCHAR}",
                                                "{name: note, type: \"ENUM('low', 'high')\"}"))
    landscape.commit("enum")
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.sql("SELECT data_type FROM duckdb_columns() WHERE column_name = 'note' "
                         "AND table_name = 'orders'") == [("ENUM('low', 'high')",)]
    landscape.sql("INSERT INTO sales.orders (id, note) VALUES (1, 'low')")
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0

    landscape.edit(ORDERS, "{name: amount, type: \"DECIMAL(18,2)\"}", "{name: amount, type: \"DECIMAL(18,2) junk\"}")
    invalid = landscape.run("validate", "dev")
    assert invalid.code == 1
    assert "environments/dev/sales/orders.yaml:7:" in invalid.stderr and "not a SQL type: DECIMAL(18,2) junk" \
        in invalid.stderr


def test_defaults_the_engine_echoes_in_parentheses_converge(landscape: Landscape) -> None:
    landscape.write(ORDERS, ORDERS_YAML.replace("{name: note, type: VARCHAR}",
                                                "{name: note, type: VARCHAR, default: \"'x' || 'y'\"}"))
    landscape.commit("computed default")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_8_yaml_1_1_booleans_are_text(landscape: Landscape) -> None:
    landscape.edit("environments/dev/environment.yaml", "REGION_PARAM: EU", "REGION_PARAM: NO")
    landscape.commit("Norway")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (1, 'Ola', NULL, 'NO', 'ACTIVE', NULL)")
    assert landscape.sql("SELECT name FROM sales.vw_customer_active") == [("Ola",)]
    definition = landscape.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'vw_customer_active'")[0][0]
    assert "'NO'" in definition and "false" not in definition.lower()


def test_10_reserved_schemas_are_checked_after_mapping() -> None:
    """Golden cases: tests/cases/invalid/reserved_schema_through_mapping (and tenant_url_typo for 18)."""
    cases = Path(__file__).parent / "cases" / "invalid"
    assert "reserved" in (cases / "reserved_schema_through_mapping" / "expected.txt").read_text()
    assert "duckbd" in (cases / "tenant_url_typo" / "expected.txt").read_text()


def test_17_an_unknown_tenant_or_repository_is_a_usage_error(landscape: Landscape, tmp_path: Path) -> None:
    for command in ("plan", "apply"):
        unknown = landscape.run(command, "dev", "--tenant", "Dev", *(["--yes"] if command == "apply" else []))
        assert unknown.code == 64 and "has no tenant Dev (did you mean dev?)" in unknown.stderr, unknown.output
    assert not landscape.tenant().exists()
    from reconciler.cli import main

    assert main(["--repo", str(tmp_path / "no" / "such" / "dir"), "status"]) == 64
    (tmp_path / "empty").mkdir()
    assert main(["--repo", str(tmp_path / "empty"), "status"]) == 64


def test_18_urls_are_checked_against_the_adapters_installed(landscape: Landscape, tmp_path: Path,
                                                            monkeypatch) -> None:
    """An adapter another package registers (entry point group reconciler.engines) is a valid scheme."""
    site = tmp_path / "site"
    info = site / "reconciler_fake_engine-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: reconciler-fake-engine\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[reconciler.engines]\ntrino = reconciler_fake_engine:Adapter\n")
    monkeypatch.syspath_prepend(str(site))
    landscape.edit("environments/dev/environment.yaml", "    create: true\n",
                   "    create: true\n  - name: warehouse\n    url: trino://account/database\n")
    without_list = landscape.run("validate", "dev")   # the package is not there: nothing says what SQL may call
    assert without_list.code == 1 and "sum() is not a function SQL from the folder may call on trino: its " \
        "adapter gives no list" in without_list.stderr, without_list.output
    (site / "reconciler_fake_engine.py").write_text(
        "class Adapter:\n    function_allowlist = '[functions]\\nsum\\ncount\\nmin\\nmax\\niff\\n"
        "current_timestamp\\ncoalesce\\ncast\\n'\n")
    result = landscape.run("validate", "dev")
    assert result.code == 0, result.output


def test_19_introspection_accepts_every_type_the_engine_reports(engine_landscape: EngineLandscape) -> None:
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("CREATE VIEW sales.hand_made AS SELECT NULL AS x")
    plan = landscape.run("plan", "dev")
    assert plan.code == 0, plan.output
    assert "sales.hand_made" in plan.stdout


def test_21_a_review_hash_prefix_shown_in_the_markdown_plan_is_accepted(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "SELECT id,", "SELECT DISTINCT id,")
    markdown = landscape.run("plan", "dev", "--format", "markdown").stdout
    shown = re.search(r"review hash `([0-9a-f]{12})`", markdown).group(1)
    assert landscape.run("apply", "dev", "--yes", "--expect-review-hash", shown[:11]).code == 64
    assert landscape.run("apply", "dev", "--yes", "--expect-review-hash", "0" * 12).code == 5
    applied = landscape.run("apply", "dev", "--yes", "--expect-review-hash", shown)
    assert applied.code == 0, applied.output


DBA_ADDITIONS = {
    "duckdb": ["CREATE INDEX ix_orders_amount ON sales.orders (amount)",
               "COMMENT ON TABLE sales.orders IS 'kept by finance'",
               "COMMENT ON COLUMN sales.orders.amount IS 'in EUR'"],
    "postgres": ["CREATE INDEX ix_orders_amount ON sales.orders (amount)",
                 "COMMENT ON TABLE sales.orders IS 'kept by finance'",
                 "COMMENT ON COLUMN sales.orders.amount IS 'in EUR'",
                 "ALTER TABLE sales.orders ADD CONSTRAINT positive_amount CHECK (amount >= 0)",
                 "CREATE ROLE finance_reader_{db}", "GRANT SELECT ON sales.orders TO finance_reader_{db}",
                 "ALTER TABLE sales.orders ENABLE ROW LEVEL SECURITY",
                 "CREATE POLICY eu_only ON sales.orders FOR SELECT TO finance_reader_{db} USING (note <> 'x')",
                 "CREATE FUNCTION sales.touch() RETURNS trigger LANGUAGE plpgsql AS "
                 "$$BEGIN NEW.note := coalesce(NEW.note, 'n/a'); RETURN NEW; END$$",
                 "CREATE TRIGGER orders_touch BEFORE INSERT ON sales.orders FOR EACH ROW EXECUTE FUNCTION sales.touch()"],
}


def additions(landscape: EngineLandscape) -> dict:
    """What a DBA's additions look like from the engine, for before/after comparison."""
    if landscape.engine == "duckdb":
        return {"indexes": landscape.sql("SELECT index_name, sql FROM duckdb_indexes() WHERE table_name = 'orders'"),
                "comments": landscape.sql("SELECT comment FROM duckdb_tables() WHERE table_name = 'orders'")
                + landscape.sql("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'orders' "
                                "AND comment IS NOT NULL")}
    return {"indexes": landscape.sql("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'orders' "
                                     "AND indexname <> 'orders_pkey' ORDER BY 1"),
            "key": landscape.sql("SELECT conname FROM pg_constraint WHERE conrelid = 'sales.orders'::regclass "
                                 "AND contype = 'p'"),
            "constraints": landscape.sql("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE "
                                         "conrelid = 'sales.orders'::regclass AND contype = 'c'"),
            "triggers": landscape.sql("SELECT tgname FROM pg_trigger WHERE tgrelid = 'sales.orders'::regclass "
                                      "AND NOT tgisinternal"),
            "grants": landscape.sql("SELECT grantee, privilege_type FROM information_schema.role_table_grants "
                                    "WHERE table_name = 'orders' AND grantee LIKE 'finance%'"),
            "security": landscape.sql("SELECT relrowsecurity, obj_description(oid, 'pg_class') FROM pg_class "
                                      "WHERE oid = 'sales.orders'::regclass"),
            "policies": landscape.sql("SELECT policyname, cmd, qual FROM pg_policies WHERE tablename = 'orders'"),
            "column comments": landscape.sql("SELECT col_description('sales.orders'::regclass, 2)")}


def test_5_a_rebuild_carries_over_what_a_dba_added(engine_landscape: EngineLandscape) -> None:
    landscape = with_orders(engine_landscape)
    database = (landscape.postgres_url or "x").rsplit("/", 1)[-1].split("?")[0]
    for statement in DBA_ADDITIONS[landscape.engine]:
        if landscape.engine == "postgres":   # one statement at a time: a function body holds ';'
            import psycopg

            with psycopg.connect(landscape.postgres_url, autocommit=True) as connection:
                connection.execute(statement.format(db=database))
        else:
            landscape.sql(statement)
    before = additions(landscape)
    assert all(before.values()), before
    landscape.edit(ORDERS, "primary_key: [id]", "primary_key: [id, note]")
    landscape.edit(ORDERS, "{name: note, type: VARCHAR}", "{name: note, type: VARCHAR, nullable: false}")

    plan = landscape.run("plan", "dev")
    assert "carries over " in plan.stdout
    for what in ("index ix_orders_amount", "a comment on the table", "a comment on column amount"):
        assert what in plan.stdout, what
    if landscape.engine == "postgres":
        for what in ("constraint positive_amount", "trigger orders_touch", "grant of SELECT to finance_reader",
                     "row-level security", "policy eu_only"):
            assert what in plan.stdout, what
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert additions(landscape) == before
    assert landscape.sql("SELECT count(*) FROM sales.orders") == [(2,)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_5_a_rebuild_that_cannot_carry_an_addition_over_is_refused_naming_it(
        engine_landscape: EngineLandscape) -> None:
    landscape = with_orders(engine_landscape)
    if landscape.engine == "duckdb":   # DuckDB cannot add a CHECK to an existing table
        landscape.sql("CREATE OR REPLACE TABLE sales.orders (id BIGINT NOT NULL, amount DECIMAL(18,2) "
                      "CHECK (amount >= 0), placed TIMESTAMP, note VARCHAR, PRIMARY KEY (id)); "
                      "INSERT INTO sales.orders VALUES (1, 1.25, NULL, 'a')")
        blocker = "check constraint CHECK((amount >= 0))"
    else:   # DROP TABLE refuses while another table's foreign key references it
        landscape.sql("CREATE TABLE sales.invoices (id INT, order_id BIGINT REFERENCES sales.orders (id))")
        blocker = "foreign key invoices_order_id_fkey of sales.invoices, which references it"
    before = landscape.state()
    landscape.edit(ORDERS, "primary_key: [id]", "primary_key: [id, note]")
    landscape.edit(ORDERS, "{name: note, type: VARCHAR}", "{name: note, type: VARCHAR, nullable: false}")

    plan = landscape.run("plan", "dev")
    assert "cannot be put back: " + blocker in plan.stdout, plan.stdout
    refused = landscape.run("apply", "dev", "--yes")
    assert refused.code == 3 and blocker in refused.stderr
    assert landscape.state() == before


@pytest.mark.parametrize("engine_landscape", ["postgres"], indirect=True)
def test_5_a_rebuild_keeps_statistics_storage_rules_publications_and_replica_identity(
        engine_landscape: EngineLandscape) -> None:
    """Issue 22, break 8: a primary-key change rebuilt the table and dropped, without a word, the
    DBA's extended statistics, storage parameter, rule, publication membership and replica identity
    (logical replication of the table stopped). Each is read back from the catalog afterwards."""
    landscape = with_orders(engine_landscape)
    for statement in ("CREATE STATISTICS sales.orders_amount_note (dependencies) ON amount, note FROM sales.orders",
                      "ALTER TABLE sales.orders SET (fillfactor = 70)",
                      "CREATE TABLE sales.orders_audit (id BIGINT, noted TIMESTAMPTZ)",
                      "CREATE RULE audit_insert AS ON INSERT TO sales.orders DO ALSO "
                      "INSERT INTO sales.orders_audit VALUES (NEW.id, now())",
                      "CREATE PUBLICATION orders_out", "ALTER PUBLICATION orders_out ADD TABLE sales.orders",
                      "ALTER TABLE sales.orders REPLICA IDENTITY FULL"):
        landscape.sql(statement)

    def attached() -> dict:
        table = "'sales.orders'::regclass"
        return {"statistics": landscape.sql(f"SELECT pg_get_statisticsobjdef(oid) FROM pg_statistic_ext "
                                            f"WHERE stxrelid = {table}"),
                "storage and replica identity": landscape.sql(f"SELECT reloptions, relreplident FROM pg_class "
                                                              f"WHERE oid = {table}"),
                "rules": landscape.sql(f"SELECT pg_get_ruledef(oid) FROM pg_rewrite WHERE ev_class = {table}"),
                "publications": landscape.sql(f"SELECT p.pubname FROM pg_publication_rel r JOIN pg_publication p "
                                              f"ON p.oid = r.prpubid WHERE r.prrelid = {table}")}

    before, rows = attached(), orders(landscape)
    assert before["storage and replica identity"] == [(["fillfactor=70"], "f")] and all(before.values()), before
    landscape.edit(ORDERS, "primary_key: [id]", "primary_key: [id, note]")
    landscape.edit(ORDERS, "{name: note, type: VARCHAR}", "{name: note, type: VARCHAR, nullable: false}")

    plan = landscape.run("plan", "dev")
    for what in ("statistics object sales.orders_amount_note", "storage parameters fillfactor=70", "rule audit_insert",
                 "publication orders_out", "replica identity FULL"):
        assert what in plan.stdout, plan.stdout
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert attached() == before
    assert orders(landscape) == rows
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


VIEW = "environments/dev/sales/views/vw_customer_active.yaml"


def test_5_a_recreated_view_keeps_what_a_dba_gave_it(engine_landscape: EngineLandscape) -> None:
    """Grants (on the view and on a column), comments and the owner die with DROP VIEW on
    PostgreSQL, and DuckDB's CREATE OR REPLACE VIEW drops comments: what was given to a view the
    plan recreates is put back in the same transaction, and the plan says so."""
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    given = ["COMMENT ON VIEW sales.vw_customer_active IS 'for the BI team'",
             "COMMENT ON COLUMN sales.vw_customer_active.region IS 'ISO 3166'"]
    if landscape.engine == "postgres":
        role = "bi_" + (landscape.postgres_url or "").rsplit("/", 1)[-1].split("?")[0]
        given += [f"CREATE ROLE {role}", f"GRANT SELECT ON sales.vw_customer_active TO {role}",
                  f"GRANT SELECT (customer_id) ON sales.vw_transaction_detail TO {role}"]
    for statement in given:
        landscape.sql(statement)

    def what_was_given() -> list:
        if landscape.engine == "duckdb":
            return (landscape.sql("SELECT comment FROM duckdb_views() WHERE view_name = 'vw_customer_active'")
                    + landscape.sql("SELECT column_name, comment FROM duckdb_columns() WHERE table_name = "
                                    "'vw_customer_active' AND comment IS NOT NULL"))
        return (landscape.sql("SELECT obj_description('sales.vw_customer_active'::regclass, 'pg_class'), "
                              "col_description('sales.vw_customer_active'::regclass, 4)")
                + landscape.sql(f"SELECT table_name, privilege_type FROM information_schema.role_table_grants "
                                f"WHERE grantee = '{role}' ORDER BY 1")
                + landscape.sql(f"SELECT table_name, column_name FROM information_schema.column_privileges "
                                f"WHERE grantee = '{role}' AND table_name = 'vw_transaction_detail'"))

    before = what_was_given()
    assert len(before) == (2 if landscape.engine == "duckdb" else 3)
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    plan = landscape.run("plan", "dev")
    assert "vw_customer_active: the view's columns change; carries over " in plan.stdout, plan.stdout
    assert "a comment on the view, a comment on column region" in plan.stdout
    if landscape.engine == "postgres":   # the reader is dropped first too (PostgreSQL pins what it reads)
        assert f"carries over grant of SELECT on column customer_id to {role}" in plan.stdout
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert what_was_given() == before
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_6_renamed_from_an_object_still_declared_is_refused(landscape: Landscape) -> None:
    with_orders(landscape)
    landscape.write("environments/dev/sales/purchase_orders.yaml",
                    ORDERS_YAML.replace("name: orders", "name: purchase_orders\nrenamed_from: orders")
                    .replace("{name: note, type: VARCHAR}", "{name: memo, type: VARCHAR, renamed_from: amount}"))
    result = landscape.run("validate", "dev")
    assert result.code == 1
    assert "environments/dev/sales/purchase_orders.yaml:3:15: error[rename]: renamed_from: orders names a table " \
           "that is still declared (sales.orders)" in result.stderr, result.stderr
    assert "purchase_orders.yaml:10:47: error[rename]: column memo: renamed_from: amount names a column that is " \
           "still declared" in result.stderr, result.stderr


def test_6_a_case_only_rename_with_a_new_column_converges(engine_landscape: EngineLandscape) -> None:
    landscape = with_orders(engine_landscape)
    landscape.edit(ORDERS, "name: orders", "name: Orders")
    landscape.edit(ORDERS, "primary_key", "  - {name: channel, type: VARCHAR}\nprimary_key")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    assert landscape.sql("SELECT count(*) FROM _reconciler.objects WHERE lower(name) = 'orders'") == [(1,)]
    assert landscape.columns("sales", "orders")[-1] == "channel"


def test_6_promotion_moves_a_rename_as_one_unit(landscape: Landscape) -> None:
    for environment in ("dev", "qa"):
        landscape.write(f"environments/{environment}/sales/orders.yaml", ORDERS_YAML)
    landscape.commit("orders everywhere")
    landscape.remove(ORDERS)
    landscape.write("environments/dev/sales/purchase_orders.yaml",
                    ORDERS_YAML.replace("name: orders", "name: purchase_orders\nrenamed_from: orders"))
    landscape.commit("dev: orders renamed")
    result = landscape.run("promote", "dev", "qa", "--no-pr", "--format", "json")
    assert result.code == 0, result.output
    moves = {m["key"]: m["action"] for m in json.loads(result.stdout)["moves"]}
    assert moves == {"sales.purchase_orders": "add", "sales.orders": "remove"}


def test_16_hostile_files_get_a_message_never_a_traceback_or_a_write_through_a_link(
        landscape: Landscape, tmp_path_factory) -> None:
    """Golden cases: tests/cases/invalid/yaml_alias_bomb and sql_nested_too_deeply; here the rest."""
    import hashlib
    import zipfile

    path_ref = landscape.run("plan", "dev", "--ref", "HEAD:environments/dev/../../..")
    assert path_ref.code == 1 and "name a commit, branch or tag" in path_ref.stderr
    assert "Traceback" not in path_ref.output

    outside = tmp_path_factory.mktemp("outside") / "precious.txt"
    outside.write_text("keep me")
    landscape.tenant().parent.mkdir(parents=True, exist_ok=True)
    landscape.tenant().with_name("dev.duckdb.holder.json").symlink_to(outside)
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert outside.read_text() == "keep me"

    package = tmp_path_factory.mktemp("pkg") / "rules.zip"
    members = {"manifest.json": json.dumps({"format": 1, "name": "rules", "version": "9.0.0"}).encode(),
               "objects/environment.yaml": b"name: qa\ntenants: [{name: qa, url: 'postgresql://evil/db'}]\n"}
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in members.items())
    with zipfile.ZipFile(package, "w") as archive:
        for name, data in {**members, "SHA256SUMS": sums.encode()}.items():
            archive.writestr(name, data)
    refused = landscape.run("import", str(package), "--into", "qa", "--no-pr")
    assert refused.code == 1 and "a package carries object files only" in refused.stderr, refused.output
    assert "evil" not in landscape.path("environments/qa/environment.yaml").read_text()


def test_13_literal_secrets_in_connection_strings_are_refused() -> None:
    """Golden case tests/cases/invalid/literal_secrets_in_connection_strings: ?password= in a tenant URL,
    pwd:, ODBC Pwd=, JDBC password=, an AWS secret and key id, a SAS sig=, each at file:line."""
    expected = (Path(__file__).parent / "cases" / "invalid" / "literal_secrets_in_connection_strings"
                / "expected.txt").read_text()
    for shape in ("'password='", "'pwd'", "'Pwd='", "'aws_secret_access_key'", "'sig='", "AWS Access Key"):
        assert shape in expected, shape
    assert expected.endswith("7 problems found\n")


def test_14_an_unset_connection_secret_stops_the_apply_before_it_starts(landscape: Landscape,
                                                                          monkeypatch) -> None:
    monkeypatch.delenv("ERP_PASSWORD")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 1
    assert "environment variable ERP_PASSWORD is not set, and the apply needs it" in result.stderr
    assert not landscape.tenant().exists()   # nothing was created, not even the database file
    monkeypatch.setenv("ERP_PASSWORD", "set")
    assert landscape.run("apply", "dev", "--yes").code == 0
    monkeypatch.delenv("ERP_PASSWORD")   # an unchanged connection is not redeployed: nothing needs it
    assert landscape.run("apply", "dev", "--yes").code == 0


READING_DEV = [("plan", "dev"), ("drift", "dev"), ("history", "dev"), ("check", "dev"), ("checkpoints", "dev"),
               ("backups", "dev"), ("adopt", "dev", "--tenant", "warehouse"), ("site", "dev", "--out", "{out}"),
               ("run", "dev", "df_customer_enrichment")]


@pytest.mark.parametrize(("command", "how"), [(c, "named") for c in [*READING_DEV, ("status",), ("report", "--out", "{out}")]]
                         + [(c, how) for c in READING_DEV for how in ("elsewhere", "ambient")])
def test_15_a_pull_request_cannot_send_a_tenant_password_to_a_host_it_names(
        landscape: Landscape, monkeypatch, tmp_path, command: tuple[str, ...], how: str) -> None:
    """Whichever command opens a tenant: the mechanism that opens one (`Workspace.adapter`) refuses it. The
    host the pull request names is one nobody declared, or (`elsewhere`) the one the base declares for qa's
    tenant of the same name, with qa's password: dev's commands must not read qa's database either. A
    tenant that names no password (`ambient`) still sends the one libpq finds by itself (PGPASSWORD)."""
    elsewhere = how == "elsewhere"
    landscape.edit("environments/dev/environment.yaml", "    create: true\n",
                   "    create: true\n  - name: warehouse\n    url: postgresql://loader@127.0.0.1:1/warehouse\n"
                   + ("" if how == "ambient" else "    password: env:WAREHOUSE_PASSWORD\n"))
    monkeypatch.setenv("PGPASSWORD", "never-sent-by-libpq")
    with a_host_nobody_may_reach() as port:
        if elsewhere:
            landscape.edit("environments/qa/environment.yaml", "    create: true\n",
                           f"    create: true\n  - name: warehouse\n    url: postgresql://loader@127.0.0.1:{port}/warehouse\n"
                           "    password: env:QA_WAREHOUSE_PASSWORD\n")
        landscape.commit("the base branch: a warehouse tenant")
        landscape.edit("environments/dev/environment.yaml", "127.0.0.1:1/", f"127.0.0.1:{port}/")   # the pull request
        if elsewhere:
            landscape.edit("environments/dev/environment.yaml", "env:WAREHOUSE_PASSWORD", "env:QA_WAREHOUSE_PASSWORD")
        monkeypatch.setenv("WAREHOUSE_PASSWORD", "never-sent")
        monkeypatch.setenv("QA_WAREHOUSE_PASSWORD", "never-sent-either")
        monkeypatch.setenv("RECONCILER_BASE_REF", landscape.repo.head.commit.hexsha)
        result = landscape.run(*(word.format(out=tmp_path / "out") for word in command))
    assert result.code != 70 and "Traceback" not in result.output, result.output
    said = "tenant warehouse: this change gives it another url or password"
    if command[0] in ("report", "site"):   # the environment's status row says it
        assert result.code == 0 and said in html.unescape((tmp_path / "out" / "index.html").read_text())
    elif command[0] == "status":
        assert said in " ".join(result.stdout.split())
    else:
        assert result.code == 1 and said in result.stderr, result.output


@pytest.mark.parametrize("kill", ["SIGKILL@recorded", "SIGKILL:2", "SIGKILL@applied", "SIGKILL@moved",
                                  "SIGKILL@tagged"])
def test_12_a_killed_rollback_execute_is_named_by_the_next_command_and_finishes_forward(
        landscape: Landscape, kill: str) -> None:
    import os

    assert landscape.run("apply", "dev", "--yes").code == 0
    commit_a = landscape.repo.head.commit.hexsha
    def user_state() -> dict:
        return {k: v for k, v in snapshot(landscape.tenant()).items() if not k.startswith("_reconciler")}

    state_a = user_state()
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "region, created_at",
                   "region, created_at, status")
    landscape.write("environments/dev/sales/views/vw_eu.yaml", "kind: View\nname: vw_eu\nschema: sales\n"
                    "sql: SELECT id FROM sales.customer_master WHERE region = 'EU'\n")
    landscape.commit("B")
    assert landscape.run("apply", "dev", "--yes").code == 0
    commit_b = landscape.repo.head.commit.hexsha

    killed = subprocess.run([RECONCILER, "--repo", str(landscape.root), "rollback", "dev", "--to", commit_a,
                             "--execute"], env={**os.environ, "RECONCILER_FAULT": kill}, capture_output=True)
    assert killed.returncode == -9
    named = landscape.run("plan", "dev")
    assert named.code == 3 and "rollback dev --resume" in named.stderr, named.output
    assert landscape.run("apply", "dev", "--yes").code == 3   # nothing moves the tenant until it is finished

    resumed = landscape.run("rollback", "dev", "--resume")
    assert resumed.code == 0, resumed.output
    assert user_state() == state_a
    assert landscape.repo.head.commit.parents[0].hexsha == commit_b   # one rollback commit on top of B
    assert landscape.repo.head.commit.tree["environments/dev"] == landscape.repo.commit(commit_a).tree["environments/dev"]
    assert landscape.repo.git.status("--porcelain", "--", "environments") == ""
    assert len(landscape.repo.tags) == 1
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    assert landscape.run("rollback", "dev", "--resume").code == 3   # nothing left to resume


def test_20_a_comment_in_a_select_list_is_not_a_column(landscape: Landscape) -> None:
    view = "environments/dev/sales/views/vw_customer_lifetime_value.yaml"
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(view, "revenue, orders, first_order, last_order\n",
                   "revenue, orders, -- how many orders, all channels\n         first_order, last_order\n")
    landscape.edit(view, "FROM per_customer", "FROM per_customer WHERE revenue IS NOT NULL")
    plan = landscape.run("plan", "dev")
    assert "~ View sales.vw_customer_lifetime_value: query changed, same columns" in plan.stdout, plan.stdout
    assert "recreated" not in plan.stdout
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_23_the_first_promotion_into_a_new_environment_bootstraps_it(landscape: Landscape) -> None:
    landscape.write("environments/dr/environment.yaml", "name: dr\npromotes_from: prod\ntenants:\n"
                    "  - {name: dr, url: 'duckdb:///.tenants/dr.duckdb', create: true}\n"
                    "rules:\n  parameters: {REGION_PARAM: EU}\n")
    landscape.commit("a new disaster-recovery environment, empty")
    empty = landscape.run("plan", "dr", "--detailed-exitcode")   # valid, and nothing to do on a new tenant
    assert empty.code == 0 and "No changes" in empty.stdout, empty.output
    result = landscape.run("promote", "prod", "dr", "--no-pr", "--format", "json")
    assert result.code == 0, result.output
    moved = {m["key"] for m in json.loads(result.stdout)["moves"]}
    assert "sales.customer_master" in moved and "integration.Connection_ERP_PROD" not in moved
    landscape.repo.git.merge("--ff-only", json.loads(result.stdout)["branch"])
    applied = landscape.run("apply", "dr", "--yes")
    assert applied.code == 0, applied.output


def test_16_a_cache_or_rollback_intent_committed_by_a_pull_request_is_never_believed(landscape: Landscape) -> None:
    """The reconciler's own state lives in .git/reconciler, where no commit can put a file."""
    import sqlite3

    from reconciler.desired.source import YAML_CACHE, blob_id

    view = "environments/dev/sales/views/vw_customer_active.yaml"
    poisoned = {"data": {"kind": "View", "name": "vw_customer_active", "schema": "sales",
                         "sql": "SELECT 1 AS pwned FROM sales.customer_master"}, "marks": {}, "blocks": {}}
    landscape.path(".reconciler").mkdir()
    with sqlite3.connect(landscape.path(".reconciler/cache.sqlite")) as database:
        database.execute("CREATE TABLE entries (ns TEXT, key TEXT, value TEXT, PRIMARY KEY (ns, key))")
        database.execute("INSERT INTO entries VALUES (?, ?, ?)",
                         (YAML_CACHE, blob_id(landscape.path(view).read_bytes()), json.dumps(poisoned)))
    landscape.write(".reconciler/rollback-dev.json", json.dumps({"commit": "0" * 40}))
    landscape.repo.git.add("-f", ".reconciler")
    landscape.commit("a pull request commits a cache and an intent")

    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert "pwned" not in json.dumps(landscape.sql("SELECT sql FROM duckdb_views() WHERE view_name = "
                                                   "'vw_customer_active'"))
    assert landscape.path(".git/reconciler/cache.sqlite").exists()


def test_help_and_version_never_load_the_pipeline() -> None:
    """Issue 12 (start-up): `--help`, `--version` and argument errors import none of the heavy parts."""
    probe = ("import io, contextlib, sys\nfrom reconciler.cli import main\n"
             "for argv in (['--version'], ['--help'], ['plan']):\n"
             "    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
             "        main(argv)\n"
             "heavy = ('sqlglot', 'duckdb', 'psycopg', 'git', 'networkx', 'pydantic', 'deepdiff', 'grandalf')\n"
             "print(sorted(m for m in heavy if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", loaded


def test_16_a_pull_request_body_is_never_written_through_a_linked_folder(landscape: Landscape,
                                                                        tmp_path_factory) -> None:
    outside = tmp_path_factory.mktemp("outside")
    landscape.path(".reconciler").symlink_to(outside, target_is_directory=True)
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "SELECT id,", "SELECT DISTINCT id,")
    landscape.commit("dev ahead")
    result = landscape.run("promote", "dev", "qa", "--no-pr")
    assert result.code == 1 and "is a symbolic link" in result.stderr, result.output
    assert list(outside.iterdir()) == []


def test_9_a_whole_number_narrowed_to_an_integer_is_allowed_and_a_fraction_is_not(
        engine_landscape: EngineLandscape) -> None:
    """2.00 fits INTEGER exactly on both engines (PostgreSQL's input-text test said it did not);
    1.25 does not, and is counted."""
    landscape = with_orders(engine_landscape)
    landscape.edit(ORDERS, '{name: amount, type: "DECIMAL(18,2)"}', "{name: amount, type: INTEGER}")
    plan = landscape.run("plan", "dev")
    assert re.search(r"blocked: a value in amount that would not fit INT(EGER)? unchanged: 1 row\b", plan.stdout), \
        plan.stdout   # the engine's own spelling of the type
    landscape.sql("UPDATE sales.orders SET amount = 7 WHERE id = 1")
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert landscape.sql("SELECT id, amount FROM sales.orders ORDER BY id") == [(1, 7), (2, 2)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
