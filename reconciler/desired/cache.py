"""A content-addressed cache of expensive pure results (parsed YAML, analysed SQL).

Keys are hashes of everything a result depends on, so an entry never goes stale; the file
(`.git/reconciler/cache.sqlite`, where no commit can reach) is safe to delete at any time. Never holds state
that matters: losing it costs time, nothing else. Bounded: each entry records the day it was last
used, and entries unused for `KEEP_DAYS` are dropped (at most once a day), as are the least recently
used beyond `MAX_ENTRIES`. Two processes may use one file at once: SQLite serialises the writes,
and a write that cannot get the file in time is dropped (it is recomputed next time).

Verified: each entry carries a MAC of its namespace, key and value under the repository's own
random key (`cache.key` beside the file, never in it), checked when it is read. An entry edited by
hand, copied under another key, or from another repository's cache is not believed: it is missing,
and recomputed. Whoever can read the key and write the file can forge an entry; they can also
rewrite `.git/hooks` and `.git/config`, which run code with every git command.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from pathlib import Path
from typing import Any

import orjson

FORMAT = "1"
KEEP_DAYS = 30            # an entry no command used for this long is dropped
MAX_ENTRIES = 1_000_000   # and beyond this many, the least recently used (about 10 GB of landscapes)
KEY_FILE = "cache.key"    # beside the cache: the repository's key for its entries' MACs
KEY_BYTES = 32
_DIGITS_AS_NINES = bytes.maketrans(b"0123456789", b"9" * 10)
_LONG_DIGITS = b"9" * 19   # an integer orjson may not read exactly has 19 digits or more (-2**63 - 1)


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
        self._loaded: dict[str, dict[str, tuple[str, int, str | None]]] = {}   # value, day used, MAC
        self._used: set[tuple[str, str]] = set()   # entries read today whose day was older
        self._today = (today or dt.date.today()).toordinal()
        self._db: sqlite3.Connection | None = None
        self._key = secrets.token_bytes(KEY_BYTES)   # without a file, entries live as long as the process
        # a cache behind a symbolic link (one a pull request committed) is never opened: SQLite writes
        # through links; without the cache the reconciler is only slower
        if path is not None and not os.environ.get("RECONCILER_NO_CACHE") and not path.is_symlink() \
                and not path.parent.is_symlink():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(path, timeout=5, isolation_level=None)
                self._db.execute("CREATE TABLE IF NOT EXISTS entries (ns TEXT, key TEXT, value TEXT, "
                                 "used INTEGER NOT NULL DEFAULT 0, mac TEXT, PRIMARY KEY (ns, key))")
                self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(entries)")}
                # a cache written before entries recorded their day (from today) or their MAC (none: recomputed)
                for column, kind in (("used", f"INTEGER NOT NULL DEFAULT {self._today}"), ("mac", "TEXT")):
                    if column not in columns:
                        with contextlib.suppress(sqlite3.OperationalError):   # another process added it first
                            self._db.execute(f"ALTER TABLE entries ADD COLUMN {column} {kind}")
                self._key = _repository_key(path.with_name(KEY_FILE))
            except (OSError, sqlite3.Error):
                self._db = None  # a cache that cannot be opened only costs time

    def get(self, namespace: str, key: str) -> Any | None:
        pending = self._pending.get((namespace, key))
        if pending is not None:
            return _decoded(pending)
        stored = self._namespace(namespace).get(key)
        if stored is None:
            return None
        value, used, mac = stored
        if not isinstance(mac, str) or not hmac.compare_digest(mac, self._mac(namespace, key, value)):
            return None   # not what this repository's reconciler wrote under this key: made again, never believed
        if not isinstance(used, int) or used < self._today:   # its day is not covered by the MAC
            self._used.add((namespace, key))
        return _decoded(value)

    def _mac(self, namespace: str, key: str, value: object) -> str:
        # keyed BLAKE2b is a MAC; NUL separates: no namespace or key holds one, and JSON text writes it escaped
        return hashlib.blake2b(f"{namespace}\0{key}\0{value}".encode(), key=self._key, digest_size=16).hexdigest()

    def _namespace(self, namespace: str) -> dict[str, tuple[str, int, str | None]]:
        """All stored entries of a namespace, read in one query: a plan asks for thousands."""
        loaded = self._loaded.get(namespace)
        if loaded is None:
            loaded = self._loaded[namespace] = {}
            if self._db is not None:
                try:
                    loaded.update((key, (value, used, mac)) for key, value, used, mac in self._db.execute(
                        "SELECT key, value, used, mac FROM entries WHERE ns = ?", (namespace,)))
                except sqlite3.Error:
                    pass
        return loaded

    def put(self, namespace: str, key: str, value: Any) -> None:
        self._pending[(namespace, key)] = json.dumps(value, separators=(",", ":"))

    def flush(self) -> None:
        rows = [(ns, key, value, self._today, self._mac(ns, key, value))
                for (ns, key), value in self._pending.items()]
        for ns, key, value, day, mac in rows:
            if ns in self._loaded:
                self._loaded[ns][key] = (value, day, mac)
        if self._db is None or not (self._pending or self._used):
            self._pending.clear()
            return
        used = [(self._today, ns, key) for ns, key in self._used]
        try:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO entries (ns, key, value, used, mac) "
                                     "VALUES (?, ?, ?, ?, ?)", rows)
                self._db.executemany("UPDATE entries SET used = ? WHERE ns = ? AND key = ?", used)
                self._prune()
        except sqlite3.Error:
            pass  # another process holds the file; the entries are recomputed next time
        for ns, key in self._used:
            if ns in self._loaded and key in self._loaded[ns]:
                value, _, mac = self._loaded[ns][key]
                self._loaded[ns][key] = (value, self._today, mac)
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


def _repository_key(path: Path) -> bytes:
    """The repository's key for the MACs: random, made by the first process that needs one, read without
    following a link (a link could name a file whose content is known). One that is not KEY_BYTES long is
    made again: the entries under it are then recomputed."""
    for _ in range(2):
        try:
            with open(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb") as handle:
                key = handle.read()
            if len(key) == KEY_BYTES:
                return key
            path.unlink()
        except FileNotFoundError:
            pass
        made = path.with_name(f"{path.name}.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):   # left by a process of this id that died
            made.unlink()
        with open(os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as handle:
            handle.write(secrets.token_bytes(KEY_BYTES))
        with contextlib.suppress(FileExistsError):   # another process made one first: that one is the key
            os.link(made, path)
        made.unlink()
    raise OSError(f"{path} cannot be made")


NO_CACHE = Cache(None)


def _decoded(text: str) -> Any:
    """orjson reads an entry in half json's time (a plan reads 60,000 at 10,000 objects). json reads
    what orjson refuses (NaN and Infinity, from YAML's .nan and .inf) and any entry holding a run of 19
    digits: orjson makes an integer beyond 64 bits a float (99999999999999999999 would come back
    1e+20), and an entry must read back as it was written."""
    data = text.encode()
    if _LONG_DIGITS not in data.translate(_DIGITS_AS_NINES):   # a byte scan: a regex cost what orjson saved
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)
