"""A content-addressed cache of expensive pure results (parsed YAML, analysed SQL).

Keys are hashes of everything a result depends on, so an entry never goes stale; the file
(`.git/reconciler/cache.sqlite`, where no commit can reach) is safe to delete at any time. Never holds state
that matters: losing it costs time, nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

FORMAT = "1"


def content_key(*parts: str) -> str:
    digest = hashlib.sha256(FORMAT.encode())
    for part in parts:
        digest.update(b"\x00")
        digest.update(part.encode())
    return digest.hexdigest()


class Cache:
    """Namespaced JSON values in one SQLite file; writes are buffered until `flush()`."""

    def __init__(self, path: Path | None):
        self._pending: dict[tuple[str, str], str] = {}
        self._loaded: dict[str, dict[str, str]] = {}
        self._db: sqlite3.Connection | None = None
        # a cache behind a symbolic link (one a pull request committed) is never opened: SQLite writes
        # through links; without the cache the reconciler is only slower
        if path is not None and not os.environ.get("RECONCILER_NO_CACHE") and not path.is_symlink() \
                and not path.parent.is_symlink():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, timeout=5, isolation_level=None)
                self._db.execute("CREATE TABLE IF NOT EXISTS entries"
                                 " (ns TEXT, key TEXT, value TEXT, PRIMARY KEY (ns, key))")
            except (OSError, sqlite3.Error):
                self._db = None  # a cache that cannot be opened only costs time

    def get(self, namespace: str, key: str) -> Any | None:
        pending = self._pending.get((namespace, key))
        if pending is not None:
            return json.loads(pending)
        stored = self._namespace(namespace).get(key)
        return json.loads(stored) if stored is not None else None

    def _namespace(self, namespace: str) -> dict[str, str]:
        """All stored entries of a namespace, read in one query: a plan asks for thousands."""
        loaded = self._loaded.get(namespace)
        if loaded is None:
            loaded = self._loaded[namespace] = {}
            if self._db is not None:
                try:
                    loaded.update(self._db.execute("SELECT key, value FROM entries WHERE ns = ?",
                                                   (namespace,)))
                except sqlite3.Error:
                    pass
        return loaded

    def put(self, namespace: str, key: str, value: Any) -> None:
        self._pending[(namespace, key)] = json.dumps(value, separators=(",", ":"))

    def flush(self) -> None:
        for (namespace, key), value in self._pending.items():
            if namespace in self._loaded:
                self._loaded[namespace][key] = value
        if self._db is None or not self._pending:
            self._pending.clear()
            return
        rows = [(ns, key, value) for (ns, key), value in self._pending.items()]
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)", rows)
        except sqlite3.Error:
            pass  # another process holds the file; the entries are recomputed next time
        self._pending.clear()


NO_CACHE = Cache(None)
