"""The record `rollback --execute` keeps while it runs: `.git/reconciler/rollback-ENV.json`.

Owns its shape (a pydantic model: every field typed, commits as full hashes, names that cannot
be read as options), writing it, and reading it back: a record is believed only when it has
that shape and its commits are this repository's and fit together (the rollback's commit sits on
the commit it started from). Anything else is `UnreadableIntent`, naming the file and what is
wrong. Never decides what to do with a record: that is `transport`'s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import files
from ..desired.source import resolve_commit
from ..errors import GitError, ReconcilerError

Commit = Annotated[str, Field(pattern=r"^[0-9a-f]{40}$")]
NotAnOption = Annotated[str, Field(min_length=1, pattern=r"^[^-\s]\S*$")]


class UnreadableIntent(ReconcilerError):
    """A rollback intent that is not one this reconciler wrote: nothing can be finished from it."""


class Intent(BaseModel):
    """What an interrupted `rollback --execute` was doing: where it started (`head`), the commit it
    applies and moves the branch to (`commit`, on top of `head`), what it restores (`ref`, resolved
    to `target_commit`), the tag it makes, and the data loss it was allowed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: NotAnOption
    ref: NotAnOption
    target_commit: Commit
    commit: Commit
    head: Commit
    tag: Annotated[str, Field(pattern=r"^reconciler/[A-Za-z0-9_.-]+/[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")]
    allow_data_loss: tuple[NotAnOption, ...] = ()


def write(path: Path, intent: Intent) -> None:
    files.write(path, json.dumps(intent.model_dump(mode="json"), indent=2))


def read(path: Path, repo: Path, environment: str) -> Intent:
    """The intent recorded at `path` for ENV; UnreadableIntent when it is not one that
    `rollback ENV --execute` in this repository wrote."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise _unreadable(path, environment, f"line {error.lineno} column {error.colno}: not JSON: {error.msg}")
    except (OSError, UnicodeDecodeError) as error:
        raise _unreadable(path, environment, f"cannot be read: {error}")
    try:
        intent = Intent.model_validate(data)
    except ValidationError as error:
        raise _unreadable(path, environment, "; ".join(_problem(p) for p in error.errors()))
    if intent.environment != environment:
        raise _unreadable(path, environment, f"environment: it names {intent.environment}, not {environment}")
    for name in ("head", "commit", "target_commit"):
        try:
            resolve_commit(repo, getattr(intent, name))
        except GitError:
            raise _unreadable(path, environment, f"{name}: {getattr(intent, name)} is not a commit of this "
                                                 "repository") from None
    if [p.hexsha for p in resolve_commit(repo, intent.commit).parents] != [intent.head]:
        raise _unreadable(path, environment, f"commit: {intent.commit[:12]} is not a rollback commit made on "
                                             f"head {intent.head[:12]}")
    return intent


def _problem(problem: dict) -> str:
    where = ".".join(str(part) for part in problem["loc"]) or "the record"
    if problem["type"] == "string_pattern_mismatch":
        return f"{where}: {problem['input']!r} does not match {problem['ctx']['pattern']}"
    return f"{where}: {problem['msg'].lower()}"


def _unreadable(path: Path, environment: str, what: str) -> UnreadableIntent:
    return UnreadableIntent(
        f"{path}: not a rollback intent this reconciler wrote: {what}\n"
        f"  nothing can be finished from it; `reconciler rollback {environment} --abandon` removes it and says "
        "what it cannot know (or delete the file); `reconciler plan` then shows how each tenant differs from HEAD")
