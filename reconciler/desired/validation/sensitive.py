"""Which columns no sample may show: a table's `sensitive: true` columns and everything computed from,
filtered by or joined on one.

Owns the rule, over the graph in dependency order and what binding found each view reads and derives.
Never binds (`columns` did) and never hides anything itself: samples and engine messages are
`checks`' and `disclosure`'s.
"""

from __future__ import annotations

import networkx as nx

from ... import graph as graphs
from ...model import MaterializedTable, ObjectKey, Table, View
from .. import bind

CHECKED = ObjectKey("", "")   # a `sql:` check, asked the question views are asked (`reads_sensitive`)


def sensitive(objects, graph: nx.DiGraph, columns: dict[ObjectKey, bind.Columns], reads: dict,
              derived: dict, stars: dict) -> dict[ObjectKey, set[str]]:
    """The columns (lower case) no sample may show: a table's `sensitive: true` ones, every view column
    computed from one, and every column of a view that reads one anywhere (a filter or a join on a
    sensitive column tells about its values through the rows it lets through; so does a `*` over one)."""
    found: dict[ObjectKey, set[str]] = {}
    for key in graphs.order(graph):
        obj = objects[key]
        if isinstance(obj, Table):
            found[key] = {c.name.lower() for c in obj.columns if c.sensitive}
        elif isinstance(obj, (View, MaterializedTable)) and key in columns:
            sources = derived.get(key, {})
            if reads_sensitive(key, found, reads, stars):
                found[key] = {name.lower() for name in columns[key]}
            else:
                found[key] = {name.lower() for name in columns[key]
                              if name.lower() not in sources and any(found.get(d) for d in graph.predecessors(key))
                              or any(column.lower() in found.get(source, set())
                                     for source, column in sources.get(name.lower(), ()))}
            if isinstance(obj, MaterializedTable):
                found[key] |= {c.name.lower() for c in obj.columns if c.sensitive}
    return found


def reads_sensitive(key: ObjectKey, sensitive: dict[ObjectKey, set[str]], reads: dict, stars: dict) -> bool:
    """Whether what `key`'s SQL refers to, anywhere in it, holds a sensitive column."""
    return any({name.lower() for name in names} & sensitive.get(source, set())
               for source, names in reads.get(key, {}).items()) \
        or any(sensitive.get(source) for source in stars.get(key, ()))
