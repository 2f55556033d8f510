"""Checkpoints of tables' rows, and what rolling the rows back to one does and finds.

Owns what a checkpoint writes inside its caller's transaction (per table a copy in the backup schema
and its row in `_reconciler.checkpoints`, the one index of that copy), the impact of a data rollback (row
counts only: never a row is read), why a table cannot be rolled back (gone, another structure, its copy
gone), and the checks after a rollback (the tables' data checks, no NULL in a primary key, the
checkpoint's row counts). Never opens a session, begins or commits: the protocol calling it does.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..check_types import Result
from ..desired import checks, sql
from ..engines import catalog
from ..engines.contract import Adapter, Session
from ..engines.stores import BACKUP_SCHEMA, CATALOG_SCHEMA, now
from ..errors import GuardRefused, TenantError, UsageProblem
from ..model import ObjectKey
from ..state import DesiredState, LiveObject
from .checks import run as run_data_checks

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")


def check_name(name: str) -> str:
    """A checkpoint name a person can type and every engine can store; UsageProblem otherwise."""
    if not NAME.match(name):
        raise UsageProblem(f"checkpoint name {name!r}: use letters, digits and _ . @ + - (at most 100, starting "
                           "with a letter or digit)")
    return name


@dataclass(frozen=True)
class Point:
    """One table's restore point in a checkpoint, as its row in the catalog says."""

    name: str
    environment: str
    tenant: str
    table: ObjectKey
    kind: str                      # catalog.COPY_POINT (in the backup schema) or HISTORY_KIND
    restore_point: str             # the copy's name, or HISTORY_POINT and the table's version
    commit: str | None             # the folder's commit when it was taken
    run_id: str
    created_at: dt.datetime
    row_count: int
    structure: tuple[tuple[str, str], ...]   # (column, type) as the tenant had them
    linked_to: str | None = None   # the checkpoint a rollback restored, for the one it took after
    lost: str | None = None        # why it can no longer be restored (its copy gone, its version's files)

    @classmethod
    def from_row(cls, row: Mapping) -> Point:
        """The point a catalog row names. A row whose columns or row count are not as the reconciler wrote
        them (edited by hand) is listed as not restorable, never restored, and never an internal error."""
        columns, rows, unreadable = _structure(row["structure"]), _count(row["row_count"]), None
        if columns is None:
            unreadable = f"its columns in {CATALOG_SCHEMA}.checkpoints are not as they were written: {row['structure']!r}"
        elif rows is None:
            unreadable = f"its row count in {CATALOG_SCHEMA}.checkpoints is not a number: {row['row_count']!r}"
        return cls(row["name"], row["environment"], row["tenant"], ObjectKey(row["schema_name"], row["table_name"]),
                   row["kind"], row["restore_point"], row["commit"], row["run_id"], row["created_at"], rows or 0,
                   columns or (), row["linked_to"], unreadable or row.get("lost"))


def _count(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _structure(text) -> tuple[tuple[str, str], ...] | None:
    """A checkpoint row's columns ((name, type), as `record` writes them); None when they are not that."""
    try:
        found = json.loads(text)
    except (TypeError, ValueError):
        return None
    pairs = found if isinstance(found, list) and found else [None]
    if not all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in pairs):
        return None
    return tuple((name, kind) for name, kind in pairs)


def structure(found: LiveObject) -> tuple[tuple[str, str], ...]:
    """What a restore needs unchanged: the table's columns and their types, in order."""
    return tuple((column.name, column.type) for column in found.columns)


def take(session: Session, adapter: Adapter, run, tables: Sequence[LiveObject], name: str,
         linked_to: str | None = None, tag: str = "checkpoint",
         in_history: Callable[[LiveObject], tuple[str, int] | None] | None = None,
         restored: Mapping[ObjectKey, Point] | None = None) -> list[Point]:
    """Inside the caller's transaction (or, journaled, under its lock): a copy of each table in the backup
    schema, or, where `in_history` gives one, the point in the table's own history (its name and the rows
    the table held there: no row copied), and the checkpoint's rows (which alone list the copies:
    `backups` lists the copies taken before data loss). `tag` keeps the copies apart from the other
    copies the same run takes of a table (a backup before data loss, a rollback's two checkpoints).
    A table a rollback just restored from a copy, and checked to hold its rows (`verify`), has that copy
    named again (`restored`: the point restored, per table): the rows are the copy's, so none is copied
    twice, and `prune-backups` keeps a copy while any checkpoint naming it is within its retention."""
    at, engine = now(), adapter.engine
    points = []
    for found in tables:
        kept = in_history(found) if in_history is not None else None
        source = (restored or {}).get(found.key)
        if kept is not None:
            kind, (restore_point, rows) = catalog.HISTORY_KIND, kept
        elif source is not None and source.kind == catalog.COPY_POINT:
            kind, restore_point, rows = source.kind, source.restore_point, source.row_count
        else:
            kind, restore_point = catalog.COPY_POINT, adapter.backup_name(found.key, f"{run.run_id}.{tag}")
            session.hold()
            session.execute(catalog.copy_statement(engine, found.key, restore_point))
            rows = session.count(f"SELECT count(*) FROM {sql.qualified(BACKUP_SCHEMA, restore_point, engine)}")
        points.append(Point(name, run.plan.environment, run.tenant_plan.tenant, found.key, kind, restore_point,
                            run.plan.commit, run.run_id, at, rows, structure(found), linked_to))
    record(session, points)
    return points


