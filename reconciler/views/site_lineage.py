"""The landscape site's lineage: the whole picture of the first environment, and around each object
the objects within N levels either way (`focus`), drawn in the direction data flows: the whole picture
by `drawing` (grandalf's layered layout, on the server), each object's neighbourhood by the page
itself (`drawing.picture` as data, laid out by dagre in site_assets/lineage.js); every box a link to
its object's page, with the column lineage between them.

Owns the lineage pages. Takes a finished lineage graph and its columns; never reads git or a tenant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import networkx as nx

from ..model import ObjectKey
from . import drawing
from .site_html import drawn_around, drawn_in_browser, h, lineage_href, link, object_href, page


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
            + drawn_near(landscape, key, near, levels)
            + f'<section id="columns"><h2>Column lineage</h2>{_column_lineage(cells, near)}</section>')
    return page(f"Lineage of {key} ±{levels}", body, 1, generated)


def drawn_near(landscape, key: ObjectKey, near: set[ObjectKey], levels: int) -> str:
    """The picture of `near` (what is within `levels` of `key`) on a page a folder below the root: made
    by the page from the landscape's graph file, or, collapsed one box per schema, held by the page."""
    if len(near) > drawing.COLLAPSE_AT:
        return drawn_in_browser(drawing.picture(landscape.lineage, near, {key: "focus"},
                                                {k: object_href(k) for k in near}), "picture", 1)
    return drawn_around(landscape.name, key, levels, "picture", 1)


def shared_graph(landscape) -> str:
    """The landscape's graph file (`site_html.shared_graph_href`), which every picture drawn around one of
    its objects is made from; a script, not JSON, because a page opened from disk may not fetch a file."""
    data = json.dumps(drawing.shared(landscape.lineage, {k: object_href(k) for k in landscape.lineage}),
                      separators=(",", ":"))
    return (f"window.RECONCILER_LINEAGE = window.RECONCILER_LINEAGE || {{}};\n"
            f"window.RECONCILER_LINEAGE[{json.dumps(landscape.name)}] = {data};\n")


def column_cells(landscape) -> dict[ObjectKey, tuple[str, frozenset, list[tuple[str, list[tuple[ObjectKey, str]]]]]]:
    """Each view's column lineage as page cells, made once per site: (its rows when every object it reads
    is shown, the objects it reads, [(its column, [(source object, its column linked)])]) for each column
    whose values come from another object's. The view is named once, over its columns."""
    cells = {}
    for view, outputs in landscape.derived.items():
        columns = [(h(column), [(source, link(object_href(source), f"{source}.{name}")) for source, name in sources])
                   for column, sources in outputs.items()]
        cells[view] = (_rows(view, [(column, [cell for _, cell in sources]) for column, sources in columns]),
                       frozenset(source for _, sources in columns for source, _ in sources), columns)
    return cells


def _rows(view: ObjectKey, columns: list[tuple[str, list[str]]]) -> str:
    kept = [(column, sources) for column, sources in columns if sources]
    if not kept:
        return ""
    head = f'<th scope="rowgroup" rowspan="{len(kept)}">{link(object_href(view), view)}</th>'
    return "".join(f"<tr>{head if i == 0 else ''}<td>{column}</td><td>{', '.join(sources)}</td></tr>"
                   for i, (column, sources) in enumerate(kept))


def _column_lineage(cells: Mapping, shown: set[ObjectKey]) -> str:
    """Each column of a shown view, and the columns of shown objects its values come from."""
    rows = []
    for view in sorted(shown & cells.keys()):
        whole, reads, columns = cells[view]
        rows.append(whole if reads <= shown else _rows(view, [(column, [cell for source, cell in sources if source in shown])
                                                               for column, sources in columns]))
    body = "".join(rows)
    if not body:
        return '<p class="empty">No column of these objects comes from another shown here.</p>'
    return ('<table><thead><tr><th scope="col">view</th><th scope="col">column</th><th scope="col">comes from</th>'
            f"</tr></thead><tbody>{body}</tbody></table>")
