"""Applying an environment's and a tenant's rules to a valid landscape.

Owns connection swaps, `$$NAME` parameters (inlined as the text written, quoted, or as a declared
number), schema mapping,
capacity, and the normalised definition of every object for one tenant's engine.
Pure: never reads git or files, never talks to a tenant.
"""

from __future__ import annotations

import dataclasses

from ..check_types import DataCheck
from ..model import Connection, DataFlow, MaterializedTable, ObjectKey, Rules, Table, Tenant, View
from ..state import ColumnState, DesiredState, ObjectState
from . import column_types, naming, sql
from .cache import NO_CACHE, Cache
from .landscape import Landscape


def engine_of(tenant: Tenant) -> str:
    """The sqlglot dialect of the tenant's engine."""
    return tenant.engine


def render(landscape: Landscape, tenant: Tenant, cache: Cache = NO_CACHE) -> DesiredState:
    environment = landscape.environment
    rules = environment.rules_for(tenant)
    engine = engine_of(tenant)
    renderer = _Renderer(landscape, rules, engine, cache,
                         rules.table_format or sql.DEFAULT_TABLE_FORMAT.get(engine))
    objects = {}
    for key, obj in landscape.objects.items():
        state = renderer.object(key, obj)
        objects[state.key] = state
    return DesiredState(environment.name, tenant.name, engine, rules.capacity, objects, environment.dialect,
                        landscape.key)


