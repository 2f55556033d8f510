"""The cache is safe to delete, bounded, and shared by processes that run at once (issue 12); an entry
is believed only when it is what this repository's reconciler wrote under its key (issue 22, break 12).

Real SQLite files in temporary folders; two real processes write one file at the same time.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from conftest import Landscape

from reconciler.desired import cache as caches
from reconciler.desired import source
from reconciler.desired.cache import Cache

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
        db.execute("INSERT INTO entries (ns, key, value, used) VALUES ('facts', 'stale', '1', ?)",
                   (DAY.toordinal() - 100,))
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


def test_a_cache_written_before_entries_had_a_day_and_a_mac_is_carried_on_its_entries_made_again(
        tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE entries (ns TEXT, key TEXT, value TEXT, PRIMARY KEY (ns, key))")
        db.execute("INSERT INTO entries VALUES ('facts', 'old', '\"x\"')")
    cache = Cache(path, today=DAY)
    assert cache.get("facts", "old") is None   # nothing says this repository's reconciler wrote it
    cache.put("facts", "old", "x")
    cache.flush()
    assert entries(path) == {("facts", "old"): DAY.toordinal()}
    assert Cache(path, today=DAY).get("facts", "old") == "x"


WRITER = """
import sys
from pathlib import Path
from reconciler.desired.cache import Cache
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


def test_an_entry_edited_into_any_shape_is_made_again_never_an_error(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    writer = Cache(path, today=DAY)
    for key in ("value", "mac", "day", "moved"):
        writer.put("facts", key, {"v": key})
    writer.flush()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE entries SET value = X'00FF' WHERE key = 'value'")
        db.execute("UPDATE entries SET mac = 5 WHERE key = 'mac'")
        db.execute("UPDATE entries SET used = 'yesterday' WHERE key = 'day'")   # not what the MAC covers
        db.execute("UPDATE entries SET key = 'elsewhere' WHERE key = 'moved'")
    reader = Cache(path, today=DAY)
    assert [reader.get("facts", key) for key in ("value", "mac", "moved", "elsewhere")] == [None] * 4
    assert reader.get("facts", "day") == {"v": "day"}
    reader.flush()


VIEW = "environments/dev/sales/views/vw_customer_active.yaml"


def active_view(landscape: Landscape) -> str:
    return landscape.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'vw_customer_active'")[0][0]


def test_a_tampered_cache_entry_is_made_again_from_the_file_and_the_file_is_what_is_applied(
        landscape: Landscape, monkeypatch) -> None:
    """A rendered statement whose value was edited, and a parsed file copied under the blob id of
    another version of it (an entry the reconciler really wrote, for the file a pull request proposed):
    neither is believed, the file is parsed again and applied as it is. Untampered, nothing is parsed."""
    parsed = []
    parse = source.parse_yaml
    monkeypatch.setattr(source, "parse_yaml", lambda path, text: parsed.append(path) or parse(path, text))
    monkeypatch.setenv("RECONCILER_NO_RECALL", "1")
    database = landscape.root / ".git" / "reconciler" / "cache.sqlite"
    assert landscape.run("apply", "dev", "--yes").code == 0
    applied = active_view(landscape)
    assert "region = 'EU'" in applied
    parsed.clear()
    assert landscape.run("validate", "dev").code == 0
    assert parsed == []   # every file from the cache

    unfiltered = "SELECT id, name, email, region, created_at FROM sales.customer_master WHERE status = 'ACTIVE'"
    with sqlite3.connect(database) as db:
        assert db.execute("UPDATE entries SET value = ? WHERE ns = 'sql-render' AND value LIKE '%region = ''EU''%'",
                          (json.dumps(unfiltered),)).rowcount == 1
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert active_view(landscape) == applied

    text = landscape.path(VIEW).read_text()
    landscape.edit(VIEW, "status = 'ACTIVE'", "status <> 'ACTIVE'")   # proposed, and validated: the cache holds it
    assert landscape.run("validate", "dev").code == 0
    landscape.write(VIEW, text)
    proposed = source.blob_id(text.replace("status = 'ACTIVE'", "status <> 'ACTIVE'").encode())
    with sqlite3.connect(database) as db:
        db.execute("UPDATE entries SET (value, mac) = (SELECT value, mac FROM entries WHERE ns = ?1 AND key = ?2) "
                    "WHERE ns = ?1 AND key = ?3", (source.YAML_CACHE, proposed, source.blob_id(text.encode())))
    parsed.clear()
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert parsed == [VIEW]
    assert active_view(landscape) == applied
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_a_cache_from_another_repository_is_not_believed(landscape: Landscape, tmp_path: Path) -> None:
    """The key is the repository's own: a cache file brought from elsewhere (another clone, a CI cache
    restored from another branch) verifies nothing, and costs only the time to make it again."""
    assert landscape.run("validate", "dev").code == 0
    elsewhere = tmp_path / "elsewhere" / "cache.sqlite"
    elsewhere.parent.mkdir()
    (landscape.root / ".git" / "reconciler" / "cache.sqlite").rename(elsewhere)
    assert landscape.run("validate", "dev").code == 0   # this repository's key and cache, made again
    copied = Cache(elsewhere)
    theirs = Cache(landscape.root / ".git" / "reconciler" / "cache.sqlite")
    blob = source.blob_id(landscape.path(VIEW).read_bytes())
    assert copied.get(source.YAML_CACHE, blob) is None
    assert theirs.get(source.YAML_CACHE, blob)["data"]["name"] == "vw_customer_active"


def test_an_entry_reads_back_as_it_was_written_whatever_its_numbers(tmp_path: Path) -> None:
    """Values YAML can hold that a fast JSON reader changes or refuses: integers beyond 64 bits (a
    HUGEINT bound: orjson reads them as floats), NaN and infinities (.nan, .inf), a lone surrogate;
    read back from a new process's view of the file, and from what is pending."""
    values = {"huge": 99999999999999999999, "above": 2**64, "below": -(2**63) - 1, "bigger": 10**30,
              "edge": 2**64 - 1, "nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"),
              "float": 0.1, "tiny": 5e-324, "surrogate": "\ud800", "nested": [{"n": 12345678901234567890123}]}
    path = tmp_path / "cache.sqlite"
    written = Cache(path)
    for name, value in values.items():
        written.put("values", name, value)
    assert {name: repr(written.get("values", name)) for name in values} == {n: repr(v) for n, v in values.items()}
    written.flush()
    read = Cache(path)
    assert {name: repr(read.get("values", name)) for name in values} == {n: repr(v) for n, v in values.items()}
