"""Bringing an existing database under management: `reconciler adopt`.

Owns reading one live tenant's unmanaged tables and views and writing one YAML file per object into
the environment's folder: columns with the engine's types spelled in the landscape's dialect (each
checked to come back as the engine keeps it), NOT NULL, defaults, the primary key; a view's query
transpiled to the landscape's dialect and checked by rendering it back for the engine. What cannot be
written faithfully is listed with the reason, never guessed. Never writes to a tenant, never overwrites
a file, never adopts the reconciler's own schemas or what a catalog already records: the next apply
records the adopted objects as managed without running a statement (the planner's catalog-only adopt).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import yaml

from ..desired import column_types, sql
from ..desired.source import ENVIRONMENTS
from ..errors import UsageProblem
from ..model import PLAIN_NAME, ObjectKey
from ..planning.diff import view_query
from ..planning.environment import Workspace
from ..state import LiveObject

RESERVED = re.compile(r"^(_reconciler.*|information_schema|pg_.*)$", re.IGNORECASE)


@dataclass
class Adopted:
    """What `adopt` wrote, and what it left (each with the reason)."""

    written: list[str] = field(default_factory=list)        # paths, relative to the repository
    as_reported: list[str] = field(default_factory=list)    # views written in the engine's own SQL
    left: list[tuple[str, str]] = field(default_factory=list)   # (object, why it was not adopted)


def adopt(workspace: Workspace, environment: str, tenant_name: str, schemas: tuple[str, ...] = ()) -> Adopted:
    landscape = workspace.load(environment)
    names = [t.name for t in landscape.environment.tenants]
    if tenant_name not in names:
        raise UsageProblem(f"environment {environment} has no tenant {tenant_name}{_did_you_mean(tenant_name, names)}; "
                           f"its tenants: {', '.join(names)}")
    tenant = next(t for t in landscape.environment.tenants if t.name == tenant_name)
    dialect, engine = landscape.environment.dialect, tenant.engine
    folder_schema = {live.lower(): declared for declared, live in landscape.environment.rules_for(tenant).schemas.items()}
    with workspace.adapter(tenant).reading() as reading:
        live = reading.inspect()
    present = sorted({key.schema for key in live.objects if not RESERVED.match(key.schema)})
    for schema in schemas:
        if schema.lower() not in {s.lower() for s in present}:
            raise UsageProblem(f"tenant {tenant_name} has no schema {schema}{_did_you_mean(schema, present)}; "
                               f"its schemas: {', '.join(present) or 'none'}")
    declared = {key.folded() for key in landscape.objects}
    adopted = Adopted()
    root = workspace.repo / ENVIRONMENTS / environment
    for key, found in sorted(live.objects.items()):
        if RESERVED.match(key.schema) or (schemas and key.schema.lower() not in {s.lower() for s in schemas}):
            continue
        folded_key = ObjectKey(folder_schema.get(key.schema.lower(), key.schema), key.name)
        if key in live.catalog or folded_key.folded() in declared:
            continue   # managed already, here or by whoever's catalog records it
        unplain = [n for n in (key.schema, key.name, *(c.name for c in found.columns))
                   if not re.fullmatch(PLAIN_NAME, n) or len(n) > 63]
        if unplain:
            adopted.left.append((str(key), f"{unplain[0]!r} is not a plain identifier; generated SQL quotes "
                                           "names as written, so the object would be another one"))
            continue
        path = root / folded_key.schema / f"{folded_key.name}.yaml"
        if path.exists():
            adopted.left.append((str(key), f"{path.relative_to(workspace.repo)} exists; never overwritten"))
            continue
        try:
            document, reported = (_table(folded_key, found, dialect, engine) if found.kind == "Table"
                                  else _view(folded_key, found, dialect, engine))
        except _Unwritable as why:
            adopted.left.append((str(key), str(why)))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        depth = "../" * (len(path.relative_to(workspace.repo).parts) - 1)
        path.write_text(f"# yaml-language-server: $schema={depth}schemas/object.schema.json\n"
                        + (f"# {reported}\n" if reported else "")
                        + yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=100))
        adopted.written.append(str(path.relative_to(workspace.repo)))
        if reported:
            adopted.as_reported.append(str(key))
    return adopted


class _Unwritable(Exception):
    """An object the landscape's dialect cannot say as the engine has it."""


def _table(key: ObjectKey, found: LiveObject, dialect: str, engine: str) -> tuple[dict, str | None]:
    """Where the engine keeps descriptions as comments (Spark), its comments are the descriptions."""
    columns = []
    comments = dict(found.column_comments)
    for column in found.columns:
        spelled = _type(column.type, dialect, engine)
        entry: dict = {"name": column.name, "type": spelled}
        if not column.nullable:
            entry["nullable"] = False
        if column.default is not None:
            entry["default"] = sql.parse_expression(column.default, engine).sql(dialect=dialect)
        if comments.get(column.name):
            entry["description"] = comments[column.name]
        columns.append(entry)
    described = {"description": found.comment} if found.comment else {}
    document = {"kind": "Table", "name": key.name, "schema": key.schema, **described, "columns": columns}
    if found.primary_key:
        document["primary_key"] = list(found.primary_key)
    return document, None


def _type(engine_type: str, dialect: str, engine: str) -> str:
    """The engine's type spelled in the landscape's dialect, when it comes back as the engine keeps it."""
    kept = column_types.engine_type(engine_type, engine)
    try:
        spelled = column_types.declared(engine_type, engine).sql(dialect=dialect)
        if column_types.column_type(spelled, dialect, engine) == kept:
            return spelled
    except sql.SqlProblem:
        pass
    raise _Unwritable(f"its type {engine_type} has no spelling in {dialect} that {engine} keeps as {kept}")


def _view(key: ObjectKey, found: LiveObject, dialect: str, engine: str) -> tuple[dict, str | None]:
    query = view_query(found.engine_sql, engine)
    document = {"kind": "View", "name": key.name, "schema": key.schema}
    try:
        transpiled = sql.parse(query, engine).sql(dialect=dialect, pretty=True)
        if sql.parse(transpiled, dialect).sql(dialect=engine) == query:
            return {**document, "sql": _Literal(transpiled + "\n")}, None
    except sql.SqlProblem:
        pass
    return ({**document, "sql": _Literal(query + "\n")},
            f"the SQL as {engine} reports it: it did not come back unchanged from {dialect}; review it")


def _did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1) or [k for k in known if k.lower() == name.lower()]
    return f" (did you mean {close[0]}?)" if close else ""


class _Literal(str):
    """A multi-line string written as a YAML block (`|`), as a person writes a view's SQL."""


yaml.SafeDumper.add_representer(_Literal, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|"))
