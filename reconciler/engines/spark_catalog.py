"""Reading a Spark catalog: a schema's tables and views from one SHOW TABLE EXTENDED, each table's
columns, defaults, format and properties from the analyzer, the table formats an endpoint lacks, a
Delta table's history and the commits in it that are not ours.

Owns those reads and the connections inspection reads through (`_Recorded` hashes every row it reads
into the live state's digest; `_Answered` answers only what inspecting asks). Never writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import NamedTuple
from urllib.parse import urlsplit, urlunsplit

from ..desired import column_types, sql
from ..errors import TenantError
from ..model import ObjectKey
from ..state import Addition, ColumnState, LiveObject
from . import catalog
from .contract import Session, StatementFailed

ENGINE = "spark"
DELTA = "delta"
COLUMN_MAPPING = "delta.columnMapping.mode"           # 'name' or 'id': columns renamed and dropped in place
COLUMN_DEFAULTS = "delta.feature.allowColumnDefaults"  # 'supported': a column's default set in place
CREATED_DELTA = dict(sql.TABLE_PROPERTIES[(ENGINE, DELTA)])   # what a Delta table is created with
# What SHOW TBLPROPERTIES may list that no user set: the engine keeps it itself (Delta's protocol versions and
# column ids follow from the features and columns a table has, and the legacy writer features appendOnly and
# invariants are listed on every table whose protocol lists features; the metastore's time of the last DDL;
# the properties Spark reserves, which no TBLPROPERTIES may set: a table's comment is read as its comment).
ENGINE_KEPT_PROPERTIES = frozenset({"delta.minReaderVersion", "delta.minWriterVersion",
                                    "delta.columnMapping.maxColumnId", "delta.feature.appendOnly",
                                    "delta.feature.invariants", "transient_lastDdlTime",
                                    "owner", "provider", "location", "comment", "external", "is_managed_location"})
IMPLIED_FEATURES = {"delta.feature.columnMapping": COLUMN_MAPPING}   # listed because that property is set


OWN_OPERATIONS = frozenset({"ADD COLUMNS", "CHANGE COLUMN", "DROP COLUMNS", "RENAME COLUMN", "RESTORE"})
SET_PROPERTIES = "SET TBLPROPERTIES"   # a run's own only when it sets a property back as a Delta table is made


# Every commit a run's session makes carries this in Delta's commit metadata, with the run's id: the writes
# a run makes besides its schema changes (a data flow's INSERT) are told from another writer's by it: a commit
# after a run's journaled version is that run's only when tagged with that run's id. A writer who forges the
# tag of the run that is running (its id is in the audit while it runs) can have its commit put back with the
# run's; a tag of any other run, or of none, is another writer's.
USER_METADATA, COMMIT_TAG = "spark.databricks.delta.commitInfo.userMetadata", "reconciler run "


def foreign_commits(history: Sequence[Mapping], version: int, run_id: str) -> list[str]:
    """The commits after `version` (rows of DESCRIBE HISTORY) that are not the changes the run `run_id`
    makes in place (its schema changes, setting back a property the table format asks for, or any commit
    its session tagged with its id: `COMMIT_TAG`): another writer's, for people."""
    return [f"version {row['version']}: {row['operation']} by {row.get('userName') or 'an unnamed user'} at "
            f"{row.get('timestamp')}" for row in sorted(history, key=lambda row: row["version"])
            if row["version"] > version and row["operation"] not in OWN_OPERATIONS and not _sets_back(row)
            and str(row.get("userMetadata") or "") != f"{COMMIT_TAG}{run_id}"]


def _sets_back(commit: Mapping) -> bool:
    """Whether a commit set only properties a Delta table is made with, to the values it is made with (the
    history lower-cases some of their names)."""
    if commit["operation"] != SET_PROPERTIES:
        return False
    try:
        given = json.loads((commit.get("operationParameters") or {}).get("properties") or "")
    except ValueError:
        return False
    made = {name.lower(): value for name, value in CREATED_DELTA.items()}
    return bool(given) and isinstance(given, dict) and all(made.get(name.lower()) == value
                                                           for name, value in given.items())


