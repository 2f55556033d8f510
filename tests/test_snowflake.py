"""Snowflake tenants, against fakesnow (a Snowflake double over DuckDB) in its server mode: the
reconciler's connector talks HTTP to it as to an account, from this process or from a subprocess.

fakesnow pins an older sqlglot than the main suite's, so these tests run in an environment of their
own (.ci/run makes it); where fakesnow is not importable they are skipped, and only there. Every
connection runs with autocommit off, as the adapter's does: the double then commits DDL as Snowflake
does (under autocommit it would roll DDL back with a transaction, the opposite of Snowflake)."""

from __future__ import annotations

import decimal
import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DEMO, DEMO_ROWS, Hold, Landscape, a_host_nobody_may_reach
from test_tpc import corpus, expected  # noqa: F401  (fixtures: the TPC corpus and its rows on DuckDB)

from reconciler.desired.validation import shape

fakesnow = pytest.importorskip("fakesnow", reason="fakesnow (the Snowflake double) runs in .ci/run's Snowflake step")
snowflake_connector = pytest.importorskip("snowflake.connector")

ENVIRONMENT = "environments/dev/environment.yaml"
PASSWORD = "correct-horse-battery-staple-7f3a"   # what must never be printed
DATABASES = itertools.count(1)
RECONCILER = str(Path(sys.executable).parent / "reconciler")


@pytest.fixture(scope="module")
def double() -> Iterator[dict]:
    """A fakesnow server on a free port, for the module: the connection arguments it answers to."""
    with fakesnow.server() as arguments:
        yield arguments


@pytest.fixture
def database() -> str:
    """A database of its own for each test (the double keeps every database in one process)."""
    return f"TEST_{os.getpid()}_{next(DATABASES)}"


def connect(double: dict, database: str):
    """A connection to the double as the adapter makes one: autocommit off."""
    return snowflake_connector.connect(**double, database=database, autocommit=False)


def run_sql(double: dict, database: str, *statements: str) -> list[tuple]:
    with connect(double, database) as connection:
        cursor = connection.cursor()
        rows: list[tuple] = []
        for statement in statements:
            cursor.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
        connection.commit()
        return rows


def snowflake_url(double: dict, database: str) -> str:
    return (f"snowflake://fake@fakesnow/{database}?warehouse=REPORTING&role=RECONCILER"
            f"&host={double['host']}&port={double['port']}&protocol=http")


@pytest.fixture
def snowflake_landscape(tmp_path: Path, double: dict, database: str, monkeypatch) -> Landscape:
    """The demo with dev on the double, its password a reference to SNOWFLAKE_PASSWORD, committed."""
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", PASSWORD)
    shutil.copytree(DEMO, tmp_path / "environments")
    environment = tmp_path / ENVIRONMENT
    environment.write_text(environment.read_text().replace(
        "url: duckdb:///.tenants/dev.duckdb\n    create: true\n",
        f"url: {snowflake_url(double, database)}\n    password: env:SNOWFLAKE_PASSWORD\n"))
    landscape = Landscape(tmp_path)
    landscape.commit("the demo, dev on Snowflake")
    return landscape


def objects(double: dict, database: str) -> list[tuple]:
    return run_sql(double, database, "SELECT table_schema, table_name, table_type FROM information_schema.tables "
                   "WHERE table_schema <> 'INFORMATION_SCHEMA' ORDER BY 1, 2")


def test_the_double_commits_ddl_inside_a_transaction_and_rolls_back_rows_as_snowflake_does(
        double: dict, database: str) -> None:
    """What the journaled protocol relies on, checked on the double the other tests trust: with autocommit off,
    a CREATE TABLE commits though its transaction is rolled back; an INSERT is rolled back with it."""
    with connect(double, database) as connection:
        cursor = connection.cursor()
        cursor.execute("CREATE SCHEMA probe")
        cursor.execute("CREATE TABLE probe.made (id NUMBER)")
        cursor.execute("INSERT INTO probe.made VALUES (1)")
        cursor.execute("CREATE TABLE probe.made_after_the_row (id NUMBER)")   # commits the row with it
        cursor.execute("INSERT INTO probe.made VALUES (2)")
        connection.rollback()
        cursor.execute("SELECT id FROM probe.made ORDER BY id")
        assert cursor.fetchall() == [(1,)]
        connection.commit()
    assert objects(double, database) == [("PROBE", "MADE", "BASE TABLE"), ("PROBE", "MADE_AFTER_THE_ROW", "BASE TABLE")]


def test_a_plan_against_an_empty_snowflake_tenant_creates_the_demo_in_snowflake_sql(
        snowflake_landscape: Landscape, double: dict, database: str) -> None:
    assert snowflake_landscape.run("validate", "dev").code == 0
    result = snowflake_landscape.run("plan", "dev", "--format", "json")
    assert result.code == 0, result.output
    [tenant] = json.loads(result.stdout)["tenants"]
    assert tenant["engine"] == "snowflake"
    creates = {c["object"]: c["statements"] for c in tenant["changes"] if c["action"] == "create"}
    # names as Snowflake folds them unquoted; whole numbers NUMBER(38,0), VARCHAR without its maximum
    assert creates["sales.customer_master"][0] == 'CREATE SCHEMA IF NOT EXISTS "SALES"'
    assert creates["sales.customer_master"][1] == (
        'CREATE TABLE "SALES"."CUSTOMER_MASTER" ("ID" DECIMAL(38, 0) NOT NULL, "NAME" VARCHAR, "EMAIL" VARCHAR, '
        '"REGION" VARCHAR, "STATUS" VARCHAR DEFAULT \'ACTIVE\', "CREATED_AT" TIMESTAMPNTZ, PRIMARY KEY ("ID"))')
    assert tenant["unproven"].startswith("on Snowflake: a shadow run of a plan is not built yet"), tenant["unproven"]
    assert objects(double, database) == []   # a plan never writes (the double made the database on connect)


def test_tables_and_views_made_in_snowflakes_own_dialect_read_back_as_the_landscape_declares_them(
        snowflake_landscape: Landscape, double: dict, database: str) -> None:
    """Introspection's normalisation, with the double as the oracle: a table made by hand in Snowflake's
    words (NUMBER, VARCHAR with and without a length, TIMESTAMP_NTZ, a default, NOT NULL, a primary key,
    comments) reads back equal to the same table declared in the landscape (DuckDB's words), so the plan
    adopts it rather than changing it; a table that differs is a conflict; a quoted lower-case name is
    not the reconciler's and is not read."""
    snowflake_landscape.write("environments/dev/sales/tables/typed.yaml",
                              "kind: Table\nschema: sales\nname: typed\ncolumns:\n"
                              "  - {name: id, type: BIGINT, nullable: false}\n"
                              "  - {name: amount, type: 'DECIMAL(12,2)'}\n"
                              "  - {name: note, type: VARCHAR}\n"
                              "  - {name: code, type: 'VARCHAR(3)', default: \"'EUR'\"}\n"
                              "  - {name: paid_at, type: TIMESTAMP}\n"
                              "primary_key: [id]\n")
    snowflake_landscape.commit("a typed table")
    run_sql(double, database,
            "CREATE SCHEMA sales",
            "CREATE TABLE sales.typed (id NUMBER(38,0) NOT NULL PRIMARY KEY, amount NUMBER(12,2), note VARCHAR, "
            "code VARCHAR(3) DEFAULT 'EUR', paid_at TIMESTAMP_NTZ) COMMENT = 'made by hand'",
            "CREATE TABLE sales.customer_transactions (id NUMBER(38,0))",
            'CREATE TABLE sales."customer_master" (id NUMBER(38,0))')   # quoted: not CUSTOMER_MASTER
    result = snowflake_landscape.run("plan", "dev", "--format", "json")
    assert result.code == 0, result.output
    changes = {c["object"]: c for c in json.loads(result.stdout)["tenants"][0]["changes"]}
    assert changes["sales.typed"]["reason"] == "adopting an identical object that the reconciler did not create", \
        changes["sales.typed"]
    assert changes["sales.customer_transactions"]["conflict"] is True
    assert changes["sales.customer_master"]["action"] == "create"   # the quoted "customer_master" is not it


