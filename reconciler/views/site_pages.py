"""The landscape site's pages about environments and runs: the index (environments x tenants, what
waits between environments, every object), the list of runs and one page per run, and the page of
what is pending in each tenant with the statements an apply would run.

Owns those pages. Takes the report's finished data (`observe.LandscapeReport`); never reads git or a
tenant. Statements are shown as `disclosure.statement_shown` shows them (values hidden).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .observed import check_counts
from .report import SYMBOLS, statements_text
from .report_page import versions_waiting
from .site_facts import folder_names
from .site_html import h, link, object_href, page, run_href, table


def index_page(data, generated: str) -> str:
    status = [[h(r.environment), h(r.tenant),
               h("-" if r.lock or r.problem else r.applied_commit or "never applied"),   # unknown: not read
               h("-" if r.pending is None else r.pending), h("-" if r.drift is None else r.drift),
               h(r.lock or r.problem or "-"), h(r.checks or "-")] for r in data.status]
    waiting = "".join(f"<li><b>{h(w.source)} → {h(w.target)}</b>: "
                      + (", ".join(h(o) for o in w.objects) or "nothing waiting")
                      + "".join(f"; held back {h(item)}" for item in w.held_back) + "</li>" for w in data.waiting)
    header = ["object", *data.order]
    objects = [[link(object_href(name, 0), name),
                *(f'<span class="{"waiting" if behind else ""}">{h(version or "—")}</span>' for version, behind in versions)]
               for name, versions in versions_waiting(data)]
    body = ('<section id="status" aria-labelledby="status-h"><h2 id="status-h">Environments and tenants</h2>'
            + table(["environment", "tenant", "applied commit", "pending", "drift", "lock / problem", "last checks"],
                    status)
            + f"<h3>Waiting between environments</h3><ul>{waiting or '<li>one environment: nothing to promote</li>'}"
            "</ul></section>"
            '<section id="objects" aria-labelledby="objects-h"><h2 id="objects-h">Objects</h2>'
            "<p>Versions are the git blob ids of each object's file; a marked one differs from the environment "
            "before it (waiting to be promoted).</p>" + table(header, objects) + "</section>")
    return page("Landscape", body, 0, generated)


def runs_page(data, generated: str) -> str:
    rows = [[link(run_href(r["run_id"], 0), r["run_id"]), h(str(r["started_at"])[:19]), h(r["environment"]),
             h(r["tenant"]), h(r.get("operation") or "apply"), f'<span class="{h(r["outcome"])}">{h(r["outcome"])}</span>',
             h((r["commit"] or "-")[:12]), h(r["actor"] or "-"), h(check_counts(r.get("checks")))]
            for r in _runs(data)]
    return page("Runs", table(["run", "started (UTC)", "environment", "tenant", "operation", "outcome", "commit",
                               "actor", "checks"], rows, "No runs recorded in any tenant."), 0, generated)


def _runs(data) -> list[dict]:
    return sorted((run for audit in data.audits.values() for run in audit["runs"]),
                  key=lambda run: (str(run["started_at"]), run["run_id"]), reverse=True)


def run_pages(data, known, changed_by: Mapping[str, set[str]], generated: str) -> dict[str, str]:
    """run id -> its page; `known` is what the tenants say (`site_facts`)."""
    return {run["run_id"]: _run_page(known, run, changed_by.get(run["run_id"], set()), generated)
            for run in _runs(data)}


def _run_page(known, run: dict, changed: set[str], generated: str) -> str:
    summary = json.loads(run["summary"] or "{}")
    facts = [("environment", run["environment"]), ("tenant", run["tenant"]),
             ("operation", run.get("operation") or "apply"),
             ("outcome", run["outcome"] + (" (dry run)" if run["dry_run"] and run["outcome"] != "dry-run" else "")),
             ("ref", run["ref"] or "-"), ("commit", run["commit"] or "-"), ("actor", run["actor"] or "-"),
             ("host", run["host"] or "-"), ("started (UTC)", str(run["started_at"])[:19]),
             ("ended (UTC)", str(run["ended_at"] or "-")[:19]),
             ("plan", ", ".join(f"{count} to {action}" for action, count in summary.items() if count) or "no changes"),
             ("plan fingerprint", run.get("plan_fingerprint") or "-"), ("checks", check_counts(run.get("checks")))]
    results = [[link(object_href(name), name), h(r["check_name"]), h(r["severity"]),
                f'<span class="{h(r["outcome"])}">{h(r["outcome"])}</span>', h(r["offending"])]
               for name, r in known.run_checks.get(run["run_id"], ())]
    body = ['<dl class="facts">' + "".join(f"<dt>{h(k)}</dt><dd>{h(v)}</dd>" for k, v in facts) + "</dl>"]
    if run["error"]:
        body.append(f'<section id="error"><h2>Error</h2><pre class="error">{h(run["error"])}</pre></section>')
    body += ['<section id="changed"><h2>Objects its commit changed</h2>'
             "<p>The objects whose file differs between the commit the tenant's previous apply applied and this "
             "run's (the audit keeps each run's counts, not its statements).</p>",
             "<ul>" + "".join(f"<li>{link(object_href(name), name)}</li>" for name in sorted(changed)) + "</ul>"
             if changed else "<p class=\"empty\">none</p>", "</section>",
             '<section id="checks"><h2>Checks it ran</h2>'
             + table(["object", "check", "severity", "outcome", "offending rows"], results) + "</section>"]
    return page(f"Run {run['run_id']}", "".join(body), 1, generated)


def pending_page(data, generated: str) -> str:
    """What an apply would change in each tenant now, and the statements it would run (values hidden);
    each object named as the tenant names it, linked to its page in the folder."""
    sections = []
    for (environment, tenant), plan in data.pending.items():
        rows = []
        named, spelled = folder_names(data.landscapes[environment], tenant), {n.lower(): n for n in data.versions}
        for change in plan.changes:
            folder = spelled.get(named(change.object).lower(), named(change.object))
            statements = "\n".join(statements_text(change.statements, plan.engine))
            rows.append([f"<code>{h(SYMBOLS[change.action])}</code> {h(change.action)}",
                         link(object_href(folder, 0), change.object), h(change.kind), h(change.reason),
                         h(change.risk), f"<details><summary>{len(change.statements)} statement"
                         f"{'s' * (len(change.statements) != 1)}</summary><pre class=\"sql\"><code>{h(statements)}"
                         "</code></pre></details>" if change.statements else ""])
        sections.append(f'<section aria-labelledby="p-{h(environment)}-{h(tenant)}">'
                        f'<h2 id="p-{h(environment)}-{h(tenant)}">{h(environment)} / {h(tenant)} ({h(plan.engine)})</h2>'
                        + table(["action", "object", "kind", "reason", "risk", "statements (values hidden)"], rows,
                                "No changes: the tenant matches the desired state.") + "</section>")
    waiting = "".join(f"<li><b>{h(w.source)} → {h(w.target)}</b>: "
                      + (", ".join(h(o) for o in w.objects) or "nothing waiting") + "</li>" for w in data.waiting)
    body = ("".join(sections) or "<p>No tenant could be planned.</p>"
            ) + f'<section id="promotions"><h2>Waiting to be promoted</h2><ul>{waiting}</ul></section>'
    return page("Pending", body, 0, generated)