VACUUMS = frozenset({"VACUUM START", "VACUUM END"})   # the commits of a VACUUM, which deletes files older versions read


def lost_versions(history: Sequence[Mapping], versions: Sequence[int]) -> dict[int, str]:
    """Of `versions`, those a RESTORE could not bring back whole, by the table's history (rows of DESCRIBE
    HISTORY): one its log no longer holds (past `delta.logRetentionDuration`), or one a VACUUM ran after
    (it deletes the files no current version reads once they are older than its retention, and an older
    version may read them: the history cannot say which survived, so none is trusted)."""
    held = {row["version"] for row in history}
    vacuums = sorted(row["version"] for row in history if row["operation"] in VACUUMS)
    lost = {}
    for version in versions:
        after = [v for v in vacuums if v > version]
        if version not in held:
            lost[version] = (f"version {version} is no longer in the table's history (its log keeps "
                             f"{min(held, default=0)} to {max(held, default=0)}: past the log's retention)")
        elif after:
            lost[version] = f"VACUUM ran after version {version} (at version {after[0]}): its files may be gone"
    return lost


def _history(session: Session, key: ObjectKey, newest: int | None) -> list[dict]:
    """The table's newest commits (every one its log holds: None), newest first (Delta's DESCRIBE HISTORY)."""
    limit = "" if newest is None else f" LIMIT {int(newest)}"
    try:
        return [row.asDict() for row in session.connection.sql(
            f"DESCRIBE HISTORY {sql.qualified(key.schema, key.name, ENGINE)}{limit}").collect()]
    except Exception as error:  # noqa: BLE001 - pyspark raises its own tree
        raise StatementFailed.engine(f"DESCRIBE HISTORY {key}", error) from None


def _unavailable_formats(connection) -> tuple[tuple[str, str], ...]:
    """The table formats beyond parquet that this endpoint cannot create, with its words: asked by
    EXPLAIN, which plans a CREATE TABLE without running it."""
    lacking = []
    for table_format in (DELTA,):
        said = " ".join(row[0] for row in connection.sql(
            f"EXPLAIN CREATE TABLE {catalog.CATALOG_SCHEMA}.format_probe (probe INT) USING {table_format}").collect())
        if "DATA_SOURCE_NOT_FOUND" in said:
            lacking.append((table_format, "DATA_SOURCE_NOT_FOUND"))
    return tuple(lacking)


# SHOW TABLE EXTENDED's fields, one per line; a line that starts with none of these continues the
# field before it (a view's text spans lines). A field Spark adds later is read as part of the one
# before: a view would show as drifted, never hide a drift.
_FIELDS = ("Catalog", "Database", "Namespace", "Table", "Owner", "Created Time", "Last Access", "Created By",
           "Type", "Provider", "Comment", "Location", "Serde Library", "InputFormat", "OutputFormat",
           "Partition Provider", "Partition Columns", "Bucket Columns", "Sort Columns", "Num Buckets",
           "Table Properties", "Storage Properties", "Statistics", "Collation", "View Text",
           "View Original Text", "View Schema Mode", "View Catalog and Namespace", "View Query Output Columns")
_TREE_TYPES = {"integer": "int", "long": "bigint", "short": "smallint", "byte": "tinyint"}


class _Listed(NamedTuple):
    """One object as SHOW TABLE EXTENDED lists it."""

    view: bool
    text: str | None                  # a view's original text
    columns: tuple | None             # exact only for a view of plain types; None for a table (no defaults)
    provider: str | None              # a table's format, lower case
    comment: str | None = None        # a table's comment


