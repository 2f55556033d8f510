"""The documents' shape: environment.yaml and every object file, through pydantic, and what the
schema cannot say alone.

Owns environment.yaml (its name and folder, the environment it promotes from, its dialect, each tenant
listed once with a usable url), each object file (a known kind, one identity in the folder, a schema
not reserved, a table's column names, types, defaults and primary key) and the literal credentials
in any document. Never reads SQL beyond a column's default: the statements are `statements`'.
"""

from __future__ import annotations

from pydantic import ValidationError

from ... import secrets
from ...model import OBJECT_KINDS, Connection, DataFlow, Environment, MaterializedTable, ObjectKey, Table, View
from .. import column_types, policy, sql
from ..documents import Document
from .run import Run, did_you_mean
from .tenants import adapters_allowlist, dialect_exists, url_problem

SECRETS_CACHE = "secrets-1"       # findings per file blob; a new name when the secret rules change
PARAMETER_PLACES = (("rules", "parameters"), ("tenants", "*", "rules", "parameters"))   # read as written
RESERVED_SCHEMAS = ("_reconciler", "information_schema", "pg_")   # prefixes, compared case-insensitively


def environment(run: Run, known: set[str]) -> Environment | None:
    """environment.yaml, typed; None where it is missing or its shape is wrong."""
    document = run.source.environment
    if document is None:
        return None
    _secrets(run, document)
    if not isinstance(document.data, dict):
        run.report(document, "schema", "environment.yaml must be a mapping")
        return None
    try:
        environment = Environment.model_validate(document.written(*PARAMETER_PLACES))
    except ValidationError as error:
        run.pydantic(document, error, Environment)
        return None
    if environment.name != run.source.name:
        run.report(document, "environment", f"name '{environment.name}' does not match its "
                   f"folder '{run.source.name}'", "name")
    if environment.promotes_from and known and environment.promotes_from not in known:
        run.report(document, "environment", f"promotes_from names '{environment.promotes_from}', "
                   f"which is not an environment{did_you_mean(environment.promotes_from, known)}",
                   "promotes_from")
    if not dialect_exists(environment.dialect):
        run.report(document, "environment", f"unknown SQL dialect '{environment.dialect}'", "dialect")
    seen: set[str] = set()
    for index, tenant in enumerate(environment.tenants):
        if tenant.name in seen:
            run.report(document, "environment", f"tenant '{tenant.name}' is listed twice",
                       "tenants", index, "name")
        seen.add(tenant.name)
        problem = url_problem(tenant.url)
        if problem:
            run.report(document, "environment", problem, "tenants", index, "url")
        elif not policy.known(tenant.engine):
            adapters_allowlist(tenant)
        elif tenant.rules.table_format and tenant.engine not in sql.DEFAULT_TABLE_FORMAT:   # one format
            run.report(document, "environment", f"table_format is a Spark tenant's setting; tenant "
                       f"'{tenant.name}' is {tenant.engine}, whose tables have one format",
                       "tenants", index, "rules", "table_format")
    return environment


def objects(run: Run) -> dict[ObjectKey, Table | View | DataFlow | Connection]:
    """Every object file, typed, by identity; `run.documents` gets each one's document."""
    found: dict[ObjectKey, Table | View | MaterializedTable | DataFlow | Connection] = {}
    folded: dict[ObjectKey, ObjectKey] = {}
    for document in run.source.objects:
        _secrets(run, document)
        obj = _object(run, document)
        if obj is None:
            continue
        first = folded.get(obj.key.folded())
        if first is not None:
            run.duplicated.add(first)   # which of the two is meant is unknown: nothing binds against it
            where = run.documents[first]
            line, _ = where.where()
            run.report(document, "duplicate", f"duplicate identity {obj.key}: also defined in "
                       f"{where.path}:{line}", "name")
            continue
        folded[obj.key.folded()] = obj.key
        found[obj.key] = obj
        run.documents[obj.key] = document
    return found


def reserved(schema: str) -> bool:
    return schema.lower().startswith(RESERVED_SCHEMAS)


def _secrets(run: Run, document: Document) -> None:
    """Literal credentials in a document; the scan is cached by the file's blob id (it is the
    slowest check of all: detect-secrets runs its regexes over every string)."""
    found = run.cache.get(SECRETS_CACHE, document.blob) if document.blob else None
    if found is None:
        found = [[list(loc), what] for loc, what in secrets.literal_secrets(document.data)]
        if document.blob:
            run.cache.put(SECRETS_CACHE, document.blob, found)
    for loc, what in found:
        run.report(document, "secret", what, *loc)


def _object(run: Run, document: Document):
    data = document.data
    if not isinstance(data, dict):
        run.report(document, "schema", "an object file must be a mapping with a 'kind'")
        return None
    kind = data.get("kind")
    if kind not in OBJECT_KINDS:
        shown = "missing" if kind is None else f"'{kind}'"
        run.report(document, "kind", f"unknown kind {shown}: expected one of "
                   f"{', '.join(OBJECT_KINDS)}{did_you_mean(str(kind), OBJECT_KINDS)}", "kind")
        return None
    try:
        obj = OBJECT_KINDS[kind].model_validate(data)
    except ValidationError as error:
        run.pydantic(document, error, OBJECT_KINDS[kind])
        name, schema = str(data.get("name", "")).lower(), str(data.get("schema", "")).lower()
        run.broken |= {name, f"{schema}.{name}"}
        return None
    if reserved(obj.schema_):
        run.report(document, "reserved", f"schema '{obj.schema_}' is reserved for the "
                   "reconciler or the engine", "schema")
    if isinstance(obj, Table):
        _table(run, document, obj)
    if isinstance(obj, MaterializedTable):
        for index, column in enumerate(obj.columns):
            try:
                sql.normalize_type(column.type, run.dialect, run.dialect)
            except sql.SqlProblem as problem:
                _type_problem(run, document, problem, column.type, index)
    return obj


def _type_problem(run: Run, document: Document, problem: sql.SqlProblem, type_sql: str, index: int) -> None:
    word = column_types.unknown_word(type_sql, run.dialect)
    hint = did_you_mean(word, column_types.type_words(run.dialect)) if word else ""
    run.report(document, "type", f"{problem}{hint}", "columns", index, "type")


def _table(run: Run, document: Document, table: Table) -> None:
    names: set[str] = set()
    for index, column in enumerate(table.columns):
        if column.name.lower() in names:
            run.report(document, "duplicate", f"column '{column.name}' appears twice",
                       "columns", index, "name")
        names.add(column.name.lower())
        try:
            column_types.declared(column.type, run.dialect)
        except sql.SqlProblem as problem:
            _type_problem(run, document, problem, column.type, index)
        if column.default is not None:
            try:
                default = sql.parse_expression(column.default, run.dialect)
            except sql.SqlProblem as problem:
                run.report(document, "default", str(problem), "columns", index, "default")
                continue
            # a default runs when the table is made or a column added (on PostgreSQL, on the tenant's rows)
            where = ("columns", str(index), "default")
            if not run.effects(document, where, policy.effects(default), f"column {column.name}: default: "):
                run.calls(document, where, {engine: sql.calls_in(default, engine, column.default)
                                            for engine in run.callers[0]}, flow=True,   # numbers rows
                          what=f"column {column.name}: default: ")
    for index, name in enumerate(table.primary_key):
        if name.lower() not in names:
            run.report(document, "reference", f"primary key column '{name}' is not a column "
                       f"of the table{did_you_mean(name, names)}", "primary_key", index)
