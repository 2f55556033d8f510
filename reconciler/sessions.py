"""The vocabulary of talking to a tenant: a statement the engine refused (`StatementFailed`), an
endpoint that stopped answering (`EndpointLost`), and what the catalog asks of a session
(`CatalogSession`), named below the adapters so that the catalog, the data checks and the planner
need not import the adapter contract to name them.

Owns only these names; never opens a connection (an adapter's `Session` does, and satisfies
`CatalogSession` by its shape). Imports nothing of ours above it (`disclosure`, to show an engine's message).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from . import disclosure
from .errors import TenantError

NOT_ALLOWED = "42501"   # SQLSTATE insufficient_privilege


class StatementFailed(Exception):
    """Raised by a session: the statement, the message and, where the engine has one, its SQLSTATE
    (42501: not allowed). An engine's own message comes through `engine`, which hides what the data or
    the environment put in it (`disclosure`)."""

    def __init__(self, statement: str, message: str, sqlstate: str | None = None):
        super().__init__(message)
        self.statement = statement
        self.message = message
        self.sqlstate = sqlstate
        self.subject: str | None = None   # what it ran for, where the statement alone does not say

    @classmethod
    def engine(cls, statement: str, error: Exception, sqlstate: str | None = None) -> StatementFailed:
        """The engine refused `statement` with `error`: its first line, as it may be shown."""
        said = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return cls(statement, disclosure.shown(said, statement, sqlstate), sqlstate)


class EndpointLost(StatementFailed, TenantError):
    """The tenant's endpoint stopped answering mid-session (its server died, or the network to it): nothing
    more is run or read there, a compensation included; the caller says what is where (exit 1)."""


class TransactionalSession(Protocol):
    """A session whose writes can be rolled back together (`engines.contract.TransactionalSession`)."""

    def begin(self) -> None: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class CatalogSession(Protocol):
    """What the `_reconciler` catalog asks of a session (`engines.contract.Session` has it all)."""

    engine: str
    catalog_store: Any   # how the catalog keeps its rows: `engines.stores.IN_PLACE` or `APPEND_ONLY`

    def execute(self, statement: str, parameters: Sequence | None = None) -> list[tuple]: ...

    def executemany(self, statement: str, rows: Sequence[Sequence]) -> None: ...

    def insert(self, table: str, rows: Sequence[Sequence]) -> None: ...

    def table_columns(self, schema: str, table: str) -> list[str]: ...

    def engine_sql(self, keys: Sequence) -> dict: ...
