"""Everything the reconciler knows about SQL, through sqlglot.

Owns the `$$NAME` template parameters (read with sqlglot's own tokenizer and parser, never by text
scanning), reading what a statement references, its canonical form, and rendering it for a tenant:
parameters as quoted literals, schema mapping, transpiling to the tenant's engine. Results
are cached by a hash of their inputs. Never hand-parses SQL and never executes it, and never
subclasses sqlglot's classes: its compiled build (sqlglotc) refuses interpreted subclasses.
"""

from __future__ import annotations

import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import (
    ErrorLevel,
    ParseError,
    SqlglotError,
    TokenError,
    UnsupportedError,
)
from sqlglot.parser import Parser
from sqlglot.tokens import Token, TokenType

from . import policy
from .cache import NO_CACHE, Cache, content_key
from .model import Numeric

# A `$$NAME` parameter in a parsed tree is a Var printing `$$NAME` (the stock generator writes a Var as
# it is) marked in its meta: sqlglot makes Vars of string literals too (DATE_TRUNC('$$X', d)).
_PARAMETER = "reconciler.parameter"


def template_parameter(name: str) -> exp.Var:
    """The node of the template parameter `$$name`."""
    node = exp.Var(this=f"$${name}")
    node.meta[_PARAMETER] = name
    return node


def parameter_name(node: exp.Expression) -> str | None:
    """NAME where `node` is the template parameter `$$NAME`, else None."""
    return node.meta.get(_PARAMETER) if isinstance(node, exp.Var) else None


def parameters_in(tree: exp.Expression) -> set[str]:
    """The names of the template parameters in `tree`."""
    return {name for node in tree.find_all(exp.Var) if (name := parameter_name(node)) is not None}


@functools.cache
def _dialect(name: str) -> Dialect:
    return Dialect.get_or_raise(name)


@functools.cache
def _braced(dialect: str) -> bool:
    """Whether `dialect` reads `${name}` as one parameter (Hive, Spark): `$$NAME` then gets the braces, so
    that its parameter ends with them and never takes a `:` or a `}` of the SQL's own after it."""
    try:
        tree = sqlglot.parse_one("${name}", read=dialect)
    except SqlglotError:
        return False
    return isinstance(tree, exp.Parameter) and tree.this == exp.var("name") and not tree.args.get("expression")


def _tokens(text: str, dialect: str) -> tuple[list[Token], list[tuple[int, str]]]:
    """`text`'s tokens in `dialect`, each `$$NAME` as the tokens of the dialect's own parameter (`$name`,
    `${name}`) named `$$NAME`, which it parses wherever a parameter may stand; and (offset, NAME) of each."""
    read = _dialect(dialect)
    starts = _parameter_starts(text, read) if "$$" in text else []
    masked = _blanked(text, starts)
    tokens = read.tokenize(masked)
    within_nesting(tokens, text)
    if not starts:
        return tokens, []
    following = {token.start: index for index, token in enumerate(tokens)}
    names = [following.get(start + 2) for start in starts]   # the index of the token naming each
    for start, index in zip(starts, names):
        name = tokens[index] if index is not None else None
        if name is None or masked[name.start:name.end + 1] != name.text or not (
                name.text.isascii() and name.text.isidentifier()):
            raise SqlProblem("`$$` must be followed directly by a parameter name (letters, digits and _)",
                             *_line_column(text, start))
    written = [(start, tokens[index].text) for start, index in zip(starts, names)]
    for start, index in reversed(list(zip(starts, names))):   # from the end: indexes before stay valid
        tokens[index:index + 1] = _parameter_tokens(start, tokens[index], _braced(dialect))
    return tokens, written


def _parameter_tokens(start: int, name: Token, braced: bool) -> list[Token]:
    """The tokens standing for `$$NAME` at `start`, `name` the token of NAME: `$`, the name `$$NAME`, and
    braces around it where the dialect's parameter has them; each where its text is in the SQL."""
    def token(kind: TokenType, text: str, first: int, last: int, comments: list[str] | None = None) -> Token:
        return Token(kind, text, name.line, name.col - (name.end - last), first, last, comments)

    named = [token(TokenType.VAR, f"$${name.text}", start + 2, name.end, name.comments)]
    if braced:
        named = [token(TokenType.L_BRACE, "{", start + 1, start + 1), *named,
                 token(TokenType.R_BRACE, "}", name.end, name.end)]
    return [token(TokenType.PARAMETER, "$", start, start), *named]


