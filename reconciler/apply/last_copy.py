"""Compensation never destroys the last copy of anything: before a journaled run is put back, which
of the tables it journaled stay as they are, and the proof that every table it would drop has its
rows in a copy that stays.

Owns that decision. A journaled table the run never wrote stays as it is (what it holds now, another
session's rows with it, is the tenant as it was); any other comes back from its restore point, which
must be there, and is dropped first only when its rows are the restore point's (or a checkpoint's copy of it: what a data
rollback wrote there). A table the run made
is dropped only when it is empty or its rows are those of a copy that stays (a restore point, or a
journaled table that stays as it is). Rows are compared by row count and a digest of every value
(`JournaledAdapter.rows_digest`, read fresh), over the columns both have, each cast to the copy's type. When
any of it does not hold (a restore point dropped by hand, rows written since it was taken), nothing
is put back: `PartlyDone` says what is where, every table is kept, and the journal stays for the
next try. Never runs a statement that writes; `journaled.compensate` acts on what it decides.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from ..engines import catalog
from ..engines.contract import Session
from ..engines.journaled_contract import JournaledAdapter
from ..errors import PartlyDone
from ..model import ObjectKey
from ..state import LiveObject


@dataclass(frozen=True)
class _Copy:
    """A table whose rows stay through the compensation, to find another table's rows in."""

    key: ObjectKey
    columns: tuple[tuple[str, str], ...]   # (name, type)


class _Digests:
    """Row counts and digests of the tables compared, each read once."""

    def __init__(self, session: Session):
        self.session = session
        self.adapter = cast(JournaledAdapter, session.adapter)   # only a journaled run is compensated
        self.read: dict[tuple, tuple[int, str]] = {}

    def __call__(self, key: ObjectKey, columns: Sequence[tuple[str, str]]) -> tuple[int, str]:
        asked = (key.folded(), tuple(columns))
        if asked not in self.read:
            self.read[asked] = self.adapter.rows_digest(self.session, key, columns)
        return self.read[asked]

    def rows(self, key: ObjectKey) -> int:
        return self(key, ())[0]


def staying(session: Session, befores: Sequence[catalog.Before], now: Mapping[tuple[str, str], LiveObject],
            points: Collection[str], touched: Collection[tuple[str, str]] | None) -> set[tuple[str, str]]:
    """The journaled tables (folded keys) that compensation leaves as they are; PartlyDone, before
    anything is changed, when putting the rest back would drop rows that no staying copy holds or
    needs a restore point that is gone. `now`: the tenant's objects by folded key; `points`: the
    backup schema's tables, lower case; `touched`: the objects the run's statements wrote, None when
    that is not known (a run that was killed)."""
    digests = _Digests(session)
    stays: set[tuple[str, str]] = set()
    copies: list[_Copy] = []
    problems: list[str] = []
    for before in befores:
        if before.kind != "Table" or before.version is not None or not before.restore_point:
            continue
        found = now.get(before.key.folded())
        table = found if found is not None and found.kind == "Table" else None
        point = before.restore_point if before.restore_point.lower() in points else None
        as_journaled = table is not None and _as_journaled(table, before)
        copy = _Copy(ObjectKey(catalog.BACKUP_SCHEMA, point), _typed(before.columns)) if point else None
        copies += [copy] if copy else []   # there while what the run made is dropped
        if table is not None and (before.key.folded() not in touched if touched is not None
                                  else as_journaled and point is None):   # a restore point precedes any write
            stays.add(before.key.folded())
            copies.append(_Copy(table.key, _typed(table.columns)))
            continue
        if copy is None:
            problems.append(f"{before.key} {'is gone' if found is None else 'was changed by the run'}, and its "
                            f"restore point {catalog.BACKUP_SCHEMA}.{before.restore_point} is missing")
            continue
        if table is None:
            continue   # gone, or a view the run made in its place (no rows): re-created from the restore point
        holds = _holds(digests, table, copy)
        if not holds and not any(_holds(digests, table, kept) for kept in _checkpoint_copies(session, table, points)):
            problems.append(f"{table.key} holds rows its restore point {catalog.BACKUP_SCHEMA}.{point} lacks "
                            "(written since the restore point was taken)")
        elif holds and as_journaled:
            stays.add(before.key.folded())   # nothing of the run in it
    for before in befores:
        found = now.get(before.key.folded())
        if before.kind == "Table" or found is None or found.kind != "Table":
            continue
        if digests.rows(found.key) and not any(_holds(digests, found, copy) for copy in copies):
            problems.append(f"{found.key}, which the run made, holds rows that no restore point or table "
                            "left as it is holds")
    if problems:
        raise PartlyDone("putting the run's objects back would destroy the last copy of some rows, so nothing "
                         "was put back and every table is kept as it is: " + "; ".join(problems)
                         + "\n  where everything is now:\n" + _where(befores, now, points, digests))
    return stays


