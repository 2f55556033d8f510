"""Renderings of plans, diagnostics and graphs for people and machines.

Owns text (terraform-like symbols), markdown and JSON output; the dependency graph as Mermaid, DOT
and JSON is `graph_formats`'. Every function takes finished values and returns a string; nothing here
computes anything new.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Sequence

import networkx as nx

from .. import disclosure
from ..desired import checks, sql
from ..errors import Diagnostic, ReconcilerError
from ..model import ObjectKey
from ..plan import ACTIONS, Change, Detail, Plan, TenantPlan, row_count
from .graph_formats import node_id

SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}
STYLES = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red"}


def summary_line(counts: dict[str, int]) -> str:
    return "Plan: " + ", ".join(f"{counts[a]} to {a}" for a in ACTIONS) + "."


def adopting(change: Change) -> bool:
    """An unmanaged object identical to its YAML: the apply records it as managed and runs no statement
    (the only catalog-only update that carries no field that differs)."""
    return change.action == "update" and change.catalog_only and not change.details and not change.conflict


def counted(changes: Sequence[Change]) -> tuple[int, dict[str, int]]:
    """How many of `changes` adopt an object, and the others by action."""
    counts = Counter(change.action for change in changes if not adopting(change))
    return len(changes) - sum(counts.values()), {action: counts.get(action, 0) for action in ACTIONS}


def plan_summary(changes: Sequence[Change]) -> str:
    """The counts of `changes` by action, adoptions apart as what they are: "Plan: adopt 36 objects,
    0 changes."."""
    adopted, counts = counted(changes)
    line = summary_line(counts)
    if not adopted:
        return line
    changed = sum(counts.values())
    return (f"Plan: adopt {adopted} object{'s' * (adopted != 1)}, {changed} change{'s' * (changed != 1)}"
            + (f" ({line.removeprefix('Plan: ').removesuffix('.')})." if changed else "."))


def plan_text(plan: Plan, verbose: bool = True, show_sql: bool = False) -> list[tuple[str, str | None]]:
    """(line, style) pairs: the CLI prints them with or without colour. `show_sql`: each change's
    statements too, as apply sends them."""
    lines: list[tuple[str, str | None]] = [
        (f"Environment {plan.environment} at {plan.ref}"
         + (f" ({plan.commit[:12]})" if plan.commit else ""), "bold")]
    for tenant in plan.tenants:
        lines.append(("", None))
        lines.append((f"Tenant {tenant.tenant} ({tenant.engine})"
                      + ("  [database will be created]" if tenant.create_database else ""), "bold"))
        for run in tenant.interrupted:
            lines.append((f"  ! interrupted run {run}", "yellow"))
        if not tenant.changes:
            lines.append(("  No changes. The tenant matches the desired state.", None))
        for change in tenant.changes:
            lines.extend(_change_lines(change, verbose, tenant.engine))
            if show_sql:
                lines.extend((f"        {line}", "dim") for line in statements_text(change.statements, tenant.engine))
        if tenant.checks:
            lines.append((f"  Data checks before commit: {', '.join(tenant.checks)}", None))
        for name in tenant.unmanaged:
            lines.append((f"  ? unmanaged {name} (not created by the reconciler; left alone)", "dim"))
        if tenant.unproven:
            lines.append((f"  ? not proven {tenant.unproven}", "yellow"))
        for refusal in tenant.refused:
            lines.append((f"  ! would fail at apply: {refusal.object}: {refusal.message}", "red"))
            lines.append((f"        statement: {refusal.statement}", "red"))
        lines.append(("  " + plan_summary(tenant.changes), None))
    lines.append(("", None))
    lines.append((plan_summary([c for t in plan.tenants for c in t.changes]) if plan.has_changes else
                  "No changes. Every tenant matches the desired state.", "bold"))
    return lines