def record(session: Session, points: Sequence[Point]) -> None:
    """The checkpoint's rows: the one index of its restore points."""
    session.insert(f"{CATALOG_SCHEMA}.checkpoints", [
        (p.name, p.environment, p.tenant, p.table.schema, p.table.name, p.kind, p.restore_point, p.commit, p.run_id,
         p.created_at, p.row_count, json.dumps([list(c) for c in p.structure]), p.linked_to) for p in points])


def refuse_taken(session: Session, name: str, tenant: str) -> None:
    """Under the lock: a name is one checkpoint per tenant."""
    taken = [row for row in catalog.checkpoints(session) if row["name"] == name]
    if taken:
        raise UsageProblem(f"tenant {tenant}: a checkpoint named {name} exists already (taken "
                           f"{taken[0]['created_at']:%Y-%m-%d %H:%M:%S} UTC); choose another --name")


def held(live, tables: Sequence[ObjectKey], tenant: str) -> list[LiveObject]:
    """The tables as the tenant holds them now; TenantError naming any that is not a table there."""
    gone = [key for key in tables if key not in live.objects or live.objects[key].kind != "Table"]
    if gone:
        raise TenantError(f"tenant {tenant}: {', '.join(map(str, gone))}: not a table the tenant holds now; nothing "
                          "was taken")
    return [live.objects[key] for key in tables]


# -- a data rollback ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Impact:
    """What rolling one table back to its restore point does, by row counts, and what stops it."""

    tenant: str
    table: str
    rows_now: int | None       # None: the table is gone
    rows_then: int
    since: dt.timedelta
    risk: str                  # high | medium | low, by the share of rows that change
    problem: str | None = None
    exit_code: int = 0         # of the problem: 3 its structure, 1 its copy is gone

    @property
    def difference(self) -> int:
        return (self.rows_now or 0) - self.rows_then


def risk(rows_now: int, rows_then: int) -> str:
    """High when half the rows or more change (by count), medium from a tenth, low below."""
    share = abs(rows_now - rows_then) / max(rows_now, rows_then, 1)
    return "high" if share >= 0.5 else "medium" if share >= 0.1 else "low"


def impact(point: Point, found: LiveObject | None, rows_now: int | None, environment: str,
           at: dt.datetime) -> Impact:
    """The impact of restoring `point` into the table as found now (None: gone)."""
    since, undo = at - point.created_at, f"reconciler rollback {environment} --to {(point.commit or 'COMMIT')[:12]}"
    if found is None or found.kind != "Table":
        return Impact(point.tenant, str(point.table), None, point.row_count, since, "high",
                      f"table {point.table} is gone since checkpoint {point.name} (dropped or renamed): roll its "
                      f"structure back first ({undo}), then its rows", GuardRefused.exit_code)
    if point.structure and structure(found) != point.structure:   # none: unreadable, and `lost` says so
        return Impact(point.tenant, str(point.table), rows_now, point.row_count, since, "high",
                      f"table {point.table} has columns {_shown(structure(found))}, had {_shown(point.structure)} "
                      f"at checkpoint {point.name}: roll its structure back first ({undo}), then its rows",
                      GuardRefused.exit_code)
    if point.lost:
        return Impact(point.tenant, str(point.table), rows_now, point.row_count, since, "high",
                      f"checkpoint {point.name} of {point.table} cannot be restored: {point.lost}",
                      TenantError.exit_code)
    return Impact(point.tenant, str(point.table), rows_now, point.row_count, since, risk(rows_now or 0,
                                                                                         point.row_count))


def _shown(columns: Sequence[tuple[str, str]]) -> str:
    return "(" + ", ".join(f"{name} {kind}" for name, kind in columns) + ")"


def refusal(impacts: Sequence[Impact]) -> GuardRefused | TenantError | None:
    """The error a rollback with these impacts stops with, naming every table that cannot be restored:
    a structure to roll back first (exit 3) speaks before a copy that is gone (exit 1)."""
    problems = [i for i in impacts if i.problem]
    if not problems:
        return None
    error = GuardRefused if any(i.exit_code == GuardRefused.exit_code for i in problems) else TenantError
    return error("refused; nothing was changed:\n  " + "\n  ".join(f"{i.tenant}: {i.problem}" for i in problems))


def verify(session: Session, desired: DesiredState, points: Sequence[Point]) -> list[Result]:
    """After a rollback, inside its transaction: the data checks of the tables and of what reads them,
    no NULL in a table's primary key, and each table holding the rows its checkpoint counted."""
    keys = {point.table for point in points}
    results = run_data_checks(session, checks.reached(keys & set(desired.objects), desired))
    for point in points:
        table = sql.qualified(point.table.schema, point.table.name, session.engine)
        key = desired.objects[point.table].primary_key if point.table in desired.objects else ()
        if key:
            nulls = " OR ".join(f"{sql.quote(column, session.engine)} IS NULL" for column in key)
            results.append(Result(str(point.table), f"primary key ({', '.join(key)}) holds no NULL", "not_null",
                                  "error", session.count(f"SELECT count(*) FROM {table} WHERE {nulls}")))
        rows = session.count(f"SELECT count(*) FROM {table}")
        results.append(Result(str(point.table), f"rows as at checkpoint {point.name} ({point.row_count})",
                              "row_count", "error", abs(rows - point.row_count), ({"row_count": rows},)))
    return results
