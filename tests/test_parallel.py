"""Work in independent parts on forked processes (`parallel.in_parts`, which `reconciler site` makes and
writes its objects' pages with): each part in a process of its own that has what the parent had, the
results back in the parts' order, and a part's exception raised in the parent."""

from __future__ import annotations

import os

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
