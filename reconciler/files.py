"""Writing the reconciler's own files (a tenant's holder note, pull request bodies) safely.

Owns the one rule for every file the reconciler writes where a pull request could have put a
symbolic link: never follow one. A file is written beside its target and renamed over it (the
rename replaces a link instead of writing through it), and no folder between the root and the
file may be a link. Many files at once (`write_tree`, a site's 30,000 pages) are each opened without
following a link and written only over a regular file of one link (anything else found is replaced),
their folders checked once. Never reads or interprets what it writes.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .errors import ReconcilerError

_WRITE = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


def linked_folder(path: Path, root: Path) -> Path | None:
    """The first folder between `root` and `path` that is a symbolic link, if any."""
    try:
        parts = path.parent.relative_to(root).parts
    except ValueError:
        return None
    folder = root
    for part in parts:
        folder = folder / part
        if folder.is_symlink():
            return folder
    return None


def write(path: Path, data: str | bytes, root: Path | None = None) -> None:
    """Write `data` to `path` without following a link at `path` or (under `root`) in its folders."""
    linked = linked_folder(path, root) if root is not None else None
    if linked is not None:
        raise ReconcilerError(f"refusing to write {path}: {linked} is a symbolic link")
    path.parent.mkdir(parents=True, exist_ok=True)
    content = data.encode() if isinstance(data, str) else data
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_tree(root: Path, texts: Mapping[str, str]) -> int:
    """Write each relative path's text under `root`, never through a link: each folder is checked once
    (a symbolic link among them is refused, as `write` does), and each file is written only when what
    is there is a regular file of one link; anything else (a symbolic or hard link, a FIFO) is removed
    and the file made anew in its place. Not atomic per file: for output a reader opens after the
    command ends, where the rename of `write` costs half the time. How many files were written."""
    checked: set[Path] = set()
    for relative, text in texts.items():
        path = root / relative
        if path.parent not in checked:
            linked = linked_folder(path, root)
            if linked is not None:
                raise ReconcilerError(f"refusing to write {path}: {linked} is a symbolic link")
            path.parent.mkdir(parents=True, exist_ok=True)
            checked.add(path.parent)
        with os.fdopen(_own_file(path), "wb") as file:
            file.write(text.encode())
    return len(texts)


def _own_file(path: Path) -> int:
    """`path` opened for writing, empty, a regular file no other name shares."""
    try:   # O_NONBLOCK: a FIFO without a reader refuses at once (ENXIO) instead of waiting for one
        handle = os.open(path, _WRITE, 0o644)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENXIO):   # a symbolic link; a FIFO
            raise
    else:
        try:
            found = os.fstat(handle)
            if stat.S_ISREG(found.st_mode) and found.st_nlink == 1:
                os.ftruncate(handle, 0)
                os.set_blocking(handle, True)
                return handle
        except BaseException:
            os.close(handle)
            raise
        os.close(handle)
    path.unlink()
    handle = os.open(path, _WRITE | os.O_EXCL, 0o644)
    os.set_blocking(handle, True)
    return handle
