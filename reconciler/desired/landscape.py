"""The validated landscape: one environment's desired state, valid and resolved (`Landscape`).

Owns the type alone, so that what only names it (git history, promotion, rendering) imports no
validation: what its fields hold is `validate`'s to find. Never validates, reads files or parses SQL.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import graph as graphs
from ..check_types import DataCheck
from ..model import Connection, DataFlow, Environment, MaterializedTable, ObjectKey, Table, View

if TYPE_CHECKING:
    import networkx as nx

    from .bind import Columns
    from .documents import Document
    from .source import EnvironmentSource
    from .sql import SqlFacts


@dataclass(frozen=True)
class Landscape:
    """One environment's desired state, valid and resolved."""

    source: EnvironmentSource
    environment: Environment
    objects: dict[ObjectKey, Table | View | MaterializedTable | DataFlow | Connection]
    documents: dict[ObjectKey, Document] = field(repr=False)
    facts: dict[ObjectKey, SqlFacts] = field(repr=False)
    dependencies: dict[ObjectKey, tuple[ObjectKey, ...]] = field(repr=False)
    graph: nx.DiGraph = field(repr=False)
    columns: dict[ObjectKey, Columns] = field(default_factory=dict, repr=False)   # tables' and views'
    reads: dict[ObjectKey, dict[ObjectKey, tuple[str, ...]]] = field(default_factory=dict, repr=False)
    # ^ the columns of each object a view or data flow refers to (lower-case names)
    derived: dict[ObjectKey, dict[str, tuple[tuple[ObjectKey, str], ...]]] = field(default_factory=dict, repr=False)
    # ^ each view column (lower case): the columns of the objects it reads that its values come from
    stars: dict[ObjectKey, tuple[ObjectKey, ...]] = field(default_factory=dict, repr=False)
    # ^ what a view gives on whole through `*`: a column added there is a column added to the view
    checks: dict[ObjectKey, tuple[DataCheck, ...]] = field(default_factory=dict, repr=False)
    # ^ each table's and view's data checks, as queries in the landscape's dialect
    key: str | None = None   # everything validating it read, and the code that did (`key.desired_key`)
    sensitive: dict[ObjectKey, set[str]] = field(default_factory=dict, repr=False)
    # ^ each table's and view's columns no sample may show, and no engine message may quote
    #   (`validation.sensitive`)
    unnamed: frozenset[ObjectKey] = frozenset()   # views giving columns each engine names itself (not in `columns`)

    @property
    def sensitive_names(self) -> set[str]:
        """The names an engine's message about a statement must not be shown whole for: sensitive columns
        and the objects that hold them (`disclosure.sensitive`)."""
        return {name for columns in self.sensitive.values() for name in columns} | {
            key.name for key, columns in self.sensitive.items() if columns}

    @property
    def name(self) -> str:
        return self.environment.name

    @functools.cached_property
    def lineage(self) -> nx.DiGraph:
        """The graph in the direction data flows: what an object reads points at it, and a data flow
        points at the table it writes (in `graph` that table is one of its dependencies)."""
        return graphs.lineage(self.graph, {key: ObjectKey.parse(obj.target) for key, obj in self.objects.items()
                                           if isinstance(obj, DataFlow)})