def _change_lines(change: Change, verbose: bool, engine: str) -> list[tuple[str, str | None]]:
    style = STYLES[change.action]
    risk = f" [risk {change.risk}" + (f", {row_count(change.rows)}" if change.rows is not None else "") + "]" \
        if change.risk != "low" else ""
    lines = [(f"  {SYMBOLS[change.action]:>3} {change.kind} {change.object}: {change.reason}{risk}", style)]
    if change.data_loss:
        lines.append(("        ! loses data: acknowledged in environment.yaml (allow_data_loss); backed up first"
                      if change.acknowledged else
                      f"        ! blocked: loses data; apply needs --allow-data-loss {change.object} "
                      "(backed up first)", "red"))
    if not verbose:
        return lines
    for detail in change.details:
        lines.extend((f"        {text}", style) for text in _detail_lines(detail, engine))
    lines.extend((f"        > {line}", "dim") for line in _impact_lines(change))
    return lines


def statements_text(statements: Sequence[str], engine: str) -> list[str]:
    """Statements as the engine is sent them, each ended by `;` (one of several lines keeps them), with the
    values they spell hidden (`disclosure.statement_shown`)."""
    return [line for statement in statements
            for line in f"{disclosure.statement_shown(statement, engine)};".splitlines()]


def _impact_lines(change: Change) -> list[str]:
    return [f"{i.column} ({i.change}) is read by {', '.join(i.read_by)}" for i in change.impact]


def _detail_lines(detail: Detail, engine: str) -> list[str]:
    """One field that differs; SQL (as the tenant's engine runs it) as a diff of pretty-printed lines."""
    if detail.field == "sql" and isinstance(detail.before, str) and isinstance(detail.after, str):
        diff = difflib.unified_diff(_sql_lines(detail.before, engine), _sql_lines(detail.after, engine),
                                    "before", "after", lineterm="", n=1)
        return ["~ sql:", *(f"  {line}" for line in diff)]
    if detail.op == "add":
        return [f"+ {detail.field}: {_value(detail.after)}"]
    if detail.op == "drop":
        return [f"- {detail.field}: {_value(detail.before)}"]
    return [f"~ {detail.field}: {_value(detail.before)} -> {_value(detail.after)}"]


def _sql_lines(text: str, engine: str) -> list[str]:
    try:
        return sql.parse(text, engine).sql(dialect=engine, pretty=True).splitlines()
    except sql.SqlProblem:
        return text.splitlines()


def _value(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items() if v is not None) + "}"
    return json.dumps(value) if not isinstance(value, str) else value


MARKDOWN_LIMIT = 64_000   # GitHub refuses comments over 65,536 characters; room for what CI adds
TRIM_ORDER = ("statements", "SQL diffs", "field-level details", "per-object rows")
ACTION_COLOURS = {"create": "#d3f9d8", "update": "#fff3bf", "replace": "#ffd8a8", "delete": "#ffc9c9"}


def plan_markdown(plan: Plan, graph: nx.DiGraph | None = None, limit: int = MARKDOWN_LIMIT) -> str:
    """The plan for a pull request: counts first, destructive changes next, a tenant per
    collapsible section, a graph of what changes and what reads it, and what merging does.
    Over `limit` characters, detail is dropped in TRIM_ORDER, and the text says so."""
    for level in range(len(TRIM_ORDER) + 1):
        text = _plan_markdown(plan, graph, level)
        if len(text) <= limit:
            return text
    return text[:limit - 200] + "\n\n_(cut to fit; the full plan is in the job summary and the JSON plan)_\n"


