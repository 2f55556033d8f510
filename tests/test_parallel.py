"""Work in independent parts on forked processes (`parallel.in_parts`, which `reconciler site` makes and
writes its objects' pages with): each part in a process of its own that has what the parent had, the
results back in the parts' order, and a part's exception raised in the parent."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading

import pytest

from reconciler import parallel


def test_each_part_runs_in_a_forked_process_that_has_what_the_parent_had() -> None:
    parent, prepared = os.getpid(), {"objects": list(range(10))}   # never pickled: a fork has it

    def work(part: int, count: int) -> tuple[int, list[int]]:
        return os.getpid(), prepared["objects"][part::count]

    done = parallel.in_parts(work, 3)

    assert [objects for _, objects in done] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    assert parent not in {pid for pid, _ in done}


def test_a_part_that_fails_raises_its_error_in_the_parent() -> None:
    def work(part: int, count: int) -> int:
        if part == 1:
            raise OSError(f"part {part} of {count} cannot write")
        return part

    with pytest.raises(OSError, match="part 1 of 2 cannot write"):
        parallel.in_parts(work, 2)


def test_one_part_runs_here() -> None:
    assert parallel.in_parts(lambda part, count: (os.getpid(), part, count), 1) == [(os.getpid(), 0, 1)]


def test_meanwhile_runs_here_while_the_parts_run_and_they_never_see_it() -> None:
    """What `site` writes besides the objects' pages is made here while the parts make the pages: after
    the fork (a part does not see it) and before the parts end (each waits to hear from it)."""
    heard, tell = os.pipe()
    done_here = {"meanwhile": False}

    def work(part: int, count: int) -> tuple[bool, bool]:
        told = select.select([heard], [], [], 60)[0] == [heard]   # the timeout is a hang guard only
        if told:
            os.read(heard, 1)
        return told, done_here["meanwhile"]

    def meanwhile() -> int:
        done_here["meanwhile"] = True
        os.write(tell, b"go")   # a byte for each part
        return os.getpid()

    try:
        assert parallel.in_parts(work, 2, meanwhile=meanwhile) == [os.getpid(), (True, False), (True, False)]
        assert parallel.in_parts(lambda part, count: part, 1, meanwhile=lambda: "here") == ["here", 0]
    finally:
        os.close(heard)
        os.close(tell)


def test_no_part_outlives_the_process_that_forked_it(tmp_path) -> None:
    """The parent SIGKILLed (a CI job's timeout) while its parts run: they end with it, never left writing.
    Every wait is on an event: a part's pid line on a pipe, each part's exit on its pidfd."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        "from reconciler import parallel\n"
        "def work(part, count):\n"
        "    os.write(int(sys.argv[1]), f'{os.getpid()}\\n'.encode())\n"
        "    os.read(os.open(sys.argv[2], os.O_RDONLY), 1)   # blocks: nobody ever writes the fifo\n"
        "parallel.in_parts(work, 2)\n")
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    said, told = os.pipe()
    parent = subprocess.Popen([sys.executable, str(script), str(told), str(fifo)], pass_fds=(told,))
    os.close(told)
    try:
        with os.fdopen(said) as lines:
            forked = [int(lines.readline()) for _ in range(2)]   # each part running, its pid said
            exits = [os.pidfd_open(pid) for pid in forked]
            parent.kill()
            parent.wait()
            for pidfd in exits:   # readable once that process has exited; the timeout is a hang guard only
                assert select.select([pidfd], [], [], 60)[0] == [pidfd], "a part outlived its parent"
                os.close(pidfd)
    finally:
        parent.kill()


def test_as_many_parts_as_cores_the_process_may_use(tmp_path) -> None:
    """The count is the cores this process may use, not the host's: pinned to one core (as a runner is by its
    affinity or its cgroup's CPU quota, which loky's count reads too), the work runs here, in one part."""
    script = tmp_path / "pinned.py"
    script.write_text(
        "import os\n"
        "from reconciler import parallel\n"
        "os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})\n"
        "print(parallel.in_parts(lambda part, count: (os.getpid(), part, count)) == [(os.getpid(), 0, 1)])\n")
    pinned = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert pinned.stdout.strip() == "True", pinned.stderr


def test_work_beside_a_block_is_waited_for_and_stopped_when_the_block_fails() -> None:
    """Tenants read while a folder is validated (`parallel.beside`): leaving the block waits for the work;
    a Ctrl-C in the block sets STOP (which every statement checks) and waits until the work has ended, so
    no thread reads a tenant after the command returned."""
    started = threading.Event()

    def work() -> str:
        started.set()
        return "stopped" if parallel.STOP.wait(60) else "never stopped"   # the timeout is a hang guard only

    with pytest.raises(KeyboardInterrupt), parallel.beside(work) as reading:
        assert started.wait(60)
        raise KeyboardInterrupt
    assert reading.done() and reading.result() == "stopped"
    assert not parallel.STOP.is_set()   # the next command starts clear

    with parallel.beside(lambda value: value * 2, 21) as doubled:
        pass
    assert doubled.result() == 42
