"""From documents to a valid landscape: typed objects, resolved dependencies, a graph.

Owns every check of the desired state (shape through pydantic, SQL through `sql`,
references, cycles, rules, secrets) and reports all problems of a run together as
diagnostics with file:line:column. Never stops at the first error; never touches a tenant.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import networkx as nx
import sqlglot
from pydantic import ValidationError
from sqlglot import exp

from .. import graph as graphs
from .. import secrets
from ..engine_registry import engines
from ..errors import Diagnostic, InvalidInput
from ..model import (
    COLUMN_CHECK_KINDS,
    OBJECT_KINDS,
    PLAIN_NAME,
    QUALIFIED_NAME,
    TENANT_NAME,
    Connection,
    DataFlow,
    Environment,
    MaterializedTable,
    ObjectKey,
    Table,
    Tenant,
    View,
)
from . import bind, checks, column_types, policy, sql
from .cache import NO_CACHE, Cache, content_key
from .key import desired_key
from .source import Document, EnvironmentSource, available_environments, read_environment

READABLE = (Table, View, MaterializedTable)   # what SQL (and checks) may read: what holds rows
SECRETS_CACHE = "secrets-1"       # findings per file blob; a new name when the secret rules change
CHECKS_CACHE = "check-queries"   # each data check's query, by what it is built from
PARAMETER_PLACES = (("rules", "parameters"), ("tenants", "*", "rules", "parameters"))   # read as written
RESERVED_SCHEMAS = ("_reconciler", "information_schema", "pg_")   # prefixes, compared case-insensitively
NAME_RULES = {
    PLAIN_NAME: "letters, digits and underscores, not starting with a digit",
    TENANT_NAME: "letters, digits, '_' and '-', starting with a letter or digit",
    QUALIFIED_NAME: "schema.name, each letters, digits and underscores, not starting with a digit",
}


ENGINES_WITHOUT_MATERIALIZED_TABLES = frozenset({"spark"})   # their apply cannot yet rebuild one and prove it
DEFAULT_DIALECT = Environment.model_fields["dialect"].default   # an environment.yaml that does not say

@dataclass(frozen=True)
class Landscape:
    """One environment's desired state, valid and resolved."""

    source: EnvironmentSource
    environment: Environment
    objects: dict[ObjectKey, Table | View | MaterializedTable | DataFlow | Connection]
    documents: dict[ObjectKey, Document] = field(repr=False)
    facts: dict[ObjectKey, sql.SqlFacts] = field(repr=False)
    dependencies: dict[ObjectKey, tuple[ObjectKey, ...]] = field(repr=False)
    graph: nx.DiGraph = field(repr=False)
    columns: dict[ObjectKey, bind.Columns] = field(default_factory=dict, repr=False)   # tables' and views'
    reads: dict[ObjectKey, dict[ObjectKey, tuple[str, ...]]] = field(default_factory=dict, repr=False)
    # ^ the columns of each object a view or data flow refers to (lower-case names)
    derived: dict[ObjectKey, dict[str, tuple[tuple[ObjectKey, str], ...]]] = field(default_factory=dict, repr=False)
    # ^ each view column (lower case): the columns of the objects it reads that its values come from
    stars: dict[ObjectKey, tuple[ObjectKey, ...]] = field(default_factory=dict, repr=False)
    # ^ what a view gives on whole through `*`: a column added there is a column added to the view
    checks: dict[ObjectKey, tuple[checks.DataCheck, ...]] = field(default_factory=dict, repr=False)
    # ^ each table's and view's data checks, as queries in the landscape's dialect
    key: str | None = None   # everything validating it read, and the code that did (`key.desired_key`)
    sensitive: dict[ObjectKey, set[str]] = field(default_factory=dict, repr=False)
    # ^ each table's and view's columns no sample may show, and no engine message may quote (`_sensitive`)
    unnamed: frozenset[ObjectKey] = frozenset()   # views giving columns each engine names itself (not in `columns`)

    @property
    def sensitive_names(self) -> set[str]:
        """The names an engine's message about a statement must not be shown whole for: sensitive columns
        and the objects that hold them (`disclosure.sensitive`)."""
        return {name for columns in self.sensitive.values() for name in columns} | {
            key.name for key, columns in self.sensitive.items() if columns}

    @property
    def name(self) -> str:
        return self.environment.name

    @functools.cached_property
    def lineage(self) -> nx.DiGraph:
        """The graph in the direction data flows: what an object reads points at it, and a data flow
        points at the table it writes (in `graph` that table is one of its dependencies)."""
        return graphs.lineage(self.graph, {key: ObjectKey.parse(obj.target) for key, obj in self.objects.items()
                                           if isinstance(obj, DataFlow)})


def load(repo: Path, name: str, ref: str | None = None, cache: Cache = NO_CACHE) -> Landscape:
    """Read and validate one environment; raise InvalidInput listing every problem."""
    source = read_environment(repo, name, ref, cache)
    return validate(source, available_environments(repo, ref), cache)


def validate(source: EnvironmentSource, environments: Iterable[str] = (),
             cache: Cache = NO_CACHE) -> Landscape:
    """A folder with no objects yet (only environment.yaml) is valid: a new landscape, or the target of
    a first promotion. Planning it against a tenant that manages objects is refused
    (`planning.environment`), never read as "delete everything"."""
    environments = tuple(environments)
    checker = _Checker(source, cache)
    environment = checker.environment(set(environments))
    checker.dialect = environment.dialect if environment else DEFAULT_DIALECT
    if environment is not None:   # tenants whose url names no usable engine are reported with environment.yaml
        usable = {t.name: t.engine for t in environment.tenants if _url_problem(t.url) is None}
        checker.callers = (frozenset(usable.values()), frozenset(name.lower() for name in environment.allow_functions))
    objects = checker.objects()
    dialect = checker.dialect
    facts = checker.sql(objects, dialect)
    if environment is not None:
        checker.engines(objects, facts, dialect, usable)
    checker.renames(objects)
    dependencies = checker.references(objects, facts)
    graph = graphs.build(dependencies, {k: o.kind for k, o in objects.items()})
    cyclic = checker.cycles(graph)
    bound = checker.columns(objects, facts, dependencies, graph, dialect) if not cyclic else ({}, {}, {}, {})
    unnamed = frozenset(key for key, columns in bound[0].items() if bind.UNNAMED in columns)
    bound = ({key: {name: kind for name, kind in columns.items() if name != bind.UNNAMED}
              for key, columns in bound[0].items()}, *bound[1:])
    sensitive = _sensitive(objects, graph, *bound) if not cyclic else {}
    data_checks = checker.checks(objects, dependencies, graph, bound[0], sensitive, dialect) if not cyclic else {}
    if environment is not None and objects:
        checker.rules(environment, objects, facts, data_checks)
    if checker.diagnostics:
        raise InvalidInput(checker.diagnostics)
    assert environment is not None
    files = [(d.path, d.blob) for d in (source.environment, *source.objects) if d is not None]
    return Landscape(source, environment, dict(sorted(objects.items())), checker.documents,
                     facts, dependencies, graph, *bound, data_checks,
                     key=desired_key(source.name, environments, files), sensitive=sensitive,
                     unnamed=unnamed)