def _listed(connection, schema: str) -> dict[str, _Listed]:
    """Every table and view of a schema in one round trip (SHOW TABLE EXTENDED), by name."""
    found = {}
    for row in connection.sql(f"SHOW TABLE EXTENDED IN {sql.quote(schema, ENGINE)} LIKE '*'").collect():
        if row.isTemporary:
            continue
        head, _, tree = row.information.partition("\nSchema: root\n")
        fields: dict[str, str] = {}
        field = None
        for line in head.split("\n"):
            name, colon, value = line.partition(": ")
            if colon and name in _FIELDS:
                field = name
                fields[field] = value
            elif field is not None:
                fields[field] += "\n" + line
        view = fields.get("Type") == "VIEW"
        columns: list[ColumnState] | None = [] if view else None
        for line in tree.split("\n"):
            if columns is None or not line.strip():
                continue
            if not line.startswith(" |-- ") or line.startswith(" |--  "):
                columns = None   # a nested type: its exact spelling comes from the analyzer
                continue
            name, _, kind = line[len(" |-- "):].rpartition(" (nullable = ")[0].rpartition(": ")
            if kind in ("array", "map", "struct"):
                columns = None
                continue
            columns.append(ColumnState(name, column_types.engine_type(_TREE_TYPES.get(kind, kind), ENGINE), True, None))
        found[row.tableName] = _Listed(view, fields.get("View Original Text") if view else None,
                                       tuple(columns) if columns is not None else None,
                                       None if view else fields.get("Provider", "").lower() or None,
                                       None if view else fields.get("Comment"))
    return found


def delta_comment(connection, key: ObjectKey) -> str | None:
    """A Delta table's comment as its log keeps it (DESCRIBE DETAIL's description): COMMENT ON TABLE
    commits there, and the metastore's copy, which SHOW TABLE EXTENDED lists, keeps the comment the
    table was made with (seen on the test server: a changed description never converged)."""
    try:
        [row] = connection.sql(f"DESCRIBE DETAIL {sql.qualified(key.schema, key.name, ENGINE)}").collect()
    except Exception as error:  # noqa: BLE001 - pyspark raises its own tree
        raise StatementFailed.engine(f"DESCRIBE DETAIL {key}", error) from None
    return row["description"] or None


def _analyzed(connection, key: ObjectKey, view: bool, text: str | None = None,
              provider: str | None = None, comment: str | None = None) -> LiveObject | None:
    """An object's columns from the analyzer (a round trip, no job): exact types (CHAR/VARCHAR from
    their metadata) and, for a table, defaults, comments, and NOT NULL where its format keeps it (Delta; a
    parquet table's columns all take NULL); a table's properties (another round trip). None when it went
    away since it was listed."""
    from pyspark.errors import AnalysisException

    name = sql.qualified(key.schema, key.name, ENGINE)
    try:
        fields = connection.table(name).schema.fields
        properties = () if view else _properties(connection, name)
    except AnalysisException as error:
        if error.getCondition() == "TABLE_OR_VIEW_NOT_FOUND":
            return None
        raise TenantError(f"cannot read {key}: {str(error).strip().splitlines()[0]}") from None
    columns = tuple(ColumnState(
        field.name,
        column_types.engine_type(field.metadata.get("__CHAR_VARCHAR_TYPE_STRING") or field.dataType.simpleString(),
                                 ENGINE),
        field.nullable or provider != DELTA,
        None if view else sql.canonical_default(field.metadata.get("CURRENT_DEFAULT"), ENGINE)) for field in fields)
    comments = () if view else tuple((field.name, field.metadata["comment"]) for field in fields
                                     if field.metadata.get("comment"))
    return LiveObject(key, "View" if view else "Table", columns, engine_sql=text,
                      table_format=None if view else provider, properties=properties,
                      comment=None if view else comment or None, column_comments=comments,
                      additions=set_by_hand(key, properties))


PROPERTY = "table property "   # how an Addition names a property a user set: `table property owner_team`