def _parameter_starts(text: str, dialect: Dialect) -> list[int]:
    """Where each `$$NAME` starts: where a token starts, so never inside a string, a quoted name, a comment
    or a `$tag$` dollar-quoted string (a `$$` dollar quote gives way to parameters). The dialect's tokenizer
    is asked once per parameter: where `$` quotes, a `$$` opens a string running to the next `$$` (the
    one appended if no other), so only the tokens up to the first one are what the SQL says."""
    starts: list[int] = []
    while True:
        masked = _blanked(text, starts)
        tokenizer = dialect.tokenizer()
        try:
            tokens = tokenizer.tokenize(f"{masked}\n$$")
        except TokenError:
            tokens = tokenizer.tokens   # up to the SQL's own mistake, which the parse reports
        start = next((token.start for token in tokens
                      if token.start < len(text) and masked.startswith("$$", token.start)), None)
        if start is None:
            return starts
        starts.append(start)


def _blanked(text: str, starts: Sequence[int]) -> str:
    """`text` with the `$$` at each of `starts` made two spaces (every position stays where it was)."""
    for start in starts:
        text = f"{text[:start]}  {text[start + 2:]}"
    return text


def _line_column(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


MAX_NESTING = 256   # brackets deep: SQL nested deeper is refused before sqlglot parses it
TOO_DEEP = "the SQL nests too deeply to be read (parentheses or subqueries hundreds of levels deep)"
_OPENING = frozenset({TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE})
_CLOSING = frozenset({TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE})


def within_nesting(tokens: Sequence[Token], text: str) -> None:
    """Refuses SQL nested more than MAX_NESTING brackets deep (the `<` of a STRUCT, ARRAY, MAP ... type is
    one), at the first token beyond. sqlglot's compiled parser recurses on the C stack, and much of it
    without counting Python frames: nested some thousands deep it would crash, not raise RecursionError."""
    if sum(text.count(bracket) for bracket in "([{<") <= MAX_NESTING:
        return   # not so many brackets in all: the tokens need no walk
    depth = angles = 0
    previous = None
    for token in tokens:
        kind = token.token_type
        if kind in _OPENING or (kind == TokenType.LT and previous in Parser.NESTED_TYPE_TOKENS):
            depth, angles = depth + 1, angles + (kind == TokenType.LT)
            if depth > MAX_NESTING:
                raise SqlProblem(TOO_DEEP, token.line, token.col)
        elif kind in _CLOSING or (kind == TokenType.GT and angles):
            depth, angles = depth - 1, angles - (kind == TokenType.GT)
        previous = kind


def _with_parameters(statement: exp.Expression) -> tuple[exp.Expression, list[str]]:
    """`statement` with the dialect's parameter nodes made from `$$NAME` turned into parameters, and their
    names."""
    found = [(node, name) for node in statement.walk() if (name := _parsed_parameter(node)) is not None]
    for node, name in found:
        if node is statement:
            statement = template_parameter(name)
        else:
            node.replace(template_parameter(name))
    return statement, [name for _, name in found]


def _parsed_parameter(node: exp.Expression) -> str | None:
    """NAME where `node` is what a dialect parses the tokens `_tokens` gives `$$NAME` into: a Placeholder
    (DuckDB) or a Parameter of the Var `$$NAME` and nothing else (one that took more is not, and the parse
    refuses it, as it does where the dialect's parser made something else of them)."""
    if isinstance(node, exp.Placeholder) and isinstance(node.this, str) and node.this.startswith("$$"):
        return node.this[2:]
    if isinstance(node, exp.Parameter) and isinstance(node.this, exp.Var) and node.this.name.startswith("$$") \
            and not any(value for key, value in node.args.items() if key != "this"):
        return node.this.name[2:]
    return None


class SqlProblem(Exception):
    """SQL that cannot be used, with the position inside the SQL text (1-based)."""

    def __init__(self, message: str, line: int = 1, column: int = 1):
        super().__init__(message)
        self.line, self.column = line, column


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


def bounded(function):
    """SQL nested deeper than the parser's recursion reaches, and SQL sqlglot itself slips on (an
    IndexError in its parser, an AttributeError in its generator), are a SqlProblem, never a traceback."""
    @functools.wraps(function)
    def call(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except RecursionError:
            raise SqlProblem(TOO_DEEP) from None
        except (IndexError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise SqlProblem(f"sqlglot cannot read or write this SQL ({type(error).__name__} inside sqlglot)") \
                from None
    return call


class _Trees:
    """The trees of the texts parsed last, most recent last (trees are large: enough for one pass over a
    small landscape); tenants are planned on threads, so one at a time."""

    def __init__(self, size: int):
        self.size = size
        self.trees: OrderedDict[tuple[str, str], exp.Expression] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> exp.Expression | None:
        with self.lock:
            tree = self.trees.get(key)
            if tree is not None:
                self.trees.move_to_end(key)
            return tree

    def put(self, key: tuple[str, str], tree: exp.Expression) -> None:
        with self.lock:
            self.trees[key] = tree
            if len(self.trees) > self.size:
                self.trees.popitem(last=False)

    def pop(self, key: tuple[str, str]) -> exp.Expression | None:
        with self.lock:
            return self.trees.pop(key, None)


_TREES = _Trees(1024)


def parse(sql: str, dialect: str) -> exp.Expression:
    """Parse exactly one statement; raise SqlProblem with the parser's message and position.
    Each text is parsed once per process (analysis, binding and rendering share the tree): the
    tree is shared, so a caller that changes it works on a copy, or `take`s it."""
    tree = _TREES.get((sql, dialect))
    if tree is None:
        tree = _parse(sql, dialect)
        _TREES.put((sql, dialect), tree)
    return tree


def parsed(sql: str, dialect: str) -> exp.Expression | None:
    """The shared tree of `sql` when it has been parsed lately, else None (nothing is parsed)."""
    return _TREES.get((sql, dialect))


def take(sql: str, dialect: str, held: exp.Expression | None = None) -> exp.Expression:
    """The tree of `sql` for the caller alone to change (binding qualifies it in place: a copy costs half
    a parse): taken out of the shared trees, so no one is given it again; else `held`, a tree `parse`
    gave the caller that has left them since; else a new parse."""
    tree = _TREES.pop((sql, dialect))
    return tree if tree is not None else held if held is not None else _parse(sql, dialect)


@bounded
def _parse(sql: str, dialect: str) -> exp.Expression:
    statements = _parsed(sql, dialect)
    if not statements:
        raise SqlProblem("the SQL is empty")
    if len(statements) > 1:
        raise SqlProblem(f"exactly one statement is allowed, found {len(statements)}")
    return statements[0]


def _parsed(text: str, dialect: str) -> list[exp.Expression]:
    """What sqlglot parses from `text` (`$$NAME` parameters allowed); SqlProblem at the parser's position."""
    try:
        tokens, written = _tokens(text, dialect)
        statements = [s for s in _dialect(dialect).parser().parse(tokens, text) if s is not None]
    except ParseError as error:
        first = error.errors[0] if error.errors else {}
        message = _TOKEN_REPR.sub(_token_words, first.get("description") or str(error))
        raise SqlProblem(message, first.get("line") or 1, first.get("col") or 1) from None
    except TokenError as error:
        raise SqlProblem(f"cannot tokenize the SQL: {error}") from None
    if not written:
        return statements
    parsed, names = [], []
    for statement in statements:
        statement, found = _with_parameters(statement)
        parsed.append(statement)
        names += found
    for start, name in written:
        if name not in names:
            raise SqlProblem(f"$${name} cannot stand here (a parameter stands where a value does)",
                             *_line_column(text, start))
        names.remove(name)
    return parsed


# sqlglot's messages embed a token's repr; people want the token's text
_TOKEN_REPR = re.compile(r"<Token token_type: TokenType\.(\w+), text: (.*?), line: \d+.*?>")


def _token_words(match: re.Match) -> str:
    return "the end of the SQL" if match.group(1) == "SENTINEL" else f"'{match.group(2)}'"


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


def position(node: exp.Expression) -> tuple[int, int]:
    """Where a node's text starts inside the SQL (sqlglot records where its last character is)."""
    identifier = node if isinstance(node, exp.Identifier) else node.find(exp.Identifier) or node
    meta = identifier.meta or {}
    line, end = meta.get("line", 1), meta.get("col", 1)
    width = len(identifier.name) + (2 if getattr(identifier, "quoted", False) else 0) if identifier.name else 1
    return line, max(end - width + 1, 1)


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
    return policy.calls(tree.transform(lambda node: exp.Literal.string("") if parameter_name(node) is not None
                                       else node), engine, text)


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
def untranslatable(sql: str, dialect: str, engine: str, cache: Cache = NO_CACHE) -> str | None:
    """Why `sql` cannot be expressed in `engine`'s dialect, or None when it can (cached)."""
    key = content_key("portable", "2", sqlglot.__version__, dialect, engine, sql)   # "2": reasons said once
    cached = cache.get("sql-portable", key)
    if cached is not None:
        return cached or None
    try:
        tree = parse(sql, dialect)
        tree.sql(dialect=engine, unsupported_level=ErrorLevel.RAISE)
        problem = meaning_changes(tree, dialect, engine) or ""
    except UnsupportedError as error:
        problem = unsupported(error)
    cache.put("sql-portable", key, problem)
    return problem or None


def unsupported(error: UnsupportedError) -> str:
    """sqlglot's reasons, each once (it repeats one per place it meets it, a blank line between)."""
    return "; ".join(dict.fromkeys(line.strip() for line in str(error).splitlines() if line.strip()))


@functools.lru_cache(maxsize=4096)
def canonical_default(text: str | None, dialect: str, engine: str | None = None) -> str | None:
    """A column default in the one form both sides are compared in: the desired side's text (written
    in `dialect`) and the engine's report (`dialect` = the engine) alike. Outer parentheses and a cast
    of a bare literal are how engines echo a default back, not part of it."""
    if text is None:
        return None
    try:
        expression = parse_expression(text, dialect)
    except SqlProblem:
        return text
    while isinstance(expression, exp.Paren) or (
            isinstance(expression, exp.Cast) and isinstance(expression.this, exp.Literal)):
        # (1 + 1) as DuckDB reports 1+1; 'x' as CAST('x' AS VARCHAR) or 'x'::character varying
        expression = expression.this
    return expression.sql(dialect=engine or dialect)


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

    def names(tables: list[exp.Table]) -> tuple[tuple[str, str], ...]:
        return tuple((table.db, table.name) for table in tables if isinstance(table, exp.Table) and table.name)

    view = isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "VIEW"
    read = _depends_on(tree) if tree.find(exp.Query) is not None and not view else frozenset()
    return names(targets), names(replaced), read


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


def literal(value: str | int | float | bool) -> exp.Expression:
    """A value read from YAML (an accepted value) as SQL: a number as a number, text as text."""
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(value)


def parameter(value: str | Numeric) -> exp.Expression:
    """A parameter's value in SQL: the text written as a string literal, or a declared number exactly as
    written (`1.50`, never 1.5)."""
    if isinstance(value, Numeric):
        number = exp.Literal(this=value.numeric.removeprefix("-"), is_string=False)
        return exp.Neg(this=number) if value.numeric.startswith("-") else number
    return exp.Literal.string(value)


@bounded
def render(sql: str, dialect: str, engine: str, schemas: Mapping[str, str],
           parameters: Mapping[str, str | Numeric], cache: Cache = NO_CACHE,
           names: Sequence[str | None] | None = None) -> str:
    """The statement as it runs on `engine`: parameters inlined, schemas mapped, transpiled; with
    `names` (a query's, `naming.output_names`), each item of its select list the engine would name
    itself aliased with its name there."""
    key = content_key("render", RENDER_VERSION, sqlglot.__version__, dialect, engine, sql,
                      repr(sorted(schemas.items())), repr(sorted(parameters.items())), repr(names))
    cached = cache.get("sql-render", key)
    if cached is not None:
        return cached
    folded = {k.lower(): v for k, v in schemas.items()}

    def rewrite(node: exp.Expression) -> exp.Expression:
        name = parameter_name(node)
        if name is not None:
            return parameter(parameters[name])
        if isinstance(node, exp.Table) and node.db and node.db.lower() in folded:
            node.set("db", exp.to_identifier(folded[node.db.lower()]))
        return ENGINE_REWRITES.get(engine, _as_is)(node, dialect)

    tree = parse(sql, dialect).transform(rewrite)   # a copy (the parsed tree is shared): generated in place
    if names is not None:
        _named(tree, names)
    if engine in NAMES_EVERY_VIEW_OUTPUT:
        _listed_named(tree)
    try:
        rendered = tree.sql(dialect=engine, unsupported_level=ErrorLevel.RAISE, comments=False, copy=False)
    except UnsupportedError as error:
        raise SqlProblem(f"cannot be expressed in {engine}: {error}") from None
    except SqlglotError as error:
        raise SqlProblem(str(error)) from None
    cache.put("sql-render", key, rendered)
    return rendered


NAMED = (exp.Alias, exp.Column, exp.Star, exp.Dot)   # select items that carry their own name


def _named(query: exp.Expression, names: Sequence[str | None]) -> None:
    """Alias each item of the query's outermost select list (its first branch's, for a set operation)
    that has no name of its own with the name at its position in `names`; nothing where they do not
    line up."""
    select = query
    while isinstance(select, (exp.SetOperation, exp.Subquery)):
        select = select.this if isinstance(select, exp.Subquery) else select.left
    if not isinstance(select, exp.Select) or len(select.expressions) != len(names):
        return
    select.set("expressions", [item if isinstance(item, NAMED) or name is None
                               else exp.alias_(item, exp.to_identifier(name, quoted=True))
                               for item, name in zip(select.expressions, names)])


def _listed_named(tree: exp.Expression) -> None:
    """Alias each unnamed item of a derived table's or CTE's query with the name its alias list gives it
    (what the list does anyway): Spark keeps the name it made up for such an item as the column's
    metadata through the list, and refuses a permanent view whose output carries it."""
    for alias in list(tree.find_all(exp.TableAlias)):
        if not alias.columns or not isinstance(alias.parent, (exp.Subquery, exp.CTE)):
            continue
        branches = [alias.parent.this]
        while branches:
            query = branches.pop()
            if isinstance(query, (exp.SetOperation, exp.Subquery)):
                branches += [query.this] if isinstance(query, exp.Subquery) else [query.left, query.right]
            elif isinstance(query, exp.Select) and len(query.expressions) == len(alias.columns):
                query.set("expressions", [item if isinstance(item, NAMED) else
                                          exp.alias_(item, exp.to_identifier(column.name, quoted=True))
                                          for item, column in zip(query.expressions, alias.columns)])


def upsert(statement: str, engine: str, key: Sequence[str], columns: Sequence[str]) -> str:
    """A data flow's rendered INSERT made an upsert: a row whose `key` is in the target already replaces
    that row's other columns (the columns the INSERT lists, else all of the target's: `columns`)."""
    tree = parse(statement, engine).copy()
    listed = [column.name for column in tree.this.expressions] if isinstance(tree.this, exp.Schema) else columns
    keys = {name.lower() for name in key}
    replaced = [exp.EQ(this=exp.column(name, quoted=True),   # `excluded`: the row that was proposed
                       expression=exp.Column(this=exp.to_identifier(name, quoted=True),
                                             table=exp.to_identifier("excluded")))
                for name in listed if name.lower() not in keys]
    tree.set("conflict", exp.OnConflict(conflict_keys=[exp.to_identifier(name, quoted=True) for name in key],
                                        action=exp.var("DO UPDATE" if replaced else "DO NOTHING"),
                                        expressions=replaced))
    return tree.sql(dialect=engine)


def _as_is(node: exp.Expression, dialect: str) -> exp.Expression:
    return node


def _postgres(node: exp.Expression, dialect: str) -> exp.Expression:
    """What PostgreSQL lacks and sqlglot does not transpile: round(double precision, integer) does not
    exist there (only round(numeric, integer)), so ROUND's argument goes to NUMERIC when it has a
    number of decimals. For a numeric argument the cast changes nothing; a double's result is then
    numeric, its value the same."""
    if isinstance(node, exp.Round) and node.args.get("decimals") is not None and not (
            isinstance(node.this, exp.Cast) and node.this.to.is_type("decimal")):
        node.set("this", exp.cast(node.this, exp.DataType.build("DECIMAL")))
    return node


SUNDAY_ZERO = frozenset({"duckdb", "postgres"})   # dialects whose dayofweek / EXTRACT(dow) count Sunday as 0


def _spark(node: exp.Expression, dialect: str) -> exp.Expression:
    """Days of the week, which sqlglot transpiles by name although the numbers differ: Spark's
    DAYOFWEEK and EXTRACT(DOW) count Sunday as 1 where DuckDB and PostgreSQL count it as 0, and
    its ISO day (Monday 1) is WEEKDAY + 1 (sqlglot writes `DAYOFWEEK % 7 + 1`, which is wrong there)."""
    if dialect not in SUNDAY_ZERO:
        return node
    day = node.this if isinstance(node, (exp.DayOfWeek, exp.DayOfWeekIso)) else \
        node.expression if isinstance(node, exp.Extract) else None
    unit = node.name.upper() if isinstance(node, exp.Extract) else None
    if isinstance(node, exp.DayOfWeek) or unit in ("DOW", "DAYOFWEEK"):
        return exp.paren(exp.Sub(this=exp.func("DAYOFWEEK", day), expression=exp.Literal.number(1)))
    if isinstance(node, exp.DayOfWeekIso) or unit in ("ISODOW", "DAYOFWEEKISO"):
        return exp.paren(exp.Add(this=exp.func("WEEKDAY", day), expression=exp.Literal.number(1)))
    return node


ENGINE_REWRITES = {"postgres": _postgres, "spark": _spark}   # per engine, applied to every node when rendering


def meaning_changes(tree: exp.Expression, dialect: str, engine: str) -> str | None:
    """What sqlglot would transpile to `engine` without complaint although the values change, or
    None. Refused at validate, naming the construct, rather than run with other results."""
    if engine != "spark" or dialect in ("spark", "databricks"):
        return None
    for node in tree.walk():
        if isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order):
            return (f"{node.sql(dialect)}: Spark's collect_list keeps no order, so the ORDER BY would be "
                    "dropped")
        if isinstance(node, exp.TimeToUnix):
            return (f"{node.sql(dialect)}: epoch() is seconds as a DOUBLE (with fractions) in {dialect}, "
                    "Spark's UNIX_TIMESTAMP whole seconds as a BIGINT, in the session's time zone")
        if isinstance(node, exp.UnixToTime) and dialect == "duckdb":
            return (f"{node.sql(dialect)}: DuckDB's epoch_ms/epoch_us turn a timestamp into a number and a "
                    "number into a timestamp; transpiled, only the second meaning survives")
        if isinstance(node, exp.Pivot) and node.args.get("using"):
            return ("DuckDB's PIVOT ... ON ... USING: its columns come from the data, and Spark has no such "
                    "statement (write PIVOT (... FOR col IN (...)))")
    return None
# what an engine's tables do not keep, by table format (Spark's parquet tables: NOT NULL and primary
# keys; Delta tables keep NOT NULL but have no primary key): rendered without it, so a plan never asks
# for what cannot be had
ENGINE_DROPS = {("spark", "parquet"): frozenset({"not_null", "primary_key"}),
                ("spark", "delta"): frozenset({"primary_key"})}
NAMES_EVERY_VIEW_OUTPUT = frozenset({"spark"})   # engines that refuse a permanent view with an unnamed output
DEFAULT_TABLE_FORMAT = {"spark": "parquet"}   # engines whose tables come in more than one format
RENDER_VERSION = "5"                       # part of the render cache key: a new value when rewrites change


@functools.lru_cache(maxsize=65536)   # an apply quotes each name a few times over; sqlglot's generator is slow
def quote(name: str, engine: str) -> str:
    """One identifier, always quoted for the engine."""
    return exp.to_identifier(name, quoted=True).sql(dialect=engine)


def qualified(schema: str, name: str, engine: str) -> str:
    return f"{quote(schema, engine)}.{quote(name, engine)}"


@functools.lru_cache(maxsize=4096)
@bounded
def normalize_type(type_sql: str, dialect: str, engine: str) -> str:
    """A type as a cast in `dialect` means it, spelled for `engine` through sqlglot's type AST: the whole
    text must be one type, and what is inside it (enum values, struct field names) keeps its case. For
    what SQL computes (a MaterializedTable's pinned cast, the types binding infers); a table column's
    declared type is `column_types.column_type`, which keeps a length the dialect's cast would drop."""
    try:
        within_nesting(_dialect(dialect).tokenize(type_sql), type_sql)
        parsed = sqlglot.parse_one(type_sql, read=dialect, into=exp.DataType)
    except (ParseError, TokenError, ValueError, SqlglotError):
        raise SqlProblem(f"not a SQL type: {type_sql}") from None
    return parsed.sql(dialect=engine)


@bounded
def parse_expression(text: str, dialect: str) -> exp.Expression:
    """One scalar expression (a column default), never a statement."""
    try:
        tokens = _dialect(dialect).tokenize(text)
        within_nesting(tokens, text)
        parsed = [e for e in _dialect(dialect).parser().parse(tokens, text) if e is not None]
    except SqlglotError as error:
        raise SqlProblem(f"not a SQL expression: {text} ({error})") from None
    if len(parsed) != 1 or isinstance(parsed[0], (exp.Query, exp.DDL, exp.DML, exp.Command, exp.Block)):
        raise SqlProblem(f"not a single SQL expression: {text}")
    return parsed[0]


@bounded
def parse_condition(text: str, dialect: str) -> exp.Expression:
    """One scalar expression of a check (a filter, a boolean over a row), `$$NAME` parameters allowed;
    the tree is the caller's own."""
    parsed = _parsed(text, dialect)
    if len(parsed) != 1 or isinstance(parsed[0], (exp.Query, exp.DDL, exp.DML, exp.Command, exp.Block)):
        raise SqlProblem("not a single SQL expression")
    return parsed[0]


def condition_type(condition: exp.Expression, columns: Mapping[str, str], dialect: str) -> str:
    """The type sqlglot infers for a check's condition over one row of an object with `columns`
    (name -> type); UNKNOWN where it cannot tell."""
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    schema = {"checked": {name: kind for name, kind in columns.items() if kind != "UNKNOWN"}}
    query = exp.select(exp.alias_(condition.copy(), "condition")).from_("checked")
    try:
        typed = annotate_types(qualify(query, schema=schema, dialect=dialect, validate_qualify_columns=False),
                               schema=schema, dialect=dialect)
    except (SqlglotError, IndexError, KeyError, TypeError, ValueError, AttributeError):   # sqlglot's own slips too
        return "UNKNOWN"
    found = typed.selects[0].type
    return found.sql(dialect=dialect) if found is not None else "UNKNOWN"


def materialized(query: str, pinned: Sequence[tuple[str, str]], columns: Sequence[str], dialect: str) -> str:
    """A MaterializedTable's query, in `dialect`: as written, or, where `pinned` gives columns a type,
    every column of the query (`columns`, in order) selected from it with those cast."""
    if not pinned:
        return query
    types = {name.lower(): kind for name, kind in pinned}
    items = [exp.alias_(exp.Cast(this=exp.column(name, table="q", quoted=True),
                                 to=exp.DataType.build(types[name.lower()], dialect=dialect)), name, quoted=True)
             if name.lower() in types else exp.column(name, table="q", quoted=True) for name in columns]
    return exp.select(*items).from_(parse(query, dialect).copy().subquery("q")).sql(dialect=dialect)


def without_select_list(query: str | None, engine: str) -> str | None:
    """A check's query with its select list (the columns its sample shows) left out, to compare what it
    finds; the text itself where it does not parse."""
    try:
        tree = parse(query or "", engine).copy()
    except SqlProblem:
        return query
    return tree.select(exp.Star(), append=False).sql(dialect=engine) if isinstance(tree, exp.Select) else query


def not_numeric(column_type: str, dialect: str) -> str | None:
    """Why a column of `column_type` cannot be compared with numeric bounds, or None (also when the type
    is not known)."""
    try:
        kind = exp.DataType.build(column_type, dialect=dialect)
    except (SqlglotError, ValueError):
        return None
    if kind.is_type(*exp.DataType.NUMERIC_TYPES) or kind.this == exp.DataType.Type.UNKNOWN:
        return None
    return f"accepted_range compares numbers, and the column is {column_type}"


def value_mismatch(column_type: str, dialect: str, values: Sequence[object]) -> str | None:
    """Why literal `values` cannot be compared with a column of `column_type` (an engine would fail the
    query at apply: text against a number, a number against text), or None; a type sqlglot cannot read
    (a view column's UNKNOWN) is never a mismatch."""
    try:
        kind = exp.DataType.build(column_type, dialect=dialect)
    except (SqlglotError, ValueError):
        return None
    numeric, textual = kind.is_type(*exp.DataType.NUMERIC_TYPES), kind.is_type(*exp.DataType.TEXT_TYPES)
    for value in values:
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and not is_number:
            return f"{value!r} is not a number, and the column is {column_type}"
        if textual and not isinstance(value, str):
            return f"{value!r} is not text, and the column is {column_type}: quote it"
    return None
