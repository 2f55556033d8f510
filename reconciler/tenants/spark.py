"""A Spark SQL tenant over Spark Connect (`sc://host:port`, the protocol Databricks Connect speaks).

Owns reading a Spark catalog's schemas, tables and views through one Spark Connect session, and
compiling changes into Spark SQL (tables `USING parquet`). Spark SQL has no transactions (`BEGIN`
is a syntax error) and its DDL commits statement by statement, so this adapter is not
`transactional`: it validates, plans and shows drift and status, and the executor refuses to
apply to it until the journaled protocol such engines need exists. Parquet tables keep neither
NOT NULL nor a primary key: the desired state is rendered without them (`sql.ENGINE_DROPS`), so
plans converge. Never decides what to change; never writes.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from .. import sql
from ..errors import TenantError
from ..model import ObjectKey, Tenant
from ..plan import Change
from ..state import ColumnState, DesiredState, LiveObject, LiveState
from .base import Adapter, Session, StatementFailed
from .ddl import Compiler

ENGINE = "spark"
CONNECT_TIMEOUT = 10   # seconds to reach the endpoint at all (the client alone retries for 10 minutes)
RETRIES = 4            # the client's retries of a failed call: about 4 s in all

class SparkCompiler(Compiler):
    engine = ENGINE

    def create_table(self, key: ObjectKey, want, name: str | None = None, key_constraint: str | None = None) -> str:
        target = sql.qualified(key.schema, name, self.engine) if name else self.qk(key)
        return f"CREATE TABLE {target} ({', '.join(self.column_sql(c) for c in want.columns)}) USING parquet"


COMPILER = SparkCompiler()


class SparkAdapter(Adapter):
    engine = ENGINE
    transactional = False

    def __init__(self, tenant: Tenant, repo: Path, lock_timeout: float = 0):
        self.tenant = tenant
        self.url = tenant.url

    @property
    def exists(self) -> bool:
        return True    # a Spark catalog is there as long as its endpoint answers

    def describe(self) -> str:
        parts = urlsplit(self.url)
        return urlunsplit((parts.scheme, parts.netloc, parts.path.split(";")[0], "", ""))

    # -- reading -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise TenantError(f"tenant {self.tenant.name}: a Spark Connect tenant needs pyspark's Spark Connect "
                              "client: pip install 'reconciler[spark]'") from None
        from pyspark.sql.connect.client.retries import DefaultPolicy

        parts = urlsplit(self.url)
        try:   # a refused or unroutable endpoint is said at once, not after the client's retries
            socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT).close()
            session = SparkSession.builder.remote(self.url).create()
        except Exception as error:  # noqa: BLE001 - the client raises many kinds; one message for the user
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise TenantError(f"tenant {self.tenant.name}: cannot reach {self.describe()}: "
                              f"{reason.strip().splitlines()[0]}") from None
        session.client.set_retry_policies([DefaultPolicy(max_retries=RETRIES)])
        try:
            yield _SparkSession(session, self)
        finally:
            session.stop()

    def engine_objects(self, connection) -> tuple[dict[ObjectKey, LiveObject], frozenset[str]]:
        """One listing per schema, then each table's columns (and a view's original text)."""
        schemas = frozenset(row[0] for row in connection.sql("SHOW NAMESPACES").collect()
                            if not row[0].lower().startswith("_reconciler"))
        objects: dict[ObjectKey, LiveObject] = {}
        for schema in sorted(schemas):
            for table in connection.catalog.listTables(schema):
                if table.isTemporary:
                    continue
                key = ObjectKey(schema, table.name)
                qualified = sql.qualified(schema, table.name, ENGINE)
                columns = tuple(ColumnState(row.col_name, sql.engine_type(row.data_type, ENGINE), True, None)
                                for row in _described(connection.sql(f"DESCRIBE TABLE {qualified}").collect()))
                if table.tableType == "VIEW":
                    described = json.loads(connection.sql(f"DESCRIBE TABLE EXTENDED {qualified} AS JSON")
                                           .collect()[0][0])
                    objects[key] = LiveObject(key, "View", columns, engine_sql=described.get("view_original_text"))
                else:
                    objects[key] = LiveObject(key, "Table", columns)
        return objects, schemas

    def prove_in(self, reading: Session, changes: Sequence[Change], views: Sequence[ObjectKey],
                 reads) -> list:
        return []   # no shadow: Spark SQL cannot roll a statement back

    # -- compiling ---------------------------------------------------------------------------
    def compile(self, changes: Sequence[Change], desired: DesiredState, live: LiveState) -> list[Change]:
        return COMPILER.compile(changes, desired, live)

    # -- writing -----------------------------------------------------------------------------
    def session(self, create: bool, holder=None):
        raise TenantError(f"tenant {self.tenant.name}: Spark SQL commits every statement on its own; the journaled "
                          "apply it needs is not built yet, so nothing is written to it")


def _described(rows) -> Iterator:
    """DESCRIBE's column rows: they end where its partition and detail sections begin."""
    for row in rows:
        if not row.col_name or row.col_name.startswith("#"):
            return
        yield row


class _SparkSession(Session):
    """A read session: Spark SQL statements on one Spark Connect session; no transactions."""

    engine = ENGINE

    def __init__(self, connection, adapter: SparkAdapter):
        self.connection = connection
        self.adapter = adapter

    def begin(self) -> None:
        raise TenantError("Spark SQL has no transactions")

    commit = rollback = begin

    def execute(self, statement: str, parameters: Sequence | None = None) -> list[tuple]:
        try:
            return [tuple(row) for row in self.connection.sql(statement, args=list(parameters or ()) or None)
                    .collect()]
        except Exception as error:  # noqa: BLE001 - pyspark raises its own tree; the statement says which
            raise StatementFailed(statement, str(error).strip().splitlines()[0]) from None

    def executemany(self, statement: str, rows: Sequence[Sequence]) -> None:
        for row in rows:
            self.execute(statement, row)

    def table_columns(self, schema: str, table: str) -> list[str]:
        if not self.connection.catalog.tableExists(f"{schema}.{table}"):
            return []
        return [row.col_name for row in _described(
            self.connection.sql(f"DESCRIBE TABLE {sql.qualified(schema, table, ENGINE)}").collect())]

    def engine_sql(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, str]:
        objects, _ = self.adapter.engine_objects(self.connection)
        return {key: objects[key].engine_sql for key in keys if key in objects and objects[key].engine_sql}


__all__ = ["SparkAdapter", "SparkCompiler"]
