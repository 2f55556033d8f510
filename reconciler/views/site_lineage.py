"""The landscape site's lineage: the whole picture of the first environment, and around any object
the objects within N levels either way, drawn in the direction data flows: the whole picture by
`drawing` (grandalf's layered layout, on the server), each object's neighbourhood by the page itself
(laid out by dagre in site_assets/lineage.js from the landscape's graph file, `drawing.shared`), with
the column lineage among them (from the landscape's column lineage file); every box a link to its
object's page.

Owns the lineage pages and the landscape's graph and column lineage files. Takes a finished lineage
graph and its columns; never reads git or a tenant.
"""

from __future__ import annotations

import json

from ..model import ObjectKey
from . import drawing
from .site_html import (
    column_lineage_href,
    drawn_around,
    drawn_in_browser,
    h,
    object_href,
    page,
    shared_graph_href,
)


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


MAX_LEVELS = 5   # the widest neighbourhood the lineage page around an object offers


def around_page(landscape, generated: str) -> str:
    """The environment's lineage around one object (`site_html.lineage_href`): the objects within the
    address's `levels` (1 to MAX_LEVELS) upstream and downstream of its `object`, drawn, and the column
    lineage among them, both made by site_assets/lineage.js from the landscape's graph and column
    lineage files; beyond drawing.COLLAPSE_AT objects, one box a schema. A form asks for another object
    or level (the same address: it works from file:// too)."""
    levels = "".join(f'<option value="{n}"{" selected" * (n == 2)}>±{n}</option>' for n in range(1, MAX_LEVELS + 1))
    data = json.dumps({"landscape": landscape.name, "most": MAX_LEVELS}).replace("<", "\\u003c")
    body = (f'<form class="around" method="get"><label>Object <input name="object" required size="40" '
            f'placeholder="schema.name"></label> <label>Levels either way <select name="levels">{levels}</select>'
            f'</label> <button type="submit">Draw</button></form>'
            f'<p id="around" aria-live="polite">Environment {h(landscape.name)}: open it from an object\'s page, '
            "or name an object above.</p>"
            '<div class="graph" id="picture" tabindex="0" aria-label="lineage picture"></div>'
            '<section id="columns"><h2>Column lineage</h2><div id="column-lineage"></div></section>'
            f'<script type="application/json" class="around" data-into="picture">{data}</script>'
            f'<script src="{h(shared_graph_href(landscape.name))}"></script>'
            f'<script src="{h(column_lineage_href(landscape.name))}"></script>'
            '<script src="../assets/dagre.min.js"></script><script src="../assets/lineage.js"></script>'
            '<noscript><p class="empty">This page is drawn by its script; each object\'s page shows its '
            "columns' lineage without one.</p></noscript>")
    return page(f"Lineage of {landscape.name}", body, 1, generated)


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


def column_lineage(landscape) -> str:
    """The landscape's column lineage as a script the lineage page around an object reads (a page opened
    from disk may not fetch a JSON file): for each view, by its index in the landscape's graph file
    (`drawing.box_index`), each column whose values come from other objects', with
    those objects' indices and columns."""
    index = drawing.box_index(landscape.lineage)
    views = [[index[view], [[column, [[index[source], name] for source, name in sources if source in index]]
                            for column, sources in outputs.items()]]
             for view, outputs in sorted(landscape.derived.items()) if view in index]
    data = json.dumps(views, separators=(",", ":"))
    return (f"window.RECONCILER_COLUMNS = window.RECONCILER_COLUMNS || {{}};\n"
            f"window.RECONCILER_COLUMNS[{json.dumps(landscape.name)}] = {data};\n")
