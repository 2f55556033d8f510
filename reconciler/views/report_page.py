"""The landscape report as one HTML page (`reconciler report`).

Owns the page: every environment's tenants, what waits to be promoted, the objects by environment, the
lineage picture and the recent runs, each value escaped. Takes the report's finished data; never reads
git or a tenant.
"""

from __future__ import annotations

from html import escape

from . import drawing
from .observed import check_counts


def landscape_html(data, generated: str) -> str:
    """The static landscape report: one self-contained page, no scripts, no network."""
    status_rows = "".join(
        f"<tr><td>{_h(r.environment)}</td><td>{_h(r.tenant)}</td><td>{_h(r.applied_commit or 'never applied')}"
        f"</td><td>{'-' if r.pending is None else r.pending}</td><td>{'-' if r.drift is None else r.drift}</td>"
        f"<td>{_h(r.lock or r.problem or '-')}</td><td class=\"{'failed' if r.checks and 'failed' in r.checks else ''}\">"
        f"{_h(r.checks or '-')}</td></tr>" for r in data.status)
    waiting = "".join(f"<li><b>{_h(w.source)} &rarr; {_h(w.target)}</b>: "
                      + (", ".join(_h(o) for o in w.objects) or "nothing waiting") + "</li>" for w in data.waiting)
    header = "".join(f"<th>{_h(name)}</th>" for name in data.order)
    matrix = []
    for key, versions in versions_waiting(data):
        cells = [f'<td class="{"waiting" if behind else ""}">{_h(version or "—")}</td>' for version, behind in versions]
        label = f"{_h(key)} <small>(one environment's own)</small>" if key in data.local else _h(key)
        matrix.append(f"<tr><th scope=\"row\">{label}</th>{''.join(cells)}</tr>")
    history = "".join(
        f"<tr><td>{_h(str(r['started_at'])[:19])}</td><td>{_h(r['environment'])}</td><td>{_h(r['tenant'])}</td>"
        f"<td>{_h(r.get('operation') or 'apply')}</td><td class=\"{_h(r['outcome'])}\">{_h(r['outcome'])}</td>"
        f"<td>{_h((r['commit'] or '-')[:8])}</td><td>{_h(r['actor'] or '-')}</td>"
        f"<td>{_h(check_counts(r.get('checks')))}</td></tr>" for r in data.history)
    return REPORT_PAGE.format(generated=_h(generated), status=status_rows, waiting=waiting, header=header,
                              matrix="".join(matrix), graph_environment=_h(data.graph_environment),
                              graph=drawing.svg(data.graph), history=history)


def versions_waiting(data) -> list[tuple[str, list[tuple[str | None, bool]]]]:
    """Per object, its version in each environment in landscape order, and whether it differs from the
    environment before it (waiting to be promoted; never one environment's own connection)."""
    rows = []
    for key, per_environment in data.versions.items():
        versions = [per_environment.get(name) for name in data.order]
        rows.append((key, [(version, before is not None and version != before and key not in data.local)
                           for before, version in zip([None, *versions], versions)]))
    return rows


def _h(text) -> str:
    return escape(str(text))


REPORT_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>reconciler: landscape report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5rem; color: #212529; }}
table {{ border-collapse: collapse; margin-bottom: 1rem; }}
th, td {{ border: 1px solid #dee2e6; padding: 4px 8px; text-align: left; font-size: 13px; }}
td.waiting {{ background: #fff3bf; }}
td.failed, td.interrupted {{ background: #ffe3e3; }}
td.applied {{ background: #ebfbee; }}
.graph {{ overflow: auto; border: 1px solid #dee2e6; }}
</style></head>
<body>
<h1>Landscape report</h1>
<p>Generated {generated}. Versions are the git blob ids of each object's file; a highlighted cell
differs from the environment before it (waiting to be promoted).</p>
<section id="status"><h2>Environments and tenants</h2>
<table><thead><tr><th>environment</th><th>tenant</th><th>applied commit</th><th>pending</th><th>drift</th>
<th>lock / problem</th><th>last checks</th></tr></thead><tbody>{status}</tbody></table>
<ul>{waiting}</ul></section>
<section id="matrix"><h2>Objects by environment</h2>
<table><thead><tr><th>object</th>{header}</tr></thead><tbody>{matrix}</tbody></table></section>
<section id="graph"><h2>Lineage of {graph_environment}</h2><div class="graph">{graph}</div></section>
<section id="history"><h2>Recent runs</h2>
<table><thead><tr><th>started (UTC)</th><th>environment</th><th>tenant</th><th>operation</th><th>outcome</th>
<th>commit</th><th>actor</th><th>checks</th></tr></thead><tbody>{history}</tbody></table></section>
</body></html>
"""
