"""The PostgreSQL tenant: a database on a server, through psycopg 3.

Owns reading pg_catalog into a `LiveState` (engine objects and the `_reconciler` catalog),
PostgreSQL's DDL rules, the tenant lock and one transaction per apply (PostgreSQL DDL is
transactional). CREATE OR REPLACE VIEW may only append columns and a view pins the columns
it reads, so every view that is recreated or removed is dropped first, in reverse dependency
order, and created again in order; never CASCADE. The lock is an advisory lock held by the
apply connection: it dies with the connection, so it cannot be left behind. Credentials come
from the tenant's `password: env:NAME` only. Never decides what to change.
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import networkx as nx
import psycopg

from .. import sql
from ..errors import TenantError, TenantLocked
from ..model import ObjectKey, Tenant
from ..plan import Change
from ..state import ColumnState, DesiredState, LiveObject, LiveState, ObjectState
from .base import (
    BACKUP_SCHEMA,
    CATALOG_SCHEMA,
    Adapter,
    ConnectionSession,
    Session,
    catalog_records,
    interrupted_runs,
    waiting,
)
from .ddl import Compiler

ENGINE = "postgres"
LOCK_KEY = 7_301_968_421          # the advisory lock every reconciler run takes on its tenant
_USER_SCHEMAS = ("n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' "
                 "AND n.nspname NOT LIKE '\\_reconciler%'")


class PostgresCompiler(Compiler):
    engine = ENGINE

    def retypes_in_place(self, columns: set[str], want: ObjectState) -> bool:
        return True

    def lock(self, tables: Sequence[ObjectKey]) -> list[str]:
        # a row committed by another session between the check and the change would escape both
        return [f"LOCK TABLE {', '.join(map(self.qk, tables))} IN ACCESS EXCLUSIVE MODE"] if tables else []

    def retype(self, table: str, column: str, new_type: str) -> str:
        return f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {new_type} USING {column}::{new_type}"

    def misfit(self, column: str, new: str, old: str) -> str:
        # PostgreSQL has no TRY_CAST; pg_input_is_valid (PostgreSQL 16+) tests a cast without raising
        text = f"CAST({column} AS TEXT)"
        valid = f"pg_input_is_valid({text}, {sql.literal(new).sql(self.engine)})"
        return (f"(NOT {valid} OR (CASE WHEN {valid} THEN CAST(CAST({text} AS {new}) AS {old}) "
                f"IS DISTINCT FROM {column} ELSE FALSE END))")

    def unless(self, condition: str, message: str) -> str:
        literal = sql.literal(message).sql(self.engine)
        return f"DO $$BEGIN IF NOT ({condition}) THEN RAISE EXCEPTION {literal}; END IF; END$$"

    def cast_back(self, column: str, old_type: str) -> str:
        # no TRY_CAST here: a value that cannot go back fails the statement, which is as safe
        return f"CAST({column} AS {old_type})"

    def compile(self, changes: Sequence[Change], desired: DesiredState, live: LiveState) -> list[Change]:
        compiled = super().compile(changes, desired, live)
        gone = {c.key for c in compiled if c.kind == "View" and c.action in ("replace", "delete")
                and not c.catalog_only and live.find(c.key) in live.objects}
        if not gone:
            return compiled
        drops = [f"DROP VIEW {self.qk(live.find(key))}" for key in self._drop_order(gone, live)]
        result = []
        for change in compiled:
            statements = [s for s in change.statements if not (change.key in gone and s.startswith("DROP VIEW"))]
            if change.key in gone and change.action == "replace":
                statements = [s.replace("CREATE OR REPLACE VIEW", "CREATE VIEW", 1) for s in statements]
            result.append(change.model_copy(update={"statements": tuple(statements)}))
        # the views go first, all together: one that reads another cannot be dropped before it
        result[0] = result[0].model_copy(update={"statements": (*drops, *result[0].statements)})
        return result

    @staticmethod
    def _drop_order(keys: set[ObjectKey], live: LiveState) -> list[ObjectKey]:
        """Readers before what they read, from the dependencies the catalog recorded."""
        graph = nx.DiGraph()
        graph.add_nodes_from(keys)
        for key in keys:
            record = live.catalog.get(live.find(key) or key)
            for upstream in record.dependencies if record else ():
                if upstream in keys:
                    graph.add_edge(upstream, key)
        return list(reversed(list(nx.lexicographical_topological_sort(graph))))


COMPILER = PostgresCompiler()


class PostgresAdapter(Adapter):
    engine = ENGINE

    def __init__(self, tenant: Tenant, repo: Path, lock_timeout: float = 0):
        self.tenant = tenant
        self.url = tenant.url
        self.lock_timeout = lock_timeout

    @property
    def exists(self) -> bool:
        return True    # a server database is created by its administrators, never by the reconciler

    def describe(self) -> str:
        return self.url.split("?")[0]

    def _connect(self, application_name: str = "reconciler") -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, password=self.credential(), autocommit=True,
                                   application_name=application_name[:63], connect_timeout=10)
        except psycopg.Error as error:
            raise TenantError(f"tenant {self.tenant.name}: cannot connect to {self.describe()}: "
                              f"{str(error).strip().splitlines()[0]}") from None

    @contextlib.contextmanager
    def _reading(self) -> Iterator[psycopg.Connection]:
        """A connection holding the tenant lock shared: reading the catalog (pg_get_viewdef
        takes a lock on every view) while an apply drops views would deadlock with it."""
        connection = self._connect()
        try:
            self._lock(connection, shared=True)
            yield connection
        finally:
            connection.close()

    # -- reading -----------------------------------------------------------------------------
    def inspect(self) -> LiveState:
        with self._reading() as connection:
            return self.inspect_on(connection)

    def inspect_on(self, connection: psycopg.Connection) -> LiveState:
        columns: dict[tuple[str, str], list[ColumnState]] = defaultdict(list)
        kinds, sizes = {}, {}
        for schema, name, kind, column, data_type, nullable, default, rows in connection.execute(
                "SELECT n.nspname, c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), "
                "NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), c.reltuples "
                "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
                "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
                f"WHERE c.relkind IN ('r', 'p', 'v') AND {_USER_SCHEMAS} ORDER BY 1, 2, a.attnum").fetchall():
            kinds[schema, name], sizes[schema, name] = kind, rows
            columns[schema, name].append(ColumnState(column, sql.engine_type(data_type, ENGINE),
                                                     bool(nullable), sql.canonical_default(default, ENGINE)))
        keys = {(schema, name): tuple(names) for schema, name, names in connection.execute(
            "SELECT n.nspname, c.relname, array_agg(a.attname ORDER BY k.ord) FROM pg_catalog.pg_constraint con "
            "JOIN pg_catalog.pg_class c ON c.oid = con.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
            "c.relnamespace CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
            f"WHERE con.contype = 'p' AND {_USER_SCHEMAS} GROUP BY 1, 2").fetchall()}
        views = {(schema, name): text for schema, name, text in connection.execute(
            "SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c "
            f"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'v' AND {_USER_SCHEMAS}"
        ).fetchall()}
        objects = {}
        for (schema, name), kind in kinds.items():
            key = ObjectKey(schema, name)
            objects[key] = (LiveObject(key, "View", tuple(columns[schema, name]), engine_sql=views.get((schema, name)))
                            if kind == "v" else
                            LiveObject(key, "Table", tuple(columns[schema, name]), keys.get((schema, name), ()),
                                       estimated_rows=max(int(sizes[schema, name]), 0)))
        schemas = frozenset(row[0] for row in connection.execute(
            f"SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE {_USER_SCHEMAS}").fetchall())
        catalog, interrupted = {}, ()
        if _catalog_exists(connection):
            catalog = catalog_records(connection.execute(
                f"SELECT schema_name, name, kind, content_hash, definition, dependencies, engine_sql, commit, run_id "
                f"FROM {CATALOG_SCHEMA}.objects").fetchall())
            interrupted = interrupted_runs(connection.execute(
                f"SELECT run_id, actor, host, pid, started_at FROM {CATALOG_SCHEMA}.runs "
                "WHERE outcome = 'running' ORDER BY started_at").fetchall())
        return LiveState(objects, catalog, schemas, interrupted=interrupted)

    def catalog_rows(self, table: str, columns: Sequence[str], order: str) -> list[dict]:
        with self._reading() as connection:
            present = {row[0] for row in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
                [CATALOG_SCHEMA, table]).fetchall()}
            names = [c for c in columns if c in present]
            if not names:
                return []
            rows = connection.execute(f"SELECT {', '.join(names)} FROM {CATALOG_SCHEMA}.{table} ORDER BY {order}")
            return [dict(zip(names, row)) for row in rows.fetchall()]

    def count_rows(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, int]:
        if not keys:
            return {}
        with self._reading() as connection:
            return {key: connection.execute(f"SELECT count(*) FROM {COMPILER.qk(key)}").fetchone()[0]
                    for key in keys}

    def count(self, query: str) -> int:
        with self._reading() as connection:
            return connection.execute(query).fetchone()[0]

    # -- compiling ---------------------------------------------------------------------------
    def compile(self, changes: Sequence[Change], desired: DesiredState, live: LiveState) -> list[Change]:
        return COMPILER.compile(changes, desired, live)

    def lock_statements(self, tables: Sequence[ObjectKey]) -> list[str]:
        return COMPILER.lock(tables)

    def restore_statements(self, table: ObjectKey, backup: str) -> list[str]:
        with self._reading() as connection:
            def columns(schema: str, name: str) -> list[str]:
                return [row[0] for row in connection.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                    "ORDER BY ordinal_position", [schema, name]).fetchall()]
            saved = set(columns(BACKUP_SCHEMA, backup))
            common = ", ".join(COMPILER.q(c) for c in columns(table.schema, table.name) if c in saved)
        return [f"DELETE FROM {COMPILER.qk(table)}",
                f"INSERT INTO {COMPILER.qk(table)} ({common}) SELECT {common} "
                f"FROM {sql.qualified(BACKUP_SCHEMA, backup, ENGINE)}"]

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self, create: bool, holder: Mapping[str, str] | None = None) -> Iterator[Session]:
        name = "reconciler" + (f" run {holder['run_id']} by {holder.get('actor', '?')}" if holder else "")
        connection = self._connect(name)
        try:
            self._lock(connection)
            for setting in ("lock_timeout", "statement_timeout"):
                value = getattr(self.tenant, setting, None)
                if value:
                    connection.execute(sql_setting(setting, value))
            yield _PostgresSession(connection, self)
        finally:
            connection.close()   # the advisory lock is released with the connection

    def _lock(self, connection: psycopg.Connection, shared: bool = False) -> None:
        deadline = time.monotonic() + self.lock_timeout
        take = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        told = False
        while not connection.execute(f"SELECT {take}(%s)", [LOCK_KEY]).fetchone()[0]:
            locked = TenantLocked(f"tenant {self.tenant.name} ({self.describe()}) is locked by "
                                  f"{self._holder(connection)}")
            if time.monotonic() >= deadline:
                raise locked
            if not told:
                told = waiting(locked, self.lock_timeout)
            time.sleep(0.2)

    def _holder(self, connection: psycopg.Connection) -> str:
        row = connection.execute(
            "SELECT a.application_name, coalesce(a.client_hostname, host(a.client_addr), 'local'), a.pid, "
            "to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM pg_catalog.pg_locks l "
            "JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objid = %s AND l.pid <> pg_backend_pid()", [LOCK_KEY % 2**32]).fetchone()
        if row is None:
            return "another connection"
        name, host, pid, since = row
        return f"{name or 'a session'} ({host}, backend {pid}) since {since} UTC"


def sql_setting(name: str, value: str) -> str:
    return f"SET {name} = {sql.literal(str(value)).sql(ENGINE)}"


class _PostgresSession(ConnectionSession):
    engine = ENGINE
    error = psycopg.Error

    def placeholders(self, statement: str) -> str:
        """The shared statements use `?`; psycopg uses `%s` (and then `%` must be doubled)."""
        return statement.replace("%", "%%").replace("?", "%s")

    def run_many(self, statement: str, rows: Sequence[Sequence]) -> None:
        with self.connection.cursor() as cursor:   # psycopg runs many only on a cursor
            cursor.executemany(statement, rows)

    def engine_sql(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, str]:
        wanted = set(keys)
        rows = self.connection.execute(
            "SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c "
            f"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'v' AND {_USER_SCHEMAS}"
        ).fetchall()
        return {ObjectKey(s, v): text for s, v, text in rows if ObjectKey(s, v) in wanted}


def _catalog_exists(connection: psycopg.Connection) -> bool:
    return connection.execute("SELECT to_regclass(%s) IS NOT NULL", [f"{CATALOG_SCHEMA}.objects"]).fetchone()[0]


__all__ = ["PostgresAdapter", "PostgresCompiler"]
