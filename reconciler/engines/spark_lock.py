"""The tenant lock of a Spark SQL tenant: a lock table whose row holds a lease, since Spark has no
lock that dies with its holder.

Owns taking, renewing and releasing the lock row, its lease read as a time by the endpoint's own clock
(`current_timestamp()`), and how a holder is judged gone (its lease ran out; on this host, its process
is gone). Never writes anything but its own lock row.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path

from ..errors import LockTakenOver, TenantError, TenantLocked
from . import catalog
from .contract import Session, StatementFailed
from .spark_catalog import _assignments

_STOPPED: list = []


class TableLock:
    """The tenant lock on an engine without one: generations `_reconciler.lock_00000001`, `..2`, each
    taken by an atomic CREATE TABLE that only one run can win (the metastore refuses the second
    with TABLE_OR_VIEW_ALREADY_EXISTS). The holder (run, actor, host, boot, pid) and its lease ride
    on the table's properties, written by the same statement. The newest generation is free once
    released; once its lease has passed (another machine's run that stopped without releasing);
    or at once when its holder ran on this machine (same host name and boot) and its process is
    gone (killed). A holder that outlives its lease without renewing may find the tenant taken
    over: it renews as it goes (`renew`, between statements) and stops when it lost it. Leases are
    written and compared as times by the endpoint's clock (`endpoint_now`), never the client's: a
    client whose clock is ahead cannot take a live lock over, nor one behind grant a lease already
    run out. A lease that is no time (a row edited by hand) never runs out: the tenant stays locked,
    and the message names the row and `reconciler unlock`, whose run (`holder["unlocks"]`) is the
    one run that may take that row over."""

    PREFIX = "lock_"
    LEASE = dt.timedelta(minutes=30)

    def __init__(self, session: Session, holder: dict[str, str], describe: str, timeout: float = 0):
        self.session, self.describe, self.timeout = session, describe, timeout
        self.holder = {**holder, "host": socket.gethostname(), "boot": _boot_id(), "pid": str(os.getpid())}
        self.generation: int | None = None
        self.taken_over: dict[str, str] | None = None   # the holder whose dead lock this run took
        self.renewed = dt.datetime.min

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            newest, holder = self.newest()
            if holder is None or self.free(holder):
                try:
                    self._create(newest + 1)
                except StatementFailed as failure:
                    if self.newest()[0] > newest:   # another run created that generation first: it holds the tenant
                        continue
                    raise TenantError(f"{self.describe}: the tenant lock cannot be taken: {failure.message}") from None
                self.taken_over = holder if holder and holder.get("released") != "true" else None
                for old in range(max(newest - 2, 1), newest):   # the last generations stay for people
                    self.session.execute(f"DROP TABLE IF EXISTS {self._name(old)}")
                return
            if time.monotonic() >= deadline:
                if _lease(holder) is None:
                    raise TenantLocked(self._malformed(newest, holder))
                raise TenantLocked(f"{self.describe} is locked by run {holder.get('run_id')} of "
                                   f"{holder.get('actor')} on {holder.get('host')} (pid {holder.get('pid')}), "
                                   f"its lease runs until {holder.get('lease_until')} UTC")
            time.sleep(1)   # polling: Spark has no lock to wait on

    def newest(self) -> tuple[int, dict[str, str] | None]:
        newest = self.newest_generation()
        if not newest:
            return 0, None
        return newest, dict(self.session.execute(f"SHOW TBLPROPERTIES {self._name(newest)}"))

    def newest_generation(self) -> int:
        """The newest lock row's generation (0: none), from one listing of the catalog schema."""
        return max((int(name[len(self.PREFIX):]) for name in self.session.tables(catalog.CATALOG_SCHEMA)
                    if name.startswith(self.PREFIX) and name[len(self.PREFIX):].isdigit()), default=0)

    def free(self, holder: dict[str, str]) -> bool:
        lease = _lease(holder)
        if holder.get("released") == "true" or (lease is not None and lease < self.endpoint_now()):
            return True
        if lease is None and self.holder.get("unlocks") not in (None, "") \
                and holder.get("run_id") == self.holder["unlocks"]:
            return True   # `reconciler unlock` of the run whose lease never runs out
        here = holder.get("host") == self.holder["host"] and holder.get("boot") == self.holder["boot"]
        return here and holder.get("pid", "").isdigit() and not _alive(int(holder["pid"]))

    def renew(self) -> None:
        """Before every statement: LockTakenOver when another run took the lock over (checked each time, a
        listing of the catalog schema: a holder paused past its lease must not run one more statement);
        the lease pushed on when a third of it has passed."""
        newest = self.newest_generation()
        if newest != self.generation:
            raise LockTakenOver(f"{self.describe}: this run's lock (generation {self.generation}) was taken over "
                                f"by generation {newest} after its lease ran out; stopping")
        at = dt.datetime.now(dt.timezone.utc)
        if at - self.renewed < self.LEASE / 3:
            return
        self._properties(lease_until=_utc(self.endpoint_now() + self.LEASE))
        self.renewed = at

    def endpoint_now(self) -> dt.datetime:
        """The endpoint's clock, UTC: every client of a tenant reads the same one."""
        return _endpoint_now(self.session)

    def release(self) -> None:
        if self.generation is not None:
            self._properties(released="true")
            self.generation = None

    def _create(self, generation: int) -> None:
        at = dt.datetime.now(dt.timezone.utc)   # when it was last renewed, by this process's own clock
        properties = {**self.holder, "lease_until": _utc(self.endpoint_now() + self.LEASE)}
        self.session.execute(f"CREATE SCHEMA IF NOT EXISTS {catalog.CATALOG_SCHEMA}")
        self.session.execute(f"CREATE TABLE {self._name(generation)} (held BOOLEAN) USING parquet "
                             f"TBLPROPERTIES ({_assignments(properties)})")
        self.generation, self.renewed = generation, at

    def _properties(self, **values: str) -> None:
        self.session.execute(f"ALTER TABLE {self._name(self.generation)} SET TBLPROPERTIES "
                             f"({_assignments(values)})")

    def _name(self, generation: int | None) -> str:
        return f"{catalog.CATALOG_SCHEMA}.{self.PREFIX}{generation:08d}"

    def _malformed(self, generation: int, holder: dict[str, str]) -> str:
        run = holder.get("run_id")
        way_out = (f"if run {run} is no longer running, `reconciler unlock ENVIRONMENT {run}` releases it" if run
                   else f"it names no run: once nothing runs there, drop {self._name(generation)} by hand")
        return (f"{self.describe} is locked by the lock row {self._name(generation)} (run {run or '?'} of "
                f"{holder.get('actor', '?')} on {holder.get('host', '?')}), whose lease_until "
                f"{holder.get('lease_until')!r} is no UTC time (YYYY-MM-DD HH:MM:SS), so it never runs out; "
                f"{way_out}")


def _utc(at: dt.datetime) -> str:
    return at.strftime(LEASE_FORMAT)


LEASE_FORMAT = "%Y-%m-%d %H:%M:%S"   # a lease's end, UTC, as a lock row's properties hold it


def _lease(holder: Mapping[str, str]) -> dt.datetime | None:
    """When a lock row's lease runs out, as a time (never compared as text); None when it holds none."""
    try:
        return dt.datetime.strptime(holder.get("lease_until") or "", LEASE_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def _endpoint_now(session: Session) -> dt.datetime:
    """The endpoint's clock, UTC: every client of a tenant reads the same one (microseconds since the
    epoch, which no session time zone shifts)."""
    [(micros,)] = session.execute("SELECT unix_micros(current_timestamp())")
    return dt.datetime.fromtimestamp(micros / 1_000_000, dt.timezone.utc)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process: alive
        return True
    return True