def _plan_markdown(plan: Plan, graph: nx.DiGraph | None, trimmed: int) -> str:
    out = [_headline(plan), ""]
    risky = [(t, c) for t in plan.tenants for c in t.changes if c.risk == "high" or c.data_loss or c.conflict]
    if risky:
        out += ["> [!CAUTION]", "> Destructive, blocked or high-risk changes:"]
        out += [f"> - `{t.tenant}`: **{c.action} {c.object}**: {c.reason}"
                + (f" ({row_count(c.rows)})" if c.rows is not None else "") for t, c in risky]
        out.append("")
    refused = [(t, r) for t in plan.tenants for r in t.refused]
    if refused:
        out += ["### Would fail at apply", "",
                "The plan was proven on each tenant: run on a shadow of it (DuckDB: a copy of its schema, no rows; "
                "PostgreSQL: the tenant inside a transaction that is always rolled back, where no query of the change "
                "runs on its rows), or on Spark each statement planned by EXPLAIN, which runs nothing; the engine "
                "refused these statements:", ""]
        for tenant, refusal in refused:
            out += [f"- `{tenant.tenant}`: **{refusal.object}**: {refusal.message}", "",
                    "  ```sql", f"  {refusal.statement}", "  ```"]
        out.append("")
    out += [f"> [!NOTE]\n> `{t.tenant}`: not proven {t.unproven}\n"
            for t in plan.tenants if t.unproven]
    for tenant in plan.tenants:
        out += _tenant_markdown(tenant, trimmed)
    if graph is not None and plan.has_changes and trimmed < len(TRIM_ORDER):
        out += _changed_graph(plan, graph)
    if trimmed:
        out += [f"_Trimmed to fit a GitHub comment: {', then '.join(TRIM_ORDER[:trimmed])} left out; the full "
                "plan is in the job summary and the JSON plan._", ""]
    tenants = ", ".join(f"`{t.tenant}`" for t in plan.tenants)
    out += ["---", f"On merge, CI applies `{plan.environment}` to {tenants} only if a new plan still has review "
            f"hash `{plan.review_hash[:12]}`; if a tenant or the folder moved since, it stops and says so.",
            review_marker(plan)]
    return "\n".join(out) + "\n"


def _headline(plan: Plan) -> str:
    if not plan.has_changes:
        return f"**reconciler plan for `{plan.environment}`**: no changes (at `{plan.ref}`)"
    adopted, counts = counted([change for tenant in plan.tenants for change in tenant.changes])
    actions = ", ".join([*([f"adopt {adopted}"] if adopted else []),
                         *(f"{count} to {action}" for action, count in counts.items() if count)])
    per_tenant = ", ".join(f"{t.tenant} {len(t.changes)}" for t in plan.tenants)
    return (f"**reconciler plan for `{plan.environment}`**: {actions} (per tenant: {per_tenant}; "
            f"at `{plan.ref}`)")


def _changed_graph(plan: Plan, graph: nx.DiGraph, most: int = 80) -> list[str]:
    """Mermaid: changed objects coloured by action, and the objects that read them directly."""
    actions: dict[ObjectKey, str] = {}
    for tenant in plan.tenants:
        for change in tenant.changes:
            actions.setdefault(change.key, change.action)
    readers = {r for key in actions if key in graph for r in graph.successors(key)} - set(actions)
    nodes = sorted(actions) + sorted(readers)
    if len(nodes) > most:
        return [f"_{len(actions)} changed objects: too many to draw here; `reconciler graph` draws them._", ""]
    lines = ["```mermaid", "flowchart LR"]
    for key in nodes:
        lines.append(f'  {node_id(key)}["{key}"]:::{actions.get(key, "reader")}')
    lines += [f"  {node_id(a)} --> {node_id(b)}" for a, b in sorted(graph.edges) if a in actions and b in nodes]
    lines += [f"  classDef {action} fill:{colour}" for action, colour in ACTION_COLOURS.items()]
    lines += ["  classDef reader fill:#f1f3f5,stroke-dasharray: 3 3", "```", ""]
    return ["Changed objects (coloured by action) and what reads them directly:", "", *lines]


def _tenant_markdown(tenant: TenantPlan, trimmed: int = 0) -> list[str]:
    dropped = set(TRIM_ORDER[:trimmed])
    out = [f"<details><summary><b>{tenant.tenant}</b> ({tenant.engine}): {plan_summary(tenant.changes)}"
           "</summary>", ""]
    if not tenant.changes:
        out.append("No changes.")
    elif "per-object rows" not in dropped:
        out += ["| | object | kind | risk | reason |", "|---|---|---|---|---|"]
        out += [f"| `{SYMBOLS[c.action]}` {c.action} | `{c.object}` | {c.kind} | {c.risk} | {c.reason} |"
                for c in tenant.changes]
        for change in tenant.changes if "field-level details" not in dropped else ():
            details = [d for d in change.details if not ("SQL diffs" in dropped and d.field == "sql")]
            statements = change.statements if "statements" not in dropped else ()
            if details or statements:
                out += ["", f"`{change.object}`"]
            if details:
                out.append("```diff")
                for detail in details:
                    out += _detail_lines(detail, tenant.engine)
                out.append("```")
            if statements:
                out += ["", f"<details><summary>SQL apply runs ({len(statements)} "
                        f"statement{'s' * (len(statements) > 1)}, values hidden)</summary>", "", "```sql",
                        *statements_text(statements, tenant.engine), "```", "", "</details>"]
            out += [f"- column impact: {line}" for line in _impact_lines(change)]
    if tenant.checks:
        out += ["", "Data checks that run before commit (a failure rolls the apply back): "
                + ", ".join(f"`{name}`" for name in tenant.checks)]
    out += ["", "</details>", ""]
    return out


