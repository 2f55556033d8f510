"""A content-addressed cache of expensive pure results (parsed YAML, analysed SQL).

Keys are hashes of everything a result depends on, so an entry never goes stale; the file
(`.git/reconciler/cache.sqlite`, where no commit can reach) is safe to delete at any time. Never holds state
that matters: losing it costs time, nothing else. Bounded: each entry records the day it was last
used, and entries unused for `KEEP_DAYS` are dropped (at most once a day), as are the least recently
used beyond `MAX_ENTRIES`. Two processes may use one file at once: SQLite serialises the writes,
and a write that cannot get the file in time is dropped (it is recomputed next time).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

FORMAT = "1"
KEEP_DAYS = 30            # an entry no command used for this long is dropped
MAX_ENTRIES = 1_000_000   # and beyond this many, the least recently used (about 10 GB of landscapes)


def content_key(*parts: str) -> str:
    digest = hashlib.sha256(FORMAT.encode())
    for part in parts:
        digest.update(b"\x00")
        digest.update(part.encode())
    return digest.hexdigest()


class Cache:
    """Namespaced JSON values in one SQLite file; writes are buffered until `flush()`."""

    def __init__(self, path: Path | None, today: dt.date | None = None):
        self._pending: dict[tuple[str, str], str] = {}
        self._loaded: dict[str, dict[str, tuple[str, int]]] = {}
        self._used: set[tuple[str, str]] = set()   # entries read today whose day was older
        self._today = (today or dt.date.today()).toordinal()
        self._db: sqlite3.Connection | None = None
        # a cache behind a symbolic link (one a pull request committed) is never opened: SQLite writes
        # through links; without the cache the reconciler is only slower
        if path is not None and not os.environ.get("RECONCILER_NO_CACHE") and not path.is_symlink() \
                and not path.parent.is_symlink():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, timeout=5, isolation_level=None)
                self._db.execute("CREATE TABLE IF NOT EXISTS entries (ns TEXT, key TEXT, value TEXT, "
                                 "used INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (ns, key))")
                self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}
                if "used" not in columns:   # a cache written before entries recorded their day: from today
                    with contextlib.suppress(sqlite3.OperationalError):   # another process added it first
                        self._db.execute(f"ALTER TABLE entries ADD COLUMN used INTEGER NOT NULL "
                                         f"DEFAULT {self._today}")
            except (OSError, sqlite3.Error):
                self._db = None  # a cache that cannot be opened only costs time

    def get(self, namespace: str, key: str) -> Any | None:
        pending = self._pending.get((namespace, key))
        if pending is not None:
            return json.loads(pending)
        stored = self._namespace(namespace).get(key)
        if stored is None:
            return None
        if stored[1] < self._today:
            self._used.add((namespace, key))
        return json.loads(stored[0])

    def _namespace(self, namespace: str) -> dict[str, tuple[str, int]]:
        """All stored entries of a namespace, read in one query: a plan asks for thousands."""
        loaded = self._loaded.get(namespace)
        if loaded is None:
            loaded = self._loaded[namespace] = {}
            if self._db is not None:
                try:
                    loaded.update((key, (value, used)) for key, value, used in self._db.execute(
                        "SELECT key, value, used FROM entries WHERE ns = ?", (namespace,)))
                except sqlite3.Error:
                    pass
        return loaded

    def put(self, namespace: str, key: str, value: Any) -> None:
        self._pending[(namespace, key)] = json.dumps(value, separators=(",", ":"))

    def flush(self) -> None:
        for (namespace, key), value in self._pending.items():
            if namespace in self._loaded:
                self._loaded[namespace][key] = (value, self._today)
        if self._db is None or not (self._pending or self._used):
            self._pending.clear()
            return
        rows = [(ns, key, value, self._today) for (ns, key), value in self._pending.items()]
        used = [(self._today, ns, key) for ns, key in self._used]
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO entries (ns, key, value, used) VALUES (?, ?, ?, ?)",
                                     rows)
                self._db.executemany("UPDATE entries SET used = ? WHERE ns = ? AND key = ?", used)
                self._prune()
        except sqlite3.Error:
            pass  # another process holds the file; the entries are recomputed next time
        for ns, key in self._used:
            if ns in self._loaded and key in self._loaded[ns]:
                self._loaded[ns][key] = (self._loaded[ns][key][0], self._today)
        self._pending.clear()
        self._used.clear()

    def release(self) -> None:
        """Write what is pending and let go of the namespaces read so far (tens of MB at 10,000
        objects); a later read loads them again."""
        self.flush()
        self._loaded.clear()

    def _prune(self) -> None:
        """At most once a day: drop what no command used for KEEP_DAYS, then the least recently used
        beyond MAX_ENTRIES."""
        assert self._db is not None
        last = self._db.execute("SELECT value FROM meta WHERE key = 'pruned'").fetchone()
        if last is not None and int(last[0]) >= self._today:
            return
        self._db.execute("DELETE FROM entries WHERE used < ?", (self._today - KEEP_DAYS,))
        excess = self._db.execute("SELECT count(*) FROM entries").fetchone()[0] - MAX_ENTRIES
        if excess > 0:
            self._db.execute("DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries ORDER BY used LIMIT ?)",
                             (excess,))
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('pruned', ?)", (str(self._today),))


NO_CACHE = Cache(None)
