"""One page per object of the landscape site: what it is, its columns to the column (where their values
come from and what reads them), its checks and their latest results, its SQL, its version in every
environment with the SQL diff between them, and its history in the tenants' audit.

Owns the object page. Takes the report's finished data (`observe.LandscapeReport`) and which objects
each run changed; never reads git or a tenant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import quote

from ..model import ObjectKey
from . import site_lineage
from .site_html import diff, h, highlighted, lineage_href, link, object_href, page, run_href, table

FOCUS_LEVELS = (2, 3)   # the neighbourhoods an object's page links to, this many levels either way (1: its own)


def holders(data, name: str) -> list[tuple[str, ObjectKey, object]]:
    """(environment, key, object) for each environment whose folder holds the object, in landscape order."""
    found = []
    for environment in data.order:
        landscape = data.landscapes[environment]
        key = ObjectKey.parse(name)
        if key in landscape.objects:
            found.append((environment, key, landscape.objects[key]))
    return found


def object_page(data, facts, name: str, changed_by: Mapping[str, set[str]], readers: Mapping,
                generated: str) -> str:
    """The page of the object `name` (schema.name); its first environment's folder describes it,
    `readers` is that landscape's `column_readers`, `facts` what the tenants say (`site_facts`)."""
    found = holders(data, name)
    environment, key, obj = found[0]
    landscape = data.landscapes[environment]
    shown = [("kind", obj.kind), ("status", obj.status.value), ("schema", key.schema),
             ("file", f"{landscape.documents[key].path} (the first environment holding it)")]
    body = ['<dl class="facts">' + "".join(f"<dt>{h(k)}</dt><dd>{h(v)}</dd>" for k, v in shown) + "</dl>",
            f'<p class="description">{h(obj.description or "No description.")}</p>',
            _section("columns", "Columns", _columns(landscape, readers, key, obj)),
            _section("checks", "Checks", _checks(facts, landscape, key)),
            _section("sql", "SQL", highlighted(obj.sql, landscape.environment.dialect) if getattr(obj, "sql", None)
                     else "<p class=\"empty\">This kind holds no SQL.</p>"),
            _section("lineage", "Reads and read by", _neighbours(landscape, key)),
            _section("versions", "Version in every environment", _versions(data, facts, name, found)),
            _section("history", "History", _history(data, facts, name, changed_by))]
    return page(name, "\n".join(body), 1, generated)


def _section(anchor: str, title: str, content: str) -> str:
    return f'<section id="{anchor}" aria-labelledby="{anchor}-h"><h2 id="{anchor}-h">{h(title)}</h2>{content}</section>'


def columns_of(landscape, key: ObjectKey, obj) -> list[tuple[str, str, object]]:
    """(name, type, declaration or None) of each column: as the SQL gives them where it is bound (views,
    materialized tables), else as declared (tables)."""
    declared = {column.name.lower(): column for column in getattr(obj, "columns", ())}
    types = landscape.columns.get(key, {})
    names = list(types) or [column.name for column in declared.values()]
    return [(name, getattr(declared.get(name.lower()), "type", None) or types.get(name, ""), declared.get(name.lower()))
            for name in names]


def _columns(landscape, readers: Mapping, key: ObjectKey, obj) -> str:
    """Each column: its declaration where it has one, where its values come from, and which columns of
    other objects read it."""
    sources = landscape.derived.get(key, {})
    rows = []
    for column, kind, spec in columns_of(landscape, key, obj):
        rows.append([f'<span id="col-{h(quote(column.lower(), safe=""))}">{h(column)}</span>', h(kind),
                     h("yes" if getattr(spec, "nullable", True) else "no"), h(getattr(spec, "default", None) or ""),
                     h(getattr(spec, "description", "")), h("sensitive" if getattr(spec, "sensitive", False) else ""),
                     ", ".join(link(object_href(source), f"{source}.{name}")
                               for source, name in sources.get(column.lower(), ())),
                     ", ".join(link(object_href(reader), f"{reader}.{name}")
                               for reader, name in readers.get((key, column.lower()), ()))])
    return table(["column", "type", "nullable", "default", "description", "sensitive", "comes from", "read by"],
                 rows, "No columns known (a data flow or connection, or a view whose columns each engine names).")


def column_readers(landscape) -> dict[tuple[ObjectKey, str], list[tuple[ObjectKey, str]]]:
    """(object, column in lower case) -> the view columns whose values come from it: the landscape's
    column lineage turned around, once per site."""
    readers: dict[tuple[ObjectKey, str], list[tuple[ObjectKey, str]]] = {}
    for view, outputs in landscape.derived.items():
        for output, pairs in outputs.items():
            for source, column in pairs:
                readers.setdefault((source, column.lower()), []).append((view, output))
    return readers