def valid_environment(source: EnvironmentSource, environments: Iterable[str], cache: Cache = NO_CACHE
                      ) -> Environment | None:
    """environment.yaml alone, checked as `validate` checks it (its objects are not read): the
    tenants a plan may open before the folder is validated (`planning.environment.recall`). None when it has a
    problem: only validating says which."""
    checker = _Checker(source, cache)
    environment = checker.environment(set(environments))
    return None if checker.diagnostics else environment


class _Checker:
    def __init__(self, source: EnvironmentSource, cache: Cache):
        self.source = source
        self.cache = cache
        self.diagnostics: list[Diagnostic] = list(source.diagnostics)
        self.documents: dict[ObjectKey, Document] = {}
        self.broken: set[str] = set()  # names of objects whose files are invalid: no cascades
        self.dialect = DEFAULT_DIALECT   # the environment's, once environment.yaml is read
        self.duplicated: set[ObjectKey] = set()
        self.callers: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
        # ^ the engines SQL runs on, and the functions of their own the environment allows (`policy`)

    def report(self, document: Document | None, code: str, message: str, *loc: str | int) -> None:
        if document is None:
            return
        self.diagnostics.append(document.diagnostic(code, message, *loc))

    def _pydantic(self, document: Document, error: ValidationError) -> None:
        problems = error.errors()
        for problem in problems:
            loc = tuple(str(p) for p in problem["loc"])
            if problem["type"] == "too_short" and any(
                    len(other["loc"]) > len(loc) and tuple(map(str, other["loc"][:len(loc)])) == loc
                    for other in problems):
                continue  # an item failed; the count of valid items says nothing more
            if problem["type"] == "string_pattern_mismatch" and \
                    problem.get("ctx", {}).get("pattern", "").startswith("^env:") and \
                    any(secrets.SECRET_KEY.search(part) for part in loc):
                continue  # reported once, as a literal secret
            self.report(document, "schema", _explain(problem, loc), *loc)

    def _secrets(self, document: Document) -> None:
        """Literal credentials in a document; the scan is cached by the file's blob id (it is the
        slowest check of all: detect-secrets runs its regexes over every string)."""
        found = self.cache.get(SECRETS_CACHE, document.blob) if document.blob else None
        if found is None:
            found = [[list(loc), what] for loc, what in secrets.literal_secrets(document.data)]
            if document.blob:
                self.cache.put(SECRETS_CACHE, document.blob, found)
        for loc, what in found:
            self.report(document, "secret", what, *loc)

    # -- environment.yaml ---------------------------------------------------------------
    def environment(self, known: set[str]) -> Environment | None:
        document = self.source.environment
        if document is None:
            return None
        self._secrets(document)
        if not isinstance(document.data, dict):
            self.report(document, "schema", "environment.yaml must be a mapping")
            return None
        try:
            environment = Environment.model_validate(document.written(*PARAMETER_PLACES))
        except ValidationError as error:
            self._pydantic(document, error)
            return None
        if environment.name != self.source.name:
            self.report(document, "environment", f"name '{environment.name}' does not match its "
                        f"folder '{self.source.name}'", "name")
        if environment.promotes_from and known and environment.promotes_from not in known:
            self.report(document, "environment", f"promotes_from names '{environment.promotes_from}', "
                        f"which is not an environment{_did_you_mean(environment.promotes_from, known)}",
                        "promotes_from")
        if not _dialect_exists(environment.dialect):
            self.report(document, "environment", f"unknown SQL dialect '{environment.dialect}'", "dialect")
        seen: set[str] = set()
        for index, tenant in enumerate(environment.tenants):
            if tenant.name in seen:
                self.report(document, "environment", f"tenant '{tenant.name}' is listed twice",
                            "tenants", index, "name")
            seen.add(tenant.name)
            problem = _url_problem(tenant.url)
            if problem:
                self.report(document, "environment", problem, "tenants", index, "url")
            elif not policy.known(tenant.engine):
                _adapters_allowlist(tenant)
            elif tenant.rules.table_format and tenant.engine not in sql.DEFAULT_TABLE_FORMAT:   # one format
                self.report(document, "environment", f"table_format is a Spark tenant's setting; tenant "
                            f"'{tenant.name}' is {tenant.engine}, whose tables have one format",
                            "tenants", index, "rules", "table_format")
        return environment

    # -- object files ---------------------------------------------------------------------
    def objects(self) -> dict[ObjectKey, Table | View | DataFlow | Connection]:
        objects: dict[ObjectKey, Table | View | MaterializedTable | DataFlow | Connection] = {}
        folded: dict[ObjectKey, ObjectKey] = {}
        for document in self.source.objects:
            self._secrets(document)
            obj = self._object(document)
            if obj is None:
                continue
            first = folded.get(obj.key.folded())
            if first is not None:
                self.duplicated.add(first)   # which of the two is meant is unknown: nothing binds against it
                where = self.documents[first]
                line, _ = where.where()
                self.report(document, "duplicate", f"duplicate identity {obj.key}: also defined in "
                            f"{where.path}:{line}", "name")
                continue
            folded[obj.key.folded()] = obj.key
            objects[obj.key] = obj
            self.documents[obj.key] = document
        return objects

    def _object(self, document: Document):
        data = document.data
        if not isinstance(data, dict):
            self.report(document, "schema", "an object file must be a mapping with a 'kind'")
            return None
        kind = data.get("kind")
        if kind not in OBJECT_KINDS:
            shown = "missing" if kind is None else f"'{kind}'"
            self.report(document, "kind", f"unknown kind {shown}: expected one of "
                        f"{', '.join(OBJECT_KINDS)}{_did_you_mean(str(kind), OBJECT_KINDS)}", "kind")
            return None
        try:
            obj = OBJECT_KINDS[kind].model_validate(data)
        except ValidationError as error:
            self._pydantic(document, error)
            name, schema = str(data.get("name", "")).lower(), str(data.get("schema", "")).lower()
            self.broken |= {name, f"{schema}.{name}"}
            return None
        if _reserved(obj.schema_):
            self.report(document, "reserved", f"schema '{obj.schema_}' is reserved for the "
                        "reconciler or the engine", "schema")
        if isinstance(obj, Table):
            self._table(document, obj)
        if isinstance(obj, MaterializedTable):
            for index, column in enumerate(obj.columns):
                try:
                    sql.normalize_type(column.type, self.dialect, self.dialect)
                except sql.SqlProblem as problem:
                    self.report(document, "type", str(problem), "columns", index, "type")
        return obj

    def _table(self, document: Document, table: Table) -> None:
        names: set[str] = set()
        for index, column in enumerate(table.columns):
            if column.name.lower() in names:
                self.report(document, "duplicate", f"column '{column.name}' appears twice",
                            "columns", index, "name")
            names.add(column.name.lower())
            try:
                column_types.declared(column.type, self.dialect)
            except sql.SqlProblem as problem:
                self.report(document, "type", str(problem), "columns", index, "type")
            if column.default is not None:
                try:
                    default = sql.parse_expression(column.default, self.dialect)
                except sql.SqlProblem as problem:
                    self.report(document, "default", str(problem), "columns", index, "default")
                    continue
                # a default runs when the table is made or a column added (on PostgreSQL, on the tenant's rows)
                where = ("columns", str(index), "default")
                if not self._effects(document, where, policy.effects(default), f"column {column.name}: default: "):
                    self._calls(document, where, {engine: sql.calls_in(default, engine, column.default)
                                                  for engine in self.callers[0]}, flow=True,   # numbers rows
                                    what=f"column {column.name}: default: ")
        for index, name in enumerate(table.primary_key):
            if name.lower() not in names:
                self.report(document, "reference", f"primary key column '{name}' is not a column "
                            f"of the table{_did_you_mean(name, names)}", "primary_key", index)

    # -- SQL --------------------------------------------------------------------------------
    def sql(self, objects, dialect: str) -> dict[ObjectKey, sql.SqlFacts]:
        """Analyse every statement. Each is parsed once, and its tree serves while it is at hand: the
        analysis, what each engine may run (`engines`), and binding (`columns`, which finds it bound).
        Binding needs the columns of what a statement reads, so the statements are analysed depth
        first, what one reads before it: only the trees on the path are held."""
        facts: dict[ObjectKey, sql.SqlFacts] = {}
        index, connections = {key.folded(): key for key in objects}, _connections(objects)
        known: dict[ObjectKey, bind.Columns | None] = {}   # what binding found so far, as `columns` finds it
        seen: set[ObjectKey] = set()
        for start in objects:
            stack: list[tuple[ObjectKey, exp.Expression | None, bool]] = [(start, None, False)]
            while stack:
                key, tree, finished = stack.pop()
                if finished:   # a statement whose facts came from the cache has no tree: `columns` binds it
                    if tree is not None or isinstance(objects[key], Table):
                        with self._quiet():
                            self._bind(key, objects, facts, self._dependencies(key, objects, facts, index,
                                                                               connections), known, dialect, tree)
                    continue
                if key in seen:
                    continue
                seen.add(key)
                tree = self._analysed(key, objects[key], dialect, facts)
                stack.append((key, tree, True))
                for reference in facts[key].references if tree is not None else ():   # what it reads first
                    found = index.get(ObjectKey.parse(reference).folded()) if reference.count(".") == 1 else None
                    if found is not None and found not in seen:
                        stack.append((found, None, False))
                target = index.get(ObjectKey.parse(objects[key].target).folded()) \
                    if isinstance(objects[key], DataFlow) and tree is not None else None
                if target is not None and target not in seen:
                    stack.append((target, None, False))
        return facts

    def _analysed(self, key: ObjectKey, obj, dialect: str, facts: dict) -> exp.Expression | None:
        """Analyse one object's SQL into `facts`, and what its engines may run; the tree, while parsed."""
        if not isinstance(obj, (View, MaterializedTable, DataFlow)):
            return None
        document = self.documents[key]
        try:
            result = sql.analyze(obj.sql, dialect, self.cache)
        except sql.SqlProblem as problem:
            line, column = document.where_inside(("sql",), problem.line, problem.column)
            self.diagnostics.append(Diagnostic(document.path, line, column, "sql",
                                               f"SQL does not parse: {problem}"))
            return None
        expected = "insert" if isinstance(obj, DataFlow) else "query"
        if result.statement != expected:
            wanted = "a SELECT" if expected == "query" else "an INSERT INTO ... SELECT"
            self.report(document, "sql", f"{obj.kind} SQL must be {wanted}, "
                        f"found {result.statement.upper()}", "sql")
            return None
        if isinstance(obj, DataFlow) and ObjectKey.parse(result.insert_target or "").folded() \
                != ObjectKey.parse(obj.target).folded():
            self.report(document, "sql", f"the SQL inserts into {result.insert_target} but the "
                        f"target is {obj.target}", "sql")
        if self._effects(document, ("sql",), result.effects, ""):
            return None
        facts[key] = result
        tree = sql.parsed(obj.sql, dialect)   # None when the facts came from the cache
        if tree is not None:   # what `engines` asks, answered (cached) while the tree is at hand
            for engine in self.callers[0]:
                with contextlib.suppress(sql.SqlProblem):
                    sql.calls(obj.sql, dialect, engine, self.cache)
                    if engine != dialect:
                        sql.untranslatable(obj.sql, dialect, engine, self.cache)
        return tree

    @contextlib.contextmanager
    def _quiet(self):
        """A step run for what it leaves in the cache: the problems it finds are reported when it runs again."""
        reported = self.diagnostics
        self.diagnostics = []
        try:
            yield
        finally:
            self.diagnostics = reported

    def _effects(self, document: Document, loc: tuple[str, ...], effects, what: str) -> bool:
        """Report each part of a statement that changes what its kind may not (`policy.effects`)."""
        for effect in effects:
            line, column = document.where_inside(loc, effect.line, effect.column)
            self.diagnostics.append(Diagnostic(document.path, line, column, "sql", what + effect.message))
        return bool(effects)

    def _calls(self, document: Document, loc: tuple[str, ...], found: dict[str, tuple[policy.Call, ...]],
               flow: bool = False, what: str = "") -> None:
        """Report each function the SQL at `loc` may not call on one of the tenants' engines."""
        engines, allowed = self.callers
        seen: set[tuple] = set()
        for engine in sorted(engines):
            for refused in policy.refused_calls(found[engine], engine, flow, allowed):
                if (refused.message, refused.line, refused.column) not in seen:
                    seen.add((refused.message, refused.line, refused.column))
                    line, column = document.where_inside(loc, refused.line, refused.column)
                    self.diagnostics.append(Diagnostic(document.path, line, column, "function",
                                                       what + refused.message))

    def engines(self, objects, facts, dialect: str, engines: dict[str, str]) -> None:
        """SQL that some tenant's engine cannot run (sqlglot cannot transpile it) or may not run there (a
        function off the engine's allowlist) is refused now."""
        for key in facts:
            found = {engine: sql.calls(objects[key].sql, dialect, engine, self.cache) for engine in self.callers[0]}
            self._calls(self.documents[key], ("sql",), found, isinstance(objects[key], DataFlow))
        for engine in sorted(set(engines.values()) & ENGINES_WITHOUT_MATERIALIZED_TABLES):
            tenants = ", ".join(sorted(name for name, e in engines.items() if e == engine))
            for key, obj in objects.items():
                if isinstance(obj, MaterializedTable):
                    self.report(self.documents[key], "kind", f"a MaterializedTable is not built for {engine} tenants "
                                f"yet (tenant {tenants})", "kind")
        for engine in sorted(set(engines.values())):
            tenants = ", ".join(sorted(name for name, e in engines.items() if e == engine))
            for key in facts:
                if engine == dialect and facts[key].unwritable:   # rendering for the tenant would fail at plan
                    self.report(self.documents[key], "sql", f"cannot be rendered for {engine} (tenant {tenants}): "
                                f"sqlglot, which writes every statement a tenant runs, refuses it: "
                                f"{facts[key].unwritable}", "sql")
                problem = engine != dialect and sql.untranslatable(objects[key].sql, dialect, engine, self.cache)
                if problem:
                    self.report(self.documents[key], "sql", f"cannot run on {engine} (tenant {tenants}): {problem}",
                                "sql")
        for engine in sorted(set(engines.values())):
            self._column_types(objects, engine, ", ".join(sorted(name for name, e in engines.items() if e == engine)))

    def _column_types(self, objects, engine: str, tenants: str) -> None:
        """A table column's declared type that the engine has no type for (a bit string on Spark)."""
        for key, obj in objects.items():
            if not isinstance(obj, Table):
                continue
            for index, column in enumerate(obj.columns):
                try:
                    column_types.declared(column.type, self.dialect)
                except sql.SqlProblem:
                    continue   # not a type at all: reported with the object
                try:
                    column_types.column_type(column.type, self.dialect, engine)
                except sql.SqlProblem as problem:
                    self.report(self.documents[key], "type", f"cannot run on {engine} (tenant {tenants}): {problem}",
                                "columns", index, "type")

    def renames(self, objects) -> None:
        """`renamed_from:` names what is gone: a table or column of that name still declared would be
        renamed away and then created again (or wedge the tenant halfway)."""
        declared = {key.folded() for key in objects}
        for key, obj in objects.items():
            if not isinstance(obj, Table):
                continue
            document = self.documents[key]
            if obj.renamed_from and ObjectKey(key.schema, obj.renamed_from).folded() in declared \
                    and obj.renamed_from.lower() != obj.name.lower():
                self.report(document, "rename", f"renamed_from: {obj.renamed_from} names a table that is still "
                            f"declared ({key.schema}.{obj.renamed_from}); remove its file in the same change",
                            "renamed_from")
            columns = {c.name.lower() for c in obj.columns}
            for index, column in enumerate(obj.columns):
                if column.renamed_from and column.renamed_from.lower() in columns \
                        and column.renamed_from.lower() != column.name.lower():
                    self.report(document, "rename", f"column {column.name}: renamed_from: {column.renamed_from} "
                                "names a column that is still declared", "columns", index, "renamed_from")

    # -- references -----------------------------------------------------------------------
    def references(self, objects, facts) -> dict[ObjectKey, tuple[ObjectKey, ...]]:
        index, connections = {key.folded(): key for key in objects}, _connections(objects)
        return {key: self._dependencies(key, objects, facts, index, connections) for key in objects}

    def _dependencies(self, key: ObjectKey, objects, facts, index, connections) -> tuple[ObjectKey, ...]:
        """What one object reads and writes, each problem with that reported."""
        obj = objects[key]
        document = self.documents[key]
        found: list[ObjectKey] = []
        read = facts.get(key)
        for reference, at in zip(read.references, read.located) if read is not None else ():
            resolved = self._relation(document, reference, index, objects, at=at)
            if resolved is not None and resolved != key:
                found.append(resolved)
            elif resolved == key:
                self.report(document, "cycle", f"{key} reads itself", "sql")
        if isinstance(obj, DataFlow):
            target = index.get(ObjectKey.parse(obj.target).folded())
            if obj.target.lower() in self.broken:
                pass
            elif target is None or not isinstance(objects[target], Table):
                what = "is not a Table" if target else "does not exist"
                self.report(document, "reference", f"target {obj.target} {what}"
                            f"{_did_you_mean(obj.target, [str(k) for k in objects])}", "target")
            else:
                found.append(target)
                if obj.mode == "upsert":
                    self._upsert(document, obj, objects[target], facts.get(key))
            connection = self._connection(obj.connection, index, connections, objects)
            if connection is None and obj.connection.lower() not in self.broken:
                names = [o.name for o in objects.values() if isinstance(o, Connection)]
                self.report(document, "reference", f"connection {obj.connection} does not exist"
                            f"{_did_you_mean(obj.connection, names)}", "connection")
            else:
                if connection is not None:
                    found.append(connection)
        return tuple(dict.fromkeys(found))

    def _relation(self, document, reference: str, index, objects, loc: tuple = ("sql",),
                  at: tuple[int, int] | None = None) -> ObjectKey | None:
        """The object a reference in SQL names (`at`: where it is written inside the SQL at `loc`)."""
        if reference.count(".") > 1:   # a catalog too: the tenant's own database is the only one
            catalog, _, rest = reference.partition(".")
            others = [str(k) for k in objects if self.documents[k] is not document]
            message = (f"{reference} names a database ({catalog}): objects are read as schema.name, in the "
                       f"tenant's own database{_did_you_mean(rest, others)}")
            if at is None:
                self.report(document, "reference", message, *loc)
            else:
                line, column = document.where_inside(loc, *at)
                self.diagnostics.append(Diagnostic(document.path, line, column, "reference", message))
            return None
        wanted = ObjectKey.parse(reference) if "." in reference else None
        if wanted is None:
            self.report(document, "reference", f"'{reference}' is not schema-qualified; write "
                        f"schema.{reference}{_did_you_mean(reference, [k.name for k in objects], objects)}",
                        *loc)
            return None
        resolved = index.get(wanted.folded())
        if resolved is None:
            if reference.lower() not in self.broken:
                others = [str(k) for k in objects if self.documents[k] is not document]
                self.report(document, "reference", f"{reference} does not exist"
                            f"{_did_you_mean(reference, others)}", *loc)
            return None
        if not isinstance(objects[resolved], READABLE):
            self.report(document, "reference", f"{reference} is a {objects[resolved].kind}; SQL can "
                        "only read tables and views", *loc)
            return None
        return resolved

    def _upsert(self, document: Document, flow: DataFlow, target: Table, facts: sql.SqlFacts | None) -> None:
        """An upsert replaces a row by its target's primary key (what ON CONFLICT can name), and the flow
        must give every key column."""
        keys = [name.lower() for name in target.primary_key]
        if not keys:
            self.report(document, "reference", f"mode: upsert replaces rows by the primary key of {flow.target}, "
                        "which has none", "mode")
        elif sorted(name.lower() for name in flow.unique_key) != sorted(keys):
            self.report(document, "reference", f"unique_key: an upsert replaces a row by the primary key of "
                        f"{flow.target}: [{', '.join(target.primary_key)}]", "unique_key")
        else:
            listed = facts.insert_columns if facts is not None else ()
            missing = [name for name in flow.unique_key if listed and name.lower() not in {c.lower() for c in listed}]
            if missing:
                self.report(document, "sql", f"the INSERT lists no value for key column{'s' * (len(missing) > 1)} "
                            f"{', '.join(missing)}, which an upsert matches rows by", "sql")

    @staticmethod
    def _connection(name: str, index, connections, objects) -> ObjectKey | None:
        if "." in name:
            key = index.get(ObjectKey.parse(name).folded())
            return key if key is not None and isinstance(objects[key], Connection) else None
        candidates = connections.get(name.lower(), [])
        return candidates[0] if len(candidates) == 1 else None

    def cycles(self, graph: nx.DiGraph) -> bool:
        found = graphs.cycles(graph)
        for cycle in found:
            path = " -> ".join(map(str, cycle))
            self.report(self.documents[cycle[0]], "cycle", f"dependency cycle: {path}", "sql")
        return bool(found)

    # -- columns ----------------------------------------------------------------------------
    def columns(self, objects, facts, dependencies, graph: nx.DiGraph, dialect: str) -> tuple[dict, dict, dict, dict]:
        """Bind every view and data flow against the columns the landscape declares, in dependency
        order; report each column that does not bind at its place inside the SQL. (The columns each
        table and view exposes, with their types, `bind.UNNAMED` among them where the engine names
        some; the columns of its inputs each view and data flow reads, what each view column is
        computed from, what each view gives on through `*`: `Landscape`'s fields.)"""
        known: dict[ObjectKey, bind.Columns | None] = {}
        read_columns: dict[ObjectKey, dict[ObjectKey, tuple[str, ...]]] = {}
        derived: dict[ObjectKey, dict[str, tuple[tuple[ObjectKey, str], ...]]] = {}
        stars: dict[ObjectKey, tuple[ObjectKey, ...]] = {}
        for key in graphs.order(graph):
            obj = objects[key]
            result = self._bind(key, objects, facts, dependencies[key], known, dialect)
            if result is None:
                continue
            reads = {str(d).lower(): d for d in dependencies[key] if isinstance(objects[d], READABLE)}
            read_columns[key] = {reads[name]: tuple(columns) for name, columns in result.reads.items() if name in reads}
            if result.derived:
                derived[key] = {column: tuple((reads[source], name) for source, name in pairs if source in reads)
                                for column, pairs in result.derived.items()}
            if result.stars:
                stars[key] = tuple(reads[name] for name in result.stars if name in reads)
            document = self.documents[key]
            for problem in result.problems:
                line, column = document.where_inside(("sql",), problem.line, problem.column)
                hint = _did_you_mean(problem.word, problem.candidates) if problem.word else ""
                self.diagnostics.append(Diagnostic(document.path, line, column, "column", problem.message + hint))
        return ({key: columns for key, columns in known.items() if columns is not None}, read_columns, derived, stars)

    def _bind(self, key: ObjectKey, objects, facts, dependencies: tuple[ObjectKey, ...],
              known: dict[ObjectKey, bind.Columns | None], dialect: str,
              tree: exp.Expression | None = None) -> bind.Bound | None:
        """Bind one object against the columns `known` of what it reads, and record the columns it
        gives there (None: not known, so nothing reading it is bound). None where it is not bound."""
        obj = objects[key]
        if key in self.duplicated:
            known[key] = None
            return None
        if isinstance(obj, Table):
            try:
                known[key] = {c.name: _bound_type(c.type, dialect) for c in obj.columns}
            except sql.SqlProblem:
                known[key] = None
            return None
        if not isinstance(obj, (View, MaterializedTable, DataFlow)) or key not in facts:
            return None
        reads = [d for d in dependencies if isinstance(objects[d], READABLE)]
        if any(known.get(d) is None for d in reads):   # an input that did not bind: no cascade
            known[key] = None
            return None
        target = next((str(d).lower() for d in reads if isinstance(obj, DataFlow)
                       and d.folded() == ObjectKey.parse(obj.target).folded()), None)
        result = bind.bind(obj.sql, dialect, {str(d).lower(): known[d] for d in reads}, target, self.cache, tree)
        known[key] = result.outputs if isinstance(obj, View) else None
        if isinstance(obj, MaterializedTable) and result.outputs is not None:
            known[key] = self._pinned(self.documents[key], obj, result.outputs, dialect)
        if known[key] is not None and result.unnamed:   # its readers may name those as the engine does
            known[key] = {**known[key], bind.UNNAMED: "UNKNOWN"}
        return result

    def _pinned(self, document: Document, table: MaterializedTable, outputs: bind.Columns,
                dialect: str) -> bind.Columns:
        """A MaterializedTable's columns: its query's, with the types its `columns:` pin."""
        given = {name.lower(): name for name in outputs}
        columns = dict(outputs)
        for index, column in enumerate(table.columns):
            if column.name.lower() not in given:
                self.report(document, "reference", f"column {column.name} is not a column of the query"
                            f"{_did_you_mean(column.name, outputs)}", "columns", index, "name")
                continue
            try:
                columns[given[column.name.lower()]] = sql.normalize_type(column.type, dialect, dialect)
            except sql.SqlProblem:
                pass   # reported with the object
        return columns

    # -- data checks ------------------------------------------------------------------------
    def checks(self, objects, dependencies, graph: nx.DiGraph, columns: dict[ObjectKey, bind.Columns],
               sensitive: dict[ObjectKey, set[str]], dialect: str) -> dict[ObjectKey, tuple[checks.DataCheck, ...]]:
        """Every table's and view's checks, each a query over the columns the landscape declares: the
        columns and objects they name exist, conditions parse and are boolean, a `sql:` check is one
        SELECT whose references and columns bind; no sample ever shows a sensitive column (`_sensitive`)."""
        index = {key.folded(): key for key in objects}
        found: dict[ObjectKey, tuple[checks.DataCheck, ...]] = {}
        for key, obj in objects.items():
            if not isinstance(obj, READABLE) or not obj.checks and not (
                    isinstance(obj, (Table, MaterializedTable)) and any(c.checks for c in obj.columns)):
                continue
            if key not in columns:   # its own columns did not bind: reported already
                continue
            document = self.documents[key]
            made = [self._check(document, key, item, index, objects, columns, sensitive, dialect)
                    for item in checks.declared(obj)]
            found[key] = tuple(check for check in made if check is not None)
        return found

    def _check(self, document: Document, key: ObjectKey, item: checks.Declared, index, objects, columns,
               sensitive: dict[ObjectKey, set[str]], dialect: str) -> checks.DataCheck | None:
        check, loc = item.check, item.loc
        problems = len(self.diagnostics)
        if item.under_column and item.kind not in COLUMN_CHECK_KINDS:
            self.report(document, "check", f"{item.kind} is an object check: write it under the object's "
                        "`checks:`, not under a column", *loc, item.kind)
        elif item.under_column and (check.column or isinstance(check.not_null, str)
                                    or isinstance(check.unique, (str, tuple))):
            self.report(document, "check", "under a column a check is about that column: it names no other",
                        *loc, item.kind)
        elif not item.under_column and item.kind in COLUMN_CHECK_KINDS and not item.columns:
            hint = f"{{{item.kind}: COLUMN}}" if item.kind in ("not_null", "unique") else "`column: NAME`"
            self.report(document, "check", f"an object-level {item.kind} check names its column: {hint}", *loc)
        own = {name.lower(): name for name in columns[key]}
        for position, name in enumerate(item.columns):
            if name.lower() not in own:
                where = (("column",) if check.column else (item.kind, position) if isinstance(check.unique, tuple)
                         else (item.kind,))
                self.report(document, "reference", f"check {item.name}: {key} has no column {name}"
                            f"{_did_you_mean(name, own.values())}", *loc, *where)
        if item.kind in ("accepted_values", "accepted_range") and len(item.columns) == 1 \
                and item.columns[0].lower() in own:
            column = own[item.columns[0].lower()]
            mismatch = sql.value_mismatch(columns[key][column], dialect, check.accepted_values) \
                if check.accepted_values else sql.not_numeric(columns[key][column], dialect)
            if mismatch:
                self.report(document, "check", f"check {item.name}: {mismatch}", *loc, item.kind)
        if check.where is not None and item.kind == "sql":
            self.report(document, "check", "a sql check filters in its own WHERE; `where:` is for the other "
                        "kinds", *loc, "where")
        conditions = [(field_name, getattr(check, field_name)) for field_name in ("where", "expression")
                      if getattr(check, field_name) is not None and item.kind != "sql"]
        parameters: set[str] = set()
        for field_name, text in conditions:
            try:
                condition = sql.parse_condition(text, dialect)
                parameters |= sql.parameters_in(condition)
                if self._effects(document, (*map(str, loc), field_name), policy.effects(condition),
                                 f"check {item.name}: "):
                    continue
                self._calls(document, (*map(str, loc), field_name),
                            {engine: sql.calls_in(condition, engine, text) for engine in self.callers[0]},
                            what=f"check {item.name}: ")
            except sql.SqlProblem as problem:
                line, column = document.where_inside((*map(str, loc), field_name), problem.line, problem.column)
                self.diagnostics.append(Diagnostic(document.path, line, column, "sql",
                                                   f"check {item.name}: {field_name} does not parse: {problem}"))
                continue
            kind = sql.condition_type(condition, columns[key], dialect)
            if kind.upper() not in ("BOOLEAN", "UNKNOWN"):
                self.report(document, "check", f"check {item.name}: {field_name} must be true or false for a "
                            f"row; it is {kind}", *loc, field_name)
        target, reads, inputs = None, [], {str(key).lower(): columns[key]}
        if check.relationships is not None:
            target = self._relation(document, check.relationships.to, index, objects,
                                    (*loc, "relationships", "to"))
            if target is not None and target in columns:
                theirs = {name.lower() for name in columns[target]}
                if check.relationships.column.lower() not in theirs:
                    self.report(document, "reference", f"check {item.name}: {target} has no column "
                                f"{check.relationships.column}{_did_you_mean(check.relationships.column, columns[target])}",
                                *loc, "relationships", "column")
                reads, inputs = [target], {**inputs, str(target).lower(): columns[target]}
        shown = [name for name in columns[key] if name.lower() not in sensitive.get(key, set())]
        if item.kind == "row_count":
            shown = ["row_count"]   # its one offending row is the count
        elif item.kind == "sql":
            shown, reads = self._sql_check(document, item, index, objects, columns, sensitive, dialect)
            parameters |= set(sql.analyze(check.sql, dialect, self.cache).parameters) if shown is not None else set()
        if len(self.diagnostics) > problems or shown is None:
            return None
        query = self._built(item, key, shown, dialect, target)
        if conditions:   # the columns a condition names, bound like a view's (the others' were checked above)
            for problem in bind.bind(query, dialect, inputs, None, self.cache).problems:
                field_name = "expression" if check.expression else "where" if check.where else item.kind
                hint = _did_you_mean(problem.word, problem.candidates) if problem.word else ""
                self.report(document, "column", f"check {item.name}: {problem.message}{hint}", *loc, field_name)
        if len(self.diagnostics) > problems:
            return None
        return checks.DataCheck(item.name, item.kind, check.severity, query, tuple(shown), tuple(reads),
                                document.where(*loc)[0], tuple(sorted(parameters)))

    def _built(self, item: checks.Declared, key: ObjectKey, shown: list[str], dialect: str,
               target: ObjectKey | None) -> str:
        """The check's query (`checks.build`), cached by everything it is made from: building and
        generating it with sqlglot costs more than running it on an empty table."""
        cached_key = content_key("check", checks.CHECKS_VERSION, sqlglot.__version__, dialect, str(key),
                                 str(target), item.check.model_dump_json(), json.dumps(list(item.columns)),
                                 json.dumps(shown))
        query = self.cache.get(CHECKS_CACHE, cached_key)
        if query is None:
            query = checks.build(item, key, shown, dialect, target)
            self.cache.put(CHECKS_CACHE, cached_key, query)
        return query

    def _sql_check(self, document: Document, item: checks.Declared, index, objects, columns, sensitive,
                   dialect: str) -> tuple[list[str] | None, list[ObjectKey]]:
        """A `sql:` check: one SELECT whose references resolve and whose columns bind; what it may show
        (its columns not computed from a sensitive one), and what it reads."""
        field_loc = (*map(str, item.loc), "sql")
        try:
            facts = sql.analyze(item.check.sql, dialect, self.cache)
        except sql.SqlProblem as problem:
            line, column = document.where_inside(field_loc, problem.line, problem.column)
            self.diagnostics.append(Diagnostic(document.path, line, column, "sql",
                                               f"check {item.name}: SQL does not parse: {problem}"))
            return None, []
        if facts.statement != "query":
            self.report(document, "sql", f"check {item.name}: a sql check is one SELECT returning the offending "
                        f"rows, found {facts.statement.upper()}", *field_loc)
            return None, []
        if self._effects(document, field_loc, facts.effects, f"check {item.name}: "):
            return None, []
        self._calls(document, field_loc, {engine: sql.calls(item.check.sql, dialect, engine, self.cache)
                                          for engine in self.callers[0]}, what=f"check {item.name}: ")
        reads = [found for found in (self._relation(document, reference, index, objects, field_loc, at)
                                     for reference, at in zip(facts.references, facts.located)) if found is not None]
        if len(reads) != len(facts.references) or any(read not in columns for read in reads):
            return None, reads
        result = bind.bind(item.check.sql, dialect, {str(read).lower(): columns[read] for read in reads}, None,
                           self.cache)
        for problem in result.problems:
            line, column = document.where_inside(field_loc, problem.line, problem.column)
            hint = _did_you_mean(problem.word, problem.candidates) if problem.word else ""
            self.diagnostics.append(Diagnostic(document.path, line, column, "column",
                                               f"check {item.name}: {problem.message}{hint}"))
        if result.outputs is None:
            return [], reads   # what it returns is not known: counted, never sampled
        by_name = {str(read).lower(): read for read in reads}
        referred = {by_name[source]: names for source, names in result.reads.items() if source in by_name}
        stars = {CHECKED: tuple(by_name[source] for source in result.stars if source in by_name)}
        if reads_sensitive(CHECKED, sensitive, {CHECKED: referred}, stars):
            return [], reads   # it filters or joins on a sensitive column: its rows tell of it; counted only
        shown = [name for name in result.outputs
                 if name.lower() in result.derived and not any(
                     column.lower() in sensitive.get(by_name.get(source), set())
                     for source, column in result.derived[name.lower()])]
        return shown, reads

    # -- rules ------------------------------------------------------------------------------
    def rules(self, environment: Environment, objects, facts, data_checks) -> None:
        document = self.source.environment
        connection_names = {o.name for o in objects.values() if isinstance(o, Connection)} | \
            {str(k) for k, o in objects.items() if isinstance(o, Connection)}
        schemas = {k.schema for k in objects}
        checked = {key: [check.parameters for check in found] for key, found in data_checks.items()}
        used = {p for f in facts.values() for p in f.parameters} | {
            p for found in checked.values() for parameters in found for p in parameters}
        scopes = [(("rules",), environment.rules)] + [
            (("tenants", str(i), "rules"), t.rules) for i, t in enumerate(environment.tenants)]
        for loc, rules in scopes:
            for source_name, target_name in rules.connections.items():
                for name, what in ((source_name, "swaps"), (target_name, "swaps to")):
                    if name not in connection_names:
                        self.report(document, "rules", f"connection rule {what} {name}, which is not a "
                                    f"Connection here{_did_you_mean(name, connection_names)}",
                                    *loc, "connections", source_name)
            for schema, target in rules.schemas.items():
                if schema not in schemas:
                    self.report(document, "rules", f"schema rule maps '{schema}', which no object "
                                f"uses{_did_you_mean(schema, schemas)}", *loc, "schemas", schema)
                if _reserved(target):   # checked after mapping: the name the tenant would see
                    self.report(document, "reserved", f"schema rule maps '{schema}' to '{target}', which is "
                                "reserved for the reconciler or the engine", *loc, "schemas", schema)
            for parameter in rules.parameters:
                if parameter not in used:
                    self.report(document, "rules", f"parameter {parameter} is not used by any SQL"
                                f"{_did_you_mean(parameter, used)}", *loc, "parameters", parameter)
        for index, tenant in enumerate(environment.tenants):
            values = environment.rules_for(tenant).parameters
            for key, result in facts.items():
                for parameter in result.parameters:
                    if parameter not in values:
                        self.report(self.documents[key], "parameter",
                                    f"$${parameter} has no value for tenant {tenant.name}: add it "
                                    "under rules.parameters in environment.yaml", "sql")
            for key, found in checked.items():
                for parameters in found:
                    for parameter in sorted(set(parameters) - set(values)):
                        self.report(self.documents[key], "parameter",
                                    f"$${parameter} (in a check) has no value for tenant {tenant.name}: add it "
                                    "under rules.parameters in environment.yaml", "checks")


