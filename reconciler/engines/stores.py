"""The two ways the `_reconciler` catalog keeps its rows: updated in place, inside the apply's
transaction (DuckDB, PostgreSQL), or appended as logs read through views that pick each row's latest
version (an engine that cannot UPDATE or DELETE its tables: Spark SQL's parquet tables).

Owns the catalog's tables (both shapes) and the statements that differ between the two stores;
`catalog` owns what they share and takes the store its session declares (`Session.catalog_store`),
the one place the choice is made. Never decides what to write, and never reads a row itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..desired import sql

if TYPE_CHECKING:
    from ..sessions import CatalogSession

CATALOG_SCHEMA = "_reconciler"
BACKUP_SCHEMA = "_reconciler_backup"   # copies of tables taken before a change that loses data
CATALOG_VERSION = "1"
# A checkpoint's restore point of one table (`apply.checkpoints`): rows only ever inserted, in both stores;
# `structure` is the table's columns then (JSON), `linked_to` the checkpoint a rollback restored
CHECKPOINT_COLUMNS = ("name", "environment", "tenant", "schema_name", "table_name", "kind", "restore_point",
                      "commit", "run_id", "created_at", "row_count", "structure", "linked_to")
CHECKPOINTS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.checkpoints " "(name {text}, environment {text}, tenant {text}, "
    "schema_name {text}, table_name {text}, kind {text}, restore_point {text}, commit {text}, run_id {text}, "
    "created_at TIMESTAMP, row_count BIGINT, structure {text}, linked_to {text}){using}")
CATALOG_DDL = (
    f"CREATE SCHEMA IF NOT EXISTS {CATALOG_SCHEMA}",
    f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.objects (
        schema_name VARCHAR NOT NULL, name VARCHAR NOT NULL, kind VARCHAR NOT NULL,
        content_hash VARCHAR NOT NULL, definition VARCHAR NOT NULL, dependencies VARCHAR NOT NULL,
        engine_sql VARCHAR, commit VARCHAR, run_id VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL,
        PRIMARY KEY (schema_name, name))""",
    f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.runs (
        run_id VARCHAR PRIMARY KEY, environment VARCHAR NOT NULL, tenant VARCHAR NOT NULL,
        ref VARCHAR, commit VARCHAR, actor VARCHAR, host VARCHAR, pid INTEGER,
        started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP, outcome VARCHAR NOT NULL,
        dry_run BOOLEAN NOT NULL, summary VARCHAR, error VARCHAR, plan_fingerprint VARCHAR,
        capacity VARCHAR)""",
    f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    f"ALTER TABLE {CATALOG_SCHEMA}.runs ADD COLUMN IF NOT EXISTS operation VARCHAR",
    f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.backups (
        name VARCHAR PRIMARY KEY, schema_name VARCHAR NOT NULL, table_name VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, row_count BIGINT NOT NULL)""",
    f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.check_results (
        run_id VARCHAR NOT NULL, schema_name VARCHAR NOT NULL, name VARCHAR NOT NULL, check_name VARCHAR NOT NULL,
        kind VARCHAR NOT NULL, severity VARCHAR NOT NULL, outcome VARCHAR NOT NULL, offending BIGINT NOT NULL,
        sample VARCHAR, checked_at TIMESTAMP NOT NULL)""",
    # what the last apply left, per environment and tenant (`snapshot`); never read by inspecting
    f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.snapshots (
        environment VARCHAR NOT NULL, tenant VARCHAR NOT NULL, desired_key VARCHAR NOT NULL,
        live_digest VARCHAR NOT NULL, tenant_plan VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
        recorded_at TIMESTAMP NOT NULL)""",
    CHECKPOINTS_DDL.format(text="VARCHAR", using=""),
    f"CREATE SCHEMA IF NOT EXISTS {BACKUP_SCHEMA}",
)
# Appends only: a run's outcome is its latest event; an applied object is the latest row of a run
# that ended applied (so the rows of a run that was compensated, or never finished, are not believed).
_LATEST_RUN = ("SELECT {columns} FROM (SELECT *, row_number() OVER (PARTITION BY run_id ORDER BY logged_at DESC) "
               f"AS latest FROM {CATALOG_SCHEMA}.run_log) WHERE latest = 1")
_LATEST_OBJECT = (
    "SELECT {columns} FROM (SELECT o.*, row_number() OVER (PARTITION BY lower(o.schema_name), lower(o.name) "
    f"ORDER BY o.applied_at DESC) AS latest FROM {CATALOG_SCHEMA}.object_log o JOIN {CATALOG_SCHEMA}.runs r "
    "ON r.run_id = o.run_id AND r.outcome IN ('applied', 'no-changes')) WHERE latest = 1 AND NOT deleted")
RUN_COLUMNS = ("run_id", "environment", "tenant", "ref", "commit", "actor", "host", "pid", "started_at",
               "ended_at", "outcome", "dry_run", "summary", "error", "plan_fingerprint", "capacity",
               "operation")