class _Renderer:
    def __init__(self, landscape: Landscape, rules: Rules, engine: str, cache: Cache, table_format: str | None):
        self.landscape = landscape
        self.rules = rules
        self.engine = engine
        self.table_format = table_format   # None where the engine's tables have one format
        self.dialect = landscape.environment.dialect
        self.cache = cache
        self.connections = {}
        for key, obj in landscape.objects.items():
            if isinstance(obj, Connection):
                self.connections.setdefault(obj.name, key)
                self.connections[str(key)] = key

    def outputs(self, key: ObjectKey) -> dict:
        """The columns a view or MaterializedTable gives, typed as binding inferred them (in the landscape's
        dialect, UNKNOWN where it cannot tell; `*` for those each engine names itself): what decides,
        when it is replaced, which of its readers are recreated. Recorded beside its definition, never
        part of its content (`ObjectState.content_hash`): a better inference changes no object."""
        columns = self.landscape.columns.get(key)
        if columns is None:
            return {}
        unnamed = [["*", "UNKNOWN"]] if key in self.landscape.unnamed else []
        return {"outputs": [[name, kind] for name, kind in columns.items()] + unnamed}

    def key(self, key: ObjectKey) -> ObjectKey:
        schema = self.rules.schemas.get(key.schema)
        return key if schema is None else ObjectKey(schema, key.name)

    def object(self, key: ObjectKey, obj) -> ObjectState:
        dependencies = tuple(self.key(k) for k in self.landscape.dependencies[key])
        reads = tuple((self.key(source), columns) for source, columns in self.landscape.reads.get(key, {}).items())
        common = {"key": self.key(key), "kind": obj.kind, "dependencies": dependencies,
                  "path": self.landscape.documents[key].path, "reads": reads,
                  "exposes": tuple(c.lower() for c in self.landscape.columns.get(key, {}))
                  if isinstance(obj, (View, MaterializedTable)) else (),
                  "derived": tuple((column, tuple((self.key(source), name) for source, name in pairs))
                                   for column, pairs in self.landscape.derived.get(key, {}).items()),
                  "stars": tuple(self.key(source) for source in self.landscape.stars.get(key, ()))}
        if isinstance(obj, Table):
            return self.checked(self.table(obj, common), key)
        if isinstance(obj, View):
            rendered = self.statement(obj.sql, self.output_names(obj.sql))
            facts = self.landscape.facts[key]
            return self.checked(ObjectState(**common, sql=rendered, projection=facts.projection,
                                            definition={"kind": "View", "sql": rendered,
                                                        "projection": facts.projection,
                                                        "description": obj.description, **self.outputs(key)}), key)
        if isinstance(obj, MaterializedTable):
            rendered = self.statement(sql.materialized(obj.sql, [(c.name, c.type) for c in obj.columns],
                                                       list(self.landscape.columns.get(key, {})), self.dialect))
            pinned = [{"name": c.name, "type": sql.normalize_type(c.type, self.dialect, self.engine)}
                      for c in obj.columns]
            return self.checked(ObjectState(**common, sql=rendered, definition={
                "kind": "MaterializedTable", "sql": rendered, "columns": pinned, "description": obj.description,
                **self.outputs(key)}), key)
        if isinstance(obj, DataFlow):
            connection = self.connections[self.rules.connections.get(obj.connection, obj.connection)]
            rendered = self.statement(obj.sql)
            upsert = {}
            if obj.mode == "upsert":
                target = next(d for d in self.landscape.dependencies[key]
                              if d.folded() == ObjectKey.parse(obj.target).folded())
                rendered = sql.upsert(rendered, self.engine, obj.unique_key,
                                      list(self.landscape.columns.get(target, {})))
                upsert = {"mode": obj.mode, "unique_key": list(obj.unique_key)}
            definition = {"kind": "DataFlow", "connection": str(self.key(connection)),
                          "target": str(self.key(ObjectKey.parse(obj.target))), "sql": rendered,
                          "schedule": obj.schedule, "description": obj.description, **upsert}
            dependencies = tuple(d for d in dependencies if d != self.key(
                self.connections[obj.connection])) + (self.key(connection),)
            return ObjectState(**{**common, "dependencies": tuple(dict.fromkeys(dependencies))},
                               sql=rendered, definition=definition)
        return ObjectState(**common, definition={
            "kind": "Connection", "type": obj.type, "properties": dict(sorted(obj.properties.items())),
            "secrets": dict(sorted(obj.secrets.items())), "description": obj.description})

    def table(self, table: Table, common: dict) -> ObjectState:
        columns = tuple(
            ColumnState(c.name, column_types.column_type(c.type, self.dialect, self.engine), c.nullable,
                        None if c.default is None else
                        sql.canonical_default(c.default, self.dialect, self.engine))
            for c in table.columns)
        primary_key = tuple(table.primary_key)
        # primary key columns are NOT NULL in every engine; say so, or every plan would differ
        columns = tuple(ColumnState(c.name, c.type, False, c.default) if c.name in primary_key else c
                        for c in columns)
        drops = sql.ENGINE_DROPS.get((self.engine, self.table_format), frozenset())
        if drops:   # what the engine's tables cannot keep is not desired of them
            primary_key = () if "primary_key" in drops else primary_key
            columns = tuple(ColumnState(c.name, c.type, c.nullable or "not_null" in drops,
                                        None if "default" in drops else c.default) for c in columns)
        described = tuple((c.name, c.description) for c in table.columns if c.description) \
            if self.engine in sql.DESCRIPTIONS_AS_COMMENTS else ()   # elsewhere a column's description is not kept
        definition = {"kind": "Table", "columns": [c.to_json() for c in columns],
                      "primary_key": list(primary_key), "description": table.description,
                      **({"table_format": self.table_format} if self.table_format else {}),
                      **({"column_descriptions": dict(described)} if described else {})}
        renamed_from = self.key(ObjectKey(table.schema_, table.renamed_from)) if table.renamed_from else None
        renames = tuple((c.renamed_from, c.name) for c in table.columns if c.renamed_from)
        return ObjectState(**common, columns=columns, primary_key=primary_key, definition=definition,
                           renamed_from=renamed_from, column_renames=renames, table_format=self.table_format,
                           column_descriptions=described,
                           properties=sql.TABLE_PROPERTIES.get((self.engine, self.table_format), ()))

    def checked(self, state: ObjectState, key: ObjectKey) -> ObjectState:
        """The object with its data checks rendered for the engine; they are part of its definition (a
        changed check is a change, and the apply that makes it runs it), absent where there are none."""
        found = tuple(dataclasses.replace(check, query=self.check_query(check, key),
                                          reads=tuple(self.key(read) for read in check.reads))
                      for check in self.landscape.checks.get(key, ()))
        if not found:
            return state
        return dataclasses.replace(state, checks=found,
                                   definition={**state.definition, "checks": [c.to_json() for c in found]})

    def check_query(self, check: DataCheck, key: ObjectKey) -> str:
        """A check's query for the engine. Built by sqlglot in the landscape's dialect, it is already the
        engine's when nothing would change it (same dialect, no parameter, no schema it names mapped, no
        engine rewrite): parsing thousands of them again only to generate the same text is skipped."""
        names = {key.schema.lower(), *(read.schema.lower() for read in check.reads)}
        if self.engine == self.dialect and not check.parameters and self.engine not in sql.ENGINE_REWRITES \
                and not names & {schema.lower() for schema in self.rules.schemas}:
            return check.query
        return self.statement(check.query)

    def statement(self, text: str, names: tuple[str | None, ...] | None = None) -> str:
        return sql.render(text, self.dialect, self.engine, self.rules.schemas,
                          self.rules.parameters, self.cache, names)

    def output_names(self, query: str) -> tuple[str | None, ...] | None:
        """On an engine that refuses a view with an output it would name itself (Spark), each output's
        name as the landscape's dialect names it, for the view as that dialect's engine receives it:
        a column is then called the same on every tenant, and what reads it binds alike everywhere."""
        if self.engine not in sql.NAMES_EVERY_VIEW_OUTPUT or self.engine == self.dialect:
            return None
        return naming.output_names(sql.render(query, self.dialect, self.dialect, self.rules.schemas,
                                              self.rules.parameters, self.cache), self.dialect, self.cache)
