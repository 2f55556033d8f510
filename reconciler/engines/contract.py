"""The engine adapter contract, and choosing an adapter for a tenant.

An adapter reads a tenant through one read session (`reading`: its tables and views, and the
`_reconciler` catalog through `catalog`), compiles changes into statements for its engine
(`compile`, pure), and opens a `session`: one connection holding the tenant lock, in which the
executor runs one transaction (an engine whose DDL cannot be rolled back implements
`journaled_contract.JournaledAdapter` too, for the journaled protocol). Never decides what to
change. `StatementFailed` (`sessions`) and `engines` (`engine_registry`) live below the adapters and
are named here too, for an adapter written against this contract.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import hashlib
import itertools
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import parallel, secrets
from ..desired import sql
from ..engine_registry import engines
from ..errors import TenantError, TenantLocked
from ..model import ObjectKey, Tenant
from ..plan import Change, Refusal
from ..sessions import NOT_ALLOWED, StatementFailed
from ..state import DesiredState, LiveObject, LiveState, ObjectState
from . import catalog
from .stores import BACKUP_SCHEMA, IN_PLACE, RUN_COLUMNS, AppendOnly, InPlace


class Unprovable(Exception):
    """The plan, or part of it, cannot be proven: how and why, said after "not proven" ("on a shadow
    of the tenant: these credentials may not change it"), with what was refused in the part that was."""

    def __init__(self, why: str, refused: Sequence[Refusal] = ()):
        super().__init__(why)
        self.refused = tuple(refused)


class Session(abc.ABC):
    """One connection to a tenant: a plan's read session, or an apply's, holding the tenant lock. What
    every engine's session can do; one whose DDL is transactional is a `TransactionalSession`, one whose
    lock is a lease renews it between statements (`hold`)."""

    connection: Any     # the engine's own connection (a DuckDB or psycopg connection, a Spark session)
    adapter: Adapter
    catalog_store: InPlace | AppendOnly = IN_PLACE   # how the `_reconciler` catalog keeps its rows (`stores`)

    @abc.abstractmethod
    def read_only(self) -> contextlib.AbstractContextManager[None]:
        """What runs inside changes nothing (`reconciler check`), and how the engine makes sure of it:
        each session says, as a context manager."""

    @abc.abstractmethod
    def execute(self, statement: str, parameters: Sequence | None = None) -> list[tuple]: ...

    @abc.abstractmethod
    def executemany(self, statement: str, rows: Sequence[Sequence]) -> None: ...

    def write(self, statement: str) -> int:
        """Run one INSERT, UPDATE or DELETE and return the rows it wrote, as the engine counts them. An
        engine that does not say runs no data flows."""
        raise TenantError(f"{self.engine} does not count the rows a statement writes; data flows do not run "
                          "on it yet")

    def insert(self, table: str, rows: Sequence[Sequence]) -> None:
        """Rows into every column of `table`, in order (an engine may send them as columns)."""
        if rows:
            self.executemany(f"INSERT INTO {table} VALUES ({', '.join(['?'] * len(rows[0]))})", rows)

    def inspect(self) -> LiveState:
        """The tenant's tables and views (the adapter's `engine_objects`) and its `_reconciler` catalog."""
        objects, schemas = self.adapter.engine_objects(self.connection)
        records, interrupted = catalog.read(self)
        return LiveState(objects, records, schemas, interrupted=interrupted)

    @abc.abstractmethod
    def engine_sql(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, str]: ...

    def inspected_through(self, recorder) -> tuple[LiveState, Any]:
        """`Session.inspect` with every read going through `recorder` (a connection that hashes what it
        answers into its `digest`), the session's own connection put back after; the state and the digest."""
        connection, self.connection = self.connection, recorder
        try:
            return Session.inspect(self), recorder.digest
        finally:
            self.connection = connection

    def table_columns(self, schema: str, table: str) -> list[str]:
        """A table's columns, in order; none when it does not exist (`information_schema`, which an
        engine without one replaces)."""
        return [row[0] for row in self.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() "
            "AND table_schema = ? AND table_name = ? ORDER BY ordinal_position", [schema, table])]

    def backup_columns(self, backup: str) -> list[str]:
        """The columns a backup the catalog holds has, in order (what a restore can put back)."""
        return self.table_columns(BACKUP_SCHEMA, backup)

    def tables(self, schema: str) -> list[str]:
        """The names of a schema's tables and views."""
        return [row[0] for row in self.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
            "AND table_schema = ?", [schema])]

    def hold(self) -> None:
        """Called between the statements of an apply: keeps the tenant lock where it is a lease
        (TenantLocked when another run took it over); nothing where the engine holds it."""

    def fresh(self, statement: str) -> None:
        """Just before an apply runs `statement`: make it read the rows committed by now. Nothing where the
        engine always does (a transaction reads what was committed when it began or is held by its locks)."""

    def stop_statement(self) -> None:
        """Ctrl-C, from its handler or another thread: ask the engine to stop the statement running on
        this session's connection now (nothing where it cannot: the apply stops before its next one)."""

    def count(self, query: str) -> int:
        """The single number a counting query returns, read inside this session's transaction, or where
        there is none, of the rows committed by now (`fresh`)."""
        self.fresh(query)
        return self.execute(query)[0][0]

    def count_rows(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, int]:
        return {key: self.count(f"SELECT count(*) FROM {sql.qualified(key.schema, key.name, self.engine)}")
                for key in keys}

    def check_views(self, views: Sequence[ObjectKey]) -> None:
        """Bind each view (SELECT * ... LIMIT 0); StatementFailed for the first that no longer works.
        The first failure aborts the transaction, which the caller rolls back, so one is reported."""
        for key in views:
            statement = f"SELECT * FROM {sql.qualified(key.schema, key.name, self.engine)} LIMIT 0"
            try:
                self.execute(statement)
            except StatementFailed as failure:
                raise StatementFailed(statement, f"view {key} no longer works after the changes: "
                                      f"{failure.message}") from None

    engine: str


