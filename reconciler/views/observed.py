"""What the commands that look at tenants print: history, status, drift, what waits, backups,
checkpoints and a data rollback's impact, as rich tables and lines. Takes what `gitops.observe` and
`apply.data_rollback` found; never reads a tenant or git itself.
"""


from __future__ import annotations

import datetime as dt
import json

from rich.table import Table
from rich.text import Text

from ..desired import checks
from ..plan import row_count

SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}
STYLES = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red"}


def history_table(runs: list[dict]) -> Table:
    table = Table("run", "tenant", "operation", "outcome", "commit", "actor", "started", "ended", "changes",
                  "checks", box=None, header_style="bold")
    for run in runs:
        outcome = run["outcome"] + (" (dry run)" if run["dry_run"] and run["outcome"] != "dry-run" else "")
        summary = json.loads(run["summary"] or "{}")
        changes = ", ".join(f"{count} {action}" for action, count in summary.items() if count) or "-"
        table.add_row(run["run_id"], run["tenant"], run.get("operation") or "apply", outcome,
                      (run["commit"] or "-")[:8], run["actor"] or "-", f"{run['started_at']:%Y-%m-%d %H:%M:%S}",
                      f"{run['ended_at']:%H:%M:%S}" if run["ended_at"] else "-", changes,
                      check_counts(run.get("checks")))
        if run["error"]:
            table.add_row("", "", "", Text(run["error"].splitlines()[0], style="red"))
    return table


def check_counts(counts: dict[str, int] | None) -> str:
    """`3 passed, 1 failed` from a run's check counts; `-` when it ran none."""
    return ", ".join(f"{n} {outcome}" for outcome, n in (counts or {}).items() if n) or "-"


def status_table(rows) -> Table:
    table = Table("environment", "tenant", "applied commit", "pending", "drift", "lock", "last checks", box=None,
                  header_style="bold")
    for row in rows:
        if row.problem:
            table.add_row(row.environment, row.tenant, Text(row.problem, style="red"), "-", "-", "-", "-")
            continue
        table.add_row(row.environment, row.tenant, row.applied_commit or "never applied",
                      "-" if row.pending is None else str(row.pending),
                      "-" if row.drift is None else str(row.drift), row.lock or "-",
                      Text(row.checks or "-", style="red" if row.checks and "failed" in row.checks else ""))
    return table


def waiting_lines(waiting) -> list[str]:
    lines = []
    for pair in waiting:
        header = f"{pair.source} -> {pair.target}: "
        lines.append(header + (f"{len(pair.objects)} waiting to be promoted" if pair.objects else "nothing waiting"))
        lines += [f"  {item}" for item in pair.objects]
        lines += [f"  held back {item}" for item in pair.held_back]
    return lines


def drift_lines(found) -> list[str]:
    lines = []
    for tenant in found:
        if not tenant.changed and not tenant.unmanaged:
            lines.append(f"{tenant.tenant}: no drift")
            continue
        lines += [f"{tenant.tenant}: {c.object}: {c.reason}" for c in tenant.changed]
        lines += [f"{tenant.tenant}: {name}: unmanaged (not in the folder; never touched)" for name in tenant.unmanaged]
    return lines


def backups_table(backups: list[dict], now: dt.datetime | None = None) -> Table:
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    table = Table("backup", "tenant", "table", "run", "rows", "taken", "age", box=None, header_style="bold")
    for backup in backups:
        age = now - backup["created_at"]
        table.add_row(backup["name"], backup["tenant"], f"{backup['schema_name']}.{backup['table_name']}",
                      backup["run_id"], f"{backup['row_count']:,}", f"{backup['created_at']:%Y-%m-%d %H:%M:%S}",
                      f"{age.days}d {age.seconds // 3600}h")
    if not backups:
        table.add_row("no backups", "", "", "", "", "", "")
    return table


def checkpoints_table(found: list[dict]) -> Table:
    table = Table("checkpoint", "tenant", "taken", "commit", "tables", "rows", "kind", "restorable until",
                  box=None, header_style="bold")
    for checkpoint in found:
        linked = f" (after restoring {checkpoint['linked_to']})" if checkpoint["linked_to"] else ""
        table.add_row(checkpoint["name"] + linked, checkpoint["tenant"],
                      f"{checkpoint['created_at']:%Y-%m-%d %H:%M:%S}", (checkpoint["commit"] or "")[:12],
                      ", ".join(checkpoint["tables"]), f"{checkpoint['rows']:,}", checkpoint["kind"],
                      checkpoint["restorable_until"])
    if not found:
        table.add_row("no checkpoints", "", "", "", "", "", "", "")
    return table


def data_rollback_lines(result) -> list[str]:
    """Per table: rows now and at the checkpoint, the difference, the time between, the risk, and what
    stops it; then, executed, the checks and the checkpoints taken around it."""
    lines = []
    for rolled in result.results:
        put_back = dict(rolled.not_restored)
        for impact in rolled.impacts:
            now = "gone" if impact.rows_now is None else row_count(impact.rows_now)
            executed = rolled.outcome in ("applied", "partly-applied")
            verdict = "cannot be restored (why: below)" if impact.problem else (
                "not restored, put back as it was (why: below)" if impact.table in put_back else
                "restored" if executed else "can be restored")
            lines.append(f"{rolled.tenant}: {impact.table}: {now} {'before' if executed else 'now'}, "
                         f"{row_count(impact.rows_then)} at "
                         f"checkpoint {result.checkpoint} ({impact.difference:+,}), {_elapsed(impact.since)} since, "
                         f"risk {impact.risk}; {verdict}")
        if rolled.outcome in ("applied", "partly-applied"):
            lines.append(f"{rolled.tenant}: {checks.summary(rolled.checks)}; checkpoint {rolled.before} holds the "
                         f"rows it replaced, {rolled.after} those it restored (run {rolled.run_id})")
    return lines


def _elapsed(since: dt.timedelta) -> str:
    """A time between, for people: 3 d 4 h, 2 h 5 min, 12 min, 40 s."""
    seconds = max(int(since.total_seconds()), 0)
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    return (f"{days} d {hours} h" if days else f"{hours} h {minutes} min" if hours else f"{minutes} min" if minutes
            else f"{seconds} s")
