"""Writing the reconciler's own files (a tenant's holder note, pull request bodies) safely.

Owns the one rule for every file the reconciler writes where a pull request could have put a
symbolic link: never follow one. A file is written beside its target and renamed over it (the
rename replaces a link instead of writing through it), and no folder between the root and the
file may be a link. Never reads or interprets what it writes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import ReconcilerError


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
