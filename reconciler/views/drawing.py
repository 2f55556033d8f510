"""The lineage graph drawn as SVG (and an HTML page around it) by the project itself.

Owns the picture: a layered (Sugiyama) layout by grandalf, left to right in the direction data
flows, with every edge that spans layers routed through slots of its own so that no edge passes
through a box it does not connect; boxes as wide as the longest label (never cut) and a canvas
holding every box and every edge; links from boxes; the colours of kinds and change states and a
legend; and collapsing to one box per schema beyond a size where single objects stop being readable;
and the same picture as data (`picture`), for a page of the site to lay out in the browser
(site_assets/lineage.js: dagre's layered layout, routed the same way). Takes a finished graph;
computes nothing about the landscape; needs no network to draw or to view.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

import networkx as nx
from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout
from grandalf.routing import EdgeViewer

from ..model import ObjectKey

EVERY_LANDSCAPE = ("Table", "View", "DataFlow", "Connection")   # kinds the legend always explains
KIND_COLOURS = {"Table": "#dbe4ff", "View": "#d3f9d8", "MaterializedTable": "#c5f6fa", "DataFlow": "#fff3bf",
                "Connection": "#f3d9fa"}
STATE_COLOURS = {"create": "#2b8a3e", "update": "#e67700", "replace": "#d9480f", "delete": "#c92a2a",
                 "modified": "#e67700", "focus": "#1864ab"}
COLLAPSE_AT = 300          # more objects than this are drawn one box per schema
WIDTH, HEIGHT, GAP_X, GAP_Y, MARGIN, LEGEND = 230, 34, 90, 16, 20, 40
CHARACTER, PADDING = 7.5, 16   # wider than any 12px sans-serif character but a few: boxes fit their labels


def svg(graph: nx.DiGraph, states: Mapping[ObjectKey, str] | None = None,
        links: Mapping[ObjectKey, str] | None = None) -> str:
    """An SVG of the graph; `states` (key -> create/update/.../modified, or focus: the object a picture
    is drawn around) outlines changed objects; `links` (key -> address) makes a box a link."""
    states = states or {}
    if graph.number_of_nodes() > COLLAPSE_AT:
        return _svg(*_by_schema(graph), {})
    labels = {key: (str(key), graph.nodes[key].get("kind", "")) for key in graph}
    return _svg(graph, labels, {key: states[key] for key in graph if key in states}, links or {})


# the measures and colours every picture drawn in the browser carries (site_assets/lineage.js)
_STYLE = {"height": HEIGHT, "gap": [GAP_X, GAP_Y], "margin": MARGIN, "legend": LEGEND, "kinds": KIND_COLOURS,
          "states": STATE_COLOURS, "always": EVERY_LANDSCAPE}


def picture(graph: nx.DiGraph, nodes, states: Mapping[ObjectKey, str] | None = None,
            links: Mapping[ObjectKey, str] | None = None) -> dict:
    """What `svg` would draw of the part of `graph` made of `nodes`, for site_assets/lineage.js to lay
    out in the browser (dagre's layered layout, routed as `_route` routes): the boxes (id, label, kind,
    state, link) and edges, collapsed to one box per schema as `svg` collapses, and the measures and
    colours of the picture. Reads the graph's adjacency (a subgraph view costs a filter each step)."""
    states, links = states or {}, links or {}
    if len(nodes) > COLLAPSE_AT:
        graph, labels = _by_schema(graph.subgraph(nodes))
        nodes, states, links = set(graph), {}, {}
    else:
        labels = {key: (str(key), graph.nodes[key].get("kind", "")) for key in nodes}
    return {"boxes": [[str(node), *labels[node], states.get(node, ""), links.get(node, "")] for node in sorted(nodes)],
            "edges": sorted([str(a), str(b)] for a in nodes for b in graph.succ[a] if b in nodes),
            "width": box_width(text for text, _ in labels.values()), **_STYLE}


