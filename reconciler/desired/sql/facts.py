"""What a statement says: the facts of one statement of the landscape (`SqlFacts`: its kind, what it
reads and writes, its parameters, its canonical form), the functions it calls, and what a rendered DDL
or DML statement writes and depends on.

Owns reading these off the parsed tree, cached by a hash of the text and the dialect. Never renders
for an engine (`rendering`) and never resolves a name to an object (validation does).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, UnsupportedError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from .. import policy
from ..cache import NO_CACHE, Cache, content_key
from .parsing import parse, position
from .problems import SqlProblem, bounded, unsupported
from .templates import parameter_name, parameters_in

FACTS_VERSION = "4"   # part of the cache key of SqlFacts: a new value when what they hold changes


@dataclass(frozen=True)
class SqlFacts:
    """What one statement says, independent of any environment."""

    statement: str               # "query" | "insert" | the statement's own kind
    references: tuple[str, ...]  # objects read, as written: "schema.name", "name" or "catalog.schema.name"
    insert_target: str | None
    parameters: tuple[str, ...]
    canonical: str               # the statement re-generated: formatting and comments gone
    projection: str              # the canonical select list: its change changes the columns
    effects: tuple[policy.Violation, ...] = ()   # what it changes besides what its kind may (`policy.effects`)
    located: tuple[tuple[int, int], ...] = ()    # where each of `references` is first written (line, column)
    insert_columns: tuple[str, ...] = ()         # the column list of an INSERT, as written
    unwritable: str = ""   # why sqlglot cannot write the statement back in its own dialect (then no engine
    #                        of that dialect can be given it), or ""


def _facts(tree: exp.Expression, dialect: str) -> SqlFacts:
    target = None
    query = tree
    if isinstance(tree, exp.Insert):
        table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        target = _table_name(table)
        query = tree.expression
        statement = "insert"
    elif isinstance(tree, exp.Query):
        statement = "query"
    else:
        statement = tree.key
    cte_names = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    references: dict[str, tuple[int, int]] = {}
    for table in tree.find_all(exp.Table):
        if table is (tree.this.this if isinstance(tree.this, exp.Schema) else tree.this) and target:
            continue
        if not isinstance(table.this, exp.Identifier):
            continue  # table functions such as range() or read_csv()
        name = ".".join(part.name for part in table.parts)   # a catalog too, when one is written
        if not table.db and name.lower() in cte_names:
            continue
        references.setdefault(name, position(table.parts[0]))
    # the select list as code: a comment in it is not a column (comments=False, like `canonical`)
    projection = ", ".join(e.sql(dialect=dialect, comments=False) for e in query.selects) \
        if isinstance(query, exp.Query) else ""
    parameters = sorted(parameters_in(tree))
    listed = tree.this.expressions if isinstance(tree, exp.Insert) and isinstance(tree.this, exp.Schema) else []
    try:   # as rendering for an engine of its own dialect writes it (`render`)
        canonical, unwritable = tree.sql(dialect=dialect, comments=False,
                                         unsupported_level=ErrorLevel.RAISE), ""
    except UnsupportedError as error:
        canonical, unwritable = tree.sql(dialect=dialect, comments=False), unsupported(error)
    return SqlFacts(statement, tuple(references), target, tuple(parameters), canonical, projection,
                    policy.effects(tree), tuple(references.values()), tuple(i.name for i in listed), unwritable)


def select_items(projection: str, dialect: str) -> dict[str, str] | None:
    """A view's canonical select list (`SqlFacts.projection`) as {column (lower case): its expression};
    None where a `*` or an unnamed expression leaves its columns unknown."""
    try:
        query = parse(f"SELECT {projection}", dialect)
    except SqlProblem:
        return None
    items = {}
    for item in query.selects:
        if item.is_star or not item.alias_or_name:
            return None
        items[item.alias_or_name.lower()] = item.sql(dialect=dialect, comments=False)
    return items


def _tupled(value):
    return tuple(value) if isinstance(value, list) else value


def _table_name(table: exp.Table) -> str:
    return f"{table.db}.{table.name}" if table.db else table.name


@bounded
def analyze(sql: str, dialect: str, cache: Cache = NO_CACHE) -> SqlFacts:
    """Facts about one statement, cached by the hash of the text and the dialect."""
    key = content_key("facts", FACTS_VERSION, sqlglot.__version__, dialect, sql)
    cached = cache.get("sql-facts", key)
    if cached is not None:
        if "problem" in cached:
            raise SqlProblem(*cached["problem"])
        facts = {k: tuple(map(_tupled, v)) if isinstance(v, list) else v for k, v in cached.items()}
        return SqlFacts(**{**facts, "effects": tuple(policy.Violation(**v) for v in facts["effects"])})
    try:
        tree = parse(sql, dialect)
        facts = _facts(tree, dialect)
    except SqlProblem as problem:
        cache.put("sql-facts", key, {"problem": [str(problem), problem.line, problem.column]})
        raise
    cache.put("sql-facts", key, asdict(facts))
    return facts


CALLS_VERSION = "2"   # part of the cache key of a statement's calls: a new value when `policy.calls` changes


@bounded
def calls(sql: str, dialect: str, engine: str, cache: Cache = NO_CACHE) -> tuple[policy.Call, ...]:
    """The functions a statement calls when it runs on `engine` (`policy.calls`), cached."""
    key = content_key("calls", CALLS_VERSION, sqlglot.__version__, dialect, engine, sql)
    cached = cache.get("sql-calls", key)
    if cached is not None:
        return tuple(policy.Call(*call) for call in cached)
    found = calls_in(parse(sql, dialect), engine, sql)
    cache.put("sql-calls", key, [[c.name, c.schema, c.line, c.column] for c in found])
    return found


def calls_in(tree: exp.Expression, engine: str, text: str) -> tuple[policy.Call, ...]:
    """`policy.calls` of a tree read from `text`, its parameters standing for the literals they become."""
    own = tree.transform(lambda node: exp.Literal.string("") if parameter_name(node) is not None else node)
    return policy.calls(own, engine, text, private=True)   # the transform's copy: the tree `parse` shares is not


def sequence_calls(statement: str, engine: str) -> tuple[str, ...]:
    """The functions a rendered statement calls that take a sequence's value (`nextval`): what no
    rollback gives back."""
    try:
        tree = parse(statement, engine)
    except SqlProblem:
        return ()
    taking = policy.allowlist(engine).flows
    return tuple(dict.fromkeys(call.name for call in calls_in(tree, engine, statement) if call.name in taking))


@bounded
def view_reads(engine_sql: str, engine: str) -> tuple[frozenset[str], frozenset[str]]:
    """(tables as lower-case `schema.name` or `name`, column names) a CREATE VIEW statement reads."""
    try:
        tree = parse(engine_sql, engine)
    except SqlProblem:
        return frozenset(), frozenset()
    query = tree.expression if isinstance(tree, exp.Create) else tree
    tables = frozenset(_table_name(t).lower() for t in query.find_all(exp.Table) if isinstance(t.this, exp.Identifier))
    columns = frozenset(c.name.lower() for c in query.find_all(exp.Column))
    return tables, columns


def permanent_view_query(statement: str, engine: str) -> str | None:
    """The query of a CREATE [OR REPLACE] VIEW that is not temporary, as `engine` reads it; else None."""
    try:
        tree = parse(statement, engine)
    except SqlProblem:
        return None
    if not isinstance(tree, exp.Create) or tree.kind != "VIEW" or tree.args.get("temporary") \
            or not isinstance(tree.expression, exp.Query):
        return None
    return tree.expression.sql(dialect=engine)


def written_objects(statement: str, engine: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(schema, name) of every table or view a DDL or DML statement creates, drops, alters, renames
    (both names) or writes rows into, in the order it names them; and of those it drops or renames
    away (whatever was under that name is not there after it, its history with it, where it keeps
    one). Schemas themselves are not objects. One parse: a journaled apply reads every statement."""
    written, replaced, _ = _effects(statement, engine)
    return list(written), list(replaced)


