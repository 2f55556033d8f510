"""A Snowflake tenant: one database of an account (`snowflake://USER@ACCOUNT/DATABASE?warehouse=W&role=R`),
through snowflake-connector-python (`pip install 'reconciler[snowflake]'`).

Owns reading the url and the tenant's credentials (a password `env:NAME`, or a key pair
`private_key=env:NAME` in the url's query, a PEM key; each handed to the connector, never printed or
stored), the connection (autocommit off, as Snowflake's own clients run: a DDL statement commits on
its own there whatever the session says, and this adapter commits every other statement itself, so
each stands on its own as the journaled protocol needs), and reading the database's schemas, tables
and views from its `information_schema` (columns, defaults, NOT NULL, comments, views' text) and
primary keys from SHOW PRIMARY KEYS.

Names: Snowflake folds an unquoted name to upper case, and the reconciler's names are compared
case-insensitively: every name the landscape declares is the Snowflake object of its upper-case
spelling (`customer_master` is CUSTOMER_MASTER, quoted as "CUSTOMER_MASTER"), and an object Snowflake
lists in upper case is read back in lower case. An object whose name holds a lower-case letter can
only have been made quoted; it is no object the reconciler can name, so it is neither read nor changed.

Snowflake's DDL commits on its own, so this adapter is a `JournaledAdapter`: applied to by the
journaled protocol (`apply/journaled.py`), with a lease lock table (`SnowflakeLock`), restore points
that are zero-copy clones (`catalog.backup_statements`), a table's definition and a digest of its rows.
What Snowflake cannot alter in place, by its ALTER TABLE reference (`SnowflakeCompiler.alters_in_place`),
is a rebuild: copied, every value proven to arrive unchanged, swapped in, journaled as any statement.
A plan is not proven (`prove_in` says so). Never decides what to change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import socket
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from urllib.parse import parse_qsl, urlsplit

from .. import secrets
from ..desired import column_types, sql
from ..errors import TenantError
from ..model import ObjectKey
from ..plan import Change, Refusal
from ..sessions import NOT_ALLOWED, EndpointLost
from ..state import ColumnState, DesiredState, LiveObject, LiveState, ObjectState
from . import catalog
from .contract import Adapter, Session, StatementFailed, Unprovable, _Recorded
from .journaled_contract import JournaledAdapter
from .snowflake_access import privilege_needed
from .snowflake_ddl import COMPILER, ENGINE, SnowflakeCompiler, count_and_digest
from .spark_lock import TableLock, _utc
from .stores import AppendOnly, appended_ddl

LOGIN_TIMEOUT = 20     # seconds to log in at all: a wrong account is said, not retried for minutes
NETWORK_TIMEOUT = 60   # seconds a request may take before the connector gives up on it
CATALOG_SCHEMAS = ("INFORMATION_SCHEMA",)   # Snowflake's own, in every database
# The url's query parameters the connector is given (validation/tenants.py reads the url's form)
CONNECTION_PARAMETERS = ("warehouse", "role", "host", "port", "protocol")
PRIVATE_KEY = "private_key"
CONNECTION_LOST = "08"   # SQLSTATE's class of connection exceptions: the connector's for an ended login too
INSERT_BATCH = 200   # the catalog's rows sent in one statement (each row's values bound)
UNLIMITED_VARCHAR = 16_777_216   # the length a VARCHAR declared without one has (Snowflake's maximum)
# The reconciler's own schemas (`_RECONCILER`, its backups) are left out of inspection's listings in the query
# itself: what is read is hashed into the state's digest, and the lock table's comment (its lease, `released`)
# changes after an apply records its digest, so no plan was ever recalled while their rows were read.
NOT_OURS = f"SUBSTR(table_schema, 1, {len(catalog.CATALOG_SCHEMA)}) <> '{catalog.CATALOG_SCHEMA.upper()}'"




class SnowflakeSession(Session):
    """Statements on one Snowflake connection, each committed on its own (`execute`): Snowflake commits
    DDL by itself, and a row the catalog writes must not wait for a later statement to commit it. The
    catalog appends only, as the journaled protocol keeps it (each row stands on its own)."""

    engine = ENGINE
    catalog_store = AppendOnly(appended_ddl(""))

    def __init__(self, connection, adapter: Adapter):
        self.connection = self._own = _Connection(connection, adapter)   # `connection` is a recorder while inspecting
        self.adapter = adapter
        self._reading_only = False
        self.lock: SnowflakeLock | None = None   # an apply's session holds one

    def hold(self) -> None:
        if self.lock is not None:
            self.lock.renew()

    def inspect(self) -> LiveState:
        """As every session inspects, each statement and the rows it gave hashed into the state's `digest`;
        a read Snowflake refuses (a role that may not read its information_schema) said with its statement."""
        try:
            live, digest = self.inspected_through(_Recorded(self.connection))
        except StatementFailed as failure:
            raise TenantError(f"tenant {self.adapter.tenant.name}: cannot read {self.adapter.describe()}: "
                              f"{failure.message} ({failure.statement})") from None
        return dataclasses.replace(live, digest=digest.hexdigest())

    @contextlib.contextmanager
    def read_only(self) -> Iterator[None]:
        """What runs inside is rolled back, not committed (a DDL statement would still commit: the policy at
        validate lets a check be one query, and nothing else)."""
        self._reading_only = True
        try:
            yield
        finally:
            self._reading_only = False
            self._own.rollback()

    def execute(self, statement: str, parameters: Sequence | None = None) -> list[tuple]:
        try:
            cursor = self.connection.execute(statement, parameters)
            rows = cursor.fetchall() if cursor.description else []
            if not self._reading_only:
                self._own.commit()
            return rows
        except StatementFailed:
            with contextlib.suppress(StatementFailed):
                self._own.rollback()
            raise

    def executemany(self, statement: str, rows: Sequence[Sequence]) -> None:
        for row in rows:
            self.execute(statement, row)

    def insert(self, table: str, rows: Sequence[Sequence]) -> None:
        """Up to INSERT_BATCH rows to a statement (its VALUES bound, each statement committed): one request
        and one commit a row made the catalog's rows of an apply most of its time (13 s of 30 at 200 objects
        on the double). Not the connector's executemany, whose array binding the double misreads for a
        timestamp."""
        for start in range(0, len(rows), INSERT_BATCH):
            batch = rows[start:start + INSERT_BATCH]
            values = ", ".join([f"({', '.join(['?'] * len(batch[0]))})"] * len(batch))
            self.execute(f"INSERT INTO {table} VALUES {values}", [value for row in batch for value in row])

    def table_columns(self, schema: str, table: str) -> list[str]:
        return [_read_name(row[0]) for row in self._read(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position", [schema.upper(), table.upper()])]

    def tables(self, schema: str) -> list[str]:
        return [_read_name(row[0]) for row in self._read(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?", [schema.upper()])]

    def _read(self, statement: str, parameters: Sequence) -> list[tuple]:
        """A catalog listing, not committed: it writes nothing, and the lock reads one before every statement
        of an apply (a commit each was a tenth of an apply's time on the double). Snowflake reads what was
        committed when a statement starts, in a transaction or not; the next statement commits this one's."""
        return self.connection.execute(statement, parameters).fetchall()

    def engine_sql(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, str]:
        views = _views(self.connection)
        return {key: views[key.schema.upper(), key.name.upper()] for key in keys
                if (key.schema.upper(), key.name.upper()) in views}


class _Connection:
    """A Snowflake connection that executes as a DB-API connection of DuckDB or psycopg does (a cursor
    back; `?` placeholders, which Snowflake binds itself), so that inspection reads through
    `contract._Recorded` like theirs."""

    def __init__(self, connection, adapter: SnowflakeAdapter):
        self._connection = connection
        self._adapter = adapter   # what an error names: the account, the role

    def execute(self, statement: str, parameters: Sequence | None = None):
        with self._said(statement):
            cursor = self._connection.cursor()
            if parameters is None:
                return cursor.execute(statement)
            return cursor.execute(statement, tuple(parameters))

    def commit(self) -> None:
        with self._said("COMMIT"):
            self._connection.commit()

    def rollback(self) -> None:
        with self._said("ROLLBACK"):
            self._connection.rollback()

    @contextlib.contextmanager
    def _said(self, statement: str) -> Iterator[None]:
        """The connector's errors as StatementFailed, with Snowflake's message and SQLSTATE; one it gives the
        connection's login (SQLSTATE class 08: a session Snowflake aborted or no longer knows, a token it did
        not renew, a connection closed) as EndpointLost, since no later statement of this connection can
        run, a compensation's neither: a new login can (`unlock`, the next apply). A network that stops
        answering is not class 08 (the connector retries for NETWORK_TIMEOUT, then says so without a
        SQLSTATE): its statements fail as any other, the compensation's too, and the journal is kept."""
        from snowflake.connector import Error

        try:
            yield
        except Error as error:   # Snowflake's own words (no "003001 (42501): "), its lines as one
            said = " ".join(str(getattr(error, "raw_msg", None) or error.msg or error).split())
            failed = StatementFailed.engine(statement, Exception(said), getattr(error, "sqlstate", None))
            if (failed.sqlstate or "").startswith(CONNECTION_LOST):
                raise EndpointLost(statement, f"{self._adapter.describe()} refused this connection's login (its "
                                   f"session aborted, its user disabled or its token expired and not renewed): "
                                   f"{failed.message}") from None
            needed = privilege_needed(statement) if failed.sqlstate == NOT_ALLOWED else None
            if needed:   # Snowflake names the object refused, not the privilege missing
                raise StatementFailed(statement, f"{failed.message}; {self._adapter.role()} needs {needed} "
                                      "(Snowflake's access control)", failed.sqlstate) from None
            raise failed from None


class SnowflakeLock(TableLock):
    """The tenant lock: Spark's lease lock (`spark_lock.TableLock`: generations of a lock table, each
    taken by a CREATE TABLE only one run can win), its holder and lease kept as JSON in the lock
    table's comment, since Snowflake tables have no properties; the lease read by Snowflake's clock."""

    def newest(self) -> tuple[int, dict[str, str] | None]:
        newest = self.newest_generation()
        if not newest:
            return 0, None
        [(comment,)] = self.session.execute(
            "SELECT comment FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [catalog.CATALOG_SCHEMA.upper(), f"{self.PREFIX}{newest:08d}".upper()]) or [(None,)]
        try:
            holder = json.loads(comment or "{}")
        except ValueError:
            holder = {"comment": comment}   # edited by hand: no lease, so it never runs out (`_malformed`)
        return newest, {str(k): str(v) for k, v in holder.items()} if isinstance(holder, dict) else {}

    def endpoint_now(self) -> dt.datetime:
        [(micros,)] = self.session.execute("SELECT DATE_PART(epoch_microsecond, CURRENT_TIMESTAMP())")
        return dt.datetime.fromtimestamp(int(micros) / 1_000_000, dt.timezone.utc)

    def _create(self, generation: int) -> None:
        at = dt.datetime.now(dt.timezone.utc)
        holder = {**self.holder, "lease_until": _utc(self.endpoint_now() + self.LEASE)}
        self.session.execute(f"CREATE SCHEMA IF NOT EXISTS {catalog.CATALOG_SCHEMA}")
        self.session.execute(f"CREATE TABLE {self._name(generation)} (held BOOLEAN) COMMENT = "
                             f"{sql.literal(json.dumps(holder, sort_keys=True)).sql(ENGINE)}")
        self.generation, self.renewed = generation, at

    def _properties(self, **values: str) -> None:
        generation, held = self.generation, self.newest()[1] or {}
        self.session.execute(f"ALTER TABLE {self._name(generation)} SET COMMENT = "
                             f"{sql.literal(json.dumps({**held, **values}, sort_keys=True)).sql(ENGINE)}")


class SnowflakeAdapter(JournaledAdapter):
    engine = ENGINE

    @property
    def exists(self) -> bool:
        return True   # a Snowflake database is made by its account's administrators, never by the reconciler

    def describe(self) -> str:
        """The account and database, without the user or any parameter."""
        parts = urlsplit(self.url)
        return f"snowflake://{parts.hostname}{parts.path}"

    def role(self) -> str:
        """The role the url names, as Snowflake reads it, or the user's default."""
        role = dict(parse_qsl(urlsplit(self.url).query)).get("role")
        return f"the role {sql.quote(role, ENGINE)}" if role else "the user's default role"

    def connection_arguments(self) -> dict:
        """What the connector is given, secrets resolved from the environment (a missing variable is named
        before anything connects); never printed."""
        parts = urlsplit(self.url)
        query = dict(parse_qsl(parts.query))
        arguments = {"account": parts.hostname, "user": parts.username, "database": parts.path.strip("/"),
                     "autocommit": False, "login_timeout": LOGIN_TIMEOUT, "network_timeout": NETWORK_TIMEOUT,
                     "paramstyle": "qmark", "application": "reconciler",   # `?`, bound by Snowflake
                     # a statement whose client was killed or cut off is aborted (5 minutes after Snowflake
                     # loses it), not run to its end after `unlock` put the tenant back
                     "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
                                            "ABORT_DETACHED_QUERY": True}}
        arguments.update({name: query[name] for name in CONNECTION_PARAMETERS if name in query})
        if "port" in arguments:
            arguments["port"] = int(arguments["port"])
        password = self.credential()
        if password is not None:
            arguments["password"] = password
        if PRIVATE_KEY in query:
            arguments["private_key"] = _private_key(secrets.resolve(query[PRIVATE_KEY], f"tenant {self.tenant.name}"),
                                                    self.tenant.name)
        return arguments

    def _connect(self):
        try:
            import snowflake.connector
        except ImportError:
            raise TenantError(f"tenant {self.tenant.name}: a Snowflake tenant needs snowflake-connector-python: "
                              "pip install 'reconciler[snowflake]'") from None
        arguments = self.connection_arguments()   # a missing variable is named before anything connects
        endpoint = (arguments.get("host") or f"{arguments['account']}.snowflakecomputing.com",
                    arguments.get("port") or (80 if arguments.get("protocol") == "http" else 443))
        try:   # a refused or unknown endpoint is said at once, not after the connector's retries
            socket.create_connection(endpoint, timeout=LOGIN_TIMEOUT).close()
        except OSError as error:
            raise TenantError(f"tenant {self.tenant.name}: cannot reach {self.describe()} at {endpoint[0]}:"
                              f"{endpoint[1]}: {error.strerror or error}") from None
        try:
            return snowflake.connector.connect(**arguments)
        except snowflake.connector.Error as error:
            said = (error.msg or str(error)).strip().splitlines()[0]
            raise TenantError(f"tenant {self.tenant.name}: cannot connect to {self.describe()}: "
                              f"{_without(said, arguments)}") from None

    # -- reading -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        connection = self._connect()
        try:
            yield SnowflakeSession(connection, self)
        finally:
            with contextlib.suppress(Exception):   # the connector raises its own tree; closing is best effort
                connection.rollback()
                connection.close()

    def engine_objects(self, connection) -> tuple[dict[ObjectKey, LiveObject], frozenset[str]]:
        """The database's schemas, tables and views from `information_schema` (one query each), and its
        primary keys from SHOW PRIMARY KEYS (information_schema lists a key's name, not its columns)."""
        schemas = frozenset(_read_name(name) for (name,) in connection.execute(
            "SELECT schema_name FROM information_schema.schemata ORDER BY 1").fetchall()
            if _managed(name) and not _read_name(name).lower().startswith("_reconciler"))
        views = _views(connection)   # every view is listed there (the double lists none in information_schema.tables)
        kinds, comments = {key: "View" for key in views if _read_name(key[0]) in schemas}, {}
        for schema, name, kind, comment in connection.execute(
                "SELECT table_schema, table_name, table_type, comment FROM information_schema.tables "
                f"WHERE {NOT_OURS} ORDER BY 1, 2").fetchall():
            if _managed(schema, name) and _read_name(schema) in schemas and (schema, name) not in views:
                kinds[schema, name] = "Table"
                comments[schema, name] = comment or None
        columns: dict[tuple[str, str], list[ColumnState]] = defaultdict(list)
        column_comments: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for schema, name, column, data_type, length, precision, scale, nullable, default, comment in connection.execute(
                "SELECT table_schema, table_name, column_name, data_type, character_maximum_length, numeric_precision, "
                "numeric_scale, is_nullable, column_default, comment FROM information_schema.columns "
                f"WHERE {NOT_OURS} ORDER BY table_schema, table_name, ordinal_position").fetchall():
            if (schema, name) not in kinds:
                continue
            view = kinds[schema, name] == "View"
            columns[schema, name].append(ColumnState(
                _read_name(column), column_types.engine_type(_type_sql(data_type, length, precision, scale), ENGINE),
                view or nullable == "YES", None if view else sql.canonical_default(default, ENGINE)))
            if comment and not view:
                column_comments[schema, name].append((_read_name(column), comment))
        keys: dict[tuple[str, str], list[tuple[int, str]]] = defaultdict(list)
        for schema in sorted(schemas):   # SHOW PRIMARY KEYS: schema, table, column, its place in the key
            for row in connection.execute(f"SHOW PRIMARY KEYS IN SCHEMA {sql.quote(schema, ENGINE)}").fetchall():
                keys[row[2], row[3]].append((int(row[5]), _read_name(row[4])))
        objects = {}
        for (schema, name), kind in kinds.items():
            key = ObjectKey(_read_name(schema), _read_name(name))
            objects[key] = (LiveObject(key, "View", tuple(columns[schema, name]), engine_sql=views.get((schema, name)))
                            if kind == "View" else
                            LiveObject(key, "Table", tuple(columns[schema, name]),
                                       tuple(column for _, column in sorted(keys[schema, name])),
                                       comment=comments.get((schema, name)),
                                       column_comments=tuple(column_comments[schema, name])))
        return objects, schemas

    # -- proving and compiling ---------------------------------------------------------------
    def prove_in(self, reading: Session, changes: Sequence[Change], views: Sequence[ObjectKey],
                 reads: Mapping[str, Sequence[str]]) -> list[Refusal]:
        raise Unprovable("on Snowflake: a shadow run of a plan is not built yet (its DDL commits as it runs, so "
                         "it cannot be run and rolled back; the apply is its proof)")

    def compile(self, changes: Sequence[Change], desired: DesiredState, live: LiveState) -> list[Change]:
        return COMPILER.compile(changes, desired, live)

    def restore_statements(self, table: ObjectKey, backup: str, columns: Sequence[str]) -> list[str]:
        return COMPILER.restore_statements(table, backup, columns)

    def rebuilds(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> bool:
        return COMPILER.rebuilds(change, want, found)

    # -- the journaled protocol's -------------------------------------------------------------
    def backup_name(self, table: ObjectKey, run_id: str) -> str:
        """`SCHEMA__TABLE__RUN`: letters, digits and underscores, a name Snowflake takes unquoted too."""
        name = "".join(c if c.isalnum() or c == "_" else "_" for c in f"{table.schema}__{table.name}__{run_id}")
        return name if len(name) <= 200 else f"{name[:180]}_{hashlib.sha256(name.encode()).hexdigest()[:16]}"

    def definition(self, found: LiveObject) -> str:
        return COMPILER.create_table(found.key, found)

    def rows_digest(self, session: Session, key: ObjectKey, columns: Sequence[tuple[str, str]]) -> tuple[int, str]:
        """Row count and the sum of each row's HASH over its values cast to their types and whether each is
        NULL (`count_and_digest`; CAST, as Snowflake's TRY_CAST reads only text)."""
        values = [(f"CAST({sql.quote(name, ENGINE)} AS {kind})", kind) for name, kind in columns]
        [(found,)] = session.execute(count_and_digest(sql.qualified(key.schema, key.name, ENGINE), values))
        rows, digest = str(found).split(":")
        return int(rows), digest

    def lock_holder(self) -> dict[str, str] | None:
        with self.reading() as reading:
            _, holder = SnowflakeLock(reading, {}, self.describe()).newest()
        return holder if holder and holder.get("released") != "true" else None

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked_session(self, create: bool, holder: Mapping[str, str] | None = None) -> Iterator[Session]:
        """One connection holding the tenant's `SnowflakeLock`; released when it ends (a process killed
        meanwhile leaves it to be taken over, as on Spark)."""
        with self.reading() as session:
            lock = SnowflakeLock(session, dict(holder or {}), f"tenant {self.tenant.name} ({self.describe()})",
                                 self.lock_timeout)
            lock.acquire()
            session.lock = lock
            try:
                yield session
            finally:
                with contextlib.suppress(StatementFailed, TenantError):
                    lock.release()


def _managed(*names: str) -> bool:
    """Whether the reconciler can name an object: not Snowflake's own schema, and no lower-case letter
    (which only a quoted name can hold; see the module's docstring)."""
    return names[0] not in CATALOG_SCHEMAS and all(name == name.upper() for name in names)


def _read_name(name: str) -> str:
    """A name as the landscape spells it: Snowflake's upper case, lower."""
    return name.lower()


def _type_sql(data_type: str, length: int | None, precision: int | None, scale: int | None) -> str:
    """A column's type as information_schema gives it, as a declaration: NUMBER with its precision and
    scale, TEXT as VARCHAR with its length (none when it is the default, the maximum), the rest by name."""
    if data_type == "NUMBER" and precision is not None:
        return f"NUMBER({precision},{scale or 0})"
    if data_type == "TEXT":
        return "VARCHAR" if length in (None, UNLIMITED_VARCHAR) else f"VARCHAR({length})"
    return data_type


def _views(connection) -> dict[tuple[str, str], str]:
    """Each view's text as Snowflake keeps it (the statement that made it), by its upper-case names."""
    return {(schema, name): text for schema, name, text in connection.execute(
        "SELECT table_schema, table_name, view_definition FROM information_schema.views ORDER BY 1, 2").fetchall()
        if _managed(schema, name)}


def _private_key(pem: str, tenant: str):
    """The key pair's private key, PEM without a passphrase, as the connector takes it; a key that is no
    such key is said without its text."""
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise TenantError(f"tenant {tenant}: its {PRIVATE_KEY} is no PEM private key without a passphrase") from None


def _without(message: str, arguments: Mapping) -> str:
    """A connector's message with any secret it was given blanked (it never should hold one)."""
    for name in ("password",):
        value = arguments.get(name)
        if value:
            message = message.replace(str(value), "***")
    return message


__all__ = ["SnowflakeAdapter", "SnowflakeCompiler"]
