"""The `_reconciler` catalog every tenant holds: what the reconciler applied there, the audit of
its runs, and the index of the backups it took.

Owns every statement on the `_reconciler` and `_reconciler_backup` schemas, written once for
every engine in standard SQL with `?` placeholders (a `Session` translates them) and read through
`information_schema`, which DuckDB and PostgreSQL both have. An engine that cannot UPDATE or
DELETE these tables (Spark SQL's parquet tables) keeps them as logs that are only appended to, and
reads `runs` and `objects` through views that pick each row's latest version (the two stores are
`stores`', and a session says which it takes: `Session.catalog_store`); there the catalog also
holds each run's journal (what every object it touches was before it, and the restore point of
every table) and the tenant lock (`TableLock`). Never decides what to change; the executor calls
the writing half, a plan's read session the reading half.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..desired import sql
from ..errors import JournalRefused, TenantError
from ..model import ObjectKey
from ..sessions import StatementFailed
from ..state import CatalogRecord, ColumnState, DesiredState, LiveObject
from .stores import (
    _RECORD_COLUMNS,
    BACKUP_COLUMNS,
    BACKUP_SCHEMA,
    CATALOG_SCHEMA,
    CATALOG_VERSION,
    CHECKPOINT_COLUMNS,
    now,
)

if TYPE_CHECKING:
    from ..check_types import Result
    from ..plan import Change, Plan, TenantPlan
    from ..sessions import CatalogSession

# -- reading ---------------------------------------------------------------------------------
def columns(session: CatalogSession, table: str, schema: str = CATALOG_SCHEMA) -> list[str]:
    """The columns a catalog table (or any table) has, in order; none when it does not exist."""
    return session.table_columns(schema, table)


def read(session: CatalogSession) -> tuple[dict[ObjectKey, CatalogRecord], tuple[str, ...]]:
    """What the reconciler applied (by key), and the runs the audit still shows as running (for people:
    their process died, or holds the tenant now)."""
    if not columns(session, "objects"):
        return {}, ()
    records = {ObjectKey(row[0], row[1]): CatalogRecord(ObjectKey(row[0], row[1]), *row[2:9]) for row in
               session.execute(f"SELECT {_RECORD_COLUMNS} FROM {CATALOG_SCHEMA}.objects "
                               "ORDER BY schema_name, name")}
    consequence = session.catalog_store.interrupted
    interrupted = tuple(f"{run} by {actor} on {host} (pid {pid}), started {started:%Y-%m-%d %H:%M:%S} UTC: "
                        f"{consequence}"
                        for run, actor, host, pid, started in session.execute(
                            f"SELECT run_id, actor, host, pid, started_at FROM {CATALOG_SCHEMA}.runs "
                            "WHERE outcome = 'running' ORDER BY started_at, run_id"))
    return records, interrupted


def snapshot(session: CatalogSession, environment: str, tenant: str) -> tuple[str, str, str] | None:
    """What the last apply of `environment` left in this tenant: (desired key, live digest, plan JSON)."""
    if not columns(session, "snapshots"):
        return None
    newest = session.catalog_store.newest_snapshot
    found = session.execute(f"SELECT desired_key, live_digest, tenant_plan FROM {CATALOG_SCHEMA}.snapshots "
                            f"WHERE environment = ? AND tenant = ?{newest}", [environment, tenant])
    return tuple(found[0]) if len(found) == 1 else None


def backups(session: CatalogSession) -> list[dict]:
    """The backups the catalog indexes, oldest first (less those dropped, where it only appends)."""
    return session.catalog_store.backups(session, rows(session, "backups", BACKUP_COLUMNS, "created_at, name"))


def checkpoints(session: CatalogSession) -> list[dict]:
    """The restore points of every checkpoint taken in the tenant, one per table, oldest first."""
    return rows(session, "checkpoints", CHECKPOINT_COLUMNS, "created_at, name, schema_name, table_name")


def rows(session: CatalogSession, table: str, wanted: Sequence[str], order: str) -> list[dict]:
    """Rows of a catalog table as dicts, leaving out the columns a catalog written by an older
    version lacks."""
    present = set(columns(session, table))
    names = [c for c in wanted if c in present]
    if not names:
        return []
    return [dict(zip(names, row)) for row in
            session.execute(f"SELECT {', '.join(names)} FROM {CATALOG_SCHEMA}.{table} ORDER BY {order}")]


# -- writing ---------------------------------------------------------------------------------
def create(session: CatalogSession) -> None:
    """The catalog's schemas and tables, where they are missing (idempotent). A statement the engine
    refuses is the tenant's problem to say (TenantError), never an internal error."""
    for statement in session.catalog_store.ddl:
        try:
            session.execute(statement)
        except StatementFailed as failure:
            raise TenantError(f"the reconciler's catalog cannot be made in tenant {session.adapter.tenant.name}: "
                              f"{failure.message}\n  statement: {' '.join(failure.statement.split())}") from None