def rows_read(statement: str, engine: str) -> frozenset[tuple[str, str]]:
    """(schema, name), lower case, of every table or view `statement` names when it runs a query (a
    SELECT, an INSERT ... SELECT, a CREATE TABLE ... AS SELECT): the rows it reads, and its target;
    none for a view's definition, which reads no rows until it is queried, nor for DDL without a query."""
    return _effects(statement, engine)[2]


@functools.lru_cache(maxsize=8192)
def _effects(statement: str, engine: str) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...],
                                                   frozenset[tuple[str, str]]]:
    """What `written_objects` and `rows_read` say, from one parse: a journaled apply asks both of each
    statement, once when it journals and again as it runs it."""
    tree = sqlglot.parse_one(statement, read=engine)
    targets, replaced = _written_tables(tree)

    def names(tables: list[exp.Table]) -> tuple[tuple[str, str], ...]:
        return tuple((table.db, table.name) for table in tables if isinstance(table, exp.Table) and table.name)

    view = isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "VIEW"
    read = _depends_on(tree) if tree.find(exp.Query) is not None and not view else frozenset()
    return names(targets), names(replaced), read


def _written_tables(tree: exp.Expression) -> tuple[list[exp.Table], list[exp.Table]]:
    """The tables a statement creates, drops, alters, renames or writes rows into; and those it drops or
    renames away."""
    targets: list[exp.Table] = []
    replaced: list[exp.Table] = []
    if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() != "SCHEMA":
        targets.append(tree.this.this if isinstance(tree.this, exp.Schema) else tree.this)
    elif isinstance(tree, exp.Drop) and str(tree.args.get("kind", "")).upper() in ("TABLE", "VIEW"):
        targets += tree.args.get("tables") or [tree.this]
        replaced += targets
    elif isinstance(tree, exp.Alter):
        targets.append(tree.this)
        for rename in tree.find_all(exp.AlterRename):
            renamed = rename.this
            targets.append(renamed if renamed.db else exp.table_(renamed.name, tree.this.db))
            replaced.append(tree.this)
    elif isinstance(tree, (exp.Insert, exp.Update, exp.Delete, exp.Comment)):
        table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        targets.append(table)
    return targets, replaced


