"""Work in independent parts on forked processes (`parallel.in_parts`, which `reconciler site` makes and
writes its objects' pages with): each part in a process of its own that has what the parent had, the
results back in the parts' order, and a part's exception raised in the parent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

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


def test_no_part_outlives_the_process_that_forked_it(tmp_path) -> None:
    """The parent SIGKILLed (a CI job's timeout) while its parts run: they end with it, never left writing."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from reconciler import parallel\n"
        "def work(part, count):\n"
        "    with open(sys.argv[1], 'a') as pids:\n"
        "        pids.write(f'{os.getpid()}\\n')\n"
        "    os.read(os.open(sys.argv[2], os.O_RDONLY), 1)   # blocks: nobody ever writes the fifo\n"
        "parallel.in_parts(work, 2)\n")
    pids, fifo = tmp_path / "pids", tmp_path / "never"
    os.mkfifo(fifo)
    parent = subprocess.Popen([sys.executable, str(script), str(pids), str(fifo)])
    writer = os.open(fifo, os.O_WRONLY)   # opens once a part opened it to read: that part is running
    try:
        while len(pids.read_text().split()) < 2 if pids.exists() else True:
            time.sleep(0.05)   # the second part's pid line follows its start
        parent.kill()
        parent.wait()
        forked = [int(pid) for pid in pids.read_text().split()]
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in forked) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in forked)
    finally:
        os.close(writer)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = (Path("/proc") / str(pid) / "stat").read_text().split()[2] if (Path("/proc") / str(pid)).exists() else "X"
    return status not in ("Z", "X")   # a zombie has ended; only its parent (init) has not reaped it yet
