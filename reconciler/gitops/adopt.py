"""Bringing an existing database under management: `reconciler adopt`.

Owns reading one live tenant's unmanaged tables and views and writing one YAML file per object into
the environment's folder: columns with the engine's types spelled in the landscape's dialect (each
checked to come back as the engine keeps it), NOT NULL, defaults, the primary key, the comment on the
table or view as its description; a view's query transpiled to the landscape's dialect and checked by
rendering it back for the engine. What cannot be written faithfully (a name, a type, a Spark table's
format) is listed with the reason, never guessed. Never writes to a tenant, never overwrites
a file, never adopts the reconciler's own schemas or what a catalog already records: the next apply
records the adopted objects as managed without running a statement (the planner's catalog-only adopt).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlglot import exp

from .. import graph as graphs
from ..desired import column_types, sql
from ..desired.source import ENVIRONMENTS
from ..errors import UsageProblem, did_you_mean
from ..model import PLAIN_NAME, ObjectKey
from ..planning.diff import view_query
from ..planning.environment import Workspace
from ..state import LiveObject, LiveState

RESERVED = re.compile(r"^(_reconciler.*|information_schema|pg_.*)$", re.IGNORECASE)


@dataclass
class Adopted:
    """What `adopt` wrote, and what it left (each with the reason)."""

    written: list[str] = field(default_factory=list)        # paths, relative to the repository
    as_reported: list[str] = field(default_factory=list)    # views written in the engine's own SQL
    left: list[tuple[str, str]] = field(default_factory=list)   # (object, why it was not adopted)


def adopt(workspace: Workspace, environment: str, tenant_name: str, schemas: tuple[str, ...] = (),
          selection: str | None = None) -> Adopted:
    """Write a file for each table and view of the tenant that nothing manages, in `schemas` (all when
    none) and `selection` (`graph --select`'s expressions, over what the tenant's views read)."""
    landscape = workspace.load(environment)
    names = [t.name for t in landscape.environment.tenants]
    if tenant_name not in names:
        raise UsageProblem(f"environment {environment} has no tenant {tenant_name}{did_you_mean(tenant_name, names)}; "
                           f"its tenants: {', '.join(names)}")
    tenant = next(t for t in landscape.environment.tenants if t.name == tenant_name)
    dialect, engine = landscape.environment.dialect, tenant.engine
    rules = landscape.environment.rules_for(tenant)
    folder_schema = {live.lower(): declared for declared, live in rules.schemas.items()}
    table_format = rules.table_format or sql.DEFAULT_TABLE_FORMAT.get(engine)   # what its tables are made as
    with workspace.adapter(tenant, environment).reading() as reading:
        live = reading.inspect()
    declared = {key.folded() for key in landscape.objects}
    adopted = Adopted()
    for key in _chosen(live, tenant_name, schemas, selection, engine):
        folded_key = ObjectKey(folder_schema.get(key.schema.lower(), key.schema), key.name)
        if live.record(key) is not None or folded_key.folded() in declared:
            continue   # managed already, here or by whoever's catalog records it
        found = live.objects[key]
        path = workspace.repo / ENVIRONMENTS / environment / folded_key.schema / f"{folded_key.name}.yaml"
        try:
            _check_writable(found, path, workspace.repo, table_format, tenant_name)
            document, reported = (_table(folded_key, found, dialect, engine) if found.kind == "Table"
                                  else _view(folded_key, found, dialect, engine))
        except _Unwritable as why:
            adopted.left.append((str(key), str(why)))
            continue
        _write(path, workspace.repo, document, reported)
        adopted.written.append(str(path.relative_to(workspace.repo)))
        if reported:
            adopted.as_reported.append(str(key))
    return adopted


def _chosen(live: LiveState, tenant_name: str, schemas: tuple[str, ...], selection: str | None,
            engine: str) -> list[ObjectKey]:
    """The tenant's tables and views in `schemas` and `selection`, in key order; never the
    reconciler's own (its catalog, its backups)."""
    objects = {key: found for key, found in live.objects.items() if not RESERVED.match(key.schema)}
    present = sorted({key.schema for key in objects})
    for schema in schemas:
        if schema.lower() not in {s.lower() for s in present}:
            raise UsageProblem(f"tenant {tenant_name} has no schema {schema}{did_you_mean(schema, present)}; "
                               f"its schemas: {', '.join(present) or 'none'}")
    if schemas:
        wanted = {s.lower() for s in schemas}
        objects = {key: found for key, found in objects.items() if key.schema.lower() in wanted}
    if selection:
        chosen = _selected(objects, selection, engine)
        objects = {key: found for key, found in objects.items() if key in chosen}
    return sorted(objects)