def written_elsewhere(statement: str, target: str, engine: str) -> list[str]:
    """The tables `statement` writes other than `target` (a qualified name as `engine` writes it), compared
    by the engine's own case rules (sqlglot's normalize_identifiers: on Snowflake a quoted lower-case name
    is another table than the same name unquoted, on PostgreSQL a quoted upper-case one), each as written."""
    def identity(table: exp.Table) -> tuple[str, str, str]:   # a catalog named is another catalog's table
        normal = normalize_identifiers(table.copy(), dialect=engine)
        return normal.catalog, normal.db, normal.name

    wanted = identity(exp.to_table(target, dialect=engine))
    return [table.sql(dialect=engine) for table in _written_tables(sqlglot.parse_one(statement, read=engine))[0]
            if isinstance(table, exp.Table) and table.name and identity(table) != wanted]


def depends_on(statement: str, engine: str) -> frozenset[tuple[str, str]]:
    """(schema, name), lower case, of every table or view whose present state decides what `statement`
    does: each it names, but the one it creates or drops (a CREATE analyses its query, never its
    target's old self)."""
    return _depends_on(sqlglot.parse_one(statement, read=engine))


def _depends_on(tree: exp.Expression) -> frozenset[tuple[str, str]]:
    targets = [tree.this.this if isinstance(tree.this, exp.Schema) else tree.this] if isinstance(tree, exp.Create) \
        else (tree.args.get("tables") or [tree.this]) if isinstance(tree, exp.Drop) else []
    return frozenset((table.db.lower(), table.name.lower()) for table in tree.find_all(exp.Table)
                     if table.db and table.name and not any(table is target for target in targets))


def without_select_list(query: str | None, engine: str) -> str | None:
    """A check's query with its select list (the columns its sample shows) left out, to compare what it
    finds; the text itself where it does not parse."""
    try:
        tree = parse(query or "", engine).copy()
    except SqlProblem:
        return query
    return tree.select(exp.Star(), append=False).sql(dialect=engine) if isinstance(tree, exp.Select) else query