class TransactionalSession(Session):
    """A session whose statements, DDL included, run in a transaction that can be rolled back (the
    transactional apply protocol's)."""

    @abc.abstractmethod
    def begin(self) -> None: ...

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...


class ConnectionSession(TransactionalSession):
    """A Session over a connection whose `execute` returns a cursor (DuckDB, psycopg): the
    transaction verbs and the translation of engine errors, written once. An engine sets
    `error` (its exception class) and, if its placeholders are not `?`, `placeholders`."""

    error: type[Exception] = Exception

    def __init__(self, connection, adapter: Adapter):
        self.connection = connection
        self.adapter = adapter
        self.running: tuple[int, int] | None = None   # (thread, statement number) running now, for Ctrl-C
        self._statements = itertools.count()
        parallel.opened(self)

    def placeholders(self, statement: str) -> str:
        return statement

    def inspect(self) -> LiveState:
        """As every session inspects, with each row read hashed as it is read (statement, parameters,
        rows, in order) into the state's `digest`: equal digests are equal reads, so a state that hashes
        alike gives the same plan (`snapshot`). The adapter sees only a connection that can execute and
        fetch, so nothing it reads escapes the digest."""
        live, digest = self.inspected_through(_Recorded(self.connection))
        return dataclasses.replace(live, digest=digest.hexdigest())

    def begin(self) -> None:
        self.connection.execute("BEGIN")

    @contextlib.contextmanager
    def read_only(self) -> Iterator[None]:
        """What runs inside changes nothing, whatever a statement calls (a user's check may call a
        function with side effects). Engines whose read session is already read-only (DuckDB opens the
        file READ_ONLY) need nothing more."""
        yield

    def commit(self) -> None:
        self.connection.execute("COMMIT")

    def rollback(self) -> None:
        with contextlib.suppress(self.error):
            self.connection.execute("ROLLBACK")

    def execute(self, statement: str, parameters: Sequence | None = None) -> list[tuple]:
        with self._running(statement):
            cursor = (self.connection.execute(statement) if parameters is None else
                      self.connection.execute(self.placeholders(statement), parameters))
            return cursor.fetchall() if cursor.description else []

    def write(self, statement: str) -> int:
        with self._running(statement):
            return self.connection.execute(statement).rowcount   # DB-API's count of the rows it wrote

    def executemany(self, statement: str, rows: Sequence[Sequence]) -> None:
        with self._running(statement):
            self.run_many(self.placeholders(statement), rows)

    @contextlib.contextmanager
    def _running(self, statement: str) -> Iterator[None]:
        """One statement: the engine's errors as StatementFailed; after Ctrl-C (`parallel.STOP`) a
        KeyboardInterrupt instead of the statement, or instead of however the engine reports one it
        stopped (DuckDB raises its own error, in the main thread a RuntimeError). A statement run
        while the thread handles that KeyboardInterrupt is its rollback or audit row: it runs as any."""
        cleanup = parallel.cleaning_up()
        if parallel.STOP.is_set() and not cleanup:
            raise KeyboardInterrupt
        self.running = None if cleanup else (threading.get_ident(), next(self._statements))
        try:
            yield
        except (Exception, KeyboardInterrupt) as error:   # never GeneratorExit: closing is not failing
            if not cleanup and (isinstance(error, KeyboardInterrupt) or parallel.STOP.is_set()):
                raise KeyboardInterrupt from None
            if isinstance(error, self.error):
                raise StatementFailed.engine(statement, error, getattr(error, "sqlstate", None)) from None
            raise
        finally:
            self.running = None

    def run_many(self, statement: str, rows: Sequence[Sequence]) -> None:
        # on the session's own connection: a DuckDB cursor() is a second connection, outside
        # the transaction
        self.connection.executemany(statement, rows)


