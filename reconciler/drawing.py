"""The dependency graph drawn as SVG (and an HTML page around it) by the project itself.

Owns the layout (columns are networkx topological generations, rows sorted by key), the
colours of kinds and change states, and collapsing to one box per schema beyond a size where
single objects stop being readable. Takes a finished graph; computes nothing about the
landscape; needs no network to draw or to view.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

import networkx as nx

from . import graph as graphs
from .model import ObjectKey

KIND_COLOURS = {"Table": "#dbe4ff", "View": "#d3f9d8", "DataFlow": "#fff3bf", "Connection": "#f3d9fa"}
STATE_COLOURS = {"create": "#2b8a3e", "update": "#e67700", "replace": "#d9480f", "delete": "#c92a2a",
                 "modified": "#e67700"}
COLLAPSE_AT = 300          # more objects than this are drawn one box per schema
WIDTH, HEIGHT, GAP_X, GAP_Y = 230, 34, 70, 14


def svg(graph: nx.DiGraph, states: Mapping[ObjectKey, str] | None = None) -> str:
    """An SVG of the graph; `states` (key -> create/update/.../modified) outlines changed objects."""
    states = states or {}
    if graph.number_of_nodes() > COLLAPSE_AT:
        return _svg(*_by_schema(graph), {})
    labels = {key: (str(key), graph.nodes[key].get("kind", "")) for key in graph}
    return _svg(graph, labels, {key: states[key] for key in graph if key in states})


def html(graph: nx.DiGraph, title: str, states: Mapping[ObjectKey, str] | None = None) -> str:
    legend = "".join(f'<span class="kind" style="background:{colour}">{kind}</span>'
                     for kind, colour in KIND_COLOURS.items())
    legend += "".join(f'<span class="state" style="border-color:{colour}">{state}</span>'
                      for state, colour in STATE_COLOURS.items() if state != "modified")
    return PAGE.format(title=escape(title), legend=legend, body=svg(graph, states))


def _svg(graph: nx.DiGraph, labels: Mapping, states: Mapping) -> str:
    columns = graphs.layers(graph) if graph.number_of_nodes() else []
    where = {}
    for x, column in enumerate(columns):
        for y, node in enumerate(column):
            where[node] = (20 + x * (WIDTH + GAP_X), 20 + y * (HEIGHT + GAP_Y))
    width = 40 + max(len(columns), 1) * (WIDTH + GAP_X)
    height = 40 + max((len(c) for c in columns), default=1) * (HEIGHT + GAP_Y)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
           'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#868e96"/></marker></defs>']
    for a, b in sorted(graph.edges):
        (x1, y1), (x2, y2) = where[a], where[b]
        mid = (x1 + WIDTH + x2) / 2
        out.append(f'<path class="edge" d="M{x1 + WIDTH},{y1 + HEIGHT / 2} C{mid},{y1 + HEIGHT / 2} '
                   f'{mid},{y2 + HEIGHT / 2} {x2},{y2 + HEIGHT / 2}" fill="none" stroke="#adb5bd" '
                   'marker-end="url(#arrow)"/>')
    for node in sorted(where):
        x, y = where[node]
        text, kind = labels[node]
        state = states.get(node)
        stroke = STATE_COLOURS.get(state, "#868e96")
        state_attribute = f' data-state="{state}"' if state else ""
        out.append(f'<g class="node" data-id="{escape(str(node))}" data-kind="{escape(kind)}"{state_attribute}>'
                   f'<title>{escape(kind)} {escape(text)}{f" ({state})" if state else ""}</title>'
                   f'<rect x="{x}" y="{y}" width="{WIDTH}" height="{HEIGHT}" rx="5" '
                   f'fill="{KIND_COLOURS.get(kind, "#f1f3f5")}" stroke="{stroke}" stroke-width="{3 if state else 1}"/>'
                   f'<text x="{x + 8}" y="{y + HEIGHT / 2 + 4}">{escape(_fit(text))}</text></g>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _by_schema(graph: nx.DiGraph) -> tuple[nx.DiGraph, dict]:
    """One node per schema, an edge where any object of one reads one of another."""
    collapsed = nx.DiGraph()
    counts: dict[str, int] = {}
    for key in graph:
        counts[key.schema] = counts.get(key.schema, 0) + 1
        collapsed.add_node(key.schema)
    for a, b in graph.edges:
        if a.schema != b.schema:
            collapsed.add_edge(a.schema, b.schema)
    if not nx.is_directed_acyclic_graph(collapsed):   # schemas that read each other: keep the nodes only
        collapsed.remove_edges_from(list(collapsed.edges))
    return collapsed, {schema: (f"{schema} ({count} objects)", "schema") for schema, count in counts.items()}


def _fit(text: str, most: int = 34) -> str:
    return text if len(text) <= most else text[:most - 1] + "…"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5rem; color: #212529; }}
.legend span {{ display: inline-block; padding: 2px 8px; margin: 0 6px 6px 0; border-radius: 4px;
  border: 2px solid #868e96; }}
.graph {{ overflow: auto; border: 1px solid #dee2e6; }}
</style></head>
<body><h1>{title}</h1><div class="legend">{legend}</div><div class="graph">
{body}</div></body></html>
"""
