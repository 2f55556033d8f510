"""Running one piece of work per tenant at once, and stopping everything on Ctrl-C; and work made of
independent parts on forked processes, one a core (`in_parts`).

Owns the thread pool tenants are planned and applied on (each on its own connection), the stop
event every statement checks before it starts, and Ctrl-C: the signal handler a command runs
under (`ctrl_c`) and the open sessions whose running statements it asks the engine to stop (a
check that never ends must not hold the command). Once STOP is set, every statement a thread
starts raises KeyboardInterrupt, and so does one the engine stopped, except the statements a
thread runs while it handles that KeyboardInterrupt: its rollback and audit row (`stopping`).
Never talks to a tenant but to tell a session to stop its statement.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

MAX_PARALLEL_TENANTS = 8
STOP = threading.Event()   # set on Ctrl-C: every tenant's apply rolls back at its next statement
STOP_AGAIN_AFTER = 0.5     # seconds: a statement that began as Ctrl-C came (the engine missed it) is stopped again
_SESSIONS: weakref.WeakSet = weakref.WeakSet()   # open sessions (`running`, `stop_statement`)
_ASKED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # session -> (statement, when) last asked to stop
_LOCK = threading.Lock()
_WRITING = threading.Event()   # set once the command asked for a tenant's write session


def writing() -> None:
    """This command asks for a tenant's write session (its lock): Ctrl-C may have stopped a change."""
    _WRITING.set()


def wrote() -> bool:
    """Whether this command asked for any tenant's write session (Ctrl-C's message says which it was)."""
    return _WRITING.is_set()


def each_tenant(items: Sequence, work) -> list:
    """`work(item)` for every tenant at once, each on its own connection; results (or the
    exception raised) in the items' order. Ctrl-C stops them all, each rolling back."""
    if len(items) <= 1:
        return [_outcome(work, item) for item in items]
    with ThreadPoolExecutor(max_workers=min(len(items), MAX_PARALLEL_TENANTS)) as pool:
        futures = [pool.submit(_outcome, work, item) for item in items]
        try:
            return [future.result() for future in futures]
        except KeyboardInterrupt:
            _stopped(futures)
            raise
        finally:
            STOP.clear()


@contextlib.contextmanager
def beside(work, *arguments) -> Iterator[Future]:
    """`work(*arguments)` on a thread of its own while the block runs (reading tenants while a folder is
    validated); leaving the block waits for it. When the block raises (Ctrl-C, or an error that makes the
    work pointless), the work is stopped as `each_tenant` stops its tenants before the error goes on: no
    thread outlives the block."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="reconciler beside") as pool:
        future = pool.submit(work, *arguments)
        try:
            yield future
            wait([future])   # here, not in the pool's exit: a Ctrl-C while waiting stops it too
        except BaseException:
            try:
                _stopped([future])
            finally:
                STOP.clear()
            raise


def _stopped(futures: Sequence[Future]) -> None:
    """Set STOP and stop the running statements until every future is done; a second Ctrl-C must not let
    a tenant go on (and commit) before it stopped."""
    STOP.set()
    while True:
        try:
            stop_statements()
            if not wait(futures, timeout=STOP_AGAIN_AFTER).not_done:
                return
        except KeyboardInterrupt:
            continue


def _outcome(work, item):
    try:
        return work(item)
    except Exception as error:  # noqa: BLE001 - handed back to the caller, which decides
        return error


# -- parts on processes -----------------------------------------------------------------------
MAX_PARTS = 8
PR_SET_PDEATHSIG = 1   # linux/prctl.h
_PART = None   # the work of `in_parts`, which a forked process has as its parent had it: never pickled


def in_parts(work, count: int | None = None, meanwhile=None) -> list:
    """`work(part, count)` for each part 0..count-1 (count: the cores this process may use, at most
    MAX_PARTS: loky's count, which reads the CPU affinity and a container's cgroup CPU quota, so that a
    runner allowed 2 CPUs of a 64-core host forks 2, not 8, each holding the parent's memory) at once, each in a process forked from this one, so that what the work reads is
    already there and never sent; only its results come back. Pure Python work (rendering pages)
    runs on one core in one process; its parts do not share a lock. Where fork is missing or there is
    one core, the parts run here, one after another. An exception a part raises is raised here.
    `meanwhile()`, when given, runs here while the parts run (after they were forked: they never see
    what it does); its result comes first in the list."""
    global _PART
    if not count:   # loky takes 50 ms to import: only where parts are made
        from loky.backend.context import cpu_count

        count = min(cpu_count(), MAX_PARTS)
    if count <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return ([meanwhile()] if meanwhile else []) + [work(0, 1)]
    _PART = work
    try:   # leaving the pool terminates its processes, also on Ctrl-C here: no part outlives the call
        with multiprocessing.get_context("fork").Pool(count, initializer=_die_with, initargs=(os.getpid(),)) as pool:
            parts = [pool.apply_async(_part, (part, count)) for part in range(count)]
            here = [_outcome(lambda _: meanwhile(), None)] if meanwhile else []
            for part in parts:   # every part ended before the pool is left, whatever raised: a pool terminated
                part.wait()      # while a part sends its result back can wait on that part's lock for ever
            # (not handled yet: a part's process killed outright, by the OOM killer say, is replaced by the
            # pool and its part never ends, nor does this wait)
            for outcome in here:
                if isinstance(outcome, Exception):
                    raise outcome
            return here + [part.get() for part in parts]
    finally:
        _PART = None


def _part(part: int, count: int):
    return _PART(part, count)


def _die_with(parent: int) -> None:
    """A part's process ends when the one that forked it does (killed, or stopped by a CI job's
    timeout), never left writing on its own (Linux: the parent-death signal)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:   # it died before the signal was asked for
        os._exit(1)