BACKUP_COLUMNS = ("name", "schema_name", "table_name", "run_id", "created_at", "row_count")
_RECORD_COLUMNS = "schema_name, name, kind, content_hash, definition, dependencies, engine_sql, commit, run_id"
def appended_ddl(using: str = " USING parquet") -> tuple[str, ...]:
    """The append-only catalog's statements, each table made `using` the engine's clause (Spark: parquet;
    none where an engine has one kind of table)."""
    return (
        f"CREATE SCHEMA IF NOT EXISTS {CATALOG_SCHEMA}",
        f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.object_log (
            schema_name STRING, name STRING, kind STRING, content_hash STRING, definition STRING,
            dependencies STRING, engine_sql STRING, commit STRING, run_id STRING, applied_at TIMESTAMP,
            deleted BOOLEAN){using}""",
        f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.run_log (
            run_id STRING, environment STRING, tenant STRING, ref STRING, commit STRING, actor STRING,
            host STRING, pid INT, started_at TIMESTAMP, ended_at TIMESTAMP, outcome STRING, dry_run BOOLEAN,
            summary STRING, error STRING, plan_fingerprint STRING, capacity STRING, operation STRING,
            logged_at TIMESTAMP){using}""",
        f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.backups (
            name STRING, schema_name STRING, table_name STRING, run_id STRING, created_at TIMESTAMP,
            row_count BIGINT){using}""",
        # a dropped backup's tombstone: the index above cannot lose a row
        f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.dropped_backups (name STRING, dropped_at TIMESTAMP){using}""",
        # the copies in the index above that a run takes for its own compensation only (not before a change
        # that loses data): dropped once the run concluded, by it or, were it killed first, by the next apply
        f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.restore_points (name STRING, run_id STRING,
            logged_at TIMESTAMP){using}""",
        f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.journal (
            run_id STRING, step INT, schema_name STRING, name STRING, kind STRING, columns STRING,
            view_sql STRING, restore_point STRING, logged_at TIMESTAMP){using}""",
        f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.check_results (
            run_id STRING, schema_name STRING, name STRING, check_name STRING, kind STRING, severity STRING,
            outcome STRING, offending BIGINT, sample STRING, checked_at TIMESTAMP){using}""",
        # what each apply left (`snapshot`): the newest row of an environment and tenant is the record
        f"""CREATE TABLE IF NOT EXISTS {CATALOG_SCHEMA}.snapshots (
            environment STRING, tenant STRING, desired_key STRING, live_digest STRING, tenant_plan STRING,
            run_id STRING, recorded_at TIMESTAMP){using}""",
        CHECKPOINTS_DDL.format(text="STRING", using=using),
        f"CREATE VIEW IF NOT EXISTS {CATALOG_SCHEMA}.runs AS " + _LATEST_RUN.format(columns=", ".join(RUN_COLUMNS)),
        f"CREATE VIEW IF NOT EXISTS {CATALOG_SCHEMA}.objects AS "
        + _LATEST_OBJECT.format(columns=_RECORD_COLUMNS + ", applied_at"),
        f"CREATE SCHEMA IF NOT EXISTS {BACKUP_SCHEMA}",
    )


APPENDED_DDL = appended_ddl()


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class InPlace:
    """Rows updated and deleted in place: every write is inside the run's transaction, so a run that
    does not commit leaves no row."""

    ddl = CATALOG_DDL
    interrupted = "it was rolled back by the engine; the tenant kept its state from before it"
    newest_snapshot = ""   # one row per environment and tenant

    def backups(self, session: CatalogSession, found: list[dict]) -> list[dict]:
        return found

    def write_objects(self, session: CatalogSession, values: Sequence[tuple], gone, written_keys, run,
                      capacity: str, catalog_version: str) -> None:
        """The rows of every object the run touched replaced (folded, as the engine compares names)."""
        for start in range(0, len(gone), 500):
            batch = [key.folded() for key in gone[start:start + 500]]
            session.execute(f"DELETE FROM {CATALOG_SCHEMA}.objects WHERE (lower(schema_name), lower(name)) IN "
                            f"({', '.join(['(?, ?)'] * len(batch))})",
                            [part for key in batch for part in key])
        session.insert(f"{CATALOG_SCHEMA}.objects", values)
        session.execute(f"DELETE FROM {CATALOG_SCHEMA}.meta WHERE key IN ('catalog_version', 'capacity')")
        session.execute(f"INSERT INTO {CATALOG_SCHEMA}.meta VALUES ('catalog_version', ?), ('capacity', ?)",
                        [catalog_version, capacity])

    def write_snapshot(self, session: CatalogSession, environment: str, tenant: str, record: tuple, run_id: str,
                       current: Callable[[], tuple | None]) -> None:
        """Nothing when the tenant holds that record already (an apply that changed nothing leaves the
        tenant as it was, its audit aside)."""
        if current() == record:
            return
        session.execute(f"DELETE FROM {CATALOG_SCHEMA}.snapshots WHERE environment = ? AND tenant = ?",
                        [environment, tenant])
        session.execute(f"INSERT INTO {CATALOG_SCHEMA}.snapshots VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [environment, tenant, *record, run_id, now()])

    def drop_backup_statements(self, engine: str, name: str, table: str) -> list[str]:
        return [f"DROP TABLE {table}", self.unlist_backup_statement(engine, name)]

    def unlist_backup_statement(self, engine: str, name: str) -> str:
        return f"DELETE FROM {CATALOG_SCHEMA}.backups WHERE name = {name}"

    def conclude_runs(self, session: CatalogSession, where: str, parameters: Sequence, values: dict) -> None:
        session.execute(f"UPDATE {CATALOG_SCHEMA}.runs SET {', '.join(f'{n} = ?' for n in values)} WHERE {where}",
                        [*values.values(), *parameters])

    def record_run(self, session: CatalogSession, values: Sequence) -> None:
        session.execute(f"INSERT INTO {CATALOG_SCHEMA}.runs ({', '.join(RUN_COLUMNS)}) "
                        f"VALUES ({', '.join(['?'] * len(RUN_COLUMNS))})", values)


class AppendOnly:
    """Rows only ever appended: each row stands on its own (nothing rolls back), a newer row supersedes
    an older one, and the `runs` and `objects` views show the latest."""

    def __init__(self, ddl: tuple[str, ...] = APPENDED_DDL):
        self.ddl = ddl
    interrupted = ("its statements committed one by one; the next apply puts back what it changed, from its "
                   "journal, before it applies")
    newest_snapshot = " ORDER BY recorded_at DESC LIMIT 1"   # the newest row is the record

    def backups(self, session: CatalogSession, found: list[dict]) -> list[dict]:
        """Less those a tombstone says were dropped; each restore point (`restore_points`) said so, and
        whether the run that took it has concluded (`left`: it is then no copy any run needs)."""
        if session.table_columns(CATALOG_SCHEMA, "dropped_backups"):
            dropped = {row[0] for row in session.execute(f"SELECT name FROM {CATALOG_SCHEMA}.dropped_backups")}
            found = [backup for backup in found if backup["name"] not in dropped]
        if not session.table_columns(CATALOG_SCHEMA, "restore_points"):
            return found
        points = dict(session.execute(
            f"SELECT p.name, r.outcome <> 'running' FROM {CATALOG_SCHEMA}.restore_points p "
            f"LEFT JOIN {CATALOG_SCHEMA}.runs r ON r.run_id = p.run_id"))
        return [{**backup, "restore_point": True, "left": bool(points[backup["name"]])}
                if backup["name"] in points else backup for backup in found]

    def write_objects(self, session: CatalogSession, values: Sequence[tuple], gone, written_keys, run,
                      capacity: str, catalog_version: str) -> None:
        """A deleted object is a tombstone row; rows written again supersede the old."""
        tombstones = [(key.schema, key.name, "", "", "", "[]", None, run.plan.commit, run.run_id, run.started)
                      for key in {k.folded(): k for k in gone if k.folded() not in written_keys}.values()]
        session.insert(f"{CATALOG_SCHEMA}.object_log", [(*row, False) for row in values]
                       + [(*row, True) for row in tombstones])

    def write_snapshot(self, session: CatalogSession, environment: str, tenant: str, record: tuple, run_id: str,
                       current: Callable[[], tuple | None]) -> None:
        """Appended, not read first (a Spark job each)."""
        session.insert(f"{CATALOG_SCHEMA}.snapshots", [(environment, tenant, *record, run_id, now())])

    def drop_backup_statements(self, engine: str, name: str, table: str) -> list[str]:
        """The tombstone first: a run killed between the two leaves a table no listing shows, never a
        listed backup whose table is gone."""
        return [self.unlist_backup_statement(engine, name),
                f"DROP TABLE IF EXISTS {table}"]   # a run killed between index row and copy made none

    def unlist_backup_statement(self, engine: str, name: str) -> str:
        """The index cannot lose a row: a tombstone says the name is no longer listed."""
        return (f"INSERT INTO {CATALOG_SCHEMA}.dropped_backups SELECT {name}, "
                f"CAST({sql.literal(now().isoformat(sep=' ')).sql(engine)} AS TIMESTAMP)")

    def conclude_runs(self, session: CatalogSession, where: str, parameters: Sequence, values: dict) -> None:
        """A newer event of each run `where` selects (the `runs` view shows the latest)."""
        selected = ", ".join("?" if c in values else c for c in RUN_COLUMNS)
        session.execute(f"INSERT INTO {CATALOG_SCHEMA}.run_log SELECT {selected}, ? FROM {CATALOG_SCHEMA}.runs "
                        f"WHERE {where}", [*(values[c] for c in RUN_COLUMNS if c in values), now(), *parameters])

    def record_run(self, session: CatalogSession, values: Sequence) -> None:
        session.insert(f"{CATALOG_SCHEMA}.run_log", [(*values, now())])


IN_PLACE, APPEND_ONLY = InPlace(), AppendOnly()
