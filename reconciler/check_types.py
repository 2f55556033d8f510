"""The vocabulary of data checks: a check as declared, a check ready to run, and what running one
found. Plain values that the desired state, the plan and the catalog name.

Owns only these types; never builds a query, never runs one (`checks` does both). Imports nothing
of ours but `model`: the modules above it name these types without importing the checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Check, ObjectKey


@dataclass(frozen=True)
class Declared:
    """One check as written, in normal form: what it checks and where it was written."""

    name: str                          # for people and the audit: not_null(id), unique(a, b), or its own
    check: Check
    columns: tuple[str, ...]           # the columns it is about (none for row_count, expression, sql)
    loc: tuple[str | int, ...]         # its place in the object's file
    under_column: bool = False         # written under a column (not at object level)

    @property
    def kind(self) -> str:
        return self.check.kind


@dataclass(frozen=True)
class DataCheck:
    """A check ready to run: its query returns the offending rows, showing the `shown` columns."""

    name: str
    kind: str
    severity: str
    query: str                        # in the landscape's dialect until rendered for an engine
    shown: tuple[str, ...]
    reads: tuple[ObjectKey, ...]      # besides its own object (a relationship's target, a sql check's inputs)
    line: int = 0                     # where it is declared in its object's file
    parameters: tuple[str, ...] = ()  # the `$$NAME`s its query holds until rendered

    def to_json(self) -> dict:
        return {"name": self.name, "severity": self.severity, "sql": self.query}


@dataclass(frozen=True)
class Result:
    object: str
    check: str
    kind: str
    severity: str
    offending: int
    sample: tuple[dict, ...] = ()

    @property
    def outcome(self) -> str:
        return "passed" if not self.offending else "failed" if self.severity == "error" else "warned"

    def describe(self) -> str:
        rows = f"{self.offending} offending row{'s' * (self.offending != 1)}"
        if self.kind == "row_count" and self.sample:
            counted = self.sample[0].get("row_count")
            rows = f"{counted} row{'s' * (counted != 1)}"
        return f"{self.object}: {self.check}: {self.outcome} ({rows})"
