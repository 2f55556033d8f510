"""One Spark Connect session as the reconciler's `Session`.

Owns running statements on a Spark Connect session (Spark SQL has no transactions and no UPDATE or
DELETE on parquet tables: the catalog appends only), reading what other sessions committed (`fresh`),
and turning an endpoint that stops answering into `EndpointLost`, never the client's own error. Never
decides what a statement is; the adapter (`spark.py`) and the executor hand them over.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence

from ..desired import sql
from ..model import ObjectKey
from ..sessions import EndpointLost
from ..state import LiveState
from .contract import Adapter, Session, StatementFailed
from .spark_catalog import ENGINE, _analyzed, _left_folder, _listed, _Recorded, _unavailable_formats
from .spark_lock import TableLock
from .stores import APPEND_ONLY


class SparkConnectSession(Session):
    """Spark SQL statements on one Spark Connect session; no transactions, and no UPDATE or DELETE
    on parquet tables (the catalog appends only)."""

    engine = ENGINE
    catalog_store = APPEND_ONLY   # parquet tables: no UPDATE or DELETE

    def __init__(self, connection, adapter: Adapter):
        self.connection = connection
        self.adapter = adapter
        self.lock: TableLock | None = None   # an apply's session holds one

    def inspect(self) -> LiveState:
        """As every session inspects, each question put to Spark and its answer hashed in order into the
        state's `digest` (`snapshot`): the adapter reads through a `_Recorded` session, which answers only
        what inspecting asks."""
        connection = self.connection
        with self._answering("reading the catalog"):
            live, digest = self.inspected_through(_Recorded(connection))
            # the probe's answer, not its text: EXPLAIN of a format the endpoint has names fresh expression ids
            # and paths each time, which would make every digest new and no plan ever recalled
            lacking = _unavailable_formats(connection)
        digest.update(repr(("unavailable formats", lacking)).encode() + b"\n")
        return dataclasses.replace(live, unavailable_formats=lacking, digest=digest.hexdigest())

    def hold(self) -> None:
        if self.lock is not None:
            self.lock.renew()

    def fresh(self, statement: str) -> None:
        """Spark keeps each table's file listing per session from the first time it read it (here: when the
        plan inspected it), so the rows another session commits since are not seen until REFRESH TABLE: a
        copy, a proof or a guard would read the table as it was. Each table a query reads is refreshed just
        before it (one that is not there is left for the statement to name)."""
        for schema, name in sorted(sql.rows_read(statement, ENGINE)):
            try:
                self.execute(f"REFRESH TABLE {sql.qualified(schema, name, ENGINE)}")
            except EndpointLost:
                raise
            except StatementFailed:
                pass

    @contextlib.contextmanager
    def read_only(self) -> Iterator[None]:
        """Spark SQL has no read-only transaction (nor any): what confines a check here is the policy at
        validate (`policy.py`), which lets a check be one query, with no statement or clause that writes,
        calling only functions of the allowlist (none that reaches beyond its inputs: `reflect`,
        `java_method`, ...); nothing here could stop what it let through."""
        yield

    def execute(self, statement: str, parameters: Sequence | None = None) -> list[tuple]:
        try:
            with self._answering(statement):
                return [tuple(row) for row in self.connection.sql(statement, args=list(parameters or ()) or None)
                        .collect()]
        except EndpointLost:
            raise
        except Exception as error:  # noqa: BLE001 - pyspark raises its own tree; the statement says which
            folder = _left_folder(error)
            if folder is not None:
                raise StatementFailed(statement, folder) from None
            raise StatementFailed.engine(statement, error) from None

    @contextlib.contextmanager
    def _answering(self, what: str) -> Iterator[None]:
        """EndpointLost, naming what was asked, when the endpoint stopped answering: the client gave up
        retrying (what it retries is a server that is unavailable); any other error as raised."""
        from pyspark.errors import RetriesExceeded

        try:
            yield
        except RetriesExceeded as error:
            raise EndpointLost(what, f"{self.adapter.describe()} stopped answering: "
                               f"{StatementFailed.engine(what, error).message}") from None

    def executemany(self, statement: str, rows: Sequence[Sequence]) -> None:
        for row in rows:
            self.execute(statement, row)

    def insert(self, table: str, rows: Sequence[Sequence]) -> None:
        """All rows in one write (a statement per row would be a Spark job each)."""
        if not rows:
            return
        try:
            with self._answering(f"INSERT INTO {table} ({len(rows)} rows)"):
                frame = self.connection.createDataFrame([tuple(row) for row in rows],
                                                        schema=self.connection.table(table).schema)
                frame.write.insertInto(table)
        except EndpointLost:
            raise
        except Exception as error:  # noqa: BLE001 - pyspark raises its own tree
            raise StatementFailed.engine(f"INSERT INTO {table} ({len(rows)} rows)", error) from None

    def tables(self, schema: str) -> list[str]:
        listing = f"SHOW TABLES IN {sql.quote(schema, ENGINE)}"
        with self._answering(listing):
            if not self.connection.catalog.databaseExists(schema):
                return []
            return [row.tableName for row in self.connection.sql(listing).collect() if not row.isTemporary]

    def table_columns(self, schema: str, table: str) -> list[str]:
        if table.lower() not in {name.lower() for name in self.tables(schema)}:   # Spark folds names
            return []
        with self._answering(f"DESCRIBE {schema}.{table}"):
            found = _analyzed(self.connection, ObjectKey(schema, table), False)
        return [column.name for column in found.columns] if found else []

    def engine_sql(self, keys: Sequence[ObjectKey]) -> dict[ObjectKey, str]:
        texts = {}
        for schema in {key.schema for key in keys}:
            with self._answering(f"SHOW TABLE EXTENDED IN {schema}"):
                listed = _listed(self.connection, schema)
            texts.update({ObjectKey(schema, name): found.text for name, found in listed.items() if found.text is not None})
        return {key: texts[key] for key in keys if key in texts}