def _checkpoint_copies(session: Session, table: LiveObject, points: Collection[str]) -> list[_Copy]:
    """The copies checkpoints keep of a table with exactly its columns now (what a data rollback wrote
    into it), still there: rows one of them holds, every column compared, are not lost when the table is
    put back from its restore point. A copy of other columns is no such proof (a column added since
    would be compared by the rest alone)."""
    columns = _typed(table.columns)
    return [_Copy(ObjectKey(catalog.BACKUP_SCHEMA, row["restore_point"]), columns)
            for row in catalog.checkpoints(session)
            if row["kind"] == catalog.COPY_POINT and row["restore_point"].lower() in points
            and ObjectKey(row["schema_name"], row["table_name"]).folded() == table.key.folded()
            and tuple(map(tuple, json.loads(row["structure"]))) == columns]


def _as_journaled(table: LiveObject, before: catalog.Before) -> bool:
    """Whether a table is as the journal says it was: columns, format, properties and comments."""
    return not before.differences(table)


def _typed(columns: Sequence) -> tuple[tuple[str, str], ...]:
    """(name, type) of live columns or of a journal's."""
    return tuple((c.name, c.type) if hasattr(c, "type") else (c[0], c[1]) for c in columns)


def _holds(digests: _Digests, table: LiveObject, copy: _Copy) -> bool:
    """Whether `copy` holds `table`'s rows: the same row count and digest over the columns both have
    (by name, as the engine folds them), each of `table`'s values cast to the copy's type."""
    theirs = {name.lower(): (name, kind) for name, kind in copy.columns}
    shared = [(column.name, theirs[column.name.lower()]) for column in table.columns if column.name.lower() in theirs]
    return digests(table.key, tuple((name, kind) for name, (_, kind) in shared)) == \
        digests(copy.key, tuple(theirs_column for _, theirs_column in shared))


def _where(befores: Sequence[catalog.Before], now: Mapping[tuple[str, str], LiveObject], points: Collection[str],
           digests: _Digests) -> str:
    """Each journaled object as it is now, and each restore point, for people."""
    lines = []
    for before in befores:
        found = now.get(before.key.folded())
        state = "absent" if found is None else "a view" if found.kind == "View" else \
            f"a table of {_rows(digests.rows(found.key))}"
        was = "absent" if before.kind == "absent" else f"a {before.kind.lower()}"
        line = f"  - {before.key}: {state} (before the run: {was})"
        if before.kind == "Table" and before.restore_point and before.version is None:
            point = ObjectKey(catalog.BACKUP_SCHEMA, before.restore_point)
            line += (f"; its restore point {point} holds {_rows(digests.rows(point))}"
                     if before.restore_point.lower() in points else f"; its restore point {point} is missing")
        lines.append(line)
    return "\n".join(lines)


def _rows(count: int) -> str:
    return f"{count} row{'s' * (count != 1)}"