# -- Ctrl-C ----------------------------------------------------------------------------------
def opened(session) -> None:
    """A session Ctrl-C must be able to stop: it says which statement runs on it now (`running`: the
    thread and the statement's number; None between statements and during cleanup) and asks its
    engine to stop that statement (`stop_statement`)."""
    with _LOCK:
        _SESSIONS.add(session)


def cleaning_up() -> bool:
    """Whether this thread handles a KeyboardInterrupt now: what it runs is its rollback and audit
    row, which Ctrl-C never stops."""
    return isinstance(sys.exception(), KeyboardInterrupt)


def stopping() -> bool:
    """Whether this thread must raise KeyboardInterrupt before its next statement."""
    return STOP.is_set() and not cleaning_up()


def stop_statements(main_thread_too: bool = True) -> None:
    """Ask the engine to stop every statement running now, each at most once every STOP_AGAIN_AFTER
    seconds: a second request for a statement already stopping could land on the rollback after it
    (PostgreSQL's cancel names a connection, not a statement). Cleanup never runs as `running`.
    Not the main thread's, when the KeyboardInterrupt raised there stops it (the handler's; DuckDB
    and psycopg stop their statement on it) or is about to."""
    main, now = threading.main_thread().ident, time.monotonic()
    with _LOCK:
        due = []
        for session in _SESSIONS:
            running = session.running
            if running is None or (running[0] == main and not main_thread_too):
                continue
            asked = _ASKED.get(session)
            if asked is None or asked[0] != running or now - asked[1] >= STOP_AGAIN_AFTER:
                _ASKED[session] = (running, now)
                due.append((session, running))
    for session, running in due:   # outside the lock: asking an engine may take a round trip
        if session.running == running:   # not ended meanwhile
            session.stop_statement()


@contextlib.contextmanager
def ctrl_c() -> Iterator[threading.Event]:
    """A command's run: Ctrl-C sets STOP, stops every running statement and raises KeyboardInterrupt
    in the main thread (not a second time while that thread rolls back). The main thread may itself
    be blocked in a statement that never hands control back to Python (DuckDB's recursive queries):
    the signal also wakes a watcher thread (`signal.set_wakeup_fd`) that stops it, and stops again
    whatever runs on until the command ends. Yields an event that says whether Ctrl-C came (whatever
    stopping raised, the command was interrupted)."""
    pressed = threading.Event()
    _WRITING.clear()   # a command of its own (tests run many in one process)
    if threading.current_thread() is not threading.main_thread():   # signals are the main thread's
        yield pressed
        return

    def handler(signum, frame) -> None:
        pressed.set()
        STOP.set()
        stop_statements(main_thread_too=False)
        if not cleaning_up():
            raise KeyboardInterrupt

    woken, wake = os.pipe()
    os.set_blocking(wake, False)
    watcher = threading.Thread(target=_watch, args=(woken, pressed), name="reconciler Ctrl-C", daemon=True)
    watcher.start()
    previous, previous_wake = signal.signal(signal.SIGINT, handler), signal.set_wakeup_fd(wake)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.set_wakeup_fd(previous_wake)
        os.write(wake, b"\0")   # no signal has number 0: the watcher's sign to end
        watcher.join()
        os.close(woken)
        os.close(wake)
        STOP.clear()


def _watch(woken: int, pressed: threading.Event) -> None:
    """Reads the numbers of the signals as the interpreter writes them, the moment one arrives. On
    Ctrl-C it stops the tenants' threads' statements at once, and every STOP_AGAIN_AFTER seconds
    until the command ends, what still runs: the main thread's too, which has then been stuck where
    no KeyboardInterrupt reaches it."""
    while True:
        ready, _, _ = select.select([woken], [], [], STOP_AGAIN_AFTER if pressed.is_set() else None)
        numbers = os.read(woken, 64) if ready else b""
        if 0 in numbers:
            return
        if signal.SIGINT in numbers:
            pressed.set()
            STOP.set()
            stop_statements(main_thread_too=False)
        elif pressed.is_set():
            stop_statements()
