"""The dependency graph as text for machines and diagrams: JSON, Mermaid and DOT.

Owns how a graph's nodes (objects, or columns) and edges are written in each format. Takes a finished
graph (`graph.py` builds it) and returns a string; never reads a file or a tenant.
"""

from __future__ import annotations

import json

import networkx as nx

from ..model import ObjectKey


def graph_json(graph: nx.DiGraph) -> str:
    nodes = [{"id": str(k), "kind": graph.nodes[k]["kind"]} for k in sorted(graph.nodes)]
    edges = [{"from": str(a), "to": str(b)} for a, b in sorted(graph.edges)]
    return json.dumps({"nodes": nodes, "edges": edges}, indent=2) + "\n"


def node_id(key: ObjectKey) -> str:
    return f"{key.schema}__{key.name}".replace(".", "__")   # a column node's name holds its column


def graph_mermaid(graph: nx.DiGraph) -> str:
    shapes = {"Table": ("[(", ")]"), "View": ("[", "]"), "MaterializedTable": ("[(", ")]"), "DataFlow": ("[[", "]]"),
              "Connection": ("{{", "}}")}
    lines = ["flowchart LR"]
    for key in sorted(graph.nodes):
        left, right = shapes.get(graph.nodes[key]["kind"], ("[", "]"))
        lines.append(f'  {node_id(key)}{left}"{key}"{right}')
    lines += [f"  {node_id(a)} --> {node_id(b)}" for a, b in sorted(graph.edges)]
    return "\n".join(lines) + "\n"


def graph_dot(graph: nx.DiGraph) -> str:
    shapes = {"Table": "cylinder", "View": "box", "MaterializedTable": "cylinder", "DataFlow": "cds",
              "Connection": "hexagon"}
    lines = ["digraph landscape {", "  rankdir=LR;"]
    for key in sorted(graph.nodes):
        lines.append(f'  "{key}" [shape={shapes.get(graph.nodes[key]["kind"], "box")}];')
    lines += [f'  "{a}" -> "{b}";' for a, b in sorted(graph.edges)]
    return "\n".join(lines) + "\n}\n"
