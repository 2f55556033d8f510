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
    """Everything that reads any of `keys`, directly or through others."""
    result: set[ObjectKey] = set()
    for key in keys:
        if key in graph:
            result |= nx.descendants(graph, key)
    return result