def test_the_password_is_never_printed_connected_or_not(snowflake_landscape: Landscape, double: dict,
                                                        database: str) -> None:
    """A real CLI process, so that whatever the connector logs is seen too: the plan that connects, and
    one whose account answers nowhere."""
    command = [RECONCILER, "--repo", str(snowflake_landscape.root)]
    environment = {**os.environ, "SNOWFLAKE_PASSWORD": PASSWORD}
    planned = subprocess.run([*command, "plan", "dev"], env=environment, capture_output=True, text=True)
    assert planned.returncode == 0, planned.stderr
    assert PASSWORD not in planned.stdout + planned.stderr
    with a_host_nobody_may_reach() as closed_soon:
        pass
    snowflake_landscape.edit(ENVIRONMENT, f"port={double['port']}", f"port={closed_soon}")
    unreachable = subprocess.run([*command, "plan", "dev"], env=environment, capture_output=True, text=True)
    assert unreachable.returncode == 1, unreachable.stderr
    assert (f"tenant dev: cannot reach snowflake://fakesnow/{database} at 127.0.0.1:{closed_soon}: Connection refused"
            in unreachable.stderr), unreachable.stderr
    assert PASSWORD not in unreachable.stdout + unreachable.stderr


def test_a_pull_request_cannot_send_the_password_to_an_account_it_names(
        snowflake_landscape: Landscape, double: dict, monkeypatch) -> None:
    snowflake_landscape.commit("the base branch: dev on the account with its password")
    with a_host_nobody_may_reach() as port:
        snowflake_landscape.edit(ENVIRONMENT, f"port={double['port']}", f"port={port}")   # the pull request
        monkeypatch.setenv("RECONCILER_BASE_REF", snowflake_landscape.repo.head.commit.hexsha)
        result = snowflake_landscape.run("plan", "dev")
    assert result.code == 1
    assert "tenant dev: this change gives it another url or password" in result.stderr, result.stderr


def test_a_key_pair_reference_is_a_secret_a_pull_request_cannot_redirect(
        snowflake_landscape: Landscape, double: dict, monkeypatch) -> None:
    """The private key is referenced in the url's query (private_key=env:NAME): the tenant holds a secret
    though it has no password, so moving it is refused as moving a password is."""
    snowflake_landscape.edit(ENVIRONMENT, "    password: env:SNOWFLAKE_PASSWORD\n", "")
    snowflake_landscape.edit(ENVIRONMENT, "&protocol=http", "&protocol=http&private_key=env:SNOWFLAKE_KEY")
    snowflake_landscape.commit("the base branch: a key pair")
    with a_host_nobody_may_reach() as port:
        snowflake_landscape.edit(ENVIRONMENT, f"port={double['port']}", f"port={port}")
        monkeypatch.setenv("SNOWFLAKE_KEY", "-----BEGIN PRIVATE KEY-----never-sent")
        monkeypatch.setenv("RECONCILER_BASE_REF", snowflake_landscape.repo.head.commit.hexsha)
        result = snowflake_landscape.run("plan", "dev")
    assert result.code == 1
    assert "tenant dev: this change gives it another url or password" in result.stderr, result.stderr


@pytest.mark.parametrize(("url", "said"), [
    ("snowflake://fake@fakesnow", "a Snowflake tenant url is snowflake://USER@ACCOUNT/DATABASE?warehouse=W&role=R"),
    ("snowflake://fakesnow/ANALYTICS", "a Snowflake tenant url is snowflake://USER@ACCOUNT/DATABASE"),
    ("snowflake://fake@fakesnow/ANALYTICS?wharehouse=W", "'wharehouse' is none of its parameters"),
    ("snowflake://fake@fakesnow/ANALYTICS?private_key=MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
     "is a reference (env:NAME), never the key itself"),
])
def test_a_snowflake_url_that_is_not_one_is_refused_at_its_line(snowflake_landscape: Landscape, url: str,
                                                                said: str) -> None:
    environment = snowflake_landscape.path(ENVIRONMENT)
    text = environment.read_text()
    environment.write_text(text.replace(text.split("url: ")[1].split("\n")[0], url))
    result = snowflake_landscape.run("validate", "dev")
    assert result.code == 1
    assert f"{ENVIRONMENT}:6:10: error[environment]: " in result.stderr, result.stderr
    assert said in result.stderr, result.stderr


MASTER = "environments/dev/sales/customer_master.yaml"


def tenant(double: dict, database: str) -> dict:
    """What the tenant holds outside the reconciler's own schemas: each table's and view's columns (type,
    length, precision and scale, NOT NULL, default), and each table's rows."""
    held = {}
    for schema, name, _ in objects(double, database):
        if schema.startswith("_RECONCILER"):
            continue
        held[f"{schema}.{name}"] = (
            run_sql(double, database, "SELECT column_name, data_type, character_maximum_length, numeric_precision, "
                    "numeric_scale, is_nullable, column_default FROM information_schema.columns "
                    f"WHERE table_schema = '{schema}' AND table_name = '{name}' ORDER BY ordinal_position"),
            sorted(map(repr, run_sql(double, database, f'SELECT * FROM "{schema}"."{name}"'))))
    return held


def outcomes(landscape: Landscape) -> list[str]:
    return [r["outcome"] for r in json.loads(landscape.run("history", "dev", "--format", "json").stdout)]


@pytest.fixture
def applied(snowflake_landscape: Landscape, double: dict, database: str) -> Landscape:
    """The demo applied to the double, with rows in its tables."""
    result = snowflake_landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    run_sql(double, database, *DEMO_ROWS)
    return snowflake_landscape


def a_column_and_a_view(landscape: Landscape) -> None:
    """A change Snowflake makes in place (an added column) and a new view reading it."""
    landscape.edit(MASTER, "  - {name: email, type: VARCHAR}", "  - {name: email, type: VARCHAR}\n"
                   "  - {name: score, type: INTEGER}")
    landscape.write("environments/dev/sales/views/vw_scores.yaml", "kind: View\nname: vw_scores\nschema: sales\n"
                    "status: active\nsql: |\n  SELECT id, score FROM sales.customer_master\n")