def write_objects(session: CatalogSession, changes: Sequence[Change], desired: DesiredState, run: Run) -> None:
    """Record what the changes applied: the rows of every object they touch are replaced (folded,
    as the engine compares names), deleted objects' rows removed."""
    gone = [c.key for c in changes] + [ObjectKey.parse(c.renamed_from) for c in changes if c.renamed_from]
    written = [desired.objects[c.key] for c in changes if c.action != "delete"]
    engine_sql = session.engine_sql([o.key for o in written if o.kind == "View"])
    values = [(o.key.schema, o.key.name, o.kind, o.content_hash, json.dumps(o.definition, sort_keys=True),
               json.dumps([str(d) for d in o.dependencies]), engine_sql.get(o.key), run.plan.commit,
               run.run_id, run.started) for o in written]
    session.catalog_store.write_objects(session, values, gone, {o.key.folded() for o in written}, run,
                                        desired.capacity, CATALOG_VERSION)


def write_snapshot(session: CatalogSession, environment: str, key: str, digest: str, tenant_plan: TenantPlan,
                   run_id: str) -> None:
    """Inside an apply, last: the key of the desired state it made the tenant match, the digest of the
    tenant as it now is, and the (empty) plan they give; nothing when that is what it holds already (an
    apply that changed nothing leaves the tenant as it was, its audit aside), except where the catalog
    only appends."""
    record = (key, digest, tenant_plan.model_dump_json())
    session.catalog_store.write_snapshot(session, environment, tenant_plan.tenant, record, run_id,
                                         lambda: snapshot(session, environment, tenant_plan.tenant))


def write_checks(session: CatalogSession, run_id: str, results: Sequence[Result]) -> None:
    """The outcome of every check a run ran, with the sample of each failure (never a sensitive column)."""
    at = now()
    session.insert(f"{CATALOG_SCHEMA}.check_results", [
        (run_id, *ObjectKey.parse(r.object), r.check, r.kind, r.severity, r.outcome, r.offending,
         json.dumps(list(r.sample), default=str) if r.sample else None, at) for r in results])


CHECK_RESULT_COLUMNS = ("run_id", "schema_name", "name", "check_name", "kind", "severity", "outcome", "offending",
                        "checked_at")   # never `sample`: rows of the tenant's data, which a site must not publish


def check_counts(session: CatalogSession) -> dict[str, dict[str, int]]:
    """How many data checks of each run passed, warned and failed, by run id."""
    if not columns(session, "check_results"):
        return {}
    found: dict[str, dict[str, int]] = {}
    for run_id, outcome, count in session.execute(
            f"SELECT run_id, outcome, count(*) FROM {CATALOG_SCHEMA}.check_results GROUP BY run_id, outcome"):
        found.setdefault(run_id, {"passed": 0, "warned": 0, "failed": 0})[outcome] = int(count)
    return found


def backup_statements(engine: str, table: ObjectKey, backup: str, run_id: str, at: dt.datetime) -> list[str]:
    """Index a copy of a table in the catalog (the rows the table holds), then copy it, rows and all,
    into the backup schema. The index row comes first: where nothing rolls back, a run killed between
    the two leaves a listed copy that is missing (which dropping it allows), never a copy no listing
    shows."""
    source, target = sql.qualified(table.schema, table.name, engine), sql.qualified(BACKUP_SCHEMA, backup, engine)
    return [_index_row(engine, table, backup, run_id, at, f"count(*) FROM {source}"),
            f"CREATE TABLE {target} CLONE {source}" if engine in ZERO_COPY_CLONES else
            f"CREATE TABLE {target} AS SELECT * FROM {source}"]