class _Recorded:
    """A connection that executes and fetches, hashing every statement, its parameters and the rows it
    gave, in order."""

    def __init__(self, connection):
        self._connection = connection
        self.digest = hashlib.sha256()
        self.description = None
        self._rows: list = []

    def execute(self, statement: str, parameters: Sequence | None = None) -> _Recorded:
        cursor = (self._connection.execute(statement) if parameters is None else
                  self._connection.execute(statement, parameters))
        self.description = cursor.description
        self._rows = cursor.fetchall() if cursor.description else []
        self.digest.update(repr((statement, parameters, self._rows)).encode() + b"\n")
        return self

    def fetchall(self) -> list:
        return self._rows

    def fetchone(self):
        return self._rows[0] if self._rows else None

    def __iter__(self) -> Iterator:
        return iter(self._rows)


class Adapter(abc.ABC):
    engine: str
    tenant: Tenant

    def __init__(self, tenant: Tenant, repo: Path, lock_timeout: float = 0):
        self.tenant = tenant
        self.url = tenant.url
        self.lock_timeout = lock_timeout   # seconds to wait for a tenant another run holds

    @property
    @abc.abstractmethod
    def exists(self) -> bool: ...

    @abc.abstractmethod
    def describe(self) -> str: ...

    @abc.abstractmethod
    def reading(self) -> contextlib.AbstractContextManager[Session]:
        """One read-only session on the tenant: a plan inspects it, counts rows and runs its checks
        (and, last, its shadow run: `prove_in`) through this one connection. Never writes."""

    def inspect(self) -> LiveState:
        with self.reading() as reading:
            return reading.inspect()

    @abc.abstractmethod
    def engine_objects(self, connection) -> tuple[dict[ObjectKey, LiveObject], frozenset[str]]:
        """The tenant's own tables and views, and its user schemas (never the catalog's), read over an
        open connection: a plan's read session, or an apply's inside its transaction."""

    def runs(self) -> list[dict]:
        """The tenant's audit records (stores.RUN_COLUMNS, and `checks`: how many of the run's data checks
        passed, warned and failed), oldest first; empty when it has none."""
        with self.reading() as reading:
            runs = catalog.rows(reading, "runs", RUN_COLUMNS, "started_at, run_id")
            counted = catalog.check_counts(reading)
        return [{**run, "checks": counted.get(run["run_id"], {})} for run in runs]

    def audit(self) -> dict[str, list[dict]]:
        """Everything the tenant's audit holds, in one read session: `runs` (as `runs()` gives them),
        `check_results` (each check a run ran, its outcome and when), `backups` and `checkpoints`, each
        oldest first. For the site, which shows all of it and reads each tenant once."""
        with self.reading() as reading:
            return self.audit_in(reading)

    def audit_in(self, reading: Session) -> dict[str, list[dict]]:
        """`audit`, read on a read session of the tenant's (the one a report then plans on)."""
        runs = catalog.rows(reading, "runs", RUN_COLUMNS, "started_at, run_id")
        counted = catalog.check_counts(reading)
        results = catalog.rows(reading, "check_results", catalog.CHECK_RESULT_COLUMNS, "checked_at, run_id")
        return {"runs": [{**run, "checks": counted.get(run["run_id"], {})} for run in runs],
                "check_results": results, "backups": catalog.backups(reading),
                "checkpoints": catalog.checkpoints(reading)}

    def backups(self) -> list[dict]:
        """The tenant's backups (name, schema_name, table_name, run_id, created_at, row_count)."""
        with self.reading() as reading:
            return catalog.backups(reading)

    def checkpoints(self) -> list[dict]:
        """The restore points of the tenant's checkpoints (stores.CHECKPOINT_COLUMNS), oldest first, each
        with `lost`: why it can no longer be restored (None: it can)."""
        with self.reading() as reading:
            return self.checkpoints_in(reading)

    def checkpoints_in(self, session: Session) -> list[dict]:
        """`checkpoints`, read on a session of the tenant's (one that holds its lock, to act on them)."""
        found = catalog.checkpoints(session)
        lost = self.unrestorable(session, found) if found else []
        return [{**point, "lost": why} for point, why in zip(found, lost)]

    def unrestorable(self, reading: Session, points: Sequence[Mapping]) -> list[str | None]:
        """For each checkpoint row, why it cannot be restored: its copy gone from the backup schema
        (pruned, or dropped by a DBA), or a point in a table's history where this engine keeps none."""
        copies = {name.lower() for name in reading.tables(BACKUP_SCHEMA)}   # Spark lists names lower case
        return [None if point["kind"] == catalog.COPY_POINT and point["restore_point"].lower() in copies else
                f"its copy {BACKUP_SCHEMA}.{point['restore_point']} is gone (pruned, or dropped outside the reconciler)"
                if point["kind"] == catalog.COPY_POINT else f"{self.engine} keeps no table history"
                for point in points]

    def credential(self) -> str | None:
        """The tenant's password, read from the variable its reference names; a missing variable
        is an error naming the variable. The value is handed to the engine, never printed or stored."""
        if self.tenant.password is None:
            return None
        return secrets.resolve(self.tenant.password, f"tenant {self.tenant.name}")

    def backup_name(self, table: ObjectKey, run_id: str) -> str:
        """`schema.table@run`, shortened with a hash past 63 characters (PostgreSQL's limit)."""
        name = f"{table.schema}.{table.name}@{run_id}"
        if len(name) <= 63:
            return name
        return f"{name[:46]}~{hashlib.sha256(name.encode()).hexdigest()[:16]}"

    @abc.abstractmethod
    def compile(self, changes: Sequence[Change], desired: DesiredState, live: LiveState) -> list[Change]: ...

    @abc.abstractmethod
    def restore_statements(self, table: ObjectKey, backup: str, columns: Sequence[str]) -> list[str]:
        """What puts a backup's rows back into its table, for `columns` (pure: `planning.tenant.Restoring`)."""

    @abc.abstractmethod
    def rebuilds(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> bool:
        """Whether the change copies the table into a new one and swaps it in (pure: `plan.Compiler`)."""

    def pinned(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> frozenset[str] | None:
        """What the engine will not alter under a view that reads it (`readers.Pins`): none where views
        are bound by name each time they are read."""
        return frozenset()

    def prove_in(self, reading: Session, changes: Sequence[Change], views: Sequence[ObjectKey],
                 reads: Mapping[str, Sequence[str]]) -> list[Refusal]:
        """Run every change's statements on a shadow of the tenant (a copy of its schema with no rows, or
        the tenant inside a transaction that is rolled back, where the change's queries are planned,
        never run on its rows; `changes` holds the blocked ones too, with none), then bind `views`; each
        statement the engine refuses, and why (`prove_on`). The shadow may take `reading`'s connection
        over: it is the last thing a plan reads. What cannot be proven is said, never guessed:
        `Unprovable` (why, and the refusals of the part that was). An engine that cannot make a shadow
        proves what it can without one (Spark: EXPLAIN) and says so in its README row."""
        return []

    def lock_statements(self, tables: Sequence[ObjectKey]) -> list[str]:
        """Statements, run first in the apply transaction, that keep other writers off the live tables
        the plan changes until it ends (none where the tenant lock already excludes every writer)."""
        return []

    def copy_lock_statements(self, tables: Sequence[ObjectKey]) -> list[str]:
        """Statements, run first in a checkpoint's transaction, that keep other writers (not readers) off
        the tables it copies until it ends, so the copies are of one point in time (none where the tenant
        lock already excludes every writer)."""
        return []

    def lock_holder(self) -> Mapping[str, str] | None:
        """Who holds the tenant lock, where the lock is a row in the tenant that outlives a dead run (a
        lease: Spark), for `reconciler unlock`; None when it is free, or where the engine's lock dies
        with its process."""
        return None

    def session(self, create: bool, holder: Mapping[str, str] | None = None
                ) -> contextlib.AbstractContextManager[Session]:
        """The tenant, locked for this process; `holder` (run id, actor) is what a blocked run is told.
        Noted for Ctrl-C's message: a command that never asked for one wrote to no tenant."""
        parallel.writing()
        return self.locked_session(create, holder)

    @abc.abstractmethod
    def locked_session(self, create: bool, holder: Mapping[str, str] | None = None
                       ) -> contextlib.AbstractContextManager[Session]:
        """`session`, as the engine locks and opens it."""


def prove_on(session: Session, changes: Sequence[Change], views: Sequence[ObjectKey],
             reads: Mapping[str, Sequence[str]], savepoints: bool = False) -> list[Refusal]:
    """The shadow run, on a session that is the shadow (DuckDB: an in-memory copy of the schema) or
    a transaction that will be rolled back (`savepoints`: each change in its own, so that one
    refusal does not hide the next). A change stops at its first refused statement; a change
    reading (`reads`: object -> what it reads) something refused is not reported again."""
    refusals, failed = [], set()
    checks = [(str(key), f"SELECT * FROM {sql.qualified(key.schema, key.name, session.engine)} LIMIT 0")
              for key in views]
    for subject, statements in [*((c.object, c.statements) for c in changes if c.statements),
                                *((v, (q,)) for v, q in checks)]:
        if savepoints:
            session.execute("SAVEPOINT reconciler_proof")
        for statement in statements:
            try:
                session.execute(statement)
            except StatementFailed as failure:
                if failure.sqlstate == NOT_ALLOWED:   # the credentials, not the plan: nothing can be proven
                    raise Unprovable("on a shadow of the tenant: these credentials may not change the tenant "
                                     f"({failure.message})") from None
                if not failed & set(reads.get(subject, ())):   # else: only what it reads was refused
                    refusals.append(Refusal(object=subject, statement=statement, message=failure.message))
                failed.add(subject)
                break
        if savepoints:
            session.execute("ROLLBACK TO SAVEPOINT reconciler_proof" if subject in failed
                            else "RELEASE SAVEPOINT reconciler_proof")
    return refusals


def waiting(locked: TenantLocked, timeout: float) -> bool:
    """Say once that a run waits for a tenant another run holds (CI logs show why it is quiet)."""
    logging.getLogger("reconciler").warning("%s; waiting up to %g s for it", locked, timeout)
    return True


def adapter_for(tenant: Tenant, repo: Path, lock_timeout: float = 0) -> Adapter:
    """The adapter for the tenant's engine; `lock_timeout` is how long to wait for a busy tenant."""
    scheme = urlsplit(tenant.url).scheme
    point = engines().get(scheme)
    if point is None:
        raise TenantError(f"tenant {tenant.name}: no engine adapter for '{scheme}' "
                          f"(installed: {', '.join(sorted(engines())) or 'none'})")
    return point.load()(tenant, repo, lock_timeout)

