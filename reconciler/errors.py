"""The one exception tree of the reconciler.

Every failure a user can meet is a `ReconcilerError` subclass with a message that names
its subject. Driver and git exceptions are translated where they enter (the tenant
adapters, `source`); the CLI maps these classes to exit codes in one table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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
    """Base of every error the reconciler reports to a user."""


class InvalidInput(ReconcilerError):
    """The desired state (or an argument naming it) is invalid; nothing was executed."""

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = sorted(diagnostics)
        count = len(self.diagnostics)
        summary = f"{count} problem{'s' if count != 1 else ''} found"
        super().__init__("\n".join([*map(str, self.diagnostics), summary]))


class UnknownEnvironment(ReconcilerError):
    """The named environment does not exist at the ref being read."""


class GitError(ReconcilerError):
    """A ref does not resolve, or the repository cannot be read."""


class TenantError(ReconcilerError):
    """A tenant cannot be reached or introspected."""


class ApplyFailed(ReconcilerError):
    """A statement failed; the tenant was rolled back to where it was."""


class GuardRefused(ReconcilerError):
    """A policy refused the plan (data loss, conflict with an unmanaged object)."""


class PackageError(ReconcilerError):
    """A transport package that is not one, or was altered after it was made."""


class TenantLocked(ReconcilerError):
    """Another run holds the tenant."""


class StalePlan(ReconcilerError):
    """A saved plan no longer matches the environment, tenant, desired or live state."""