def error_json(error: ReconcilerError) -> dict:
    """A command that failed, for a program reading its JSON: what failed, the exit code it ends with,
    and each problem at its file:line:column where the desired state is invalid."""
    return {"error": {"kind": type(error).__name__, "message": str(error), "exit_code": error.exit_code,
                      "diagnostics": [d.to_json() for d in getattr(error, "diagnostics", ())]}}


def diagnostics_text(diagnostics: Sequence[Diagnostic]) -> str:
    count = len(diagnostics)
    return "\n".join([*map(str, diagnostics), f"{count} problem{'s' if count != 1 else ''} found"])


def diagnostics_github(diagnostics: Sequence[Diagnostic]) -> str:
    return "\n".join(f"::error file={d.path},line={d.line},col={d.column},title={d.code}::"
                     f"{d.message.replace(chr(10), '%0A')}" for d in diagnostics)


CHECK_MARKS = {"passed": ("ok", "green"), "warned": ("warn", "yellow"), "failed": ("FAIL", "red")}


def checks_text(found) -> list[tuple[str, str | None]]:
    """(line, style) pairs: per tenant, every check with its outcome, the sample rows of what did not
    pass, what was skipped, and a count."""
    lines: list[tuple[str, str | None]] = []
    for tenant in found:
        lines.append((f"Tenant {tenant.tenant}", "bold"))
        for result in tenant.results:
            mark, style = CHECK_MARKS[result.outcome]
            lines.append((f"  {mark:<4} {result.describe()}", style))
            lines += [(f"         {checks.sample_row(row)}", None) for row in result.sample]
        lines += [(f"  skip {why}", "yellow") for why in tenant.skipped]
        lines.append((f"  {checks.summary(tenant.results, tenant.skipped)}", None))
    return lines


def checks_markdown(found) -> str:
    lines = []
    for tenant in found:
        lines += [f"### Checks in tenant `{tenant.tenant}`", "", checks.summary(tenant.results, tenant.skipped), "",
                  "| outcome | object | check | offending rows |", "|---|---|---|---|"]
        lines += [f"| {r.outcome} | `{r.object}` | `{r.check}` | {r.offending} |" for r in tenant.results]
        lines += [f"\nSkipped: {why}" for why in tenant.skipped]
        lines.append("")
    return "\n".join(lines)


def checks_github(found) -> str:
    """Workflow commands: an error (or warning) annotation at the line that declares each check that did
    not pass."""
    lines = []
    for tenant in found:
        for result in tenant.results:
            if result.outcome == "passed":
                continue
            path, line = tenant.where.get((result.object, result.check), ("", 0))
            level = "error" if result.outcome == "failed" else "warning"
            lines.append(f"::{level} file={path},line={line},title=check {result.check}::"
                         f"tenant {tenant.tenant}: {result.describe()}")
    return "\n".join(lines)


def review_marker(plan: Plan) -> str:
    """A hidden line in a pull request comment: the hash of the plan a reviewer saw."""
    return f"<!-- reconciler:plan environment={plan.environment} review-hash={plan.review_hash} -->"


