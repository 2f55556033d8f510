"""Column types: a type declared in the landscape's dialect, read exactly as written, and what each
engine keeps of it.

Owns the one form a declared column type and an engine's report of a column's type are compared in
(`column_type`, `engine_type`): the type as the engine keeps it, its length, precision and scale
included, spelled by sqlglot for the engine. What an engine keeps is modelled here (`KEEPS`) and
tested against the engines themselves (tests/test_column_types.py): where the model and the engine
disagree, a plan either never converges or misses a change. Never connects to anything; reads one
type, never a statement.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from sqlglot import exp, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError, TokenError
from sqlglot.tokens import Token, TokenType

from .sql import SqlProblem, within_nesting

T = exp.DType
CHARACTER = frozenset({T.VARCHAR, T.CHAR, T.BPCHAR, T.NCHAR, T.NVARCHAR, T.TEXT})
_CHARACTER_TOKENS = frozenset({TokenType.VARCHAR, TokenType.CHAR, TokenType.BPCHAR, TokenType.NCHAR,
                               TokenType.NVARCHAR})
VARYING_BITS = "BIT VARYING"   # PostgreSQL's VARBIT, which sqlglot has no type for
FRACTIONAL_TIMES = frozenset({T.TIMESTAMP, T.TIMESTAMPNTZ, T.TIMESTAMPTZ, T.TIMESTAMPLTZ, T.TIME, T.TIMETZ})


def declared(type_sql: str, dialect: str) -> exp.DataType:
    """`type_sql` as written in `dialect`: the whole text must be one type (nothing after it is silently
    dropped), and what it declares is kept where the dialect's own reading would drop it (DuckDB reads
    VARCHAR(2) as VARCHAR, because DuckDB keeps no length: the landscape's PostgreSQL tenant does).
    A length-less VARCHAR or CHAR, or DECIMAL, is what the dialect makes of it (DuckDB: VARCHAR,
    DECIMAL(18,3)), inside an array, map or struct as much as outside."""
    return _declared(type_sql, dialect).copy()


@functools.lru_cache(maxsize=4096)
def _declared(type_sql: str, dialect: str) -> exp.DataType:
    """`declared`, read once per spelling: a landscape of thousands of columns declares a few dozen
    types, and validation asks about each column several times. Callers get a copy (trees are mutable)."""
    try:
        parsed = _read_declared(type_sql, dialect)
    except (SqlglotError, TokenError, ValueError):
        raise SqlProblem(f"not a SQL type: {type_sql}") from None
    converters = _converters(dialect)
    return _each(parsed, lambda kind: converters.get(kind.this, _same)(kind))


@functools.lru_cache(maxsize=4096)
def column_type(type_sql: str, dialect: str, engine: str) -> str:
    """A column declared `type_sql` (in `dialect`) as `engine` keeps it, spelled for the engine:
    BIGINT, DECIMAL(18, 2), VARCHAR(2), ENUM('low', 'high'); enum values and struct field names keep
    their case. SqlProblem where it is not one type, or the engine has no such type."""
    return _kept(declared(type_sql, dialect), engine).sql(dialect=engine)


def engine_type(type_sql: str, engine: str) -> str:
    """A type as an engine reports it, in the form a declared one is compared in (`column_type`); a type
    sqlglot cannot read (an engine's own or a user-defined one) is compared as the engine wrote it."""
    try:
        return column_type(type_sql, engine, engine)
    except SqlProblem:
        return type_sql


@functools.cache
def type_words(dialect: str) -> tuple[str, ...]:
    """The words `dialect` reads a type by (its tokenizer's keywords for its parser's type tokens): what
    a misspelt type is compared with."""
    read = Dialect.get_or_raise(dialect)
    return tuple(sorted(word for word, kind in read.tokenizer_class.KEYWORDS.items()
                        if kind in read.parser_class.TYPE_TOKENS and word.replace("_", "").isalnum()))


def unknown_word(type_sql: str, dialect: str) -> str | None:
    """The word `type_sql` starts with when `dialect` reads it as a plain word, not a type (BIGINTT);
    None otherwise."""
    try:
        first = Dialect.get_or_raise(dialect).tokenize(type_sql)[0]
    except (TokenError, IndexError):
        return None
    return first.text if first.token_type == TokenType.VAR else None   # a keyword (NOT) is no misspelt type


def length_bound(type_sql: str, engine: str) -> tuple[str, int] | None:
    """('CHAR' or 'VARCHAR', n) for a column type of bounded length (as `column_type` spells it), else None."""
    try:
        kind = declared(type_sql, engine)
    except SqlProblem:
        return None
    sizes = _sizes(kind)
    if kind.this in (T.CHAR, T.VARCHAR) and sizes:
        return kind.this.value, sizes[0]
    return None


def sized(type_sql: str, engine: str) -> tuple[exp.DataType.Type, tuple[int, ...]] | None:
    """A column type (as `column_type` spells it) as its kind and its whole-number parameters (a length, a
    precision and scale); None for one sqlglot cannot read."""
    try:
        kind = declared(type_sql, engine)
    except SqlProblem:
        return None
    return kind.this, tuple(_sizes(kind))


def holds_map(type_sql: str, engine: str) -> bool:
    """Whether a column type is a MAP or has one inside (Spark hashes no map: its entries keep no order)."""
    try:
        kind = declared(type_sql, engine)
    except SqlProblem:
        return False
    return any(node.this == T.MAP for node in kind.find_all(exp.DataType))


# -- reading a declared type --------------------------------------------------------------------

def _read_declared(type_sql: str, dialect: str) -> exp.DataType:
    """`dialect`'s own tokenizer and parser (never subclassed: sqlglot's compiled build refuses that),
    with the tokens rewritten so that a type reads as declared: a character type keeps its token (the
    dialect folds it into TEXT, and with it its length), and PostgreSQL's types sqlglot lacks are read:
    BIT VARYING / VARBIT (carried through the parse by a type token the text does not use) and an
    interval's seconds precision (INTERVAL DAY TO SECOND(3), its size set back after the parse). The
    dialect's conversions are `_converters`', applied by `declared` to every type in the tree."""
    read = Dialect.get_or_raise(dialect)
    tokens = read.tokenize(type_sql)
    within_nesting(tokens, type_sql)   # sqlglot's compiled parser crashes on types nested thousands deep
    folded = _folded(type(read))
    carrier = next(kind for kind in _CARRIERS if all(token.token_type != kind for token in tokens))
    rewritten: list[Token] = []
    seconds: list[list[exp.Expression]] = []   # each interval's seconds precision, in the order written
    index = 0
    while index < len(tokens):
        token, word = tokens[index], tokens[index].text.upper()
        after = tokens[index + 1].text.upper() if index + 1 < len(tokens) else ""
        if token.token_type == TokenType.TEXT and word in folded:
            rewritten.append(_retyped(token, folded[word]))
        elif word == "VARBIT" or (word == "BIT" and after == "VARYING"):
            rewritten.append(_retyped(token, carrier))
            index += word == "BIT"
        elif word == "SECOND" and _in_interval(rewritten) and after == "(":
            sizes = _sizes_at(tokens, index + 1)
            seconds.append(sizes)
            rewritten.append(token)
            index += 2 * len(sizes) + 1   # the parenthesis, the sizes and their commas
        else:
            rewritten.append(token)
        index += 1
    parsed = read.parser().parse_into(exp.DataType, rewritten, type_sql)[0]
    return _restored(parsed, carrier, seconds)


_CARRIERS = (TokenType.VARBINARY, TokenType.IMAGE, TokenType.GEOGRAPHY)   # type tokens VARBIT may stand in as


def _retyped(token: Token, kind: TokenType) -> Token:
    return Token(kind, token.text, token.line, token.col, token.start, token.end, token.comments)


def _in_interval(tokens: list[Token]) -> bool:
    """Whether the tokens read so far end inside an INTERVAL's fields (INTERVAL DAY TO ...)."""
    for token in reversed(tokens):
        if token.token_type == TokenType.INTERVAL:
            return True
        if token.token_type != TokenType.VAR:
            return False
    return False


def _sizes_at(tokens: list[Token], start: int) -> list[exp.Expression]:
    """The numbers of the parenthesis opening at `start`: `(3)`."""
    sizes = []
    for token in tokens[start + 1:]:
        if token.token_type == TokenType.R_PAREN:
            return sizes
        if token.token_type == TokenType.NUMBER:
            sizes.append(exp.DataTypeParam(this=exp.Literal.number(token.text)))
        elif token.token_type != TokenType.COMMA:
            raise ValueError("not a size")
    raise ValueError("an unclosed size")


def _restored(parsed: exp.DataType, carrier: TokenType, seconds: list[list[exp.Expression]]) -> exp.DataType:
    """What the rewritten tokens carried, put back: BIT VARYING for the carrier type, and each interval's
    seconds precision, in the order they were written."""
    pending = list(seconds)

    def restore(kind: exp.DataType) -> exp.DataType:
        if kind.this == T[carrier.name]:
            return exp.DataType(this=T.USERDEFINED, kind=VARYING_BITS, expressions=kind.expressions)
        if isinstance(kind.this, exp.Interval) and pending and "SECOND" in kind.this.sql().upper():
            kind.set("expressions", pending.pop(0))
        return kind

    return _each(parsed, restore)


@functools.cache
def _folded(base: type[Dialect]) -> dict[str, TokenType]:
    """The words of a character type that `base` reads as TEXT, with the token they are elsewhere."""
    standard = tokens.Tokenizer.KEYWORDS
    return {word: standard[word] for word, kind in base.tokenizer_class.KEYWORDS.items()
            if kind == TokenType.TEXT and standard.get(word) in _CHARACTER_TOKENS}


@functools.cache
def _converters(dialect: str) -> dict[T, Callable[[exp.DataType], exp.DataType]]:
    """What `dialect` makes of a type as written (DuckDB: DECIMAL is DECIMAL(18,3)), except that a
    character type it folds into TEXT stays what it is when it has a length; INTERVAL(3) kept."""
    base = Dialect.get_or_raise(dialect).__class__
    as_text = base.parser_class.TYPE_CONVERTERS.get(T.TEXT, _same)

    def unsized_as_text(kind: exp.DataType) -> exp.DataType:
        return kind if kind.expressions else as_text(exp.DataType(this=T.TEXT))

    return {**base.parser_class.TYPE_CONVERTERS, T.INTERVAL: _interval_precision,
            **{T[kind.name]: unsized_as_text for kind in set(_folded(base).values())}}


def _same(kind: exp.DataType) -> exp.DataType:
    return kind


def _interval_precision(kind: exp.DataType) -> exp.DataType:
    """INTERVAL(3): sqlglot reads it, but writes it back as `INTERVAL 3`."""
    if not kind.expressions:
        return kind
    return exp.DataType(this=T.USERDEFINED, kind="INTERVAL", expressions=kind.expressions)


# -- what each engine keeps ---------------------------------------------------------------------

def _kept(kind: exp.DataType, engine: str) -> exp.DataType:
    """`kind` as `engine` keeps it, inner types (of arrays, maps, structs) first."""
    keep = KEEPS.get(engine)
    return kind if keep is None else _each(kind.copy(), keep)


def _each(node: exp.Expression, keep: Callable[[exp.DataType], exp.DataType]) -> exp.Expression:
    """`keep` applied to every type in `node`, innermost first (sqlglot's `transform` would not descend
    into a node it replaced)."""
    for key, value in list(node.args.items()):
        if isinstance(value, exp.Expression):
            node.set(key, _each(value, keep))
        elif isinstance(value, list):
            node.set(key, [_each(v, keep) if isinstance(v, exp.Expression) else v for v in value])
    return keep(node) if isinstance(node, exp.DataType) else node


def _duckdb(kind: exp.DataType) -> exp.DataType:
    """DuckDB keeps no length of a character type, BIT or BIT VARYING (its BIT is a bit string of any
    length), no interval fields, and no precision of TIME or of a time zone's TIMESTAMP; a TIMESTAMP's
    precision picks its unit (TIMESTAMP_S, _MS, microseconds, _NS); DECIMAL is DECIMAL(18,3)."""
    sizes = _sizes(kind)
    if kind.this in CHARACTER:
        return exp.DataType(this=T.TEXT)
    if kind.this == T.DECIMAL:
        return _decimal(kind, (18, 3))
    if kind.this in (T.TIMESTAMP, T.TIMESTAMPNTZ) and sizes:
        digits = sizes[0]
        unit = T.TIMESTAMP_S if digits == 0 else T.TIMESTAMP_MS if digits <= 3 else \
            kind.this if digits <= 6 else T.TIMESTAMP_NS
        return exp.DataType(this=unit)
    if kind.this == T.BIT or _is_varying_bits(kind):
        return exp.DataType(this=T.BIT)
    if kind.this in FRACTIONAL_TIMES:
        return exp.DataType(this=kind.this)
    if _is_interval(kind):
        return exp.DataType(this=T.INTERVAL)
    return _float(kind)


def _postgres(kind: exp.DataType) -> exp.DataType:
    """PostgreSQL keeps every length, precision and scale; a CHAR or BIT without one is CHAR(1) or BIT(1),
    NUMERIC(p) is NUMERIC(p,0), NUMERIC alone has none; fractional seconds go to 6 digits at most;
    FLOAT(p) is REAL up to 24 bits, DOUBLE PRECISION past; an array of arrays is an array (it keeps no
    dimensions); DuckDB's TIMESTAMP_S / _MS / _NS are TIMESTAMP(0) / (3) / TIMESTAMP. It has no
    STRUCT, MAP or UNION columns (a composite type is a type of its own)."""
    sizes = _sizes(kind)
    if kind.this in (T.STRUCT, T.MAP, T.UNION):
        raise SqlProblem(f"PostgreSQL has no {kind.this.value} type (declare a composite type there)")
    if kind.this == T.DECIMAL:
        return _decimal(kind, None)
    if kind.this in (T.CHAR, T.BIT) and not kind.expressions:
        return _sized(kind, [_size(1)])
    if kind.this == T.BPCHAR and kind.expressions:
        return exp.DataType(this=T.CHAR, expressions=kind.expressions)
    if kind.this in (T.TIMESTAMP_S, T.TIMESTAMP_MS, T.TIMESTAMP_NS):
        digits = {T.TIMESTAMP_S: [0], T.TIMESTAMP_MS: [3], T.TIMESTAMP_NS: []}[kind.this]
        return exp.DataType(this=T.TIMESTAMP, expressions=[_size(d) for d in digits])
    if (kind.this in FRACTIONAL_TIMES or _is_interval(kind)) and sizes and sizes[-1] > 6:
        return _sized(kind, [*kind.expressions[:-1], _size(6)])
    if kind.this == T.ARRAY and kind.expressions and kind.expressions[0].is_type(T.ARRAY):
        return kind.expressions[0]
    return _float(kind)


def _spark(kind: exp.DataType) -> exp.DataType:
    """Spark keeps CHAR(n), VARCHAR(n) and DECIMAL(p,s) (DECIMAL is DECIMAL(10,0)); it has no precision
    for times, intervals or floats (FLOAT(p) is FLOAT up to 24 bits, DOUBLE past), no bit strings, and
    DuckDB's TIMESTAMP_S / _MS / _NS are its TIMESTAMP_NTZ."""
    if kind.this == T.DECIMAL:
        return _decimal(kind, (10, 0))
    if kind.this == T.BIT or _is_varying_bits(kind):
        raise SqlProblem(f"Spark has no bit string type ({kind.sql()})")
    if kind.this in (T.TIMESTAMP_S, T.TIMESTAMP_MS, T.TIMESTAMP_NS):
        return exp.DataType(this=T.TIMESTAMPNTZ)
    if kind.this == T.BPCHAR:   # PostgreSQL's name for CHAR
        return exp.DataType(this=T.CHAR if kind.expressions else T.TEXT, expressions=kind.expressions)
    if _is_interval(kind) and kind.expressions:
        return exp.DataType(this=T.INTERVAL) if kind.this == T.USERDEFINED else _sized(kind, None)
    return _float(kind)


_SNOWFLAKE_NUMBERS = frozenset({T.TINYINT, T.SMALLINT, T.INT, T.BIGINT, T.UTINYINT, T.USMALLINT, T.UINT, T.UBIGINT,
                                T.INT128})
SNOWFLAKE_MAX_VARCHAR = 16_777_216   # a VARCHAR declared without a length has this one


def _snowflake(kind: exp.DataType) -> exp.DataType:
    """Snowflake keeps every whole number as NUMBER(38,0) and DECIMAL alone as NUMBER(38,0); a character
    type is VARCHAR, its length kept unless it is the maximum (VARCHAR alone), CHAR without one is
    VARCHAR(1); every float is an 8-byte one; TIMESTAMP is TIMESTAMP_NTZ (the account's default
    TIMESTAMP_TYPE_MAPPING), and a timestamp's precision of 9 digits is its default. DuckDB's
    TIMESTAMP_S / _MS / _NS are TIMESTAMP_NTZ(0) / (3) / TIMESTAMP_NTZ."""
    sizes = _sizes(kind)
    if kind.this in _SNOWFLAKE_NUMBERS:
        return exp.DataType(this=T.DECIMAL, expressions=[_size(38), _size(0)])
    if kind.this == T.DECIMAL:
        return _decimal(kind, (38, 0))
    if kind.this in CHARACTER:
        length = sizes[0] if sizes else (1 if kind.this in (T.CHAR, T.NCHAR, T.BPCHAR) else SNOWFLAKE_MAX_VARCHAR)
        return exp.DataType(this=T.VARCHAR, expressions=[] if length == SNOWFLAKE_MAX_VARCHAR else [_size(length)])
    if kind.this in (T.FLOAT, T.DOUBLE):
        return exp.DataType(this=T.DOUBLE)
    if kind.this in (T.TIMESTAMP_S, T.TIMESTAMP_MS, T.TIMESTAMP_NS):
        digits = {T.TIMESTAMP_S: [0], T.TIMESTAMP_MS: [3], T.TIMESTAMP_NS: []}[kind.this]
        return exp.DataType(this=T.TIMESTAMPNTZ, expressions=[_size(d) for d in digits])
    if kind.this in (T.TIMESTAMP, T.TIMESTAMPNTZ, T.TIMESTAMPTZ, T.TIMESTAMPLTZ):
        this = T.TIMESTAMPNTZ if kind.this == T.TIMESTAMP else kind.this
        return exp.DataType(this=this, expressions=[] if sizes == [9] else kind.expressions)
    return kind


KEEPS: dict[str, Callable[[exp.DataType], exp.DataType]] = {"duckdb": _duckdb, "postgres": _postgres, "spark": _spark,
                                                            "snowflake": _snowflake}


def _decimal(kind: exp.DataType, default: tuple[int, int] | None) -> exp.DataType:
    """DECIMAL(p) is DECIMAL(p,0) everywhere; DECIMAL alone is the engine's `default` (None: its own)."""
    sizes = _sizes(kind)
    if len(sizes) == 1:
        return exp.DataType(this=T.DECIMAL, expressions=[_size(sizes[0]), _size(0)])
    if not kind.expressions and default is not None:
        return exp.DataType(this=T.DECIMAL, expressions=[_size(n) for n in default])
    return kind


def _float(kind: exp.DataType) -> exp.DataType:
    """FLOAT(p) (bits of mantissa) as a 4-byte float up to 24, an 8-byte one past (the SQL standard's
    rule, which every engine here follows)."""
    sizes = _sizes(kind)
    if kind.this in (T.FLOAT, T.DOUBLE) and sizes:
        return exp.DataType(this=T.FLOAT if sizes[0] <= 24 else T.DOUBLE)
    return kind


def _sizes(kind: exp.DataType) -> list[int]:
    """The whole-number parameters of a type (a length, a precision and scale), in order."""
    found = []
    for parameter in kind.expressions:
        value = parameter.this if isinstance(parameter, exp.DataTypeParam) else parameter
        if not isinstance(value, exp.Literal) or value.is_string:
            return []
        try:
            found.append(int(value.this))
        except ValueError:
            return []
    return found


def _sized(kind: exp.DataType, sizes: list[exp.Expression] | None) -> exp.DataType:
    """A copy of `kind` with other parameters."""
    resized = kind.copy()
    resized.set("expressions", sizes)
    return resized


def _size(value: int) -> exp.DataTypeParam:
    return exp.DataTypeParam(this=exp.Literal.number(value))


def _is_interval(kind: exp.DataType) -> bool:
    return kind.this == T.INTERVAL or isinstance(kind.this, exp.Interval) or (
        kind.this == T.USERDEFINED and kind.args.get("kind") == "INTERVAL")


def _is_varying_bits(kind: exp.DataType) -> bool:
    return kind.this == T.USERDEFINED and kind.args.get("kind") == VARYING_BITS
