"""Types and values in SQL: a type as a cast means it, a column default in the form both sides are
compared in, a value read from YAML or a parameter's value as a literal, the type of a check's
condition, and whether literal values fit a column's type.

Owns these small translations through sqlglot's type and literal nodes. Never renders a statement
(`rendering`); a table column's declared type is `column_types`'.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError

from ...model import Numeric
from .parsing import parse_expression
from .problems import SqlProblem, bounded
from .templates import sqlglot_dialect, within_nesting


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


@functools.lru_cache(maxsize=4096)
@bounded
def normalize_type(type_sql: str, dialect: str, engine: str) -> str:
    """A type as a cast in `dialect` means it, spelled for `engine` through sqlglot's type AST: the whole
    text must be one type, and what is inside it (enum values, struct field names) keeps its case. For
    what SQL computes (a MaterializedTable's pinned cast, the types binding infers); a table column's
    declared type is `column_types.column_type`, which keeps a length the dialect's cast would drop."""
    try:
        within_nesting(sqlglot_dialect(dialect).tokenize(type_sql), type_sql)
        parsed = sqlglot.parse_one(type_sql, read=dialect, into=exp.DataType)
    except (ParseError, TokenError, ValueError, SqlglotError):
        raise SqlProblem(f"not a SQL type: {type_sql}") from None
    return parsed.sql(dialect=engine)


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
