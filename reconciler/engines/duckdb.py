"""The DuckDB tenant: an embedded database file.

Owns reading a DuckDB file's tables and views (the `_reconciler` catalog is `catalog`'s),
the shadow a plan is proven on, compiling changes into DuckDB statements, and the connection
the executor runs its transaction on.
The file is attached under a reserved alias, so a schema named like the file stem never
makes references ambiguous. DuckDB's own file lock is the tenant lock: it is bound to the
process, so a killed holder never leaves it behind. Never decides what to change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import socket
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import duckdb
from sqlglot import exp

from .. import files
from ..desired import column_types, sql
from ..errors import TenantError, TenantLocked
from ..model import ObjectKey, Tenant
from ..plan import Change, Refusal
from ..state import Addition, ColumnState, DesiredState, LiveObject, LiveState, ObjectState
from .contract import Adapter, ConnectionSession, Session, prove_on, waiting
from .ddl import Compiler

ALIAS = "_reconciler_db"
SHADOW = "_reconciler_shadow"   # the in-memory copy of the schema a plan is proven on
ENGINE = "duckdb"
COMPILER = Compiler()
_LOCK_HOLDER = re.compile(r"PID (\d+)")


def resolve_path(url: str, repo: Path) -> Path:
    """SQLAlchemy's convention: duckdb:///relative (to the repo root), duckdb:////absolute."""
    rest = url.removeprefix("duckdb:///")
    return Path(rest) if rest.startswith("/") else (repo / rest)


def _q(name: str) -> str:
    return sql.quote(name, ENGINE)


def _qk(key: ObjectKey) -> str:
    return sql.qualified(key.schema, key.name, ENGINE)