def shared(graph: nx.DiGraph, links: Mapping[ObjectKey, str]) -> dict:
    """The whole graph as data for site_assets/lineage.js to draw any object's neighbourhood from
    (`picture` for the part within a page's levels, made in the browser, collapsed one box a schema
    beyond COLLAPSE_AT as `picture` collapses): boxes (id, which is its label, kind, link, its schema's
    index), edges as pairs of box indices, the schemas, and the measures and colours `picture` carries.
    One per landscape, so that a page holds only which object and how many levels."""
    nodes = sorted(graph)
    index = box_index(graph)
    schemas = sorted({node.schema for node in nodes})
    schema = {name: i for i, name in enumerate(schemas)}
    return {"boxes": [[str(node), graph.nodes[node].get("kind", ""), links.get(node, ""), schema[node.schema]]
                      for node in nodes],
            "edges": [[index[a], index[b]] for a in nodes for b in sorted(graph.succ[a])], "schemas": schemas,
            "collapse": COLLAPSE_AT, "width": WIDTH, "character": CHARACTER, "padding": PADDING, **_STYLE}


def box_index(graph: nx.DiGraph) -> dict[ObjectKey, int]:
    """Each node's box in `shared` data: what other files of a landscape (its column lineage) name it by."""
    return {node: i for i, node in enumerate(sorted(graph))}


def html(graph: nx.DiGraph, title: str, states: Mapping[ObjectKey, str] | None = None) -> str:
    legend = "".join(f'<span class="kind" style="background:{colour}">{kind}</span>'
                     for kind, colour in KIND_COLOURS.items())
    legend += "".join(f'<span class="state" style="border-color:{colour}">{state}</span>'
                      for state, colour in STATE_COLOURS.items() if state not in ("modified", "focus"))
    return PAGE.format(title=escape(title), legend=legend, body=svg(graph, states))


class _Box:
    """grandalf's view of a vertex. The layout runs top-down; drawn left to right, so a box's
    height in the layout is its width on the page."""

    def __init__(self, width: float):
        self.w, self.h = HEIGHT, width


def box_width(labels) -> float:
    """The width of every box of a picture: WIDTH, or wider where a label needs it (never cut)."""
    return max([WIDTH, *(len(text) * CHARACTER + PADDING for text in labels)])


def layout(graph: nx.DiGraph, width: float = WIDTH) -> tuple[dict, dict]:
    """(centre of each node, points of each edge from its source's border to its target's), left to
    right, boxes `width` wide, every coordinate at least MARGIN; connected parts of the graph stacked
    one below another."""
    vertices = {node: Vertex(node) for node in sorted(graph)}
    edges = []
    for a, b in sorted(graph.edges):
        edge = Edge(vertices[a], vertices[b])
        edge.view = EdgeViewer()
        edges.append(edge)
    for vertex in vertices.values():
        vertex.view = _Box(width)
    centres: dict = {}
    routes: dict = {}
    offset = float(MARGIN + LEGEND)
    for part in Graph(list(vertices.values()), edges).C:
        sugiyama = SugiyamaLayout(part)
        sugiyama.xspace, sugiyama.yspace = GAP_Y, GAP_X
        sugiyama.route_edge = lambda edge, points: None   # centres of the ends and of the slots between
        sugiyama.init_all()
        sugiyama.draw(3)
        sugiyama.draw_edges()
        # the layout's (x, y), y growing with the layer, becomes the page's (y, x)
        xs = [v.view.xy[1] for v in part.sV]
        ys = [v.view.xy[0] for v in part.sV]
        shift_x, shift_y = MARGIN + width / 2 - min(xs), offset + HEIGHT / 2 - min(ys)
        for vertex in part.sV:
            centres[vertex.data] = (vertex.view.xy[1] + shift_x, vertex.view.xy[0] + shift_y)
        for edge in part.sE:
            routes[edge.v[0].data, edge.v[1].data] = _route([(y + shift_x, x + shift_y) for x, y in edge.view._pts],
                                                            width)
        offset = max(y for _, y in centres.values()) + HEIGHT / 2 + GAP_Y * 2
    return centres, routes