def _connections(objects) -> dict[str, list[ObjectKey]]:
    """The connections by their plain name (lower case): a data flow may name one without its schema."""
    found: dict[str, list[ObjectKey]] = {}
    for key, obj in objects.items():
        if isinstance(obj, Connection):
            found.setdefault(obj.name.lower(), []).append(key)
    return found


def _bound_type(declared: str, dialect: str) -> str:
    """A table column's type as binding infers with it: as SQL in `dialect` means it, UNKNOWN for a type
    sqlglot has no expression for (PostgreSQL's BIT VARYING); SqlProblem where it is no type at all."""
    column_types.declared(declared, dialect)
    try:
        return sql.normalize_type(declared, dialect, dialect)
    except sql.SqlProblem:
        return "UNKNOWN"


def _sensitive(objects, graph: nx.DiGraph, columns: dict[ObjectKey, bind.Columns], reads: dict,
               derived: dict, stars: dict) -> dict[ObjectKey, set[str]]:
    """The columns (lower case) no sample may show: a table's `sensitive: true` ones, every view column
    computed from one, and every column of a view that reads one anywhere (a filter or a join on a
    sensitive column tells about its values through the rows it lets through; so does a `*` over one)."""
    sensitive: dict[ObjectKey, set[str]] = {}
    for key in graphs.order(graph):
        obj = objects[key]
        if isinstance(obj, Table):
            sensitive[key] = {c.name.lower() for c in obj.columns if c.sensitive}
        elif isinstance(obj, (View, MaterializedTable)) and key in columns:
            sources = derived.get(key, {})
            if reads_sensitive(key, sensitive, reads, stars):
                sensitive[key] = {name.lower() for name in columns[key]}
            else:
                sensitive[key] = {name.lower() for name in columns[key]
                                  if name.lower() not in sources and any(sensitive.get(d) for d in graph.predecessors(key))
                                  or any(column.lower() in sensitive.get(source, set())
                                         for source, column in sources.get(name.lower(), ()))}
            if isinstance(obj, MaterializedTable):
                sensitive[key] |= {c.name.lower() for c in obj.columns if c.sensitive}
    return sensitive


