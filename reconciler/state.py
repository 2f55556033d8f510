"""The one shape of an object's state, shared by the desired side and the live side.

`render` produces desired `ObjectState`s from YAML, tenant adapters produce live ones from
the engine and the catalog, both normalised the same way, so `diff` compares like with
like. Never reads files or talks to engines.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx

from . import graph as graphs
from .model import ObjectKey

if TYPE_CHECKING:
    from .check_types import DataCheck


def stable_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ColumnState:
    name: str
    type: str              # as the tenant's engine keeps it (column_types.column_type)
    nullable: bool = True
    default: str | None = None  # canonical SQL of the default expression

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.type, "nullable": self.nullable, "default": self.default}


@dataclass(frozen=True)
class ObjectState:
    """An object as it is (live) or should be (desired) in one tenant."""

    key: ObjectKey
    kind: str
    definition: dict[str, Any] = field(compare=False)   # what the catalog stores and diff compares
    dependencies: tuple[ObjectKey, ...] = ()
    columns: tuple[ColumnState, ...] = ()          # tables: declared; views: as the engine reports
    primary_key: tuple[str, ...] = ()
    sql: str | None = None                          # the statement as it runs on the engine
    projection: str = ""                            # canonical select list of a view
    path: str = ""                                  # file it came from (desired side)
    renamed_from: ObjectKey | None = None           # a table's former identity (renamed_from:)
    column_renames: tuple[tuple[str, str], ...] = ()   # (former name, name) of renamed columns
    reads: tuple[tuple[ObjectKey, tuple[str, ...]], ...] = ()   # views and data flows: columns they refer to
    exposes: tuple[str, ...] = ()                   # views: the names of the columns they give
    derived: tuple[tuple[str, tuple[tuple[ObjectKey, str], ...]], ...] = ()
    # ^ views: each column given, and the columns (of what it reads) its values are computed from
    stars: tuple[ObjectKey, ...] = ()               # views: what they give on whole through `*`
    checks: tuple[DataCheck, ...] = ()              # tables and views: their data checks, rendered
    table_format: str | None = None                 # tables, where the engine has more than one (spark)
    column_descriptions: tuple[tuple[str, str], ...] = ()   # tables: (column, description) where the engine
    # keeps descriptions as comments (`sql.DESCRIPTIONS_AS_COMMENTS`)
    properties: tuple[tuple[str, str], ...] = ()   # tables: the properties its table format asks for
    # (`sql.TABLE_PROPERTIES`), the only ones the reconciler sets

    @functools.cached_property
    def content_hash(self) -> str:
        """What the object is: its definition, without the typed columns inferred from it (`outputs`)."""
        return stable_hash({key: value for key, value in self.definition.items() if key != "outputs"})


@dataclass(frozen=True)
class CatalogRecord:
    """What the reconciler recorded in the tenant when it last applied an object.

    The definition and dependencies stay JSON text until asked for: a no-op plan compares
    content hashes and never needs most of them."""

    key: ObjectKey
    kind: str
    content_hash: str
    definition_json: str
    dependencies_json: str
    engine_sql: str | None      # the engine's own rendering after apply: the drift baseline
    commit: str | None
    run_id: str

    @functools.cached_property
    def definition(self) -> dict[str, Any]:
        return json.loads(self.definition_json)

    @functools.cached_property
    def dependencies(self) -> tuple[ObjectKey, ...]:
        return tuple(ObjectKey.parse(d) for d in json.loads(self.dependencies_json))


@dataclass(frozen=True, slots=True)
class Addition:
    """Something on a live table that no YAML declares (an index, a constraint, a trigger, a grant, a
    row-level-security policy, a comment, an owner, a publication, ...): a DBA's. A rebuild runs
    `before_drop` on the original just before dropping it, then puts it back with `recreate`, run on
    the rebuilt table; one that cannot be put back (`recreate` empty) refuses the rebuild."""

    what: str                         # for people: "index ix_orders_amount"
    recreate: tuple[str, ...] = ()    # statements that put it back on a table of the same name
    column: str | None = None         # a column's own (a comment): gone with that column
    before_drop: tuple[str, ...] = ()   # what must outlive the original (a sequence it owns, let go)


@dataclass(frozen=True, slots=True)
class LiveObject:
    """A table or view found in the engine (absent for catalog-only kinds)."""

    key: ObjectKey
    kind: str                   # Table | View
    columns: tuple[ColumnState, ...]
    primary_key: tuple[str, ...] = ()
    engine_sql: str | None = None
    additions: tuple[Addition, ...] = ()
    table_format: str | None = None   # a table's, where the engine has more than one (Spark's provider)
    properties: tuple[tuple[str, str], ...] = ()   # a table's own, as a user set them (not the engine's bookkeeping)
    comment: str | None = None                     # a table's comment, where the adapter reads it
    column_comments: tuple[tuple[str, str], ...] = ()   # (column, comment) of each column that has one


@dataclass(frozen=True)
class LiveState:
    """A tenant as introspected: engine objects, the catalog, and its fingerprint."""

    objects: dict[ObjectKey, LiveObject]
    catalog: dict[ObjectKey, CatalogRecord]
    schemas: frozenset[str]
    exists: bool = True
    interrupted: tuple[str, ...] = ()   # audit rows of runs that died mid-apply (left 'running')
    digest: str | None = None           # of every row inspecting the tenant read, in order (`snapshot`)
    unavailable_formats: tuple[tuple[str, str], ...] = ()   # (table format, what the engine said) it lacks

    @functools.cached_property
    def fingerprint(self) -> str:
        engine = {str(k): [o.kind, [c.to_json() for c in o.columns], list(o.primary_key), o.engine_sql,
                           [[a.what, list(a.recreate), list(a.before_drop)] for a in o.additions],
                           *([o.table_format, [list(p) for p in o.properties]] if o.table_format else []),
                           *([o.comment, [list(c) for c in o.column_comments]] if o.comment or o.column_comments
                             else [])]
                  for k, o in self.objects.items()}
        catalog = {str(k): r.content_hash for k, r in self.catalog.items()}
        return stable_hash([engine, catalog, sorted(self.schemas)])

    def find(self, key: ObjectKey) -> ObjectKey | None:
        """The live key matching `key` as names are compared (case-insensitively): the engine
        object's own spelling where there is one, else the catalog's."""
        return self._objects_folded.get(key.folded()) or self._catalog_folded.get(key.folded())

    def object(self, key: ObjectKey) -> LiveObject | None:
        found = self._objects_folded.get(key.folded())
        return None if found is None else self.objects[found]

    def record(self, key: ObjectKey) -> CatalogRecord | None:
        found = self._catalog_folded.get(key.folded())
        return None if found is None else self.catalog[found]

    @functools.cached_property
    def _objects_folded(self) -> dict[ObjectKey, ObjectKey]:
        return {key.folded(): key for key in self.objects}

    @functools.cached_property
    def _catalog_folded(self) -> dict[ObjectKey, ObjectKey]:
        return {key.folded(): key for key in self.catalog}


@dataclass(frozen=True)
class DesiredState:
    """One tenant's desired objects after the environment and tenant rules were applied."""

    environment: str
    tenant: str
    engine: str
    capacity: str | None
    objects: dict[ObjectKey, ObjectState]
    dialect: str                                  # the landscape's SQL dialect (its views' projections)
    source_key: str | None = None                 # what it was rendered from (`desired.key.desired_key`)

    @functools.cached_property
    def graph(self) -> nx.DiGraph:
        """The dependency graph after rendering (keys as the tenant sees them); built once."""
        return graphs.build({k: o.dependencies for k, o in self.objects.items()},
                            {k: o.kind for k, o in self.objects.items()})

    @functools.cached_property
    def lineage(self) -> nx.DiGraph:
        """`graph` in the direction data flows: a data flow points at the table it writes (in `graph` that
        table is one of its dependencies), as `Landscape.lineage` draws the folder."""
        return graphs.lineage(self.graph, {k: ObjectKey.parse(o.definition["target"]) for k, o in self.objects.items()
                                           if o.kind == "DataFlow"})

    @functools.cached_property
    def fingerprint(self) -> str:
        return stable_hash([[str(k), o.content_hash] for k, o in sorted(self.objects.items())]
                           + [self.capacity])