def _route(centres: list[tuple[float, float]], width: float) -> list[tuple[float, float]]:
    """An edge through the centres of its ends and of the slots the layout kept for it in the layers
    between: it leaves its source's side facing the target, crosses every layer between horizontally
    through its own slot (as wide as a box, so clear of every box), and meets the target's facing
    side. Between layers there are no boxes; inside a layer, only its slot."""
    (x0, y0), (x1, y1) = centres[0], centres[-1]
    step = width / 2 if x1 > x0 else -width / 2    # right to left for an edge a cycle turned around
    points = [(x0 + step, y0)]
    for x, y in centres[1:-1]:
        points += [(x - step, y), (x + step, y)]
    return [*points, (x1 - step, y1)]


def _svg(graph: nx.DiGraph, labels: Mapping, states: Mapping, links: Mapping | None = None) -> str:
    width = box_width(text for text, _ in labels.values())
    centres, routes = layout(graph, width) if graph.number_of_nodes() else ({}, {})
    # the canvas holds every box and every edge: an edge routed around the boxes may pass beyond them
    bends = [point for points in routes.values() for point in points]
    right = max([*(x + width / 2 for x, _ in centres.values()), *(x for x, _ in bends)], default=width) + MARGIN
    height = max([*(y + HEIGHT / 2 for _, y in centres.values()), *(y for _, y in bends)],
                 default=HEIGHT + LEGEND) + MARGIN
    right = max(right, 620)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{right:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {right:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
           'orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#868e96"/></marker></defs>',
           _legend({kind for _, kind in labels.values()})]
    for (a, b), points in sorted(routes.items()):
        path = " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
        out.append(f'<path class="edge" data-from="{escape(str(a))}" data-to="{escape(str(b))}" d="M{path}" '
                   'fill="none" stroke="#adb5bd" marker-end="url(#arrow)"/>')
    for node in sorted(centres):
        x, y = centres[node][0] - width / 2, centres[node][1] - HEIGHT / 2
        text, kind = labels[node]
        state = states.get(node)
        stroke = STATE_COLOURS.get(state, "#868e96")
        state_attribute = f' data-state="{state}"' if state else ""
        box = (f'<g class="node" data-id="{escape(str(node))}" data-kind="{escape(kind)}"{state_attribute}>'
               f'<title>{escape(kind)} {escape(text)}{f" ({state})" if state else ""}</title>'
               f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{HEIGHT}" rx="5" '
               f'fill="{KIND_COLOURS.get(kind, "#f1f3f5")}" stroke="{stroke}" stroke-width="{3 if state else 1}"/>'
               f'<text x="{x + 8:.1f}" y="{y + HEIGHT / 2 + 4:.1f}">{escape(text)}</text></g>')
        href = (links or {}).get(node)
        out.append(f'<a href="{escape(href)}">{box}</a>' if href else box)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend(shown: set[str]) -> str:
    """The kinds' colours (the four every landscape has, and any other the picture shows), and which way
    the arrows point."""
    parts, x = ['<g class="legend">'], MARGIN
    for kind, colour in KIND_COLOURS.items():
        if kind not in EVERY_LANDSCAPE and kind not in shown:
            continue
        parts.append(f'<rect x="{x}" y="{MARGIN - 8}" width="14" height="14" rx="3" fill="{colour}" '
                     f'stroke="#868e96"/><text x="{x + 18}" y="{MARGIN + 3}">{kind}</text>')
        x += 28 + 8 * len(kind)
    parts.append(f'<path d="M{x},{MARGIN - 1} L{x + 30},{MARGIN - 1}" stroke="#adb5bd" '
                 f'marker-end="url(#arrow)"/><text x="{x + 36}" y="{MARGIN + 3}">data flows this way</text></g>')
    return "".join(parts)


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