def set_by_hand(key: ObjectKey, properties: Sequence[tuple[str, str]]) -> tuple[Addition, ...]:
    """The properties no table format asks for (a DBA's), each set on the table named `key` as it was: what
    a rebuild, which makes a new table, carries over. A table's comments are the YAML's descriptions
    (`sql.DESCRIPTIONS_AS_COMMENTS`), not a DBA's, so they are no addition."""
    table = sql.qualified(key.schema, key.name, ENGINE)
    return tuple(Addition(f"{PROPERTY}{name}", (f"ALTER TABLE {table} SET TBLPROPERTIES "
                                                f"({_assignments({name: value})})",))
                 for name, value in properties if name not in CREATED_DELTA)


def _assignments(values: Mapping[str, str]) -> str:
    """Table properties as TBLPROPERTIES lists them: 'key' = 'value', ..."""
    return ", ".join(f"{sql.literal(k).sql(ENGINE)} = {sql.literal(str(v)).sql(ENGINE)}" for k, v in values.items())


def _properties(connection, name: str) -> tuple[tuple[str, str], ...]:
    """A table's properties as a user set them, sorted, as SHOW TBLPROPERTIES lists them (Delta keeps
    them in its log and its table features, `delta.feature.*`, in its protocol, neither of which SHOW
    TABLE EXTENDED lists under Delta's catalog), less what the engine keeps itself or lists because another
    property is set (a table re-created with the rest has them again)."""
    listed = {row[0]: row[1] for row in connection.sql(f"SHOW TBLPROPERTIES {name}").collect()}
    return tuple(sorted((key, value) for key, value in listed.items() if key not in ENGINE_KEPT_PROPERTIES
                        and listed.get(IMPLIED_FEATURES.get(key, ""), "none") == "none"))


def _left_folder(error: Exception) -> str | None:
    """What to do when Spark will not make a managed table because its folder is in the warehouse
    (LOCATION_ALREADY_EXISTS: a table of that name dropped without its files, or a catalog's folder
    kept while its metastore was not). Creating the table over that folder would make its old files
    the new table's rows (an old journal, an old lock), so it is never done: the folder is named, for
    a person to remove. None for any other error."""
    condition = getattr(error, "getCondition", lambda: None)()
    if condition != "LOCATION_ALREADY_EXISTS":
        return None
    parameters = error.getMessageParameters() or {}
    location = urlsplit(parameters.get("location", "").strip("'`"))
    folder = location.path if location.scheme == "file" else urlunsplit(location)
    table = parameters.get("identifier") or "of that name"
    return (f"[LOCATION_ALREADY_EXISTS] the folder {folder} is left in the warehouse, and Spark makes no table "
            f"{table} over it; it is not read as that table's rows either: once nothing there is wanted, remove "
            "the folder and run again; the table was not made")


class _Recorded:
    """A Spark Connect session that answers only what inspecting asks (SQL, a table's schema, whether a
    schema exists), hashing every question and its whole answer, in order: nothing an adapter reads
    escapes the digest, and anything else it tries fails loudly."""

    def __init__(self, connection):
        self._connection = connection
        self.digest = hashlib.sha256()
        self.catalog = self   # `connection.catalog.databaseExists`

    def _note(self, *asked_and_answered) -> None:
        self.digest.update(repr(asked_and_answered).encode() + b"\n")

    def sql(self, statement: str, args=None) -> _Answered:
        rows = self._connection.sql(statement, args=args).collect()
        self._note(statement, args, [tuple(row) for row in rows])
        return _Answered(rows)

    def table(self, name: str):
        frame = self._connection.table(name)
        self._note("schema of", name, frame.schema.json())
        return frame

    def databaseExists(self, name: str) -> bool:  # noqa: N802 - pyspark's name
        found = self._connection.catalog.databaseExists(name)
        self._note("schema exists", name, found)
        return found


class _Answered:
    def __init__(self, rows: list):
        self._rows = rows

    def collect(self) -> list:
        return self._rows