def stage_statements(engine: str, table: ObjectKey, stage: str, run_id: str, at: dt.datetime) -> list[str]:
    """Index an empty table made like `table` in the backup schema, then make it: where a run stages the
    rows it writes into `table` to count them apart from another writer's (`sql.staged`). Indexed first
    and marked a restore point of its run, as a copy is, so one a killed run leaves is dropped once
    that run has concluded."""
    source, target = sql.qualified(table.schema, table.name, engine), sql.qualified(BACKUP_SCHEMA, stage, engine)
    return [_index_row(engine, table, stage, run_id, at, "0"), f"CREATE TABLE {target} LIKE {source}"]


def _index_row(engine: str, table: ObjectKey, backup: str, run_id: str, at: dt.datetime, rows: str) -> str:
    values = ", ".join(sql.literal(v).sql(engine) for v in (backup, table.schema, table.name, run_id))
    return (f"INSERT INTO {CATALOG_SCHEMA}.backups SELECT {values}, "
            f"CAST({sql.literal(at.isoformat(sep=' ')).sql(engine)} AS TIMESTAMP), {rows}")


ZERO_COPY_CLONES = frozenset({"snowflake"})   # engines whose copy of a table shares its storage until either changes


def copy_statement(engine: str, table: ObjectKey, copy: str) -> str:
    """A copy of a table, rows and all, in the backup schema, that no backup index row lists (a
    checkpoint's: `_reconciler.checkpoints` lists it); a zero-copy clone where the engine has one."""
    target, source = sql.qualified(BACKUP_SCHEMA, copy, engine), sql.qualified(table.schema, table.name, engine)
    return f"CREATE TABLE {target} CLONE {source}" if engine in ZERO_COPY_CLONES else \
        f"CREATE TABLE {target} AS SELECT * FROM {source}"


def mark_restore_points(session: CatalogSession, run_id: str, names: Sequence[str]) -> None:
    """Of the copies a run will index as backups (`backup_statements`), those it takes only for its own
    compensation: dropped once it concluded (`left_restore_points`). Written before the first of them."""
    at = now()
    session.insert(f"{CATALOG_SCHEMA}.restore_points", [(name, run_id, at) for name in names])


def left_restore_points(session: CatalogSession) -> list[dict]:
    """The restore points, still indexed, of runs that concluded without dropping them (killed after
    their commit point, before their cleanup): no run needs them any more."""
    return [backup for backup in backups(session) if backup.get("left")]


def drop_backup_statements(session: CatalogSession, backup: str) -> list[str]:
    """A backup's table dropped and its index row gone (where the catalog only appends, a tombstone
    first: `stores.AppendOnly`)."""
    name, table = sql.literal(backup).sql(session.engine), sql.qualified(BACKUP_SCHEMA, backup, session.engine)
    return session.catalog_store.drop_backup_statements(session.engine, name, table)


def unlist_backup_statement(session: CatalogSession, backup: str) -> str:
    """A copy's index row gone, the copy kept: a restore point that becomes a checkpoint's copy, which
    `_reconciler.checkpoints` alone lists from then on (`backups` and `prune-backups` no longer see it
    as a backup, nor the next apply as a restore point left behind)."""
    return session.catalog_store.unlist_backup_statement(session.engine, sql.literal(backup).sql(session.engine))


def release(session: CatalogSession, run_id: str, outcome: str = "interrupted",
            error: str = "released by reconciler unlock") -> None:
    """A dead run's audit row, concluded (as interrupted, or as what became of it)."""
    _conclude_runs(session, "run_id = ? AND outcome = 'running'", [run_id], outcome=outcome, ended_at=now(),
                   error=error)


