"""What an engine whose DDL commits statement by statement gives the journaled apply protocol, over
the adapter contract every engine keeps (`contract.Adapter`).

Owns `JournaledAdapter`: where a run puts a table it touches back from (a restore point), the
statement that re-creates a table empty as it is defined, a digest of a table's rows (what shows a
copy holds them), and putting a table back to a version of its own history. An adapter implements it
or not: `apply/protocols.py: protocol_for` asks which, once, and only the journaled protocol
(`apply/journaled.py`, `apply/last_copy.py`) calls these. Never decides what to change.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence

from ..model import ObjectKey
from ..sessions import StatementFailed
from ..state import LiveObject
from . import catalog
from .contract import Adapter, Session


class JournaledAdapter(Adapter):
    """An adapter whose DDL cannot be rolled back: applied to by a journal, restore points and
    compensation instead of a transaction."""

    def restore_point(self, session: Session, found: LiveObject, run_id: str, rewritten: bool) -> str:
        """Where a journaled run puts a table it touches back from: a copy of its rows, named here
        and taken before the first statement that touches it. `rewritten`: the run drops the table,
        renames it away or loses data in it."""
        return self.backup_name(found.key, run_id)

    @abc.abstractmethod
    def definition(self, found: LiveObject) -> str | None:
        """The statement that re-creates a table empty as `found` describes it (NOT NULL, defaults,
        format, properties, comments: a journal's facts, `Before.as_table`), for a journaled run to bring
        it back from its copy."""

    @abc.abstractmethod
    def rows_digest(self, session: Session, key: ObjectKey, columns: Sequence[tuple[str, str]]) -> tuple[int, str]:
        """A table's row count and a digest of its values in `columns` ((name, type): each value cast to
        that type first), read fresh: for a journaled run's compensation to show a copy holds a table's rows
        before it drops the table (`last_copy`). StatementFailed where it cannot be read: the compensation
        then drops nothing that has rows."""

    def restore_from_history(self, session: Session, before: catalog.Before, run_id: str) -> None:
        """Put a table back to the version of its own history its restore point names, undoing the
        commits of the run `run_id` since (refused over another writer's). An engine that
        keeps no history never names such a point; a journal that does (one edited by hand) is not
        obeyed, and the compensation stops with it kept."""
        raise StatementFailed(f"RESTORE {before.key} TO {before.restore_point}",
                              f"{self.engine} keeps no table history to restore from")

    def unrestorable(self, reading: Session, points: Sequence[Mapping]) -> list[str | None]:
        """A copy as on every engine; a version of a table's history by that history (`history_lost`),
        read once a table; a row that names no version (edited by hand) is never restored."""
        found = super().unrestorable(reading, points)
        versions = [catalog.history_version(point["restore_point"]) if point["kind"] == catalog.HISTORY_KIND else None
                    for point in points]
        wanted: dict[ObjectKey, list[int]] = {}
        for point, version in zip(points, versions):
            if version is not None:
                wanted.setdefault(ObjectKey(point["schema_name"], point["table_name"]), []).append(version)
        lost = {key: self.history_lost(reading, key, asked) for key, asked in wanted.items()}
        return [why if point["kind"] != catalog.HISTORY_KIND else
                f"its restore point {point['restore_point']!r} names no version" if version is None else
                lost[ObjectKey(point["schema_name"], point["table_name"])].get(version)
                for point, version, why in zip(points, versions, found)]

    def rows_at(self, session: Session, key: ObjectKey, version: int) -> int:
        """How many rows a table held at a version of its own history (a checkpoint's count, read from
        the table's log where the format keeps one: no row is copied)."""
        raise StatementFailed(f"SELECT count(*) FROM {key} VERSION AS OF {version}",
                              f"{self.engine} keeps no table history")

    def history_lost(self, reading: Session, key: ObjectKey, versions: Sequence[int]) -> dict[int, str]:
        """Of `versions` of a table's own history, those that can no longer be restored whole, each with
        why (past the log's retention, files a VACUUM may have removed since): never restored partly."""
        return {version: f"{self.engine} keeps no table history" for version in versions}

    def rewind(self, session: Session, key: ObjectKey, version: int, newest: int,
               writing: Callable[[], None]) -> None:
        """A data rollback: the table's rows put back to a version of its own history in one commit,
        unless another writer committed after `newest` (the version the rollback journaled under the
        lock: what it would undo unseen) or the engine would restore it partly; StatementFailed then.
        `writing` is called just before the statement that writes, after every check."""
        raise StatementFailed(f"RESTORE {key} TO VERSION AS OF {version}", f"{self.engine} keeps no table history")