CHECKED = ObjectKey("", "")   # a `sql:` check, asked the question views are asked (`reads_sensitive`)


def reads_sensitive(key: ObjectKey, sensitive: dict[ObjectKey, set[str]], reads: dict, stars: dict) -> bool:
    """Whether what `key`'s SQL refers to, anywhere in it, holds a sensitive column."""
    return any({name.lower() for name in names} & sensitive.get(source, set())
               for source, names in reads.get(key, {}).items()) \
        or any(sensitive.get(source) for source in stars.get(key, ()))


def _explain(problem: dict, loc: tuple[str, ...]) -> str:
    field_name = loc[-1] if loc else "document"
    kind = problem["type"]
    if kind == "extra_forbidden":
        return f"unknown field '{field_name}'"
    if kind == "too_short":
        return f"'{field_name}' needs at least one item"
    if kind == "value_error":
        return str(problem["ctx"]["error"])
    if kind == "missing":
        return f"missing required field '{field_name}'"
    if kind == "string_too_long":
        return (f"'{problem['input']}' is {len(problem['input'])} characters; names are at most "
                f"{problem['ctx']['max_length']} (PostgreSQL would truncate a longer one without a word)")
    if kind == "string_pattern_mismatch":
        pattern = problem.get("ctx", {}).get("pattern", "")
        if pattern.startswith("^env:"):
            return f"'{field_name}' must be a reference such as env:NAME, never a literal value"
        return f"'{problem['input']}' is not a plain name: {NAME_RULES.get(pattern, 'see the schema')}"
    return f"{field_name}: {problem['msg']}"


