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

import sqlglot
from sqlglot import exp, tokens
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError, TokenError
from sqlglot.tokens import TokenType

from .sql import SqlProblem

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
    try:
        parsed = sqlglot.parse_one(type_sql, read=_reading(dialect), into=exp.DataType)
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


# -- reading a declared type --------------------------------------------------------------------

@functools.cache
def _reading(dialect: str) -> type[Dialect]:
    """`dialect` reading types as declared: a character type keeps its token (the dialect folds it into
    TEXT, and with it its length), and PostgreSQL's types sqlglot lacks are read: BIT VARYING / VARBIT,
    and an interval's seconds precision (INTERVAL DAY TO SECOND(3)). The dialect's own conversions
    are `_converters`', applied by `declared` to every type in the tree (sqlglot applies them to the
    outermost one only: DECIMAL(18,3), but DECIMAL[] in DuckDB's)."""
    base = Dialect.get_or_raise(dialect).__class__

    class Tokenizer(base.tokenizer_class):
        KEYWORDS = {**base.tokenizer_class.KEYWORDS, **_folded(base)}

    class Parser(base.parser_class):
        TYPE_CONVERTERS: dict = {}

        def _parse_types(self, check_func=False, schema=False, allow_identifiers=True, with_collation=False):
            if self._match_text_seq("BIT", "VARYING") or self._match_text_seq("VARBIT"):
                return self._arrays_of(exp.DataType(this=T.USERDEFINED, kind=VARYING_BITS,
                                                    expressions=self._type_sizes()))
            found = super()._parse_types(check_func, schema, allow_identifiers, with_collation)
            if isinstance(found, exp.DataType) and isinstance(found.this, exp.Interval) \
                    and self._curr is not None and self._curr.token_type == TokenType.L_PAREN:
                found.set("expressions", self._type_sizes())   # INTERVAL DAY TO SECOND(3)
                return self._arrays_of(found)
            return found

        def _type_sizes(self) -> list[exp.Expression] | None:
            if not self._match(TokenType.L_PAREN):
                return None
            sizes = self._parse_csv(self._parse_type_size)
            self._match_r_paren()
            return sizes

        def _arrays_of(self, kind: exp.DataType) -> exp.DataType:
            while self._match(TokenType.L_BRACKET):
                if not self._match(TokenType.R_BRACKET):
                    self.raise_error("Expecting ]")
                kind = exp.DataType(this=T.ARRAY, expressions=[kind], nested=True)
            return kind

    return type(f"Declared{base.__name__}", (base,), {"Tokenizer": Tokenizer, "Parser": Parser})


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


KEEPS: dict[str, Callable[[exp.DataType], exp.DataType]] = {"duckdb": _duckdb, "postgres": _postgres, "spark": _spark}


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