def promotion_markdown(promotion, outlook, branch: str, force_reason: str | None) -> str:
    """The pull request body of a promotion: objects, dependencies added, held back, plans."""
    out = [f"## Promote `{promotion.source}` -> `{promotion.target}`", "",
           f"Source: `environments/{promotion.source}` at `{promotion.source_commit[:12]}`; "
           f"branch `{branch}`.", ""]
    if force_reason is not None:
        out += ["> [!WARNING]", f"> Forced past the promotion gate: {force_reason}", ""]
    out += ["| | object | why |", "|---|---|---|"]
    out += [f"| {m.action} | `{m.key}` | {m.reason} |" for m in promotion.moves]
    added = [m for m in promotion.moves if m.needed_by]
    if added:
        out += ["", "**Dependencies added** (the target lacks them or holds another version):", ""]
        out += [f"- `{m.key}`, needed by {', '.join(f'`{n}`' for n in m.needed_by)}: {m.reason}" for m in added]
    if promotion.held_back:
        out += ["", "**Held back** (never promoted while draft or beta):", ""]
        out += [f"- `{name}`: {why}" for name, why in promotion.held_back]
    out += ["", f"### Plans for `{promotion.target}`", ""]
    out += outlook_markdown(outlook)
    return "\n".join(out) + "\n"


def outlook_markdown(outlook) -> list[str]:
    out = []
    destructive = [(o.tenant, c) for o in outlook if o.plan for t in o.plan.tenants for c in t.changes
                   if c.data_loss or c.risk == "high"]
    if destructive:
        out += ["> [!CAUTION]", "> Destructive or high-risk changes:"]
        out += [f"> - `{tenant}`: **{c.action} {c.object}**: {c.reason}" for tenant, c in destructive]
        out.append("")
    for item in outlook:
        if item.plan is None:
            out += [f"- `{item.tenant}`: not planned: {item.problem}", ""]
        else:
            out += [review_marker(item.plan)] + [line for t in item.plan.tenants for line in _tenant_markdown(t)]
    return out


def rollback_markdown(rolled) -> str:
    """Impact analysis and plan of a rollback, as a pull request body or a report."""
    out = [f"## Roll back `{rolled.environment}` to `{rolled.ref}` (`{rolled.target_commit[:12]}`)", ""]
    if rolled.undoes:
        out += ["Undoes:", ""] + [f"- `{line.split(' ', 1)[0]}` {line.split(' ', 1)[1]}" for line in rolled.undoes]
        out.append("")
    out += ["| tenant | object | action | risk | current | target | rows at risk |",
            "|---|---|---|---|---|---|---|"]
    out += [f"| {r.tenant} | `{r.object}` | {r.action} | {r.risk} | {r.current} | {r.target} | "
            f"{'' if r.rows is None else f'{r.rows:,}'} |" for r in rolled.impact] or ["| | no changes | | | | | |"]
    out += ["", plan_markdown(rolled.plan)]
    out += ["", *(f"- {why} `{command}`" for why, command in restore_offers(rolled))] if rolled.restores else []
    return "\n".join(out)


def rollback_text(rolled) -> list[tuple[str, str | None]]:
    lines: list[tuple[str, str | None]] = [
        (f"Rollback of {rolled.environment} to {rolled.ref} ({rolled.target_commit[:12]})", "bold")]
    lines += [(f"  undoes {line}", None) for line in rolled.undoes]
    lines.append(("Impact:", "bold"))
    if not rolled.impact:
        lines.append(("  no changes: the tenants already hold that state", None))
    for row in rolled.impact:
        rows = f", {row_count(row.rows)} at risk" if row.rows is not None else ""
        lines.append((f"  {row.tenant}: {row.action} {row.kind} {row.object} (risk {row.risk}{rows}): "
                      f"{row.current} -> {row.target}; {row.reason}",
                      "red" if row.risk == "high" else STYLES.get(row.action)))
    lines += plan_text(rolled.plan)
    for why, command in restore_offers(rolled):
        lines += [(why, "yellow"), (f"  {command}", None)]
    return lines


def restore_offers(rolled) -> list[tuple[str, str]]:
    """What brings back the values of columns the rollback gives back empty (`RestoreOffer`): why, and
    the command, run once the rollback is applied."""
    return [(f"{offer.tenant}: {offer.table} gets {', '.join(offer.columns)} back empty; backup {offer.backup}, "
             "its newest, holds its rows from before a change that lost data. Once the rollback is applied, this "
             "puts them back (the rows it replaces are backed up first):", offer.command) for offer in rolled.restores]
