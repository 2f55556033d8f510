"""Data checks: what an object's `checks:` declare, as queries that return the offending rows.

Owns the normal form of a declared check (`Declared`: kind, columns, severity, filter, its place
in the file), the query that finds its offending rows (built with sqlglot in the landscape's
dialect, so it is rendered for each tenant's engine like a view: parameters, schema mapping,
transpiling), which checks an apply must run, and how their results read. Pure: running them
through a session is `apply.checks`'.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from sqlglot import exp

from .. import graph as graphs
from ..check_types import DataCheck, Declared, Result
from ..model import Check, MaterializedTable, ObjectKey, Table, View
from . import sql

if TYPE_CHECKING:
    from ..plan import Change
    from ..state import DesiredState, ObjectState

SAMPLE_ROWS = 5
CHECKS_VERSION = "1"   # part of the cache key of a built check query: a new value when `build` changes
NOTHING_SHOWN = "offending_row"   # the one column of a check whose every column is sensitive
_PARTITION_COUNT = "_reconciler_rows_with_this_key"


def declared(obj: Table | View | MaterializedTable) -> list[Declared]:
    """Every check of a table or view: its columns' checks first, then the object's own; names made
    unique within the object (a second `not_null(id)` is `not_null(id)#2`)."""
    found: list[Declared] = []
    if isinstance(obj, (Table, MaterializedTable)):
        for i, column in enumerate(obj.columns):
            for j, check in enumerate(column.checks):
                found.append(Declared(check.name or _default_name(check, (column.name,)), check, (column.name,),
                                      ("columns", i, "checks", j), under_column=True))
    for j, check in enumerate(obj.checks):
        columns = object_columns(check)
        found.append(Declared(check.name or _default_name(check, columns), check, columns, ("checks", j)))
    seen: dict[str, int] = {}
    named = []
    for item in found:
        seen[item.name] = seen.get(item.name, 0) + 1
        named.append(item if seen[item.name] == 1 else dataclasses.replace(item, name=f"{item.name}#{seen[item.name]}"))
    return named


def object_columns(check: Check) -> tuple[str, ...]:
    """The columns an object-level check names: `column:`, or the value of `not_null` / `unique`."""
    if check.column:
        return (check.column,)
    value = check.not_null if check.kind == "not_null" else check.unique if check.kind == "unique" else None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, tuple):
        return value
    return ()


def _default_name(check: Check, columns: Sequence[str]) -> str:
    return f"{check.kind}({', '.join(columns)})" if columns else check.kind


def build(item: Declared, key: ObjectKey, shown: Sequence[str], dialect: str,
          target: ObjectKey | None = None) -> str:
    """The query returning the rows that break `item`, in the landscape's dialect (`$$NAME` kept).
    `target`: a relationship's object as declared. The rows of a key with a NULL in it are not compared
    by `unique`, nor NULL values by accepted_values / accepted_range / relationships (not_null says
    whether NULL is allowed); an expression that is NULL fails."""
    check, parse = item.check, lambda text: sql.parse_condition(text, dialect)
    table = _table(key)
    filters = [parse(check.where)] if check.where else []
    columns = [_column(name) for name in item.columns]
    select = [_column(name) for name in shown] or [exp.alias_(exp.Literal.number(1), NOTHING_SHOWN)]
    kind = check.kind
    if kind == "sql":
        return exp.select(*select).from_(sql.parse(check.sql, dialect).copy().subquery("offending")).sql(
            dialect=dialect)
    if kind == "row_count":
        count = exp.Count(this=exp.Star())
        query = exp.select(exp.alias_(count, "row_count")).from_(table).having(_outside(count, check.row_count))
        return (query.where(*filters) if filters else query).sql(dialect=dialect)
    if kind == "unique":
        keyed = exp.select(exp.Star(), exp.alias_(exp.Window(this=exp.Count(this=exp.Star()),
                                                             partition_by=columns), _PARTITION_COUNT)).from_(table)
        keyed = keyed.where(*filters, *(exp.Not(this=exp.Is(this=c.copy(), expression=exp.Null())) for c in columns))
        return exp.select(*select).from_(keyed.subquery("keyed")).where(
            exp.GT(this=_column(_PARTITION_COUNT), expression=exp.Literal.number(1))).sql(dialect=dialect)
    column = columns[0] if columns else None
    present = exp.Not(this=exp.Is(this=column.copy(), expression=exp.Null())) if column is not None else None
    if kind == "not_null":
        broken = exp.Is(this=column, expression=exp.Null())
    elif kind == "accepted_values":
        broken = exp.and_(present, exp.Not(this=exp.In(this=column, expressions=[
            sql.literal(value) for value in check.accepted_values])))
    elif kind == "accepted_range":
        broken = exp.and_(present, exp.paren(_outside(column, check.accepted_range)))
    elif kind == "relationships":
        assert target is not None
        parent = exp.select(exp.Literal.number(1)).from_(exp.alias_(_table(target), "parent", table=True)).where(
            exp.EQ(this=exp.column(check.relationships.column, table="parent", quoted=True),
                   expression=exp.column(item.columns[0], table="checked", quoted=True)))
        broken = exp.and_(present, exp.Not(this=exp.Exists(this=parent)))
        table = exp.alias_(table, "checked", table=True)
    else:   # expression
        broken = exp.Not(this=exp.Coalesce(this=exp.paren(parse(check.expression)), expressions=[exp.false()]))
    return exp.select(*select).from_(table).where(*filters, broken).sql(dialect=dialect)


def _table(key: ObjectKey) -> exp.Table:
    return exp.Table(this=exp.to_identifier(key.name, quoted=True), db=exp.to_identifier(key.schema, quoted=True))


def _column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def _outside(value: exp.Expression, bounds) -> exp.Expression:
    below = exp.LT(this=value.copy(), expression=_number(bounds.min)) if bounds.min is not None else None
    above = exp.GT(this=value.copy(), expression=_number(bounds.max)) if bounds.max is not None else None
    return exp.or_(*(part for part in (below, above) if part is not None))


def _number(value: float) -> exp.Literal:
    return exp.Literal.number(int(value) if float(value).is_integer() else value)


# -- which checks an apply runs, and running them ------------------------------------------------
def affected(changes: Iterable[Change], desired: DesiredState) -> list[ObjectState]:
    """The objects whose checks an apply runs: every object it creates or changes, every view that
    reads one of them (at any distance), every object whose checks read one of them; in order."""
    return reached({c.key for c in changes if c.action != "delete" and c.key in desired.objects}, desired)


def reached(changed: set[ObjectKey], desired: DesiredState) -> list[ObjectState]:
    """The objects with checks among `changed`, the views that read them, and the objects whose checks
    read any of those; in order."""
    if not changed or not any(obj.checks for obj in desired.objects.values()):
        return []
    reached = changed | graphs.downstream(desired.graph, changed)
    reached |= {key for key, obj in desired.objects.items() if any(set(c.reads) & reached for c in obj.checks)}
    return [desired.objects[key] for key in sorted(reached) if desired.objects[key].checks]


def failures(results: Iterable[Result]) -> list[Result]:
    return [r for r in results if r.outcome == "failed"]


def failure_message(tenant: str, failed: Sequence[Result]) -> str:
    """For people: each failed check, its count and its sample rows."""
    lines = [f"tenant {tenant}: {len(failed)} check{'s' * (len(failed) != 1)} failed:"]
    for result in failed:
        lines.append(f"  {result.describe()}")
        lines += [f"    {sample_row(row)}" for row in result.sample]
    return "\n".join(lines)


def summary(results: Sequence[Result], skipped: Sequence[str] = ()) -> str:
    """`5 checks: 4 passed, 1 warned, 0 failed`, and how many objects were skipped."""
    counts = {outcome: sum(1 for r in results if r.outcome == outcome) for outcome in ("passed", "warned", "failed")}
    return (f"{len(results)} check{'s' * (len(results) != 1)}: " + ", ".join(f"{n} {o}" for o, n in counts.items())
            + (f"; {len(skipped)} object{'s' * (len(skipped) != 1)} skipped" if skipped else ""))


def sample_row(row: dict) -> str:
    return ", ".join(f"{name}={value!r}" if isinstance(value, str) else f"{name}={value}"
                     for name, value in row.items())


# the vocabulary lives in check_types; it is named here too, with what builds and runs it
__all__ = ["DataCheck", "Declared", "Result", "SAMPLE_ROWS", "CHECKS_VERSION", "NOTHING_SHOWN",
           "declared", "object_columns", "build", "affected", "reached", "failures", "failure_message",
           "summary", "sample_row"]