def _conclude_runs(session: CatalogSession, where: str, parameters: Sequence, **values) -> None:
    """Set columns of the runs `where` selects: an UPDATE, or, where the catalog only appends, a newer
    event of each of those runs (the `runs` view shows the latest)."""
    session.catalog_store.conclude_runs(session, where, parameters, values)


# -- the journal (engines whose DDL commits statement by statement) ------------------------------
@dataclass(frozen=True)
class Before:
    """What one object an apply touches was before it, as facts: absent, a view (its columns and text),
    or a table (its columns, format, properties and comments, and its restore point: a copy of its rows
    taken before the first statement that touches it, or a version in the table's own history). Never a
    statement: what re-creates a table is generated from these facts (`as_table`, `from_restore_point`)."""

    step: int                  # the change, in plan order, whose statements touch it first
    key: ObjectKey
    kind: str                  # Table | View | absent
    columns: tuple[tuple, ...] = ()   # (name, type, nullable, default)
    view_text: str | None = None      # a view's query, as the engine keeps it
    restore_point: str | None = None  # a copy's name in the backup schema, or `HISTORY_POINT` and a version
    table_format: str | None = None
    properties: tuple[tuple[str, str], ...] = ()        # every one a user set, sorted
    comment: str | None = None
    column_comments: tuple[tuple[str, str], ...] = ()   # (column, comment)
    primary_key: tuple[str, ...] = ()                  # where the engine keeps one (Snowflake; not Spark)

    @property
    def version(self) -> int | None:
        """The table version the table is restored to, where its format keeps a history (Delta)."""
        return history_version(self.restore_point)

    @classmethod
    def of(cls, step: int, key: ObjectKey, found: LiveObject | None, restore_point: str | None = None) -> Before:
        """The facts of an object as found live (None: absent)."""
        if found is None:
            return cls(step, key, "absent")
        columns = tuple((c.name, c.type, c.nullable, c.default) for c in found.columns)
        if found.kind == "View":
            return cls(step, key, "View", columns, view_text=found.engine_sql)
        return cls(step, key, "Table", columns, restore_point=restore_point, table_format=found.table_format,
                   properties=tuple(sorted(found.properties)), comment=found.comment,
                   column_comments=found.column_comments, primary_key=found.primary_key)

    def differences(self, found: LiveObject | None) -> list[str]:
        """What about `found` (the object under this key now, None: absent) is not as these facts say, for
        people: its kind, columns, view text, format, properties, comments; none when it is as it was."""
        now = Before.of(self.step, self.key, found, self.restore_point)
        if now.kind != self.kind:
            return [f"{self.key} is {now.kind}, was {self.kind}"]
        compared = [("columns", _shown(now.columns), _shown(self.columns)),
                    ("view text", now.view_text, self.view_text) if self.kind == "View" else None,
                    *([("table format", now.table_format, self.table_format),
                       ("table properties", dict(now.properties), dict(self.properties)),
                       ("table comment", now.comment, self.comment),
                       ("column comments", dict(now.column_comments), dict(self.column_comments)),
                       ("primary key", list(now.primary_key), list(self.primary_key))]
                      if self.kind == "Table" else [])]
        return [f"{self.key} has {what} {is_now!r}, had {was!r}" if what != "columns" else
                f"{self.key} has columns {is_now}, had {was}"
                for what, is_now, was in filter(None, compared) if is_now != was]

    def as_table(self) -> LiveObject:
        """The table these facts describe, for an adapter to write the statement that re-creates it."""
        return LiveObject(self.key, "Table", tuple(ColumnState(*column) for column in self.columns),
                          primary_key=self.primary_key, table_format=self.table_format, properties=self.properties,
                          comment=self.comment, column_comments=self.column_comments)

    def facts(self) -> dict:
        """What the journal's `columns` field holds (JSON): everything but the name, kind, view text and
        restore point, which have fields of their own."""
        return {"columns": [list(c) for c in self.columns], "format": self.table_format,
                "properties": [list(p) for p in self.properties], "comment": self.comment,
                "column_comments": [list(c) for c in self.column_comments], "primary_key": list(self.primary_key)}