def _reserved(schema: str) -> bool:
    return schema.lower().startswith(RESERVED_SCHEMAS)


def _did_you_mean(word: str, candidates: Iterable[str], objects=None) -> str:
    candidates = list(candidates)
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in candidates}
        matches = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
        matches = [lowered[m] for m in matches]
    if not matches:
        return ""
    if objects is not None:  # an unqualified name: suggest the qualified object
        key = next((k for k in objects if k.name == matches[0]), None)
        return f" (did you mean {key}?)" if key else ""
    return f" (did you mean {matches[0]}?)"


def _dialect_exists(name: str) -> bool:
    from sqlglot.dialects.dialect import Dialect
    try:
        Dialect.get_or_raise(name)
        return True
    except ValueError:
        return False


def _adapters_allowlist(tenant: Tenant) -> None:
    """The function allowlist an adapter of another package gives (`function_allowlist`, the format of
    reconciler/allowlists/*.txt); without one, SQL that calls a function is refused on its engine."""
    try:
        given = getattr(engines()[urlsplit(tenant.url).scheme].load(), "function_allowlist", None)
    except Exception:   # noqa: BLE001 - an adapter that cannot be loaded gives no list; its tenants fail later, named
        return
    if isinstance(given, str):
        policy.register(tenant.engine, given)


def _url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    installed = engines()
    if parts.scheme not in installed:
        return (f"tenant url scheme '{parts.scheme}' has no engine adapter installed"
                f"{_did_you_mean(parts.scheme, installed)} (installed: {', '.join(sorted(installed))})")
    if parts.scheme == "duckdb" and (not url.startswith("duckdb:///") or len(url) <= len("duckdb:///")):
        return "a DuckDB tenant url is duckdb:///relative/path.duckdb or duckdb:////absolute/path.duckdb"
    if parts.scheme == "sc" and not (parts.hostname and parts.port):
        return "a Spark Connect tenant url is sc://host:port"
    if parts.scheme == "postgresql" and not parts.path.strip("/"):
        return "a PostgreSQL tenant url names its database: postgresql://user@host:5432/database"
    if not _dialect_exists(Tenant(name="t", url=url).engine):
        return f"the engine of '{parts.scheme}' names no SQL dialect sqlglot knows"
    return None
