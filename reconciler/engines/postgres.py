"""The PostgreSQL tenant: a database on a server, through psycopg 3.

Owns reading pg_catalog's tables and views (the `_reconciler` catalog is `catalog`'s, and what a
DBA attached to them `postgres_additions`'), PostgreSQL's DDL rules, the tenant lock and the
connection the executor runs its transaction on (PostgreSQL DDL is transactional). CREATE OR REPLACE VIEW may only append columns and a view pins the columns
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

import networkx as nx
import psycopg
import sqlglot
from psycopg import generators
from sqlglot import exp

from ..desired import column_types, sql
from ..errors import TenantError, TenantLocked
from ..model import ObjectKey
from ..plan import Change, Refusal
from ..state import ColumnState, DesiredState, LiveObject, LiveState, ObjectState
from .contract import Adapter, ConnectionSession, Session, prove_on, waiting
from .ddl import Compiler
from .postgres_additions import USER_SCHEMAS as _USER_SCHEMAS
from .postgres_additions import additions as _additions

ENGINE = "postgres"
LOCK_KEY = 7_301_968_421          # the advisory lock every reconciler run takes on its tenant
PROOF_LOCK_TIMEOUT, PROOF_STATEMENT_TIMEOUT = "2s", "60s"   # a plan's proof never waits long on the tenant
CANCEL_TIMEOUT = 5   # seconds Ctrl-C waits for the server to take a cancel request


class PostgresCompiler(Compiler):
    engine = ENGINE

    def retypes_in_place(self, columns: set[str], want: ObjectState) -> bool:
        return True

    def rebuild_key_constraint(self, key: ObjectKey) -> str | None:
        return f"{key.name[:46]}__reconciler_pkey"

    def after_swap(self, key: ObjectKey, want: ObjectState) -> list[str]:
        # the name PostgreSQL gives a primary key (the old one's went with the old table)
        if not want.primary_key:
            return []
        return [f"ALTER TABLE {self.qk(key)} RENAME CONSTRAINT {self.q(self.rebuild_key_constraint(key))} "
                f"TO {self.q(key.name[:58] + '_pkey')}"]

    def lock(self, tables: Sequence[ObjectKey]) -> list[str]:
        # a row committed by another session between the check and the change would escape both
        return [f"LOCK TABLE {', '.join(map(self.qk, tables))} IN ACCESS EXCLUSIVE MODE"] if tables else []

    def retype(self, table: str, column: str, new_type: str) -> str:
        return f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {new_type} USING {column}::{new_type}"

    def misfit(self, column: str, new: str, old: str) -> str:
        # PostgreSQL has no TRY_CAST; pg_input_is_valid (PostgreSQL 16+) tests a cast without raising.
        # It reads text, and '2.00' is not integer input text though 2.00 casts to 2 and back: a number
        # going to an integer type is tested as a number (whole, in range; NaN and infinity are not)
        limits = _INTEGER_LIMITS.get(_kind(new))
        if limits is not None and _kind(old) in exp.DataType.NUMERIC_TYPES:
            return f"({column} <> trunc({column}) OR {column} NOT BETWEEN {limits[0]} AND {limits[1]})"
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

    def keeps_view_additions(self, change: Change) -> bool:
        """CREATE OR REPLACE VIEW keeps the view (its grants, comments, owner); a replaced view is
        dropped first, and they go with it."""
        return change.action == "update"

    def pinned(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> frozenset[str] | None:
        """A view pins what it reads: a table cannot be dropped (rebuilt) under it, nor a column it
        reads retyped or dropped, nor a view it reads dropped (recreating one drops it first)."""
        if change.kind in ("View", "MaterializedTable"):   # replaced: dropped, then created again
            return None if change.action == "replace" else frozenset()
        if self.rebuilds(change, want, found):
            return None
        return frozenset(d.column.lower() for d in change.details
                         if d.attribute == "type" or (d.op == "drop" and d.whole_column))

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
            record = live.record(key)
            for upstream in record.dependencies if record else ():
                if upstream in keys:
                    graph.add_edge(upstream, key)
        return list(reversed(list(nx.lexicographical_topological_sort(graph))))


def _kind(column_type: str) -> exp.DType | None:
    """The sqlglot type of a column type as `column_types` spells it; None for one sqlglot has no type for."""
    try:
        kind = column_types.declared(column_type, ENGINE).this
    except sql.SqlProblem:
        return None
    return kind if isinstance(kind, exp.DType) else None


_INTEGER_LIMITS = {exp.DataType.Type.SMALLINT: (-32768, 32767),
                   exp.DataType.Type.INT: (-2147483648, 2147483647),
                   exp.DataType.Type.BIGINT: (-9223372036854775808, 9223372036854775807)}
COMPILER = PostgresCompiler()


class PostgresAdapter(Adapter):
    engine = ENGINE

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
            _release(connection)

    # -- reading -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        with self._reading() as connection:
            yield _PostgresSession(connection, self)

    def engine_objects(self, connection: psycopg.Connection) -> tuple[dict[ObjectKey, LiveObject], frozenset[str]]:
        columns: dict[tuple[str, str], list[ColumnState]] = defaultdict(list)
        kinds = {}
        for schema, name, kind, column, data_type, nullable, default in connection.execute(
                "SELECT n.nspname, c.relname, c.relkind, a.attname, format_type(a.atttypid, a.atttypmod), "
                "NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid) "
                "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
                "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
                f"WHERE c.relkind IN ('r', 'p', 'v') AND {_USER_SCHEMAS} ORDER BY 1, 2, a.attnum").fetchall():
            kinds[schema, name] = kind
            columns[schema, name].append(ColumnState(column, column_types.engine_type(data_type, ENGINE),
                                                     bool(nullable), sql.canonical_default(default, ENGINE)))
        keys = {(schema, name): tuple(names) for schema, name, names in connection.execute(
            "SELECT n.nspname, c.relname, array_agg(a.attname ORDER BY k.ord) FROM pg_catalog.pg_constraint con "
            "JOIN pg_catalog.pg_class c ON c.oid = con.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
            "c.relnamespace CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
            f"WHERE con.contype = 'p' AND {_USER_SCHEMAS} GROUP BY 1, 2 ORDER BY 1, 2").fetchall()}
        views = {(schema, name): text for schema, name, text in connection.execute(
            "SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM pg_catalog.pg_class c "
            f"JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'v' AND {_USER_SCHEMAS} "
            "ORDER BY 1, 2").fetchall()}
        objects = {}
        additions = _additions(connection)
        for (schema, name), kind in kinds.items():
            key = ObjectKey(schema, name)
            objects[key] = (LiveObject(key, "View", tuple(columns[schema, name]), engine_sql=views.get((schema, name)),
                                       additions=tuple(additions.get(key, ())))
                            if kind == "v" else
                            LiveObject(key, "Table", tuple(columns[schema, name]), keys.get((schema, name), ()),
                                       additions=tuple(additions.get(key, ()))))
        schemas = frozenset(row[0] for row in connection.execute(
            f"SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE {_USER_SCHEMAS} ORDER BY 1").fetchall())
        return objects, schemas

    # -- compiling ---------------------------------------------------------------------------
    def compile(self, changes: Sequence[Change], desired: DesiredState, live: LiveState) -> list[Change]:
        return COMPILER.compile(changes, desired, live)

    def restore_statements(self, table: ObjectKey, backup: str, columns: Sequence[str]) -> list[str]:
        return COMPILER.restore_statements(table, backup, columns)

    def rebuilds(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> bool:
        return COMPILER.rebuilds(change, want, found)

    def pinned(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> frozenset[str] | None:
        return COMPILER.pinned(change, want, found)

    def lock_statements(self, tables: Sequence[ObjectKey]) -> list[str]:
        return COMPILER.lock(tables)

    def copy_lock_statements(self, tables: Sequence[ObjectKey]) -> list[str]:
        # SHARE: other sessions read on, and no one writes until the copies are taken
        return [f"LOCK TABLE {', '.join(map(COMPILER.qk, tables))} IN SHARE MODE"] if tables else []

    def prove_in(self, reading: Session, changes: Sequence[Change], views: Sequence[ObjectKey],
                 reads: Mapping[str, Sequence[str]]) -> list[Refusal]:
        """The shadow is the tenant itself inside a transaction that is always rolled back (PostgreSQL's
        DDL is transactional, and only the real catalog knows every function, extension and grant).
        It holds the tenant lock shared, like any read, and gives up on a busy table after
        PROOF_LOCK_TIMEOUT rather than queue behind (or ahead of) other sessions. A MaterializedTable's
        query is planned there, never run on the tenant's rows (`WITH NO DATA`): SQL under review never
        reads the rows it has not been approved to read."""
        connection = reading.connection
        connection.execute("BEGIN")
        try:
            connection.execute(f"SET LOCAL lock_timeout = '{PROOF_LOCK_TIMEOUT}'")
            connection.execute(f"SET LOCAL statement_timeout = '{PROOF_STATEMENT_TIMEOUT}'")
            planned_only = [c.model_copy(update={"statements": tuple(map(_without_rows, c.statements))})
                            if c.kind == "MaterializedTable" else c for c in changes]
            return prove_on(_PostgresSession(connection, self), planned_only, views, reads, savepoints=True)
        finally:
            connection.execute("ROLLBACK")

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked_session(self, create: bool, holder: Mapping[str, str] | None = None) -> Iterator[Session]:
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
            _release(connection)   # a killed process's lock goes with its connection

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


def _release(connection: psycopg.Connection) -> None:
    """Let go of the tenant lock, then close. A closed connection's lock goes only when its server
    process has exited, after the close returned: the next command's lock (an apply after its own
    plan's read) could find it still held."""
    with contextlib.suppress(psycopg.Error):
        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            connection.execute("ROLLBACK")
        connection.execute("SELECT pg_advisory_unlock_all()")
    connection.close()