def _shown(columns: Sequence[tuple]) -> str:
    """Columns for people: name, type, NOT NULL and default."""
    return "(" + ", ".join(" ".join([str(name), str(kind)] + (["NOT NULL"] if nullable is False else [])
                                    + ([f"DEFAULT {default}"] if default is not None else []))
                           for name, kind, nullable, default in columns) + ")"


HISTORY_POINT = "version "   # a restore point in the table's history (no copy's name holds a space)
COPY_POINT, HISTORY_KIND = "copy", "version"   # a checkpoint's kinds: a copy in the backup schema, a version of the
                                              # table's own history (Delta: no row copied)
DIGEST_ROW = "digest"        # the kind of the journal row that holds the run's plan and the journal's digest


def history_version(restore_point: str | None) -> int | None:
    """The version of a table's history a restore point names (`HISTORY_POINT` and digits), else None:
    a copy's name, or a row that names no version (edited by hand)."""
    text = restore_point or ""
    version = text.removeprefix(HISTORY_POINT)
    return int(version) if text.startswith(HISTORY_POINT) and version.isdigit() else None


@dataclass(frozen=True)
class Journal:
    """A run's journal as read back, its digest checked: what every object was, and the objects its
    run's plan names (the changes' objects and the tables they were renamed from)."""

    befores: list[Before]
    plan: frozenset[tuple[str, str]]   # folded keys


def write_journal(session: CatalogSession, run_id: str, befores: Sequence[Before],
                  plan: Collection[ObjectKey]) -> None:
    """Every object the run will touch, as it is now, and a row holding the run's plan (`plan`: the
    objects its changes name) and the digest of every row: all in one statement, before the run's first
    change."""
    at = now()
    rows = [(run_id, b.step, b.key.schema, b.key.name, b.kind, json.dumps(b.facts(), sort_keys=True), b.view_text,
             b.restore_point) for b in befores]
    named = sorted({key.folded() for key in plan})
    seal = json.dumps({"plan": named, "sha256": _digest(run_id, named, rows)}, sort_keys=True)
    session.insert(f"{CATALOG_SCHEMA}.journal", [(*row, at) for row in rows]
                   + [(run_id, -1, "", "", DIGEST_ROW, seal, None, None, at)])


def _digest(run_id: str, plan: Sequence[Sequence[str]], rows: Sequence[tuple]) -> str:
    """The journal's rows (as stored, in a fixed order) and its run's plan, hashed: any row edited, added
    or removed since shows."""
    ordered = sorted(([str(value) if value is not None else None for value in row] for row in rows),
                     key=lambda row: [value or "" for value in row])
    return hashlib.sha256(json.dumps([run_id, [list(key) for key in plan], ordered]).encode()).hexdigest()


def read_journal(session: CatalogSession, run_id: str) -> Journal | None:
    """A run's journal, its digest checked; None when the run wrote none (it stopped before its first
    statement). JournalRefused when it is not this release's, or not as its run wrote it."""
    found = [tuple(row) for row in session.execute(
        "SELECT run_id, step, schema_name, name, kind, columns, view_sql, restore_point "
        f"FROM {CATALOG_SCHEMA}.journal WHERE run_id = ? ORDER BY step, schema_name, name", [run_id])]
    if not found:
        return None
    seals = [row for row in found if row[4] == DIGEST_ROW]
    rows = [row for row in found if row[4] != DIGEST_ROW]
    if not seals:
        raise JournalRefused("its journal holds no digest: an earlier release of the reconciler wrote it, and "
                             "stored in it statements that this release never runs")
    try:
        [seal] = [json.loads(row[5]) for row in seals]
        plan, sealed = seal["plan"], seal["sha256"]
        befores = [_before(row) for row in rows]
    except (ValueError, KeyError, TypeError):
        raise JournalRefused("its journal is not one this release writes (a row of it cannot be read as "
                             "facts)") from None
    if sealed != _digest(run_id, plan, [row[:8] for row in rows]):
        raise JournalRefused("its journal is not as the run wrote it (its digest does not match its rows): it "
                             "was edited since")
    return Journal(befores, frozenset((str(schema), str(name)) for schema, name in plan))


