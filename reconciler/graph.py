"""The dependency graph of an environment, held in networkx.

Owns edges (upstream -> downstream), cycles, the one deterministic order and dependents.
Order contract: topological, ties broken by kind rank (Connection, Table, View, DataFlow)
and then by key, so the same landscape always yields the same order whatever the input
order; deletes run in the reverse of it. Never knows about tenants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import networkx as nx

from .model import KIND_RANK, ObjectKey


def build(dependencies: Mapping[ObjectKey, Iterable[ObjectKey]],
          kinds: Mapping[ObjectKey, str]) -> nx.DiGraph:
    graph = nx.DiGraph()
    for key in dependencies:
        graph.add_node(key, kind=kinds[key])
    for key, upstream in dependencies.items():
        graph.add_edges_from((dep, key) for dep in upstream if dep in dependencies)
    return graph


def cycles(graph: nx.DiGraph) -> list[list[ObjectKey]]:
    """Each cycle once, as a closed path starting at its smallest key."""
    found = []
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (only,) = component
            if not graph.has_edge(only, only):
                continue
        start = min(component)
        cycle = nx.find_cycle(graph.subgraph(component), source=start)
        path = [edge[0] for edge in cycle] + [cycle[-1][1]]
        found.append(path)
    return sorted(found)


def order(graph: nx.DiGraph) -> list[ObjectKey]:
    """Every node in the one deterministic dependency order."""
    return list(nx.lexicographical_topological_sort(
        graph, key=lambda key: (KIND_RANK.get(graph.nodes[key].get("kind"), 9), key)))


def downstream(graph: nx.DiGraph, keys: Iterable[ObjectKey]) -> set[ObjectKey]:
    """Everything that reads any of `keys`, directly or through others: one walk from them all (a
    walk per key costs the square of the landscape when an apply creates all of it)."""
    readers = {reader for key in keys if key in graph for reader in graph.successors(key)}
    return {node for layer in nx.bfs_layers(graph, readers) for node in layer} if readers else set()


def select(graph: nx.DiGraph, expression: str, modified: Iterable[ObjectKey] = ()) -> nx.DiGraph:
    """The subgraph a selection names, in dbt's habit; space-separated terms are a union:
    `name`, `schema.name`, `+name` (and what it reads), `name+` (and what reads it), `+name+`,
    `kind:View`, `schema:sales`, `state:modified` / `state:modified+` (`modified`: keys whose
    definition differs from another ref or environment). Unknown names raise ValueError."""
    chosen: set[ObjectKey] = set()
    changed = set(modified)
    for term in expression.split():
        up, down = term.startswith("+"), term.endswith("+")
        core = term.strip("+")
        method, _, value = core.partition(":") if ":" in core else ("name", "", core)
        if method == "kind":
            roots = {k for k in graph if graph.nodes[k].get("kind", "").lower() == value.lower()}
        elif method == "schema":
            roots = {k for k in graph if k.schema.lower() == value.lower()}
        elif method == "state" and value == "modified":
            roots = changed & set(graph)
        elif method == "name":
            roots = {k for k in graph if value.lower() in (str(k).lower(), k.name.lower())}
            if not roots:
                raise ValueError(f"no object '{value}' in the graph")
        else:
            raise ValueError(f"unknown selector '{core}' (use name, kind:, schema:, state:modified)")
        chosen |= roots
        for root in roots:
            chosen |= nx.ancestors(graph, root) if up else set()
            chosen |= nx.descendants(graph, root) if down else set()
    return graph.subgraph(chosen).copy()


def lineage(graph: nx.DiGraph, writes: Mapping[ObjectKey, ObjectKey]) -> nx.DiGraph:
    """`graph` with each writer's edge from what it writes turned around (writer -> target):
    the direction data flows. It may hold cycles (a flow that enriches a table it reads)."""
    drawn = graph.copy()
    for writer, target in writes.items():
        found = next((node for node in graph.predecessors(writer) if node.folded() == target.folded()), None)
        if found is not None:
            drawn.remove_edge(found, writer)
            drawn.add_edge(writer, found)
    return drawn


def column_flow(reads: Iterable[tuple[ObjectKey, ObjectKey, Iterable[str]]],
                derived: Iterable[tuple[ObjectKey, str, Iterable[tuple[ObjectKey, str]]]]) -> nx.DiGraph:
    """Column lineage as one graph. A node `(object, column)` (lower case) for each column something
    reads points at each view column computed from it (renamed, aggregated or in an expression
    alike), and at `(reader, "")` for a view or data flow that refers to it without giving it on (a
    filter, a join key, an INSERT). `reads`: (reader, source, its columns read); `derived`: (view,
    column, the (source, column) pairs it is computed from)."""
    given: dict[tuple[ObjectKey, ObjectKey, str], list[str]] = {}
    for view, output, pairs in derived:
        for source, name in pairs:
            given.setdefault((view, source, name), []).append(output)
    graph = nx.DiGraph()
    for reader, source, names in reads:
        for name in names:
            for output in given.get((reader, source, name)) or [""]:
                graph.add_edge((source, name), (reader, output))
    return graph


def downstream_columns(flow: nx.DiGraph, key: ObjectKey, column: str) -> list[tuple[ObjectKey, str]]:
    """What reads a column, transitively, breadth first and in name order: (object, column) nodes."""
    start = (key, column.lower())
    if start not in flow:
        return []
    return [node for _, node in nx.bfs_edges(flow, start, sort_neighbors=sorted)]


def column_lineage(reads: Mapping[ObjectKey, Mapping[ObjectKey, Iterable[str]]],
                   derived: Mapping[ObjectKey, Mapping[str, Iterable[tuple[ObjectKey, str]]]],
                   columns: Mapping[ObjectKey, Iterable[str]], kinds: Mapping[ObjectKey, str],
                   selection: str) -> nx.DiGraph:
    """`OBJECT` or `OBJECT.COLUMN` (schema.name or a unique name) and, transitively, what reads its
    columns (`column_flow`), drawn with a node `schema.name.column` per column. ValueError for a
    selection that names nothing."""
    flow = column_flow(((reader, source, names) for reader, sources in reads.items()
                        for source, names in sources.items()),
                       ((view, output, pairs) for view, outputs in derived.items() for output, pairs in outputs.items()))
    exposed = {key.folded(): {name.lower(): name for name in names} for key, names in columns.items()}
    start, column = _column_selection(selection, kinds, exposed)

    def drawn(node: tuple[ObjectKey, str]) -> ObjectKey:
        key, name = node
        shown = exposed.get(key.folded(), {}).get(name, name)
        return ObjectKey(key.schema, f"{key.name}.{shown}") if name else key

    graph = nx.DiGraph()
    for name in [column] if column else exposed.get(start.folded(), {}).values():
        node = (start, name.lower())
        graph.add_node(drawn(node), kind="Column")
        reached = {node, *(nx.descendants(flow, node) if node in flow else ())}
        for source, target in flow.subgraph(reached).edges:
            graph.add_node(drawn(target), kind="Column" if target[1] else kinds.get(target[0], ""))
            graph.add_edge(drawn(source), drawn(target))
    return graph


def _column_selection(selection: str, kinds: Mapping[ObjectKey, str],
                      exposed: Mapping[ObjectKey, Mapping[str, str]]) -> tuple[ObjectKey, str | None]:
    parts = selection.split(".")
    for split in (2, 1):   # schema.name[.column] first, then name[.column]
        wanted, rest = ".".join(parts[:split]).lower(), parts[split:]
        found = [k for k in kinds if (str(k).lower() if split == 2 else k.name.lower()) == wanted]
        if len(found) == 1 and len(rest) <= 1:
            key = found[0]
            names = exposed.get(key.folded(), {})
            if rest and rest[0].lower() not in names:
                raise ValueError(f"{key} has no column {rest[0]}" + (f" (its columns: {', '.join(names.values())})"
                                                                      if names else ""))
            return key, names[rest[0].lower()] if rest else None
    raise ValueError(f"no object '{selection}' (write schema.name or schema.name.column)")