def _selected(objects: dict[ObjectKey, LiveObject], selection: str, engine: str) -> set[ObjectKey]:
    """What `selection` names (`graph --select`'s expressions) in the graph of what the views read."""
    folded = {key.folded(): key for key in objects}
    reads = {}
    for key, found in objects.items():
        names = sql.view_reads(found.engine_sql or "", engine)[0] if found.kind == "View" else ()
        reads[key] = [folded[k] for k in (ObjectKey.parse(name).folded() for name in names if "." in name)
                      if k in folded]
    try:
        return set(graphs.select(graphs.build(reads, {k: found.kind for k, found in objects.items()}), selection))
    except ValueError as error:
        raise UsageProblem(f"--select {selection}: {error}") from None


def _check_writable(found: LiveObject, path: Path, repo: Path, table_format: str | None, tenant_name: str) -> None:
    # a table's columns are written as names; a view's are its query's (`sum(x)` is fine there)
    named = (c.name for c in found.columns) if found.kind == "Table" else ()
    unplain = [n for n in (found.key.schema, found.key.name, *named) if not re.fullmatch(PLAIN_NAME, n) or len(n) > 63]
    if unplain:
        raise _Unwritable(f"{unplain[0]!r} is not a plain identifier; generated SQL quotes names as written, so "
                          "the object would be another one")
    if path.exists():
        raise _Unwritable(f"{path.relative_to(repo)} exists; never overwritten")
    if found.table_format and found.table_format != table_format:   # no file can say another than the tenant's
        raise _Unwritable(f"it is a {found.table_format} table, and tenant {tenant_name}'s tables are {table_format} "
                          f"(its rules' table_format)")


def _write(path: Path, repo: Path, document: dict, reported: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    depth = "../" * (len(path.relative_to(repo).parts) - 1)
    path.write_text(f"# yaml-language-server: $schema={depth}schemas/object.schema.json\n"
                    + (f"# {reported}\n" if reported else "")
                    + yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100))


class _Unwritable(Exception):
    """An object the landscape cannot say as the engine has it, or whose file is someone's already."""


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
    document = {"kind": "Table", "name": key.name, "schema": key.schema, **_described(found, engine),
                "columns": columns}
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
    document = {"kind": "View", "name": key.name, "schema": key.schema, **_described(found, engine)}
    try:
        # the tree view_query read (parsed once), and the transpiled one, are this function's alone (taken
        # from the shared trees): each is written without the copy sqlglot makes to leave a tree as it was
        statement = sql.take(found.engine_sql or "", engine)
        transpiled = (statement.expression if statement.key == "create" else statement).sql(
            dialect=dialect, pretty=True, copy=False)
        if sql.take(transpiled, dialect).sql(dialect=engine, copy=False) == query:
            return {**document, "sql": _Literal(transpiled + "\n")}, None
    except sql.SqlProblem:
        pass
    return ({**document, "sql": _Literal(query + "\n")},
            f"the SQL as {engine} reports it: it did not come back unchanged from {dialect}; review it")


def _described(found: LiveObject, engine: str) -> dict[str, str]:
    """`description:` from the comment on the table or view, where the engine keeps one: the table's own
    comment where the adapter keeps descriptions as comments (Spark), else what the adapter reads as a
    DBA's addition (the statement that puts it back), that statement read here."""
    if found.comment:
        return {"description": found.comment}
    for addition in found.additions:
        if addition.column is None and len(addition.recreate) == 1:
            try:
                statement = sql.parse(addition.recreate[0], engine)
            except sql.SqlProblem:
                continue
            if isinstance(statement, exp.Comment) and statement.args.get("kind") in ("TABLE", "VIEW"):
                return {"description": statement.expression.name}
    return {}


class _Literal(str):
    """A multi-line string written as a YAML block (`|`), as a person writes a view's SQL."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):   # libyaml's, where PyYAML has it: 10x faster
    """PyYAML's safe dumper, with view SQL as a block."""


_Dumper.add_representer(_Literal, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", str(text),
                                                                               style="|"))
