"""The landscape site's lineage: the whole picture of the first environment, and around each object
the objects within N levels either way (`focus`), drawn in the direction data flows: the whole picture
by `drawing` (grandalf's layered layout, on the server), each object's neighbourhood by the page
itself (`drawing.picture` as data, laid out by dagre in site_assets/lineage.js); every box a link to
its object's page, with the column lineage between them.

Owns the lineage pages. Takes a finished lineage graph and its columns; never reads git or a tenant.
"""

from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from ..model import ObjectKey
from . import drawing
from .site_html import drawn_in_browser, h, lineage_href, link, object_href, page, table


def focus(lineage: nx.DiGraph, key: ObjectKey, levels: int) -> set[ObjectKey]:
    """`key` and what is at most `levels` edges upstream or downstream of it."""
    upstream = nx.single_source_shortest_path_length(lineage.reverse(copy=False), key, cutoff=levels)
    downstream = nx.single_source_shortest_path_length(lineage, key, cutoff=levels)
    return {*upstream, *downstream}


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


def focus_page(landscape, key: ObjectKey, levels: int, generated: str, cells: Mapping | None = None) -> str:
    """The objects within `levels` of `key`, and the column lineage among them (`cells`: the landscape's
    `column_cells`, made once for every page)."""
    near = focus(landscape.lineage, key, levels)
    cells = column_cells(landscape) if cells is None else cells
    others = " ".join([link(object_href(key) + "#lineage", "±1"),
                       *(link(lineage_href(key, n), f"±{n}") for n in (2, 3) if n != levels)])
    body = (f"<p>Environment {h(landscape.name)}: {h(len(near))} objects within {levels} "
            f"level{'s' * (levels > 1)} of {link(object_href(key), key)}, arrows the way data flows. "
            f"Also: {others}.</p>"
            f'<div class="graph" id="picture" tabindex="0" aria-label="lineage picture"></div>'
            + drawn_in_browser(drawing.picture(landscape.lineage, near, {key: "focus"}, {k: object_href(k) for k in near}), "picture", 1)
            + f'<section id="columns"><h2>Column lineage</h2>{_column_lineage(cells, near)}</section>')
    return page(f"Lineage of {key} ±{levels}", body, 1, generated)


def column_cells(landscape) -> dict[ObjectKey, list[tuple[str, list[tuple[ObjectKey, str]]]]]:
    """Each view's column lineage as page cells, made once per site: (the view's column linked, [(source
    object, its column linked)]) for each column whose values come from another object's."""
    return {view: [(link(object_href(view), f"{view}.{column}"),
                    [(source, link(object_href(source), f"{source}.{name}")) for source, name in sources])
                   for column, sources in outputs.items()] for view, outputs in landscape.derived.items()}


def _column_lineage(cells: Mapping, shown: set[ObjectKey]) -> str:
    """Each column of a shown view, and the columns of shown objects its values come from."""
    rows = []
    for view in sorted(shown & cells.keys()):
        for column, sources in cells[view]:
            inside = [source_link for source, source_link in sources if source in shown]
            if inside:
                rows.append([column, ", ".join(inside)])
    return table(["column", "comes from"], rows, "No column of these objects comes from another shown here.")