def test_the_demo_applies_statement_by_statement_and_converges_on_the_double(applied: Landscape, double: dict,
                                                                             database: str) -> None:
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0   # converged: no changes
    listed = objects(double, database)
    assert ("SALES", "CUSTOMER_MASTER", "BASE TABLE") in listed   # as Snowflake folds the names
    assert run_sql(double, database, "SELECT count(*) FROM sales.vw_customer_active") == [(2,)]   # EU and ACTIVE
    a_column_and_a_view(applied)
    result = applied.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0
    assert run_sql(double, database, "SELECT count(*), count(score) FROM sales.vw_scores") == [(4, 0)]
    # the changed table's restore point (a clone) is kept as the apply's checkpoint, which alone lists it
    assert run_sql(double, database, "SELECT count(*) FROM information_schema.tables "
                   "WHERE table_schema = '_RECONCILER_BACKUP'") == [(1,)]
    [point] = json.loads(applied.run("checkpoints", "dev", "--format", "json").stdout)
    assert point["name"].startswith("before-apply-") and point["tables"] == ["sales.customer_master"]
    assert json.loads(applied.run("backups", "dev", "--format", "json").stdout) == []
    assert outcomes(applied) == ["applied", "applied"]


def test_a_no_op_plan_after_an_apply_is_recalled_until_the_tenant_changes(applied: Landscape, double: dict,
                                                                         database: str, monkeypatch) -> None:
    """The lock's comment (its lease, then `released`) changes after an apply records its digest: no plan on
    Snowflake was recalled while inspection read the reconciler's own tables. Recalled: the folder's objects
    are not validated (a wrapped `validation.shape.objects` counts them), with no cache as on a fresh runner."""
    validated = []
    monkeypatch.setattr(shape, "objects", lambda run, _real=shape.objects: validated.append(run) or _real(run))

    def planned() -> tuple[int, bool]:
        """The no-op plan's exit code and whether it was recalled."""
        validated.clear()
        return applied.run("plan", "dev", "--detailed-exitcode").code, not validated

    assert planned() == (0, True), "the no-op plan after an apply was not recalled"
    shutil.rmtree(applied.root / ".git" / "reconciler")   # the tenant remembers, not the cache
    assert planned() == (0, True)
    run_sql(double, database, "ALTER TABLE sales.customer_master ADD COLUMN note VARCHAR")
    assert planned() == (2, False), "a column added by hand is planned the long way, and dropped"


def test_a_restore_point_is_a_zero_copy_clone() -> None:
    """The statements a journaled run takes a restore point with (golden): indexed first, then cloned."""
    import datetime as dt

    from reconciler.engines import catalog
    from reconciler.model import ObjectKey

    assert catalog.backup_statements("snowflake", ObjectKey("sales", "customer_master"), "SALES__CM__R1", "r1",
                                     dt.datetime(2026, 1, 2, 3, 4, 5)) == [
        "INSERT INTO _reconciler.backups SELECT 'SALES__CM__R1', 'sales', 'customer_master', 'r1', "
        "CAST('2026-01-02 03:04:05' AS TIMESTAMP), count(*) FROM \"SALES\".\"CUSTOMER_MASTER\"",
        'CREATE TABLE "_RECONCILER_BACKUP"."SALES__CM__R1" CLONE "SALES"."CUSTOMER_MASTER"']


def test_a_failing_data_check_is_compensated_and_the_tenant_is_as_before(applied: Landscape, double: dict,
                                                                         database: str) -> None:
    before = tenant(double, database)
    a_column_and_a_view(applied)
    applied.edit(MASTER, "  - {name: score, type: INTEGER}", "  - {name: score, type: INTEGER, checks: [not_null]}")
    result = applied.run("apply", "dev", "--yes")
    assert result.code == 3, result.output
    assert "sales.customer_master: not_null(score): failed (4 offending rows)" in result.stderr, result.stderr
    assert "compensated from its journal" in result.stderr
    assert tenant(double, database) == before   # the column dropped again, the view gone, every row kept
    assert outcomes(applied) == ["applied", "failed"]