class DuckDBAdapter(Adapter):
    engine = ENGINE

    def __init__(self, tenant: Tenant, repo: Path, lock_timeout: float = 0):
        super().__init__(tenant, repo, lock_timeout)
        self.path = resolve_path(tenant.url, repo)

    @property
    def holder_file(self) -> Path:
        """Who holds the tenant, for the runs it blocks. DuckDB's own file lock is the lock (bound to
        the process, so it never outlives it); this file only names the holder."""
        return self.path.with_name(self.path.name + ".holder.json")

    @property
    def exists(self) -> bool:
        return self.path.is_file()

    def describe(self) -> str:
        return str(self.path)

    # -- connecting --------------------------------------------------------------------------
    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        told = False
        while True:
            try:
                return self._attach(read_only)
            except TenantLocked as locked:
                if time.monotonic() >= deadline:
                    raise
                if not told:
                    told = waiting(locked, self.lock_timeout)
                time.sleep(0.2)

    def _attach(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        connection = duckdb.connect(":memory:")
        mode = " (READ_ONLY)" if read_only else ""
        try:
            connection.execute(f"ATTACH {exp.Literal.string(str(self.path)).sql(ENGINE)} AS {ALIAS}{mode}")
            connection.execute(f"USE {ALIAS}")
            _confine(connection)
        except duckdb.IOException as error:
            connection.close()
            text = str(error)
            if "lock" in text.lower():
                found = _LOCK_HOLDER.search(text)
                raise TenantLocked(f"tenant {self.tenant.name} ({self.path}) is locked by "
                                   f"{self._holder(int(found.group(1)) if found else None)}") from None
            raise TenantError(f"tenant {self.tenant.name}: cannot open {self.path}: {text}") from None
        except duckdb.Error as error:
            connection.close()
            raise TenantError(f"tenant {self.tenant.name}: cannot open {self.path}: {error}") from None
        return connection

    def _holder(self, pid: int | None) -> str:
        try:
            holder = json.loads(self.holder_file.read_text())
        except (OSError, ValueError):
            holder = {}
        if pid is None or holder.get("pid") != pid:   # a file left by a killed run names nobody
            return f"process {pid}" if pid else "another process"
        return (f"run {holder.get('run_id', '?')} ({holder.get('actor', '?')} on {holder.get('host', '?')}, "
                f"process {pid}) since {holder.get('since', '?')}")

    # -- reading -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        if self.path.exists() and not self.path.is_file():
            raise TenantError(f"tenant {self.tenant.name}: {self.path} is not a database file")
        connection = self._connect(read_only=True) if self.exists else _confine(duckdb.connect(":memory:"))
        try:
            yield _DuckDBSession(connection, self, missing=not self.exists)
        finally:
            connection.close()

    def engine_objects(self, connection) -> tuple[dict[ObjectKey, LiveObject], frozenset[str]]:
        where = f"database_name = '{ALIAS}' AND NOT internal AND schema_name NOT LIKE '\\_reconciler%' ESCAPE '\\'"
        columns: dict[tuple[str, str], list[ColumnState]] = defaultdict(list)
        comments: list[tuple[str, str, str, str]] = []   # column comments: what a DBA added (one scan)
        for schema, table, name, data_type, nullable, default, comment in connection.execute(
                f"SELECT schema_name, table_name, column_name, data_type, is_nullable, column_default, comment "
                f"FROM duckdb_columns() WHERE {where} ORDER BY schema_name, table_name, column_index").fetchall():
            columns[schema, table].append(
                ColumnState(name, column_types.engine_type(data_type, ENGINE), bool(nullable),
                            sql.canonical_default(default, ENGINE)))
            if comment is not None:
                comments.append((schema, table, name, comment))
        keys: dict[ObjectKey, tuple[str, ...]] = {}
        for schema, table, names in connection.execute(
                f"SELECT schema_name, table_name, constraint_column_names FROM duckdb_constraints() "
                f"WHERE {where.replace(' AND NOT internal', '')} AND constraint_type = 'PRIMARY KEY' "
                "ORDER BY 1, 2").fetchall():
            keys[ObjectKey(schema, table)] = tuple(names)
        objects: dict[ObjectKey, LiveObject] = {}
        additions = _additions(connection, where, comments)
        for schema, table, comment in connection.execute(
                f"SELECT schema_name, table_name, comment FROM duckdb_tables() WHERE {where} ORDER BY 1, 2"
        ).fetchall():
            key = ObjectKey(schema, table)
            if comment:
                additions[key].insert(0, Addition("a comment on the table", (
                    f"COMMENT ON TABLE {_qk(key)} IS {sql.literal(comment).sql(ENGINE)}",)))
            objects[key] = LiveObject(key, "Table", tuple(columns.get(key, ())), keys.get(key, ()),
                                      additions=tuple(additions.get(key, ())))
        for schema, view, text, comment in connection.execute(
                f"SELECT schema_name, view_name, sql, comment FROM duckdb_views() WHERE {where} ORDER BY 1, 2"
        ).fetchall():
            key = ObjectKey(schema, view)
            if comment:
                additions[key].insert(0, Addition("a comment on the view", (
                    f"COMMENT ON VIEW {_qk(key)} IS {sql.literal(comment).sql(ENGINE)}",)))
            objects[key] = LiveObject(key, "View", tuple(columns.get(key, ())), engine_sql=text,
                                      additions=tuple(additions.get(key, ())))
        schemas = frozenset(row[0] for row in connection.execute(
            f"SELECT schema_name FROM duckdb_schemas() WHERE database_name = '{ALIAS}' "
            "AND schema_name NOT LIKE '\\_reconciler%' ESCAPE '\\' ORDER BY 1").fetchall())
        return objects, schemas

    # -- compiling ---------------------------------------------------------------------------
    def compile(self, changes: Sequence[Change], desired: DesiredState, live: LiveState) -> list[Change]:
        return COMPILER.compile(changes, desired, live)

    def restore_statements(self, table: ObjectKey, backup: str, columns: Sequence[str]) -> list[str]:
        return COMPILER.restore_statements(table, backup, columns)

    def rebuilds(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> bool:
        return COMPILER.rebuilds(change, want, found)

    def prove_in(self, reading: Session, changes: Sequence[Change], views: Sequence[ObjectKey],
                 reads: Mapping[str, Sequence[str]]) -> list[Refusal]:
        """The shadow is an in-memory database on the read connection holding the tenant's schema
        (tables empty, views as they are: COPY FROM DATABASE ... (SCHEMA)); the file is detached
        once copied."""
        connection = reading.connection
        connection.execute(f"ATTACH ':memory:' AS {SHADOW}")
        if not reading.missing:
            connection.execute(f"COPY FROM DATABASE {ALIAS} TO {SHADOW} (SCHEMA)")
        connection.execute(f"USE {SHADOW}")
        if not reading.missing:
            connection.execute(f"DETACH {ALIAS}")
        return prove_on(_DuckDBSession(connection, self), changes, views, reads)

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked_session(self, create: bool, holder: Mapping[str, str] | None = None) -> Iterator[Session]:
        if not self.exists and not create:
            raise TenantError(f"tenant {self.tenant.name}: database file {self.path} does not exist; "
                              "declare `create: true` on the tenant to create it")
        self.credential()  # DuckDB files take none, but a declared one must resolve before anything runs
        if not self.exists:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = self._connect(read_only=False)
        if holder is not None:
            since = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            # a link committed where the note goes is replaced, never written through
            files.write(self.holder_file, json.dumps({**holder, "host": socket.gethostname(), "pid": os.getpid(),
                                                      "since": since}))
        try:
            yield _DuckDBSession(connection, self)
        finally:
            connection.close()
            if holder is not None:
                self.holder_file.unlink(missing_ok=True)


def _confine(connection: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """Once the tenant's file is attached, nothing that runs on the connection reaches outside it: no
    file, URL, extension or other database (`enable_external_access`), and no statement can undo that
    (`lock_configuration`). The engine's own guarantee, under the allowlist's (`policy`)."""
    connection.execute("SET enable_external_access = false")
    connection.execute("SET lock_configuration = true")
    return connection


class _DuckDBSession(ConnectionSession):
    engine = ENGINE
    error = duckdb.Error

    def __init__(self, connection, adapter: DuckDBAdapter, missing: bool = False):
        super().__init__(connection, adapter)
        self.missing = missing   # reading a tenant whose file does not exist yet: it holds nothing

    def inspect(self) -> LiveState:
        if self.missing:   # as a new file will be: its one schema, main
            return LiveState({}, {}, frozenset({"main"}), exists=False)
        return super().inspect()

    def count(self, query: str) -> int:
        return 0 if self.missing else super().count(query)

    def stop_statement(self) -> None:
        with contextlib.suppress(duckdb.Error):   # closed meanwhile
            self.connection.interrupt()

    def insert(self, table: str, rows: Sequence[Sequence]) -> None:
        """As one statement of lists, one per column: DuckDB's executemany runs a statement per row
        (3 s for the catalog rows of 10,000 objects, 0.07 s this way)."""
        if rows:
            columns = [list(column) for column in zip(*rows)]
            self.execute(f"INSERT INTO {table} SELECT {', '.join(['unnest(?)'] * len(columns))}", columns)

    def engine_sql(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, str]:
        wanted = set(keys)
        rows = self.connection.execute(
            f"SELECT schema_name, view_name, sql FROM duckdb_views() WHERE database_name = '{ALIAS}' "
            "AND NOT internal").fetchall()
        return {ObjectKey(s, v): text for s, v, text in rows if ObjectKey(s, v) in wanted}


def _additions(connection, where: str, comments: Sequence[tuple[str, str, str, str]]
               ) -> defaultdict[ObjectKey, list[Addition]]:
    """What was added to tables and views outside the reconciler (it declares only columns, NOT NULL,
    the primary key and a view's query): indexes (put back from DuckDB's own CREATE INDEX), column
    comments (put back), and CHECK, UNIQUE and FOREIGN KEY constraints, which DuckDB cannot add to
    an existing table."""
    found: defaultdict[ObjectKey, list[Addition]] = defaultdict(list)
    for schema, table, name, text in connection.execute(
            f"SELECT schema_name, table_name, index_name, sql FROM duckdb_indexes() "
            f"WHERE {where.replace(' AND NOT internal', '')} AND NOT is_primary ORDER BY 1, 2, 3").fetchall():
        found[ObjectKey(schema, table)].append(Addition(f"index {name}", (text.strip().rstrip(";"),)))
    for schema, table, kind, text in connection.execute(
            f"SELECT schema_name, table_name, constraint_type, constraint_text FROM duckdb_constraints() "
            f"WHERE {where.replace(' AND NOT internal', '')} AND constraint_type IN ('CHECK', 'UNIQUE', "
            "'FOREIGN KEY') ORDER BY 1, 2, 4").fetchall():
        found[ObjectKey(schema, table)].append(Addition(f"{kind.lower()} constraint {text}"))
    for schema, table, column, comment in comments:
        key = ObjectKey(schema, table)
        found[key].append(Addition(f"a comment on column {column}", (
            f"COMMENT ON COLUMN {_qk(key)}.{_q(column)} IS {sql.literal(comment).sql(ENGINE)}",), column))
    return found

