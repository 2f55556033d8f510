"""The cache is safe to delete, bounded, and shared by processes that run at once (issue 12).

Real SQLite files in temporary folders; two real processes write one file at the same time.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import Landscape

from reconciler import cache as caches
from reconciler.cache import Cache

DAY = dt.date(2026, 11, 29)


def entries(path: Path) -> dict[tuple[str, str], int]:
    with sqlite3.connect(path) as db:
        return {(ns, key): used for ns, key, used in db.execute("SELECT ns, key, used FROM entries")}


def test_entries_unused_for_a_month_are_dropped_and_those_in_use_kept(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    recent = Cache(path, today=DAY - dt.timedelta(days=5))
    recent.put("facts", "recent", {"v": 3})
    recent.flush()
    old = Cache(path, today=DAY - dt.timedelta(days=40))
    old.put("facts", "kept", {"v": 1})
    old.put("facts", "forgotten", {"v": 2})
    old.flush()

    today = Cache(path, today=DAY)
    assert today.get("facts", "kept") == {"v": 1}   # read today: its day moves on before anything is dropped
    today.put("facts", "new", {"v": 4})
    today.flush()
    assert entries(path) == {("facts", "recent"): (DAY - dt.timedelta(days=5)).toordinal(),
                             ("facts", "kept"): DAY.toordinal(), ("facts", "new"): DAY.toordinal()}

    with sqlite3.connect(path) as db:   # an entry last used long ago, seen only after today's pruning
        db.execute("INSERT INTO entries VALUES ('facts', 'stale', '1', ?)", (DAY.toordinal() - 100,))
    again = Cache(path, today=DAY)
    again.put("facts", "late", {"v": 5})
    again.flush()
    assert ("facts", "stale") in entries(path)   # pruned at most once a day
    tomorrow = Cache(path, today=DAY + dt.timedelta(days=1))
    tomorrow.put("facts", "next", {"v": 6})
    tomorrow.flush()
    assert ("facts", "stale") not in entries(path) and ("facts", "kept") in entries(path)


def test_beyond_the_limit_the_least_recently_used_go(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(caches, "MAX_ENTRIES", 3)
    path = tmp_path / "cache.sqlite"
    for offset, key in enumerate(["a", "b", "c", "d", "e"]):
        writer = Cache(path, today=DAY - dt.timedelta(days=10 - offset))
        writer.put("facts", key, key)
        writer.flush()
    assert set(entries(path)) == {("facts", "c"), ("facts", "d"), ("facts", "e")}


def test_a_cache_written_before_entries_had_a_day_is_carried_on(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE entries (ns TEXT, key TEXT, value TEXT, PRIMARY KEY (ns, key))")
        db.execute("INSERT INTO entries VALUES ('facts', 'old', '\"x\"')")
    cache = Cache(path, today=DAY)
    assert cache.get("facts", "old") == "x"
    cache.flush()
    assert entries(path) == {("facts", "old"): DAY.toordinal()}


WRITER = """
import sys
from pathlib import Path
from reconciler.cache import Cache
cache = Cache(Path(sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
for round in range(20):
    for n in range(500):
        key = f"{sys.argv[2]}-{round}-{n}"
        cache.put("facts", key, {"key": key, "square": n * n})
    cache.flush()
print("done", flush=True)
"""


def test_two_processes_writing_one_file_at_once_leave_only_right_values(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True) for name in ("one", "two")]
    for writer in writers:   # both have the file open before either writes
        assert writer.stdout.readline().strip() == "ready"
    for writer in writers:
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        assert writer.stdout.readline().strip() == "done"
        assert writer.wait(timeout=60) == 0
    reader = Cache(path)
    stored = entries(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # both wrote (a flush that cannot get the file in time is dropped: only time is lost)
    assert {key.split("-")[0] for _, key in stored} == {"one", "two"}
    for ns, key in stored:
        name, _, n = key.split("-")
        assert reader.get(ns, key) == {"key": key, "square": int(n) ** 2}


def test_deleting_the_cache_between_commands_costs_nothing_but_time(landscape: Landscape) -> None:
    first = landscape.run("plan", "dev", "--format", "json")
    assert first.code == 0, first.output
    cache = landscape.root / ".git" / "reconciler" / "cache.sqlite"
    assert cache.is_file()
    cache.unlink()
    again = landscape.run("plan", "dev", "--format", "json")
    assert again.stdout == first.stdout
