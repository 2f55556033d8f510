"""The landscape site (`reconciler site`): every page and file it is made of, by path, and the search
index the pages' script reads.

Owns what the site holds and where: index.html, lineage.html, pending.html, runs.html, objects/,
runs/, lineage/ (a page an environment, drawing any of its objects' neighbourhood) and assets/ (the
stylesheet and scripts shipped inside the package, and the search index and each landscape's graph
and column lineage written for this landscape). Takes the report's finished data and which objects each run
changed, and returns texts by path; never reads git or a tenant, never writes a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.resources import files
from urllib.parse import quote

from . import site_facts, site_html, site_lineage, site_objects, site_pages

ASSETS = ("search.js", "site.css", "lineage.js", "dagre.min.js", "dagre.LICENSE.txt")


@dataclass(frozen=True)
class Prepared:
    """What every page of a site is made from, made once: the report's data, what the tenants say
    (`site_facts`), and each landscape's column readers."""

    data: object
    known: object
    changed_by: Mapping[str, set[str]]
    generated: str
    readers: dict


def prepare(data, changed_by: Mapping[str, set[str]], generated: str) -> Prepared:
    return Prepared(data, site_facts.facts(data), changed_by, generated,
                    {environment: site_objects.column_readers(landscape) for environment, landscape in data.landscapes.items()})


def build(data, changed_by: Mapping[str, set[str]], generated: str) -> dict[str, str]:
    """Relative path -> text of every file of the site."""
    prepared = prepare(data, changed_by, generated)
    return common(prepared) | object_files(prepared, list(data.versions))


def common(prepared: Prepared) -> dict[str, str]:
    """Relative path -> text of every file but the objects' pages."""
    data, generated = prepared.data, prepared.generated
    shipped = files("reconciler.views") / "site_assets"
    out = {f"assets/{name}": (shipped / name).read_text() for name in ASSETS}
    out["assets/search-index.js"] = "window.RECONCILER_SEARCH = " + json.dumps(search_index(data)) + ";\n"
    out["index.html"] = site_pages.index_page(data, generated)
    out["runs.html"] = site_pages.runs_page(data, generated)
    out["pending.html"] = site_pages.pending_page(data, generated)
    for run_id, text in site_pages.run_pages(data, prepared.known, prepared.changed_by, generated).items():
        out[f"runs/{quote(run_id, safe='')}.html"] = text
    first = data.landscapes[data.order[0]]
    out["lineage.html"] = site_lineage.lineage_page(first, generated)
    for environment in {site_objects.holders(data, name)[0][0] for name in data.versions}:
        landscape = data.landscapes[environment]
        out[site_html.shared_graph_href(environment, 0)] = site_lineage.shared_graph(landscape)
        out[site_html.column_lineage_href(environment, 0)] = site_lineage.column_lineage(landscape)
        out[site_html.around_path(environment)] = site_lineage.around_page(landscape, generated)
    return out


def object_files(prepared: Prepared, names: Iterable[str]) -> dict[str, str]:
    """Relative path -> text of the pages of the objects `names` (schema.name). Independent of any other
    object's: a site can be made in parts."""
    data, generated, out = prepared.data, prepared.generated, {}
    for name in names:
        environment = site_objects.holders(data, name)[0][0]
        out[f"objects/{quote(name, safe='')}.html"] = site_objects.object_page(
            data, prepared.known, name, prepared.changed_by, prepared.readers[environment], generated)
    return out


def search_index(data) -> list[dict]:
    """One entry per object and one per column: what a hit shows, where it leads, and the lower-case
    text a query's words are looked for in (name, kind, description; a column's name, type and
    description)."""
    entries = []
    for name in data.versions:
        environment, key, obj = site_objects.holders(data, name)[0]
        href = f"objects/{quote(name, safe='')}.html"
        entries.append({"label": name, "what": obj.kind, "href": href,
                        "text": f"{name} {obj.kind} {obj.description}".lower()})
        for column, kind, spec in site_objects.columns_of(data.landscapes[environment], key, obj):
            entries.append({"label": f"{name}.{column}", "what": f"column {kind}".strip(),
                            "href": f"{href}#col-{quote(column.lower(), safe='')}",
                            "text": f"{name}.{column} {column} {kind} {getattr(spec, 'description', '')}".lower()})
    return entries