def _without_rows(statement: str) -> str:
    """`CREATE TABLE ... AS query` made to create the table without running the query (`WITH NO DATA`);
    any other statement as it is."""
    try:
        tree = sqlglot.parse_one(statement, read=ENGINE)
    except sqlglot.errors.SqlglotError:
        return statement
    if not (isinstance(tree, exp.Create) and tree.kind == "TABLE" and isinstance(tree.expression, exp.Query)):
        return statement
    properties = tree.args.get("properties") or exp.Properties(expressions=[])
    properties.append("expressions", exp.WithDataProperty(no=True))
    tree.set("properties", properties)
    return tree.sql(dialect=ENGINE)


def sql_setting(name: str, value: str) -> str:
    return f"SET {name} = {sql.literal(str(value)).sql(ENGINE)}"


class _PostgresSession(ConnectionSession):
    engine = ENGINE
    error = psycopg.Error

    def stop_statement(self) -> None:
        with contextlib.suppress(psycopg.Error):   # the statement ended meanwhile, or the server is gone
            self.connection.cancel_safe(timeout=CANCEL_TIMEOUT)

    def rollback(self) -> None:
        """As any session rolls back, once no statement is in flight: Ctrl-C can land between psycopg
        sending a statement and waiting for it, where psycopg does not stop it, and the connection then
        refuses everything ("another command is already in progress") until its result is read."""
        if self.connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.ACTIVE:
            with contextlib.suppress(psycopg.Error):
                self.connection.cancel_safe(timeout=CANCEL_TIMEOUT)
                self.connection.wait(generators.fetch_many(self.connection.pgconn), timeout=CANCEL_TIMEOUT)
        super().rollback()

    @contextlib.contextmanager
    def read_only(self) -> Iterator[None]:
        self.connection.execute("BEGIN READ ONLY")
        try:
            yield
        finally:
            self.rollback()

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


__all__ = ["PostgresAdapter", "PostgresCompiler"]
