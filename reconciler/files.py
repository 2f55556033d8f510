"""Writing the reconciler's own files (a tenant's holder note, pull request bodies) safely.

Owns the one rule for every file the reconciler writes where a pull request could have put a
symbolic link: never follow one. A file is written beside its target and renamed over it (the
rename replaces a link instead of writing through it), and no folder between the root and the
file may be a link. Many files at once (`write_tree`, a site's 30,000 pages) are each opened without
following a link (a link found is replaced), their folders checked once. Never reads or interprets
what it writes.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .errors import ReconcilerError

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


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
    """Write each relative path's text under `root`, never through a symbolic link: each folder is
    checked once (a link among them is refused, as `write` does), each file opened with O_NOFOLLOW, and
    a link where a file goes is removed and the file written in its place. Not atomic per file: for
    output a reader opens after the command ends, where the rename of `write` costs half the time.
    How many files were written."""
    checked: set[Path] = set()
    for relative, text in texts.items():
        path = root / relative
        if path.parent not in checked:
            linked = linked_folder(path, root)
            if linked is not None:
                raise ReconcilerError(f"refusing to write {path}: {linked} is a symbolic link")
            path.parent.mkdir(parents=True, exist_ok=True)
            checked.add(path.parent)
        content = text.encode()
        try:
            handle = os.open(path, _NEW_FILE, 0o644)
        except OSError as error:
            if error.errno != errno.ELOOP:
                raise
            path.unlink()   # a link where the file goes: replaced, never followed
            handle = os.open(path, _NEW_FILE, 0o644)
        with os.fdopen(handle, "wb") as file:
            file.write(content)
    return len(texts)