@pytest.mark.parametrize("after", [1, 3])
def test_a_killed_apply_is_compensated_by_the_next_one(applied: Landscape, double: dict, database: str,
                                                       after: int) -> None:
    """SIGKILL after a chosen statement of a real CLI process; the lease lock it left is taken over (its
    process is gone), its journal put back first, then the plan applied."""
    before = tenant(double, database)
    a_column_and_a_view(applied)
    killed = subprocess.run([RECONCILER, "--repo", str(applied.root), "apply", "dev", "--yes"],
                            env={**os.environ, "RECONCILER_FAULT": f"SIGKILL:{after}"}, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert "! interrupted run" in applied.run("plan", "dev").stdout
    [dead] = [r["run_id"] for r in json.loads(applied.run("history", "dev", "--format", "json").stdout)
              if r["outcome"] == "running"]
    unlock = applied.run("unlock", "dev", dead)
    assert unlock.code == 0, unlock.output
    assert f"dev: run {dead} had been interrupted; compensated from its journal" in unlock.stdout
    assert tenant(double, database) == before
    resumed = applied.run("apply", "dev", "--yes")
    assert resumed.code == 0, resumed.output
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0
    assert outcomes(applied) == ["applied", "compensated", "applied"]


def test_a_second_apply_meanwhile_is_locked_out(applied: Landscape, hold) -> None:
    """The lease lock table: an apply held mid-run (a real process) keeps another one out (exit 4)."""
    a_column_and_a_view(applied)
    running = hold.popen([RECONCILER, "--repo", str(applied.root), "apply", "dev", "--yes"], hold.env(after=1))
    try:
        hold.held(running)
        second = applied.run("apply", "dev", "--yes")
        assert second.code == 4, second.output
        assert "is locked by run" in second.stderr, second.stderr
    finally:
        hold.release(running)
        running.communicate()
    assert running.returncode == 0
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0


def as_values(row: tuple) -> tuple:
    """A row of text as values: a number as its value (the double sums NUMBER(12,2) as a float, so it
    writes 11500.5 where Snowflake and DuckDB write 11500.50)."""
    def value(text):
        try:
            return str(decimal.Decimal(text).normalize())
        except (decimal.InvalidOperation, TypeError):
            return text
    return tuple(map(value, row))


def test_one_landscape_on_duckdb_and_snowflake_gives_the_same_rows(landscape: Landscape, double: dict, database: str,
                                                                   monkeypatch) -> None:
    """The demo's views, written in DuckDB's dialect, applied to a DuckDB tenant and, through sqlglot's
    Snowflake dialect, to the double: each returns the same rows on both, and both converge."""
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", PASSWORD)
    landscape.edit(ENVIRONMENT, "    create: true\n", "    create: true\n  - name: dev-snowflake\n"
                   f"    url: {snowflake_url(double, database)}\n    password: env:SNOWFLAKE_PASSWORD\n")
    landscape.commit("dev on both engines")
    result = landscape.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert "Tenant dev-snowflake (snowflake)" in result.stdout
    for statement in DEMO_ROWS:
        landscape.sql(statement)
    run_sql(double, database, *DEMO_ROWS)
    for view in ("vw_customer_active", "vw_transaction_detail", "vw_customer_lifetime_value",
                 "vw_customer_segmentation"):
        # each value as text, made by the engine: the double's server sends a NULL TIMESTAMP_NTZ as 1970-01-01
        columns = [row[0] for row in landscape.sql(f"DESCRIBE sales.{view}")]
        query = f"SELECT {', '.join(f'CAST({column} AS VARCHAR)' for column in columns)} FROM sales.{view}"
        on_duckdb = sorted(map(as_values, landscape.sql(query)))
        assert sorted(map(as_values, run_sql(double, database, query))) == on_duckdb, view
        assert on_duckdb, view
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_key_pair_from_its_variable_logs_in_and_a_key_that_is_none_is_said_without_it(
        snowflake_landscape: Landscape, double: dict, monkeypatch) -> None:
    """The connector is handed the key (it signs its login with it; the double checks no signature), and
    a variable that holds no PEM key is refused, named, never shown."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    snowflake_landscape.edit(ENVIRONMENT, "    password: env:SNOWFLAKE_PASSWORD\n", "")
    snowflake_landscape.edit(ENVIRONMENT, "&protocol=http", "&protocol=http&private_key=env:SNOWFLAKE_KEY")
    snowflake_landscape.commit("a key pair")
    monkeypatch.setenv("SNOWFLAKE_KEY", pem)
    planned = snowflake_landscape.run("plan", "dev")
    assert planned.code == 0, planned.output
    monkeypatch.setenv("SNOWFLAKE_KEY", "not-a-key-at-all-4d2e")
    refused = snowflake_landscape.run("plan", "dev")
    assert refused.code == 1
    assert "tenant dev: its private_key is no PEM private key without a passphrase" in refused.stderr, refused.stderr
    assert "not-a-key-at-all-4d2e" not in refused.output
    monkeypatch.delenv("SNOWFLAKE_KEY")
    unset = snowflake_landscape.run("plan", "dev")
    assert unset.code == 1 and "environment variable SNOWFLAKE_KEY is not set" in unset.stderr, unset.stderr


def test_drift_and_the_data_checks_read_the_double(applied: Landscape, double: dict, database: str) -> None:
    """After an apply: `check` runs the demo's data checks there, and a view dropped and a column added by
    hand are drift that `drift` shows (exit 2) and the next apply puts back, the table's rows first kept
    in a backup once the loss is allowed."""
    checked = applied.run("check", "dev")
    assert checked.code == 0, checked.output
    assert "5 checks: 5 passed, 0 warned, 0 failed" in checked.stdout, checked.stdout
    run_sql(double, database, "DROP VIEW sales.vw_customer_active",
            "ALTER TABLE sales.customer_transactions ADD COLUMN note VARCHAR")
    drifted = applied.run("drift", "dev")
    assert drifted.code == 2, drifted.output
    assert "sales.vw_customer_active" in drifted.stdout and "sales.customer_transactions" in drifted.stdout, \
        drifted.stdout
    refused = applied.run("apply", "dev", "--yes")   # the column added by hand holds values (NULLs) it would drop
    assert refused.code == 3 and "--allow-data-loss sales.customer_transactions" in refused.stdout, refused.output
    put_back = applied.run("apply", "dev", "--yes", "--allow-data-loss", "sales.customer_transactions")
    assert put_back.code == 0, put_back.output
    assert applied.run("drift", "dev").code == 0
    [backup] = json.loads(applied.run("backups", "dev", "--format", "json").stdout)   # a clone, kept
    assert (backup["schema_name"], backup["table_name"], backup["row_count"]) == ("sales", "customer_transactions", 4)
    assert run_sql(double, database, f'SELECT count(*) FROM "_RECONCILER_BACKUP"."{backup["name"].upper()}"') == [(4,)]


TRANSACTIONS = "environments/dev/sales/customer_transactions.yaml"


def plan_of(landscape: Landscape, name: str) -> dict:
    [change] = [c for c in json.loads(landscape.run("plan", "dev", "--format", "json").stdout)["tenants"][0]
                ["changes"] if c["object"] == name]
    return change


def rows_of(double: dict, database: str, table: str) -> list[tuple]:
    """A table's rows as values (a number equal to another of another scale is the same value)."""
    return sorted(run_sql(double, database, f"SELECT * FROM {table}"), key=repr)


def test_a_number_retyped_within_its_scale_alters_in_place_and_a_new_scale_is_a_proven_rebuild(
        applied: Landscape, double: dict, database: str) -> None:
    """Snowflake's ALTER TABLE ... ALTER COLUMN reference, not what the double accepts: a NUMBER of more
    digits, or of fewer where every value fits, and the same scale is retyped in place; another scale is a
    rebuild (copied, every value proven to arrive unchanged, swapped in), its rows kept, and the plan after
    it empty."""
    rows = rows_of(double, database, "sales.customer_transactions")
    for declared in ("DECIMAL(20,2)", "DECIMAL(12,2)"):
        applied.edit(TRANSACTIONS, 'type: "DECIMAL(18,2)"' if declared == "DECIMAL(20,2)" else 'type: "DECIMAL(20,2)"',
                     f'type: "{declared}"')
        assert plan_of(applied, "sales.customer_transactions")["statements"] == [
            'ALTER TABLE "SALES"."CUSTOMER_TRANSACTIONS" ALTER COLUMN "AMOUNT" SET DATA TYPE '
            f'{declared.replace(",", ", ")}']
        assert applied.run("apply", "dev", "--yes").code == 0
        assert applied.run("plan", "dev", "--detailed-exitcode").code == 0
    applied.edit(TRANSACTIONS, 'type: "DECIMAL(12,2)"', 'type: "DECIMAL(12,3)"')
    rebuild = plan_of(applied, "sales.customer_transactions")
    assert rebuild["statements"][0].startswith('CREATE TABLE "SALES"."CUSTOMER_TRANSACTIONS__RECONCILER_REBUILD" ('), \
        rebuild
    assert 'DROP TABLE "SALES"."CUSTOMER_TRANSACTIONS"' in rebuild["statements"]
    # Snowflake's TRY_CAST reads only text (its reference): the row check sends each value through its text
    assert [c["query"] for c in rebuild["checks"]] == [
        'SELECT count(*) FROM "SALES"."CUSTOMER_TRANSACTIONS" WHERE "AMOUNT" IS NOT NULL AND '
        '(TRY_CAST(TO_VARCHAR("AMOUNT") AS DECIMAL(12, 3)) IS NULL OR TRY_CAST(TO_VARCHAR(TRY_CAST(TO_VARCHAR('
        '"AMOUNT") AS DECIMAL(12, 3))) AS DECIMAL(12, 2)) IS DISTINCT FROM "AMOUNT")']
    result = applied.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0
    assert rows_of(double, database, "sales.customer_transactions") == rows
    assert run_sql(double, database, "SELECT numeric_precision, numeric_scale FROM information_schema.columns "
                   "WHERE table_name = 'CUSTOMER_TRANSACTIONS' AND column_name = 'AMOUNT'") == [(12, 3)]
    assert run_sql(double, database, "SELECT count(*) FROM information_schema.tables "
                   "WHERE table_name LIKE '%RECONCILER_REBUILD'") == [(0,)]


def test_a_shortened_varchar_is_a_rebuild_and_one_that_values_do_not_fit_is_refused_naming_them(
        applied: Landscape, double: dict, database: str) -> None:
    """A VARCHAR shortened, which Snowflake never alters in place: a rebuild (golden: copy, proof, the table
    unchanged since, swap); to a length the values do not fit, blocked at plan time with the rows that do not
    fit counted, and refused by apply with the tenant as it was. The rebuild itself runs on a NUMBER above:
    the double forgets a VARCHAR's length when a table is renamed (it keeps lengths beside DuckDB's tables,
    by name), which Snowflake does not."""
    applied.edit(MASTER, "  - {name: region, type: VARCHAR}", "  - {name: region, type: 'VARCHAR(2)'}")
    rebuild = plan_of(applied, "sales.customer_master")["statements"]
    copy, table = '"SALES"."CUSTOMER_MASTER__RECONCILER_REBUILD"', '"SALES"."CUSTOMER_MASTER"'
    assert rebuild[0].startswith(f'CREATE TABLE {copy} ("ID" DECIMAL(38, 0) NOT NULL, "NAME" VARCHAR, '
                                 '"EMAIL" VARCHAR, "REGION" VARCHAR(2), '), rebuild
    assert rebuild[1] == (f'INSERT INTO {copy} ("ID", "NAME", "EMAIL", "REGION", "STATUS", "CREATED_AT") '
                          f'SELECT "ID", "NAME", "EMAIL", "REGION", "STATUS", "CREATED_AT" FROM {table}')
    assert rebuild[2].startswith("SELECT TO_NUMBER(IFF(NOT EXISTS (SELECT ") and " EXCEPT " in rebuild[2]
    assert "rebuilding sales.customer_master would change or lose rows" in rebuild[2]
    assert "another session wrote to sales.customer_master after its rows were copied" in rebuild[3]
    # the target qualified: Snowflake renames into the session's current schema a name that is not (the double
    # keeps the table's, so only the statement can show it)
    assert rebuild[4:] == [f"DROP TABLE {table}", f"ALTER TABLE {copy} RENAME TO {table}"]
    before = tenant(double, database)
    applied.edit(MASTER, "type: 'VARCHAR(2)'", "type: 'VARCHAR(1)'")
    change = plan_of(applied, "sales.customer_master")
    assert change["conflict"] is True, change
    assert "blocked: a value in region that would not fit VARCHAR(1) unchanged: 4 rows" in change["reason"], change
    refused = applied.run("apply", "dev", "--yes")
    assert refused.code == 3, refused.output
    assert tenant(double, database) == before


@pytest.mark.parametrize(("original", "copy", "same"), [
    ([(1, "a"), (1, "a"), (2, None)], [(2, None), (1, "a"), (1, "a")], True),
    ([(1, "a"), (1, "a"), (2, None)], [(1, "a"), (2, None), (2, None)], False),   # a duplicate traded
    ([(1, "a"), (1, "a")], [(1, "a")], False),                                    # a duplicate lost
    ([(1, None)], [(1, "")], False),                                              # NULL is not ''
    ([], [], True),
], ids=["reordered", "a duplicate traded", "a duplicate lost", "null is not empty", "both empty"])
def test_the_rebuilds_proof_holds_exactly_when_the_copy_has_the_originals_rows(
        double: dict, database: str, original: list, copy: list, same: bool) -> None:
    """The proof a rebuild runs before it drops the table, asked of the double: as multisets, with NULLs and
    duplicates, without EXCEPT ALL (which Snowflake has not)."""
    from reconciler.engines.snowflake import SnowflakeCompiler

    def values(rows):
        return ", ".join(f"({i}, {'NULL' if v is None else repr(v)})" for i, v in rows)

    run_sql(double, database, "CREATE SCHEMA s", "CREATE TABLE s.original (id NUMBER(38,0), v VARCHAR)",
            "CREATE TABLE s.copy (id NUMBER(38,0), v VARCHAR(5))",
            *([f"INSERT INTO s.original VALUES {values(original)}"] if original else []),
            *([f"INSERT INTO s.copy VALUES {values(copy)}"] if copy else []))
    proof = SnowflakeCompiler().same_rows("s.copy", "s.original", [("id", "id", "NUMBER(38,0)"), ("v", "v", "VARCHAR")],
                                          "the copy is not the original")
    assert "EXCEPT ALL" not in proof and "error(" not in proof   # neither is Snowflake SQL (the double takes both)
    if same:
        assert run_sql(double, database, proof) == [(1,)]
    else:
        with pytest.raises(snowflake_connector.ProgrammingError, match="the copy is not the original"):
            run_sql(double, database, proof)


# -- the TPC-H queries as views (tests/test_tpc.py's corpus and oracle) ----------------------------------
def test_the_tpch_queries_as_views_apply_on_the_double_converge_and_return_duckdbs_rows(
        corpus, expected: dict[str, list[tuple]], tmp_path: Path, double: dict, database: str, monkeypatch) -> None:
    """The 22 TPC-H queries, written in DuckDB's dialect, applied as views through sqlglot's Snowflake
    dialect; the generator's rows loaded into the double; each view returns the rows the query gives on
    DuckDB (test_tpc's comparison: order where the query orders, numbers within 1e-6), and the plan after
    the apply, and after the rows, is empty."""
    from test_tpc import Corpus, differing, write_landscape

    tpch = Corpus(corpus.root, {"tpch": corpus.tables["tpch"]},
                  tuple(query for query in corpus.landed() if query.schema == "tpch"))
    assert len(tpch.queries) == 22
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", PASSWORD)
    landscape = write_landscape(tmp_path, tpch, snowflake_url(double, database), tpch.queries)
    landscape.edit(ENVIRONMENT, "create: true", "password: env:SNOWFLAKE_PASSWORD")
    landscape.commit("the tenant's password")
    applied = landscape.run("apply", "dev", "--yes")
    assert applied.code == 0, applied.output
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    # the double runs DuckDB's read_parquet as it is, once the session has a schema (it takes it for a table's)
    loads = [f"INSERT INTO tpch.{table} SELECT * FROM read_parquet('{tpch.data('tpch', table)}')"
             for table in tpch.tables["tpch"]]
    run_sql(double, database, "USE SCHEMA tpch", *loads)
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0   # rows change no plan
    with connect(double, database) as connection:
        def read(query) -> list[tuple]:
            cursor = connection.cursor()
            cursor.execute(f"SELECT * FROM {query.id}")
            return cursor.fetchall()

        assert differing(read, tpch.queries, expected) == []
    assert all(expected[query.id] for query in tpch.queries)   # at this scale every one gives rows: none vacuous


# -- a SIGKILL inside a rebuild ------------------------------------------------------------------------------
def a_rebuild_and_a_view(landscape: Landscape) -> list[str]:
    """A NUMBER given another scale (a rebuild on Snowflake) and a new view over it; the plan's statements,
    in the order the apply sends them."""
    landscape.edit(TRANSACTIONS, 'type: "DECIMAL(18,2)"', 'type: "DECIMAL(18,3)"')
    landscape.write("environments/dev/sales/views/vw_amounts.yaml", "kind: View\nname: vw_amounts\nschema: sales\n"
                    "status: active\nsql: |\n  SELECT id, amount FROM sales.customer_transactions\n")
    return [s for c in json.loads(landscape.run("plan", "dev", "--format", "json").stdout)["tenants"][0]["changes"]
            for s in c["statements"]]


REBUILT = '"SALES"."CUSTOMER_TRANSACTIONS"'
COPY = '"SALES"."CUSTOMER_TRANSACTIONS__RECONCILER_REBUILD"'


def following(prefix: str):
    """Where the apply is after the first statement of the plan that starts with `prefix` (one-based, the
    restore point's two statements first)."""
    return lambda statements: 3 + next(i for i, s in enumerate(statements) if s.startswith(prefix))


KILLED_AT = {   # where a SIGKILL lands, as the statement it follows
    "the restore point indexed": lambda statements: 1,
    "the clone taken": lambda statements: 2,
    "the copy created": following(f"CREATE TABLE {COPY}"),
    "the rows copied": following(f"INSERT INTO {COPY}"),
    "the table dropped": following(f"DROP TABLE {REBUILT}"),
    "the copy renamed": following(f"ALTER TABLE {COPY} RENAME"),
    "the last statement": lambda statements: 2 + len(statements),
}


@pytest.mark.parametrize("killed_after", list(KILLED_AT))
def test_an_apply_killed_inside_a_rebuild_is_put_back_exactly_by_unlock_or_the_next_apply(
        applied: Landscape, double: dict, database: str, killed_after: str) -> None:
    """A real CLI process SIGKILLed after a chosen statement of a rebuild and a new view: `unlock` (the first
    half of the points) puts the tenant back exactly as it was (each column's type, precision and scale,
    every row), or the next apply (the other half) does so before it applies the plan again, and converges
    with every row kept. Nothing of the run's is left: no copy, no restore point (but the clone the
    applying run's checkpoint keeps)."""
    before, rows = tenant(double, database), rows_of(double, database, "sales.customer_transactions")
    statements = a_rebuild_and_a_view(applied)
    assert any(s.startswith(f"CREATE TABLE {COPY}") for s in statements), statements
    after = KILLED_AT[killed_after](statements)
    killed = subprocess.run([RECONCILER, "--repo", str(applied.root), "apply", "dev", "--yes"],
                            env={**os.environ, "RECONCILER_FAULT": f"SIGKILL:{after}"}, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    if killed_after == "the table dropped":   # its rows are in the copy and the clone only
        assert ("SALES", "CUSTOMER_TRANSACTIONS", "BASE TABLE") not in objects(double, database)
    [dead] = [r["run_id"] for r in json.loads(applied.run("history", "dev", "--format", "json").stdout)
              if r["outcome"] == "running"]
    if list(KILLED_AT).index(killed_after) % 2 == 0:
        unlock = applied.run("unlock", "dev", dead)
        assert unlock.code == 0, unlock.output
        assert f"dev: run {dead} had been interrupted; compensated from its journal" in unlock.stdout
        assert tenant(double, database) == before
        assert outcomes(applied) == ["applied", "compensated"]
    resumed = applied.run("apply", "dev", "--yes")
    assert resumed.code == 0, resumed.output
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0
    assert outcomes(applied) == ["applied", "compensated", "applied"]
    assert rows_of(double, database, "sales.customer_transactions") == rows   # as values: 2500.000 is 2500.00
    # no copy left, and no restore point but the clone the last apply's checkpoint keeps of the rebuilt table
    [point] = json.loads(applied.run("checkpoints", "dev", "--format", "json").stdout)
    last = json.loads(applied.run("history", "dev", "--format", "json").stdout)[-1]["run_id"]
    assert point["name"] == f"before-apply-{last}" and point["tables"] == ["sales.customer_transactions"]
    assert run_sql(double, database, "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                   "'_RECONCILER_BACKUP' OR table_name LIKE '%RECONCILER_REBUILD'") == [(1,)]


def test_rows_inserted_in_batches_arrive_whole_across_the_batches_edges(double: dict, database: str) -> None:
    """The catalog's rows go up to INSERT_BATCH to a statement: 2 batches and 1 row more, with NULLs, quotes and
    timestamps among them, read back exactly, each batch committed (a rollback after takes none back)."""
    import datetime as dt

    from reconciler.engines.snowflake import INSERT_BATCH, SnowflakeAdapter, SnowflakeSession
    from reconciler.model import Tenant

    run_sql(double, database, "CREATE SCHEMA s", "CREATE TABLE s.rows (n NUMBER(38,0), note VARCHAR, written_at TIMESTAMP_NTZ)")
    rows = [(n, None if n % 7 == 0 else f"it's {n}", dt.datetime(2026, 1, 1, 0, 0, n % 60) if n % 5 else None)
            for n in range(2 * INSERT_BATCH + 1)]
    with snowflake_connector.connect(**double, database=database, autocommit=False, paramstyle="qmark") as connection:
        adapter = SnowflakeAdapter(Tenant(name="dev", url=snowflake_url(double, database)), Path("."))
        SnowflakeSession(connection, adapter).insert("s.rows", rows)   # as the adapter connects: `?` bound
        connection.rollback()
    # as text: the double's server sends a NULL TIMESTAMP_NTZ as 1970-01-01
    assert run_sql(double, database, "SELECT n, note, CAST(written_at AS VARCHAR) FROM s.rows ORDER BY n") == [
        (n, note, None if at is None else str(at)) for n, note, at in rows]


def test_a_checkpoint_and_a_data_rollback_on_the_double(applied: Landscape, double: dict, database: str) -> None:
    """Issue 25's scenario on the journaled protocol's Snowflake side: a checkpoint (each table's clone),
    a data flow's row nobody wanted (its target journaled with a clone first), the dry run's counts, the rollback restoring and checking, and the rollback of
    the rollback bringing the row back."""
    good = tenant(double, database)
    taken = applied.run("checkpoint", "dev", "--name", "good")
    assert taken.code == 0, taken.output
    assert taken.stdout.startswith("dev: checkpoint good: 2 tables, 8 rows (run ")
    flow = applied.run("run", "dev", "df_segment_scoring")   # a data flow writes a row nobody wanted
    assert flow.code == 0 and "df_segment_scoring wrote: 1 row inserted" in flow.stdout, flow.output
    bad = tenant(double, database)

    dry = applied.run("rollback", "dev", "--checkpoint", "good")
    assert dry.code == 0, dry.output
    assert "sales.customer_transactions: 5 rows now, 4 rows at checkpoint good (+1)" in dry.stdout
    assert tenant(double, database) == bad
    executed = applied.run("rollback", "dev", "--checkpoint", "good", "--execute")
    assert executed.code == 0, executed.output
    assert tenant(double, database) == good
    before = next(line.split("checkpoint ")[1].split(" ")[0] for line in executed.stdout.splitlines()
                  if "holds the rows it replaced" in line)
    undone = applied.run("rollback", "dev", "--checkpoint", before, "--execute")
    assert undone.code == 0, undone.output
    assert tenant(double, database) == bad
    assert outcomes(applied)[-5:] == ["applied", "applied", "dry-run", "applied", "applied"]


# -- a MaterializedTable, and backups with `restore` ----------------------------------------------------------
REVENUE = "environments/dev/sales/mt_currency_revenue.yaml"
REVENUE_QUERY = ("SELECT currency, SUM(amount) AS revenue, COUNT(*) AS transactions "
                 "FROM sales.customer_transactions GROUP BY currency")


def pinned(query: str) -> str:
    """The query's rows with revenue in the type the YAML pins (the double sums a NUMBER(18,2) as a float)."""
    return query.replace("SUM(amount) AS revenue", "CAST(SUM(amount) AS NUMBER(38,2)) AS revenue")


def test_a_materialized_table_is_built_from_its_query_and_rebuilt_when_the_query_changes(
        applied: Landscape, double: dict, database: str) -> None:
    """CREATE TABLE ... AS its query on the double: its rows are those the query gives there, the next plan
    is empty; its query changed (and a row more upstream), the plan says it is rebuilt with both counts,
    the apply rebuilds it without --allow-data-loss, its rows are the new query's and the plan empty again."""
    applied.write(REVENUE, f"kind: MaterializedTable\nname: mt_currency_revenue\nschema: sales\nsql: |\n"
                  f"  {REVENUE_QUERY}\ncolumns:\n  - {{name: revenue, type: \"DECIMAL(38,2)\"}}\n"
                  "checks:\n  - {unique: currency}\n")
    plan = applied.run("plan", "dev")
    assert "+ MaterializedTable sales.mt_currency_revenue: new object; 2 rows from its query" in plan.stdout, \
        plan.output
    built = applied.run("apply", "dev", "--yes")
    assert built.code == 0, built.output
    materialized = "SELECT * FROM sales.mt_currency_revenue"
    assert sorted(map(as_values, run_sql(double, database, materialized))) == \
        sorted(map(as_values, run_sql(double, database, pinned(REVENUE_QUERY)))) == \
        [("EUR", "11510.5", "3"), ("USD", "99.99", "1")]
    # the pinned column is REVENUE, as Snowflake folds the query's unquoted alias: not a quoted "revenue"
    assert run_sql(double, database, "SELECT column_name, numeric_precision, numeric_scale FROM information_schema."
                   "columns WHERE table_name = 'MT_CURRENCY_REVENUE' ORDER BY ordinal_position") == [
        ("CURRENCY", None, None), ("REVENUE", 38, 2), ("TRANSACTIONS", 38, 0)]
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0   # converged

    run_sql(double, database, "INSERT INTO sales.customer_transactions VALUES (14, 4, 7.25, 'GBP', 'web', NULL)")
    changed = REVENUE_QUERY.replace("COUNT(*) AS transactions", "COUNT(*) AS transactions, MAX(amount) AS best")
    applied.edit(REVENUE, REVENUE_QUERY, changed)
    plan = applied.run("plan", "dev")
    assert ("-/+ MaterializedTable sales.mt_currency_revenue: its query changed: rebuilt from it (its rows are "
            "computed again); 2 rows now, 3 rows from its query") in plan.stdout, plan.output
    rebuilt = applied.run("apply", "dev", "--yes")   # its rows are the query's: no data loss to allow
    assert rebuilt.code == 0, rebuilt.output
    assert sorted(map(as_values, run_sql(double, database, materialized))) == \
        sorted(map(as_values, run_sql(double, database, pinned(changed)))) == \
        [("EUR", "11510.5", "3", "9000.5"), ("GBP", "7.25", "1", "7.25"), ("USD", "99.99", "1", "99.99")]
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_refresh_and_a_flow_go_through_a_stage_and_a_failing_check_puts_the_target_back(
        applied: Landscape, double: dict, database: str) -> None:
    """`run` on Snowflake's journaled side writes its rows into a stage first (counted apart from another
    writer's), then into the target: a MaterializedTable's refresh (INSERT OVERWRITE from the stage) holds the
    query's rows and is audited with both counts; a refresh and a data flow whose check then fails are put
    back from the target's clone, the tenant exactly as before; no stage is left in the backup schema."""
    applied.write(REVENUE, f"kind: MaterializedTable\nname: mt_currency_revenue\nschema: sales\nsql: |\n"
                  f"  {REVENUE_QUERY}\ncolumns:\n  - {{name: revenue, type: \"DECIMAL(38,2)\"}}\n"
                  "checks:\n  - {column: currency, accepted_values: [EUR, USD, GBP]}\n")
    assert applied.run("apply", "dev", "--yes").code == 0
    held = backup_tables(double, database)
    run_sql(double, database, "INSERT INTO sales.customer_transactions VALUES (14, 4, 7.25, 'GBP', 'web', NULL)")

    refreshed = applied.run("run", "dev", "mt_currency_revenue")
    assert refreshed.code == 0, refreshed.output
    assert "sales.mt_currency_revenue refreshed from its query: 2 rows deleted; 3 rows inserted" in refreshed.stdout
    assert sorted(map(as_values, run_sql(double, database, "SELECT * FROM sales.mt_currency_revenue"))) == \
        sorted(map(as_values, run_sql(double, database, pinned(REVENUE_QUERY))))
    [kept] = backup_tables(double, database) - held   # its restore point, kept as its checkpoint; the stage dropped
    assert kept.startswith("SALES__MT_CURRENCY_REVENUE__") and not kept.endswith("_STAGED"), kept

    applied.edit(TRANSACTIONS, "primary_key: [id]",
                 "primary_key: [id]\nchecks:\n  - {column: channel, accepted_values: [web, shop, mobile]}")
    assert applied.run("apply", "dev", "--yes").code == 0
    run_sql(double, database, "INSERT INTO sales.customer_transactions VALUES (15, 4, 1.00, 'CHF', 'web', NULL)")
    before, held = tenant(double, database), backup_tables(double, database)
    refused = applied.run("run", "dev", "mt_currency_revenue")   # a CHF row the refresh's check refuses
    assert refused.code == 3, refused.output
    assert "accepted_values(currency): failed (1 offending row)" in refused.stderr
    assert "its target was put back (its rows overwritten from its restore point, 3 rows)" in refused.stderr
    flow = applied.run("run", "dev", "df_segment_scoring")   # its SCORING row the channel check refuses
    assert flow.code == 3, flow.output
    assert "its target was put back (its rows overwritten from its restore point, 6 rows)" in flow.stderr
    assert tenant(double, database) == before and backup_tables(double, database) == held
    assert outcomes(applied)[-2:] == ["failed", "failed"]


def test_another_writers_row_stops_a_flows_put_back_on_the_double(applied: Landscape, double: dict, database: str,
                                                                  hold: Hold) -> None:
    """The flow held once its row is in its stage (statement 5: its target's clone and its stage, each indexed
    then made, then the INSERT into the stage): the stage holds the flow's row alone; another session commits
    a row to the target, the flow's check fails, and the counts say the table holds a row neither the clone
    nor the run's stage accounts for: the put-back stops, exit 6, both rows kept."""
    applied.edit(TRANSACTIONS, "primary_key: [id]",
                 "primary_key: [id]\nchecks:\n  - {column: channel, accepted_values: [web, shop]}")
    assert applied.run("apply", "dev", "--yes").code == 0
    process = hold.popen([RECONCILER, "--repo", str(applied.root), "run", "dev", "df_segment_scoring"], hold.env(5))
    hold.held(process)
    [stage] = [name for name in backup_tables(double, database) if name.endswith("_STAGED")]
    assert [row[4] for row in run_sql(double, database, f'SELECT * FROM "_RECONCILER_BACKUP"."{stage}"')] == \
        ["SCORING"]
    run_sql(double, database, "INSERT INTO sales.customer_transactions VALUES (15, 2, 3.00, 'EUR', 'web', NULL)")
    hold.release(process)
    _, stderr = process.communicate()

    assert process.returncode == 6, stderr
    assert "holds 6 rows, where the run left 5 rows (1 of its own) over the 4 of its restore point" in stderr, stderr
    kept = run_sql(double, database, "SELECT id, channel FROM sales.customer_transactions WHERE id > 13 ORDER BY id")
    assert kept == [(15, "web"), (1000000, "SCORING")], kept   # the other writer's row, and the run's (customer 1)


def backup_tables(double: dict, database: str) -> set[str]:
    return {name for schema, name, _ in objects(double, database) if schema == "_RECONCILER_BACKUP"}


ORDERS = "environments/dev/sales/orders.yaml"
ORDERS_YAML = ("kind: Table\nname: orders\nschema: sales\nstatus: active\ncolumns:\n"
               "  - {name: id, type: BIGINT, nullable: false}\n  - {name: note, type: VARCHAR}\nprimary_key: [id]\n")


def test_a_dropped_column_is_backed_up_as_a_clone_and_restore_brings_its_values_back(
        applied: Landscape, double: dict, database: str) -> None:
    """A column dropped from a table that holds rows: refused until --allow-data-loss names the table (the
    tenant as it was), then the table cloned into a backup before the column goes; `backups` lists it;
    `restore` refuses while the column put back in the folder is not applied (the tenant as it was), then puts the rows' values back through a normal apply, and the plan after it is empty."""
    applied.write(ORDERS, ORDERS_YAML)
    assert applied.run("apply", "dev", "--yes").code == 0
    run_sql(double, database, "INSERT INTO sales.orders VALUES (1, 'a'), (2, NULL), (3, 'c')")
    applied.write(ORDERS, ORDERS_YAML.replace("  - {name: note, type: VARCHAR}\n", ""))
    before = tenant(double, database)
    refused = applied.run("apply", "dev", "--yes")
    assert refused.code == 3 and "--allow-data-loss sales.orders" in refused.stdout, refused.output
    assert tenant(double, database) == before
    dropped = applied.run("apply", "dev", "--yes", "--allow-data-loss", "sales.orders")
    assert dropped.code == 0, dropped.output
    assert run_sql(double, database, "SELECT * FROM sales.orders ORDER BY id") == [(1,), (2,), (3,)]
    [backup] = json.loads(applied.run("backups", "dev", "--format", "json").stdout)
    assert (backup["schema_name"], backup["table_name"], backup["row_count"]) == ("sales", "orders", 3)
    assert run_sql(double, database, f'SELECT id, note FROM "_RECONCILER_BACKUP"."{backup["name"].upper()}" '
                   "ORDER BY id") == [(1, "a"), (2, None), (3, "c")]   # the clone holds the column's values

    applied.write(ORDERS, ORDERS_YAML)   # the column back in the folder, not yet applied
    dropped = tenant(double, database)
    pending = applied.run("restore", "dev", backup["name"], "--yes")
    assert pending.code == 3 and "apply dev first" in pending.stderr, pending.output
    assert tenant(double, database) == dropped
    assert applied.run("apply", "dev", "--yes").code == 0
    assert run_sql(double, database, "SELECT id, note FROM sales.orders ORDER BY id") == [(1, None), (2, None), (3, None)]
    assert applied.run("restore", "dev", "no-such-backup", "--yes").code == 1

    restored = applied.run("restore", "dev", backup["name"], "--yes")
    assert restored.code == 0, restored.output
    assert run_sql(double, database, "SELECT id, note FROM sales.orders ORDER BY id") == [(1, "a"), (2, None), (3, "c")]
    runs = json.loads(applied.run("history", "dev", "--format", "json").stdout)
    assert (runs[-1]["operation"], runs[-1]["outcome"]) == ("restore", "applied")
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_login_that_ends_mid_apply_is_said_and_unlock_compensates(applied: Landscape, double: dict,
                                                                    database: str, hold) -> None:
    """An apply held after its first statement while the double forgets every login it gave (as Snowflake
    does a session it aborted, or whose master token expired): the next statement is refused for the login
    (the connector's SQLSTATE 08001), the run stops there and leaves its journal, and `unlock`, logging in
    again, puts the tenant back exactly."""
    import importlib

    before = tenant(double, database)
    a_column_and_a_view(applied)
    running = hold.popen([RECONCILER, "--repo", str(applied.root), "apply", "dev", "--yes"], hold.env(after=1))
    try:
        hold.held(running)
        importlib.import_module("fakesnow.server").sessions.clear()
    finally:
        hold.release(running)
    _, stderr = running.communicate()
    assert running.returncode == 1, stderr
    [dead] = [r["run_id"] for r in json.loads(applied.run("history", "dev", "--format", "json").stdout)
              if r["outcome"] == "running"]
    assert f"snowflake://fakesnow/{database} refused this connection's login" in stderr, stderr
    assert f"the run {dead} stopped there and put nothing back" in stderr, stderr
    assert f"`reconciler unlock dev {dead}`, or the next apply, puts the tenant back" in stderr, stderr
    assert "Traceback" not in stderr
    unlock = applied.run("unlock", "dev", dead)
    assert unlock.code == 0, unlock.output
    assert f"dev: run {dead} had been interrupted; compensated from its journal" in unlock.stdout
    assert tenant(double, database) == before
    assert applied.run("apply", "dev", "--yes").code == 0
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_statement_refused_for_a_privilege_names_the_privilege_and_every_statement_of_a_plan_has_one(
        snowflake_landscape: Landscape) -> None:
    """The double grants everything, so Snowflake's refusal (SQLSTATE 42501, naming the object, not the
    privilege) is raised as the connector raises it, through the adapter's translation; and every statement
    the demo's plan sends is one whose privilege the adapter can name."""
    from snowflake.connector.errors import ProgrammingError

    from reconciler.engines.snowflake import SnowflakeAdapter, _Connection
    from reconciler.engines.snowflake_access import privilege_needed
    from reconciler.model import Tenant
    from reconciler.sessions import StatementFailed

    statement = 'CREATE TABLE "SALES"."CUSTOMER_MASTER" ("ID" DECIMAL(38, 0) NOT NULL)'
    url = "snowflake://fake@acme/ANALYTICS?warehouse=REPORTING&role=RECONCILER"
    translating = _Connection(None, SnowflakeAdapter(Tenant(name="prod", url=url), snowflake_landscape.root))
    with pytest.raises(StatementFailed) as refused, translating._said(statement):
        raise ProgrammingError(msg="SQL access control error:\nInsufficient privileges to operate on schema 'SALES'",
                               errno=3001, sqlstate="42501")
    assert refused.value.statement == statement
    assert refused.value.message == (
        "[42501] SQL access control error: Insufficient privileges to operate on schema 'SALES'; the role "
        "\"RECONCILER\" needs CREATE TABLE on schema \"SALES\" and USAGE on the database and on each schema named "
        "(Snowflake's access control)"), refused.value.message
    plan = json.loads(snowflake_landscape.run("plan", "dev", "--format", "json").stdout)
    statements = [s for change in plan["tenants"][0]["changes"] for s in change["statements"]]
    assert len(statements) >= 5, statements
    assert [s for s in statements if privilege_needed(s) is None] == []


def test_a_table_renamed_in_the_folder_is_renamed_in_its_schema_with_its_rows(applied: Landscape, double: dict,
                                                                               database: str) -> None:
    """`renamed_from`: ALTER TABLE ... RENAME TO the qualified name (Snowflake would take an unqualified one into
    the session's current schema), the rows kept, the plan after it empty."""
    applied.write("environments/dev/sales/notes.yaml", "kind: Table\nname: notes\nschema: sales\n"
                  "status: active\ncolumns:\n  - {name: id, type: INTEGER, nullable: false}\nprimary_key: [id]\n")
    assert applied.run("apply", "dev", "--yes").code == 0
    run_sql(double, database, "INSERT INTO sales.notes VALUES (1), (2)")
    applied.remove("environments/dev/sales/notes.yaml")
    applied.write("environments/dev/sales/memos.yaml", "kind: Table\nname: memos\nschema: sales\n"
                  "status: active\ncolumns:\n  - {name: id, type: INTEGER, nullable: false}\nprimary_key: [id]\n"
                  "renamed_from: notes\n")
    assert plan_of(applied, "sales.memos")["statements"] == ['ALTER TABLE "SALES"."NOTES" RENAME TO "SALES"."MEMOS"']
    result = applied.run("apply", "dev", "--yes")
    assert result.code == 0, result.output
    assert run_sql(double, database, "SELECT id FROM sales.memos ORDER BY id") == [(1,), (2,)]
    assert applied.run("plan", "dev", "--detailed-exitcode").code == 0