def _checks(facts, landscape, key: ObjectKey) -> str:
    latest = {(environment, tenant, row["check_name"]): row
              for environment, tenant, row in facts.check_results.get(str(key).lower(), ())}
    rows = []
    for check in landscape.checks.get(key, ()):
        results = [f"{h(t)}: <span class=\"{h(r['outcome'])}\">{h(r['outcome'])}</span> "
                   f"({h(r['offending'])} offending, {h(str(r['checked_at'])[:16])})"
                   for (_, t, name), r in sorted(latest.items()) if name == check.name]
        rows.append([h(check.name), h(check.kind), h(check.severity), "<br>".join(results) or "not run yet"])
    return table(["check", "kind", "severity", "latest result per tenant"], rows, "No checks.")


def _neighbours(landscape, key: ObjectKey) -> str:
    """What data flows in from, what it flows to, the columns read, a picture a level either way."""
    lineage = landscape.lineage
    reads = landscape.reads.get(key, {})
    sources = [link(object_href(s), s) + (f" ({h(', '.join(reads[s]))})" if reads.get(s) else "")
               for s in sorted(lineage.predecessors(key))]
    readers = [link(object_href(r), r) + (f" ({h(', '.join(landscape.reads[r][key]))})"
                                          if landscape.reads.get(r, {}).get(key) else "")
               for r in sorted(lineage.successors(key))]
    focus = " ".join(link(lineage_href(landscape.name, key, levels), f"±{levels} levels") for levels in FOCUS_LEVELS)
    near = {key, *lineage.predecessors(key), *lineage.successors(key)}
    return (f"<p>Reads: {', '.join(sources) or 'nothing'}.</p><p>Read by: {', '.join(readers) or 'nothing'}.</p>"
            f"<p>Drawn a level either way; wider: {focus}</p>"
            f'<div class="graph" id="picture"></div>' + site_lineage.drawn_near(landscape, key, near, 1))


def definition(obj, dialect: str) -> str:
    """What a version diff compares: the SQL where the kind has one, else its declaration as JSON."""
    sql = getattr(obj, "sql", None)
    return sql if sql else json.dumps(obj.model_dump(by_alias=True, exclude_defaults=True, mode="json"), indent=2)


def _versions(data, facts, name: str, found) -> str:
    """The file's blob id in each environment, what an apply would do to it in each tenant now, and the
    diff from each environment to the next."""
    blobs = data.versions.get(name, {})
    pending = {environment: "; ".join(f"{tenant}: {change.action} ({change.reason})"
                                      for at, tenant, change in facts.pending.get(name.lower(), ()) if at == environment
                                      ) or "none" for environment, _, _ in found}
    rows = [[h(environment), h(blobs.get(environment, "—")), h(obj.status.value), h(pending[environment])]
            for environment, _, obj in found]
    missing = [environment for environment in data.order if environment not in {e for e, _, _ in found}]
    diffs = []
    for (before_env, _, before), (after_env, _, after) in zip(found, found[1:]):
        text = diff(definition(before, data.landscapes[before_env].environment.dialect),
                    definition(after, data.landscapes[after_env].environment.dialect), before_env, after_env)
        diffs.append(f"<h3>{h(before_env)} → {h(after_env)}</h3>" + (text or "<p>The same.</p>"))
    absent = f"<p>Not in {h(', '.join(missing))}.</p>" if missing else ""
    return table(["environment", "file version", "status", "pending in its tenants"], rows) + absent + "".join(diffs)


def _history(data, facts, name: str, changed_by: Mapping[str, set[str]]) -> str:
    runs = [run for audit in data.audits.values() for run in audit["runs"] if name in changed_by.get(run["run_id"], ())]
    run_rows = [[link(run_href(run["run_id"]), run["run_id"]), h(run["environment"]), h(run["tenant"]),
                 h(run.get("operation") or "apply"), h(run["outcome"]), h((run["commit"] or "-")[:12]),
                 h(str(run["started_at"])[:19])] for run in sorted(runs, key=lambda r: str(r["started_at"]))]
    lowered = name.lower()
    checks = [[h(str(r["checked_at"])[:19]), h(t), h(r["check_name"]), h(r["outcome"]), h(r["offending"]),
               link(run_href(r["run_id"]), r["run_id"])] for _, t, r in facts.check_results.get(lowered, ())]
    backups = [[h(b["name"]), h(t), h(str(b["created_at"])[:19]), h(f"{b['row_count']:,}"), h(b["run_id"])]
               for _, t, b in facts.backups.get(lowered, ())]
    points = [[h(c["name"]), h(t), h(str(c["created_at"])[:19]), h((c["commit"] or "")[:12]), h(c["kind"]),
               h(f"{c['row_count']:,}" if c["row_count"] is not None else "-")]
              for _, t, c in facts.checkpoints.get(lowered, ())]
    return ("<h3>Runs that changed it</h3>"
            + table(["run", "environment", "tenant", "operation", "outcome", "commit", "started (UTC)"], run_rows)
            + "<h3>Check results</h3>"
            + table(["checked (UTC)", "tenant", "check", "outcome", "offending rows", "run"], sorted(checks))
            + "<h3>Backups</h3>" + table(["backup", "tenant", "taken (UTC)", "rows", "run"], backups)
            + "<h3>Checkpoints</h3>" + table(["checkpoint", "tenant", "taken (UTC)", "commit", "kind", "rows"], points))
