"""The landscape site's lineage: the whole picture of the first environment, and around each object
the objects within N levels either way (`focus`), drawn in the direction data flows: the whole picture
by `drawing` (grandalf's layered layout, on the server), each object's wider neighbourhood by the page
itself (`drawing.picture` as data, laid out by dagre in site_assets/lineage.js); every box a link to
its object's page, with the column lineage between them.

Owns the lineage pages. Takes a finished lineage graph and its columns; never reads git or a tenant.
"""

from __future__ import annotations

import json

import networkx as nx

from ..model import ObjectKey
from . import drawing
from .site_html import h, lineage_href, link, object_href, page, table


def focus(lineage: nx.DiGraph, key: ObjectKey, levels: int) -> nx.DiGraph:
    """`key` and what is at most `levels` edges upstream or downstream of it."""
    upstream = nx.single_source_shortest_path_length(lineage.reverse(copy=False), key, cutoff=levels)
    downstream = nx.single_source_shortest_path_length(lineage, key, cutoff=levels)
    return lineage.subgraph({*upstream, *downstream})


def lineage_page(landscape, generated: str) -> str:
    lineage = landscape.lineage
    collapsed = lineage.number_of_nodes() > drawing.COLLAPSE_AT
    note = (f"<p>{lineage.number_of_nodes()} objects: drawn one box per schema. Each object's page draws "
            "what is around it, and links to its lineage at ±2 and ±3 levels.</p>" if collapsed else
            "<p>Every box links to its object's page; each object's page draws a level either way and links to its lineage "
            "at ±2 and ±3 levels.</p>")
    body = (f"<p>Environment {h(landscape.name)}; arrows point the way data flows.</p>{note}"
            f'<div class="graph natural" tabindex="0" aria-label="lineage picture">'
            f"{drawing.svg(lineage, links={k: object_href(k, 0) for k in lineage})}</div>")
    return page("Lineage", body, 0, generated)


def focus_page(landscape, key: ObjectKey, levels: int, generated: str) -> str:
    """The objects within `levels` of `key`, and the column lineage among them."""
    near = focus(landscape.lineage, key, levels)
    others = " ".join([link(object_href(key) + "#lineage", "±1"),
                       *(link(lineage_href(key, n), f"±{n}") for n in (2, 3) if n != levels)])
    body = (f"<p>Environment {h(landscape.name)}: {h(near.number_of_nodes())} objects within {levels} "
            f"level{'s' * (levels > 1)} of {link(object_href(key), key)}, arrows the way data flows. "
            f"Also: {others}.</p>"
            f'<div class="graph" id="picture" tabindex="0" aria-label="lineage picture"></div>'
            f"{_in_browser(drawing.picture(near, {key: 'focus'}, {k: object_href(k) for k in near}))}"
            f'<section id="columns"><h2>Column lineage</h2>{_column_lineage(landscape, set(near))}</section>')
    return page(f"Lineage of {key} ±{levels}", body, 1, generated)


def _in_browser(picture: dict) -> str:
    """The picture as data for site_assets/lineage.js, which lays it out with dagre when the page opens:
    a wider neighbourhood costs the site one breadth-first walk instead of a layout. `<` is escaped so
    that no name can end the script element."""
    data = json.dumps(picture, separators=(",", ":")).replace("<", "\\u003c")
    return (f'<script type="application/json" class="picture" data-into="picture">{data}</script>'
            '<script src="../assets/dagre.min.js"></script><script src="../assets/lineage.js"></script>')


def _column_lineage(landscape, shown: set[ObjectKey]) -> str:
    """Each column of a shown view, and the columns of shown objects its values come from."""
    rows = []
    for view in sorted(shown):
        for column, sources in landscape.derived.get(view, {}).items():
            inside = [(source, name) for source, name in sources if source in shown]
            if inside:
                rows.append([link(object_href(view), f"{view}.{column}"),
                             ", ".join(link(object_href(source), f"{source}.{name}") for source, name in inside)])
    return table(["column", "comes from"], rows, "No column of these objects comes from another shown here.")
