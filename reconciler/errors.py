"""The one exception tree of the reconciler.

Every failure a user can meet is a `ReconcilerError` subclass with a message that names
its subject and the exit code it ends the command with. Driver and git exceptions are
translated where they enter (the tenant adapters, `source`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate a mistyped `word` most likely meant: difflib's nearest (ratio 0.6 or more), else the
    nearest ignoring case (`Orders` for `orders`); None when nothing is near."""
    candidates = list(candidates)
    match = difflib.get_close_matches(word, candidates, n=1)
    if match:
        return match[0]
    lowered = {candidate.lower(): candidate for candidate in candidates}
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1)
    return lowered[match[0]] if match else None


def did_you_mean(word: str, candidates: Iterable[str], shown: Mapping[str, object] | None = None) -> str:
    """` (did you mean orders?)`, or nothing: the one spelling of a suggestion in every message. `shown`:
    what to name instead of a candidate (an object's qualified key for its bare name)."""
    match = closest(word, candidates)
    if match is not None and shown is not None:
        match = shown.get(match)
    return f" (did you mean {match}?)" if match else ""


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in the desired state, pointing at file:line:column."""

    path: str
    line: int
    column: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: error[{self.code}]: {self.message}"

    def to_json(self) -> dict:
        return {"file": self.path, "line": self.line, "column": self.column,
                "code": self.code, "message": self.message}


class ReconcilerError(Exception):
    """Base of every error the reconciler reports to a user; `exit_code` is what the CLI exits with."""

    exit_code = 1


class InvalidInput(ReconcilerError):
    """The desired state (or an argument naming it) is invalid; nothing was executed."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        count = len(self.diagnostics)
        summary = f"{count} problem{'s' if count != 1 else ''} found"
        super().__init__("\n".join([*map(str, self.diagnostics), summary]))


class UnknownEnvironment(ReconcilerError):
    """The named environment does not exist at the ref being read: a usage error, as an unknown tenant is."""

    exit_code = 64


class GitError(ReconcilerError):
    """A ref does not resolve, or the repository cannot be read."""


class TenantError(ReconcilerError):
    """A tenant cannot be reached or introspected."""


class ApplyFailed(ReconcilerError):
    """A statement failed; the tenant was rolled back to where it was."""


class GuardRefused(ReconcilerError):
    """A policy refused the plan (data loss, conflict with an unmanaged object)."""

    exit_code = 3


class ChecksFailed(ReconcilerError):
    """A data check of severity error found offending rows; the apply or run did not commit."""

    exit_code = 3


class PackageError(ReconcilerError):
    """A transport package that is not one, or was altered after it was made."""


class TenantLocked(ReconcilerError):
    """Another run holds the tenant."""

    exit_code = 4


class LockTakenOver(TenantLocked):
    """This run's lease ran out and another run took the tenant over: it stops before its next
    statement and puts nothing back (the new holder recovers it from its journal)."""


class StalePlan(ReconcilerError):
    """A saved plan no longer matches the environment, tenant, desired or live state."""

    exit_code = 5


class JournalRefused(ReconcilerError):
    """A dead run's journal that is not obeyed: edited since its run wrote it, written by an earlier
    release (which stored statements in it), or naming what its run could not have touched. Nothing was
    put back; the run stays recorded as running (exit 1: the catalog is not as the reconciler wrote it,
    which no retry mends and a person must look at)."""


class PartlyDone(ReconcilerError):
    """A run on an engine that commits statement by statement could not be put back without destroying
    the last copy of some rows: the tenant is left partly changed, every table kept, and the message says
    what is where."""

    exit_code = 6


class UsageProblem(ReconcilerError):
    """An argument names something that does not exist (a tenant, a repository)."""

    exit_code = 64


class TenantsStopped(ReconcilerError):
    """An operation over every tenant of an environment (a rollback, abandoning one) stopped because
    some tenants failed; it ends with their errors' code (`first_code`)."""

    def __init__(self, message: str, codes: Iterable[int]):
        super().__init__(message)
        self.exit_code = first_code(codes)


def first_code(codes: Iterable[int]) -> int:
    """The exit code of a command several tenants' errors ended: a failure (1) speaks first, then the
    lowest of the others (refused 3, locked 4, stale 5, partly done 6), as each error's class gives it."""
    found = set(codes)
    return ReconcilerError.exit_code if ReconcilerError.exit_code in found else min(found)