def _before(row: tuple) -> Before:
    _, step, schema, name, kind, facts_json, view_text, point = row
    facts = json.loads(facts_json)
    if kind not in ("Table", "View", "absent") or not isinstance(facts, dict):
        raise ValueError(kind)
    return Before(int(step), ObjectKey(schema, name), kind, tuple(tuple(c) for c in facts["columns"]), view_text,
                  point, facts["format"], tuple(tuple(p) for p in facts["properties"]), facts["comment"],
                  tuple(tuple(c) for c in facts["column_comments"]), tuple(facts.get("primary_key", ())))


def running(session: CatalogSession) -> list[str]:
    """The runs the audit shows as running, oldest first."""
    if not columns(session, "runs"):
        return []
    return [row[0] for row in session.execute(
        f"SELECT run_id FROM {CATALOG_SCHEMA}.runs WHERE outcome = 'running' ORDER BY started_at")]


def from_restore_point(engine: str, before: Before, definition: str | None) -> list[str]:
    """The statements that re-create a table, rows and all, from the copy a run took of it: as the
    journal's facts say it was defined (`definition`: the adapter's statement for `before.as_table()`,
    NOT NULL, defaults, format, properties, comments), then its rows."""
    table = sql.qualified(before.key.schema, before.key.name, engine)
    copy = sql.qualified(BACKUP_SCHEMA, before.restore_point, engine)
    names = ", ".join(sql.quote(column[0], engine) for column in before.columns)
    if definition is None:
        raise StatementFailed(f"re-create {before.key}", f"{engine} re-creates no table from a journal's facts")
    return [definition, f"INSERT INTO {table} ({names}) SELECT {names} FROM {copy}"]


class Run:
    """One run's audit row: inserted as 'running' before the transaction (committed on its own, so
    a run that dies is seen by the next), concluded inside it, or after its rollback."""

    def __init__(self, run_id: str, plan: Plan, tenant_plan: TenantPlan, actor: str, operation: str):
        self.run_id, self.plan, self.tenant_plan, self.actor = run_id, plan, tenant_plan, actor
        self.operation = operation
        self.started = now()
        self.outcome = "running"
        self.checks: Sequence[Result] = ()   # what its data checks found: recorded with its outcome
        self.summary: dict[str, int | float] | None = None   # what it did, when that is not its plan's changes
        self.restored: tuple[Change, ...] = ()   # a restore's change, run after its (empty) plan

    def record(self, session: CatalogSession, outcome: str, error: str | None = None, dry_run: bool = False) -> None:
        self.outcome = outcome
        values = [self.run_id, self.plan.environment, self.tenant_plan.tenant, self.plan.ref, self.plan.commit,
                  self.actor, socket.gethostname(), os.getpid(), self.started,
                  None if outcome == "running" else now(), outcome, dry_run,
                  json.dumps(self.summary or self.tenant_plan.summary), error, self.plan.fingerprint,
                  self.tenant_plan.capacity,
                  self.operation]
        session.catalog_store.record_run(session, values)

    def start(self, session: CatalogSession) -> None:   # a TransactionalSession: the transactional protocol
        session.begin()
        try:
            create(session)
            self.record(session, "running")
            session.commit()
        except BaseException:
            session.rollback()
            raise

    def supersede(self, session: CatalogSession) -> None:
        """Inside a transaction that holds the tenant, every other run left 'running' is one whose
        process is gone: concluded as interrupted."""
        _conclude_runs(session, "outcome = 'running' AND run_id <> ?", [self.run_id], outcome="interrupted")

    def finish(self, session: CatalogSession, outcome: str, error: str | None = None) -> None:
        self.outcome = outcome
        _conclude_runs(session, "run_id = ?", [self.run_id], outcome=outcome, ended_at=now(), error=error,
                       summary=json.dumps(self.summary or self.tenant_plan.summary))
        if self.checks:
            write_checks(session, self.run_id, self.checks)

    def conclude(self, session: CatalogSession, outcome: str, error: str | None) -> None:
        """After a rollback: record how the run ended, in a transaction of its own (best effort)."""
        try:
            session.begin()
            self.finish(session, outcome, error)
            session.commit()
        except Exception:  # noqa: BLE001 - the original error is what the user needs
            session.rollback()
