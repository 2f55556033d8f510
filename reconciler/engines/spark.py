"""A Spark SQL tenant over Spark Connect (`sc://host:port`, the protocol Databricks Connect speaks).

Owns reading a Spark catalog's schemas, tables (their format and the properties that decide what
alters in place) and views through one Spark Connect session, and compiling changes into Spark SQL
for the tenant's table format (`USING parquet`, or `USING delta` with column mapping and column
defaults). Spark SQL has no transactions (`BEGIN` is a syntax error) and its DDL commits statement
by statement, so this adapter is a `JournaledAdapter`: the executor applies to it with the
journaled protocol (`apply/journaled.py`); this module gives that protocol its tenant lock (`TableLock`),
a table's definition, a Delta table's restore point in its own history and a digest of a table's
rows; its session (`spark_session.py`) reads what other sessions committed and says when the endpoint
stops answering. Parquet tables keep
neither NOT NULL nor a primary key, Delta tables no primary key: the desired state is rendered
without them (`sql.ENGINE_DROPS`), so plans converge. Never decides what to change; writes only
what the executor hands it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

from .. import secrets
from ..desired import column_types, sql
from ..errors import TenantError
from ..model import ObjectKey
from ..plan import Change, Refusal
from ..state import Addition, DesiredState, LiveObject, LiveState, ObjectState
from . import catalog
from .contract import Session, StatementFailed, Unprovable
from .ddl import Compiler
from .journaled_contract import JournaledAdapter
from .spark_catalog import (
    COLUMN_DEFAULTS,
    COLUMN_MAPPING,
    COMMIT_TAG,
    DELTA,
    ENGINE,
    PROPERTY,
    USER_METADATA,
    _analyzed,
    _assignments,
    _history,
    _listed,
    delta_comment,
    foreign_commits,
    lost_versions,
    set_by_hand,
)
from .spark_lock import _STOPPED, TableLock
from .spark_session import SparkConnectSession
from .stores import BACKUP_SCHEMA

IGNORE_MISSING_FILES = "spark.sql.files.ignoreMissingFiles"
CONNECT_TIMEOUT = 10   # seconds to reach the endpoint at all (the client alone retries for 10 minutes)
RETRIES = 4            # the client's retries of a failed call: about 4 s in all

# A Spark Connect session's __del__ closes its client, and closing any client shuts down the thread
# pool every client of the process shares (pyspark 4.0, `ExecutePlanResponseReattachableIterator`).
# Run by the garbage collector inside another session's call, that shutdown waits on a lock the
# call holds: the process hangs. Sessions this module stopped are therefore kept until exit.
class SparkCompiler(Compiler):
    """What each table format alters in place; anything else is a rebuild (copy, prove every value
    arrived, swap), as on the other engines when they cannot. Parquet: an added column and a default.
    Delta (created with column mapping and column defaults): also a renamed or dropped column and a
    dropped NOT NULL; a column is added in place only without a default or NOT NULL (Delta refuses
    both in ADD COLUMN; a default set after it would leave existing rows NULL, where the other
    engines give them the default), and on a table made without those features only what Delta
    allows it."""

    engine = ENGINE

    def create_table(self, key: ObjectKey, want, name: str | None = None, key_constraint: str | None = None) -> str:
        """`want` desired, or a live table to re-create as it was (compensation): then with its comments and
        every property a user set on it."""
        target = sql.qualified(key.schema, name, self.engine) if name else self.qk(key)
        properties = _created_properties(want)
        given = f" TBLPROPERTIES ({_assignments(properties)})" if properties else ""
        comment, commented = _comments(want)
        columns = ", ".join(self.column_sql(c) + (f" COMMENT {self.text(commented[c.name])}" if c.name in commented
                                                  else "") for c in want.columns)
        return (f"CREATE TABLE {target} ({columns}) USING {want.table_format or 'parquet'}"
                f"{f' COMMENT {self.text(comment)}' if comment else ''}{given}")

    def text(self, value: str) -> str:
        return sql.literal(value).sql(self.engine)

    def alters_in_place(self, change: Change, want, found: LiveObject) -> bool:
        delta = found.table_format == DELTA
        properties = dict(found.properties)
        mapped = properties.get(COLUMN_MAPPING) in ("name", "id")
        defaults = properties.get(COLUMN_DEFAULTS) in ("supported", "enabled")
        for detail in change.details:
            if detail.field == f"properties.{COLUMN_MAPPING}" and properties.get(COLUMN_MAPPING, "none") != "none":
                return False   # Delta changes a mode only from none (DELTA_UNSUPPORTED_COLUMN_MAPPING_MODE_CHANGE)
            if detail.column is None or detail.attribute == "comment":
                continue
            if detail.whole_column and detail.op == "add":
                if delta and (detail.after.get("default") is not None or not detail.after.get("nullable", True)):
                    return False
            elif detail.attribute == "default":
                if delta and not defaults:
                    return False
            elif not (delta and ((mapped and (detail.op == "rename" or (detail.whole_column and detail.op == "drop")))
                                 or (detail.attribute == "nullable" and detail.after is True))):
                return False
        return True

    @staticmethod
    def carried_over(found: LiveObject | None, want, change: Change) -> tuple[list[Addition], list[str]]:
        """Each property a DBA set, set on the new table under the name it ends with (a rebuild may follow
        a rename, which leaves the table it renames no additions). A Delta table's own (`delta.*`) means
        nothing on a table of another format: a table feature (`delta.feature.*`, what its protocol
        supports, listed for a column's type too) goes with the format; any other (a setting) refuses the
        rebuild, named."""
        given = set_by_hand(found.key, found.properties) if found is not None else ()
        carried = [a for a in given if want.table_format == DELTA or not a.what.startswith(f"{PROPERTY}delta.")]
        return carried, [f"{a.what} (Delta's, and the new table is {want.table_format})" for a in given
                         if a not in carried and not a.what.startswith(f"{PROPERTY}delta.feature.")]

    def restore_statements(self, table: ObjectKey, backup: str, columns: Sequence[str]) -> list[str]:
        """No DELETE on a parquet table: the rows are overwritten in one statement."""
        listed = ", ".join(self.q(c) for c in columns)
        return [f"INSERT OVERWRITE TABLE {self.qk(table)} ({listed}) SELECT {listed} "
                f"FROM {self.qk(ObjectKey(BACKUP_SCHEMA, backup))}"]

    def alter_table(self, key: ObjectKey, change: Change) -> list[str]:
        """A property the table format asks for, edited by hand, is set back first (column mapping decides
        what alters in place). Spark keeps the YAML's descriptions as comments
        (`sql.DESCRIPTIONS_AS_COMMENTS`): set after the columns are, so an added or renamed column has its
        comment too."""
        properties = {d.field.removeprefix("properties."): d.after for d in change.details
                      if d.field.startswith("properties.")}
        given = [f"ALTER TABLE {self.qk(key)} SET TBLPROPERTIES ({_assignments(properties)})"] if properties else []
        comments = []
        for detail in change.details:
            if detail.field == "comment":
                comments.append(f"COMMENT ON TABLE {self.qk(key)} IS {self.text(detail.after or '')}")
            elif detail.attribute == "comment":
                comments.append(f"ALTER TABLE {self.qk(key)} ALTER COLUMN {self.q(detail.column)} "
                                f"COMMENT {self.text(detail.after or '')}")
        return [*given, *super().alter_table(key, change), *comments]

    def unless(self, condition: str, message: str) -> str:
        return f"SELECT CASE WHEN {condition} THEN 1 ELSE raise_error({sql.literal(message).sql(self.engine)}) END"

    def unchanged_since_copy(self, key: ObjectKey, copy: str, pairs: Sequence[tuple[str, str, str]]) -> list[str]:
        """Spark keeps no other writer off the table between the proof and the swap: just before the DROP
        the table is read again, fresh (`SparkConnectSession.fresh`), and its row count and digest must still be
        the proven copy's, every value of the copy cast back to its old type; else the apply stops there,
        the table not dropped. Count and digest, not the proof again: one pass with no shuffle, so the
        moment it reads the table is as close to the DROP as it can be."""
        live = rows_digest(self.qk(key), [(old, old_type) for _, old, old_type in pairs])
        copied = rows_digest(copy, [(self.cast_back(new, old_type), old_type) for new, _, old_type in pairs])
        return [self.unless(f"({live}) = ({copied})",
                            f"another session wrote to {key} after its rows were copied for this rebuild (its row "
                            "count or content is no longer that of the proven copy), so it was not dropped")]

    def misfit(self, column: str, new: str, old: str) -> str:
        """A cast to CHAR(n) or VARCHAR(n) ignores the length here; a write does not: a longer value fails
        it or loses its trailing spaces, and a CHAR(n) pads a shorter one (read back with its padding, a
        value it changes)."""
        bound = column_types.length_bound(new, ENGINE)
        if bound is None:
            return super().misfit(column, new, old)
        kind, length = bound
        return f"(length(CAST({column} AS STRING)) {'<>' if kind == 'CHAR' else '>'} {length})"


def rows_digest(table: str, values: Sequence[tuple[str, str]]) -> str:
    """A query of one value, `(rows, digest)`: the table's row count, and the sum of each row's xxhash64
    over `values` ((SQL over its columns, its type)) and whether each is NULL (xxhash64 skips a NULL, so
    ('a', NULL) and (NULL, 'a') would hash alike); a map, which Spark does not hash, as its JSON. A sum,
    blind to row order as a table is; as DECIMAL, which a billion billion rows do not overflow."""
    hashable = [f"to_json({value})" if column_types.holds_map(kind, ENGINE) else value for value, kind in values]
    hashed = ", ".join(f"{value}, isnull({value})" for value in hashable)
    digest = f"coalesce(sum(CAST(xxhash64({hashed}) AS DECIMAL(38, 0))), 0)" if values else "0"
    return f"SELECT named_struct('rows', count(*), 'digest', {digest}) FROM {table}"


def _comments(table) -> tuple[str | None, dict[str, str]]:
    """A table's comment and its columns': a live one's (compensation), or a desired one's descriptions."""
    if isinstance(table, LiveObject):
        return table.comment, dict(table.column_comments)
    return table.definition.get("description") or None, dict(table.column_descriptions)


def _created_properties(table) -> dict[str, str]:
    """A table's properties as created: those its table format asks for (a Delta table's column mapping and
    column defaults), or, re-creating a live table (compensation), every one a user set on it."""
    return dict(table.properties)


COMPILER = SparkCompiler()


class SparkAdapter(JournaledAdapter):
    engine = ENGINE

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

        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):   # the JVM's stack on stderr
            logging.getLogger(name).disabled = True    # for every failed statement; the message is ours to say

        parts = urlsplit(self.url)
        client_url = self._client_url()   # a missing variable is named before anything connects
        try:   # a refused or unroutable endpoint is said at once, not after the client's retries
            socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_TIMEOUT).close()
            session = SparkSession.builder.remote(client_url).create()
        except Exception as error:  # noqa: BLE001 - the client raises many kinds; one message for the user
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            raise TenantError(f"tenant {self.tenant.name}: cannot reach {self.describe()}: "
                              f"{reason.strip().splitlines()[0]}") from None
        session.client.set_retry_policies([DefaultPolicy(max_retries=RETRIES)])
        try:
            yield SparkConnectSession(session, self)
        finally:
            session.stop()
            _STOPPED.append(session)

    def _client_url(self) -> str:
        """The url the client connects with: each `name=env:VARIABLE` parameter (`;token=env:NAME`)
        given its value, which is handed to the client and never printed or stored."""
        base, _, parameters = self.url.partition("/;")
        if not parameters:
            return self.url
        resolved = []
        for parameter in parameters.split(";"):
            name, _, value = parameter.partition("=")
            if value.startswith("env:"):
                value = secrets.resolve(value, f"tenant {self.tenant.name}")
            resolved.append(f"{name}={value}")
        return f"{base}/;{';'.join(resolved)}"

    def engine_objects(self, connection) -> tuple[dict[ObjectKey, LiveObject], frozenset[str]]:
        """One SHOW TABLE EXTENDED per schema (every object, a view's original text and, for a view
        of plain types, its columns); the analyzer for a table's columns and defaults."""
        schemas = frozenset(row[0] for row in connection.sql("SHOW NAMESPACES").collect()
                            if not row[0].lower().startswith("_reconciler"))
        objects: dict[ObjectKey, LiveObject] = {}
        for schema in sorted(schemas):
            for name, listed in _listed(connection, schema).items():
                key = ObjectKey(schema, name)
                comment = listed.comment
                if listed.provider == DELTA and not listed.view:
                    with contextlib.suppress(StatementFailed):   # gone since the listing: the analyzer says so
                        comment = delta_comment(connection, key)
                found = (LiveObject(key, "View", listed.columns, engine_sql=listed.text) if listed.columns is not None
                         else _analyzed(connection, key, listed.view, listed.text, listed.provider, comment))
                if found is not None:
                    objects[key] = found
        return objects, schemas

    def backup_name(self, table: ObjectKey, run_id: str) -> str:
        """Spark names hold letters, digits and underscores only: `schema__table__run`."""
        name = "".join(c if c.isalnum() or c == "_" else "_" for c in f"{table.schema}__{table.name}__{run_id}")
        return name if len(name) <= 120 else f"{name[:100]}_{hashlib.sha256(name.encode()).hexdigest()[:16]}"

    def restore_point(self, session: Session, found: LiveObject, run_id: str, rewritten: bool) -> str:
        """A Delta table the run alters in place (nothing lost) is put back from its own history, the
        version it has now: no copy of a lakehouse table for an added column. Anything else, and a
        Delta table the run drops, renames away or loses data in, from a copy."""
        newest = _history(session, found.key, 1) if found.table_format == DELTA and not rewritten else []
        if not newest:   # not Delta, or a history that says nothing: a copy
            return super().restore_point(session, found, run_id, rewritten)
        return f"{catalog.HISTORY_POINT}{newest[0]['version']}"

    def definition(self, found: LiveObject) -> str:
        return COMPILER.create_table(found.key, found)

    def rows_digest(self, session: Session, key: ObjectKey, columns: Sequence[tuple[str, str]]) -> tuple[int, str]:
        table = sql.qualified(key.schema, key.name, ENGINE)
        query = rows_digest(table, [(f"TRY_CAST({sql.quote(name, ENGINE)} AS {kind})", kind) for name, kind in columns])
        session.fresh(query)
        [(found,)] = session.execute(query)
        return int(found[0]), str(found[1])

    def restore_from_history(self, session: Session, before: catalog.Before, run_id: str) -> None:
        """RESTORE TABLE ... TO VERSION AS OF the journaled version, unless a commit since then is
        another writer's (`foreign_commits`): restoring would undo it, so it is left for a person. A table
        with no commit of a run's kind since (a run killed before it reached the table) is left as it is:
        the run wrote nothing there, and another writer's commits since are that writer's to keep."""
        table = sql.qualified(before.key.schema, before.key.name, ENGINE)
        restore = f"RESTORE TABLE {table} TO VERSION AS OF {before.version}"
        newest = max((row["version"] for row in _history(session, before.key, 1)), default=-1)
        if newest == before.version:
            return
        if newest < before.version:   # dropped and made again since: not the table that was journaled
            raise StatementFailed(restore, f"not run: the history of {before.key} ends at version {newest}, "
                                  f"before the journaled version {before.version}")
        since = _history(session, before.key, newest - before.version)
        foreign = foreign_commits(since, before.version, run_id)
        if len(foreign) == len([row for row in since if row["version"] > before.version]):   # none is a run's
            return
        if foreign:
            raise StatementFailed(restore, f"not run: {before.key} was written by another since version "
                                  f"{before.version} ({'; '.join(foreign)}), which restoring would undo; run it "
                                  "by hand once that is acceptable, or put the table back otherwise")
        session.execute(restore)

    def rows_at(self, session: Session, key: ObjectKey, version: int) -> int:
        return session.count(f"SELECT count(*) FROM {sql.qualified(key.schema, key.name, ENGINE)} "
                             f"VERSION AS OF {int(version)}")

    def history_lost(self, reading: Session, key: ObjectKey, versions: Sequence[int]) -> dict[int, str]:
        try:
            return lost_versions(_history(reading, key, None), versions)
        except StatementFailed as unreadable:   # no longer a Delta table, or gone: nothing of it restores
            return {version: unreadable.message for version in versions}

    def rewind(self, session: Session, key: ObjectKey, version: int, newest: int,
               writing: Callable[[], None]) -> None:
        """RESTORE TABLE, one commit: Delta refuses it when a file the version reads is gone, unless the
        session ignores missing files (then it would restore partly: refused here)."""
        table = sql.qualified(key.schema, key.name, ENGINE)
        restore = f"RESTORE TABLE {table} TO VERSION AS OF {int(version)}"
        if session.connection.conf.get(IGNORE_MISSING_FILES, "false").lower() == "true":
            raise StatementFailed(restore, f"not run: the session sets {IGNORE_MISSING_FILES}=true, with which "
                                  "Delta restores what files are left and skips the rest")
        now = max((row["version"] for row in _history(session, key, 1)), default=-1)
        if now != newest:
            raise StatementFailed(restore, f"not run: {key} is at version {now}, not {newest} as when the rollback "
                                  f"read it under the lock: another writer committed since, and restoring would "
                                  "undo that unseen")
        writing()
        session.execute(restore)

    def lock_holder(self) -> dict[str, str] | None:
        with self.reading() as reading:
            _, holder = TableLock(reading, {}, self.describe()).newest()
        return holder if holder and holder.get("released") != "true" else None

    # -- proving -----------------------------------------------------------------------------
    def prove_in(self, reading: Session, changes: Sequence[Change], views: Sequence[ObjectKey],
                 reads: Mapping[str, Sequence[str]]) -> list[Refusal]:
        """Spark runs no DDL that can be rolled back, so nothing is run: each statement is planned by
        EXPLAIN on the endpoint, which analyses it against the catalog as it is (names, columns, types,
        functions, what a table's format supports) and runs nothing. A statement naming what an earlier
        statement of the plan changes (or a change the plan blocks) would be analysed against what it
        was, so it is not proven, nor is the rest of its change, nor any view left in place that reads
        what the plan changes: all said (`Unprovable`, with the refusals found), never guessed."""
        refusals, unproven, changed = [], [], set()
        for change in changes:
            if change.conflict:   # blocked: what reads it waits for it, and is not proven either
                changed.add((change.key.schema.lower(), change.key.name.lower()))
            proving = True
            for statement in change.statements:
                if proving and sql.depends_on(statement, ENGINE) & changed:
                    unproven.append(change.object)
                    proving = False
                if proving:
                    refused = _explained(reading, statement)
                    if refused is not None:
                        refusals.append(Refusal(object=change.object, statement=statement, message=refused))
                        proving = False
                changed.update((schema.lower(), name.lower()) for schema, name in
                               sql.written_objects(statement, ENGINE)[0])
        unproven += [str(view) for view in views]
        if unproven:
            raise Unprovable(f"by EXPLAIN, which sees none of the plan's own changes: {_some(unproven)} read or "
                             f"change what an earlier statement of this plan changes (Spark cannot run the plan "
                             f"and roll it back; the apply is its proof)", refusals)
        return refusals

    # -- compiling ---------------------------------------------------------------------------
    def compile(self, changes: Sequence[Change], desired: DesiredState, live: LiveState) -> list[Change]:
        compiled = COMPILER.compile(changes, desired, live)
        lacking = dict(live.unavailable_formats)
        return [_blocked(change, desired.objects.get(change.key), lacking) for change in compiled] if lacking \
            else compiled

    def restore_statements(self, table: ObjectKey, backup: str, columns: Sequence[str]) -> list[str]:
        return COMPILER.restore_statements(table, backup, columns)

    def rebuilds(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> bool:
        return COMPILER.rebuilds(change, want, found)

    # -- writing -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked_session(self, create: bool, holder: Mapping[str, str] | None = None) -> Iterator[Session]:
        """One Spark Connect session holding the tenant's `TableLock`; released when it ends (a
        process killed meanwhile leaves it to be taken over: see `TableLock`)."""
        with self.reading() as session:
            lock = TableLock(session, dict(holder or {}), f"tenant {self.tenant.name} ({self.describe()})",
                             self.lock_timeout)
            lock.acquire()
            session.lock = lock
            if holder and holder.get("run_id"):   # every Delta commit of the run says whose it is (`foreign_commits`)
                session.connection.conf.set(USER_METADATA, f"{COMMIT_TAG}{holder['run_id']}")
            try:
                yield session
            finally:
                with contextlib.suppress(StatementFailed, TenantError):
                    lock.release()


# Delta's names of the commits a journaled run makes on a table it alters in place (and a compensation's
# own RESTORE, should one be retried): any other commit since the restore point is another writer's. A
# run sets no property but one its table format asks for, back as the table was made, so another writer's
# SET TBLPROPERTIES of anything else stops a RESTORE as well (`spark_catalog.foreign_commits`).
def _blocked(change: Change, want, lacking: Mapping[str, str]) -> Change:
    """A change that would make a table in a format the endpoint lacks: refused at plan time, not
    failed at apply."""
    if want is None or want.kind != "Table" or want.table_format not in lacking or not change.statements:
        return change
    return change.model_copy(update={"conflict": True, "statements": (), "checks": (), "reason": (
        f"{change.reason}; blocked: table_format is {want.table_format}, and this Spark endpoint has no "
        f"{want.table_format} tables ({lacking[want.table_format]}); give the Spark session Delta Lake, or set "
        "table_format to parquet")})


PLANNING_FAILED = "Error occurred during query planning:"   # how EXPLAIN answers for a statement it refuses


def _explained(reading: Session, statement: str) -> str | None:
    """What Spark says planning `statement` (EXPLAIN, which runs nothing) fails on, as it may be shown;
    None when it plans."""
    try:
        said = " ".join(str(row[0]) for row in reading.execute(f"EXPLAIN {statement}"))
    except StatementFailed as failure:   # a statement EXPLAIN cannot even read
        return failure.message
    if not said.strip().startswith(PLANNING_FAILED):
        return _unnamed_output(reading, statement)
    message, state, rest = said.strip().removeprefix(PLANNING_FAILED).strip().partition("SQLSTATE: ")
    # what follows the SQLSTATE is the statement's analysed plan: Spark's internals, not the reason
    return StatementFailed.engine(statement, Exception(f"{message}{state}{rest[:5]}")).message


AUTO_NAMED = "__autoGeneratedAlias"   # the metadata Spark keeps on a column whose name it made up


def _unnamed_output(reading: Session, statement: str) -> str | None:
    """A permanent view whose output carries a name Spark made up is refused when it is created, which
    EXPLAIN does not reach: its query's analysed columns (analysis runs nothing) say so beforehand."""
    query = sql.permanent_view_query(statement, ENGINE)
    if query is None:
        return None
    try:
        fields = reading.connection.sql(query).schema.fields
    except Exception:  # noqa: BLE001 - EXPLAIN analysed the statement; what the query alone says is no more
        return None
    unnamed = [field.name for field in fields if (field.metadata or {}).get(AUTO_NAMED)]
    if not unnamed:
        return None
    return (f"[CREATE_PERMANENT_VIEW_WITHOUT_ALIAS] Spark refuses a permanent view whose column {unnamed[0]} "
            "is named by Spark itself (an expression without an alias, here or in what the view selects from): "
            "give it an alias where it is computed")   # names from the statement's own text: nothing to hide


def _some(names: Sequence[str], shown: int = 5) -> str:
    """`a, b, c and 97 more`: a plan line stays readable whatever the plan's size."""
    listed = ", ".join(names[:shown])
    return f"{listed} and {len(names) - shown} more" if len(names) > shown else listed


__all__ = ["SparkAdapter", "SparkCompiler"]
