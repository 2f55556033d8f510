"""Renderings of plans, diagnostics and graphs for people and machines.

Owns text (terraform-like symbols), markdown, JSON, Mermaid and DOT output. Every function
takes finished values and returns a string; nothing here computes anything new.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence

import networkx as nx

from .errors import Diagnostic
from .model import ObjectKey
from .plan import ACTIONS, Change, Detail, Plan, TenantPlan

SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}
STYLES = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red"}


def summary_line(counts: dict[str, int]) -> str:
    return "Plan: " + ", ".join(f"{counts[a]} to {a}" for a in ACTIONS) + "."


def plan_text(plan: Plan, verbose: bool = True) -> list[tuple[str, str | None]]:
    """(line, style) pairs: the CLI prints them with or without colour."""
    lines: list[tuple[str, str | None]] = [
        (f"Environment {plan.environment} at {plan.ref}"
         + (f" ({plan.commit[:12]})" if plan.commit else ""), "bold")]
    for tenant in plan.tenants:
        lines.append(("", None))
        lines.append((f"Tenant {tenant.tenant} ({tenant.engine})"
                      + ("  [database will be created]" if tenant.create_database else ""), "bold"))
        if not tenant.changes:
            lines.append(("  No changes. The tenant matches the desired state.", None))
        for change in tenant.changes:
            lines.extend(_change_lines(change, verbose))
        for name in tenant.unmanaged:
            lines.append((f"  ? unmanaged {name} (not created by the reconciler; left alone)", "dim"))
        lines.append(("  " + summary_line(tenant.summary), None))
    lines.append(("", None))
    lines.append((summary_line(plan.summary) if plan.has_changes else
                  "No changes. Every tenant matches the desired state.", "bold"))
    return lines


def _change_lines(change: Change, verbose: bool) -> list[tuple[str, str | None]]:
    style = STYLES[change.action]
    risk = f" [risk {change.risk}" + (f", {change.rows:,} rows" if change.rows is not None else "") + "]" \
        if change.risk != "low" else ""
    lines = [(f"  {SYMBOLS[change.action]:>3} {change.kind} {change.object}: {change.reason}{risk}", style)]
    if not verbose:
        return lines
    for detail in change.details:
        lines.extend((f"        {text}", style) for text in _detail_lines(detail))
    return lines


def _detail_lines(detail: Detail) -> list[str]:
    if detail.field == "sql" and isinstance(detail.before, str) and isinstance(detail.after, str):
        diff = difflib.unified_diff(_sql_lines(detail.before), _sql_lines(detail.after),
                                    "before", "after", lineterm="", n=1)
        return ["~ sql:", *(f"  {line}" for line in diff)]
    if detail.op == "add":
        return [f"+ {detail.field}: {_value(detail.after)}"]
    if detail.op == "drop":
        return [f"- {detail.field}: {_value(detail.before)}"]
    return [f"~ {detail.field}: {_value(detail.before)} -> {_value(detail.after)}"]


def _sql_lines(text: str) -> list[str]:
    from . import sql
    try:
        return sql.parse(text, "duckdb").sql(dialect="duckdb", pretty=True).splitlines()
    except sql.SqlProblem:
        return text.splitlines()


def _value(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items() if v is not None) + "}"
    return json.dumps(value) if not isinstance(value, str) else value


def plan_markdown(plan: Plan) -> str:
    counts = plan.summary
    out = [f"### reconciler plan: `{plan.environment}` at `{plan.ref}`",
           "", summary_line(counts) if plan.has_changes else "No changes.", ""]
    risky = [(t, c) for t in plan.tenants for c in t.changes if c.risk == "high"]
    if risky:
        out += ["> [!CAUTION]", "> Destructive or high-risk changes:"]
        out += [f"> - `{t.tenant}`: **{c.action} {c.object}**: {c.reason}"
                + (f" ({c.rows:,} rows)" if c.rows is not None else "") for t, c in risky]
        out.append("")
    for tenant in plan.tenants:
        out += _tenant_markdown(tenant)
    return "\n".join(out) + "\n"


def _tenant_markdown(tenant: TenantPlan) -> list[str]:
    out = [f"<details><summary><b>{tenant.tenant}</b> ({tenant.engine}): {summary_line(tenant.summary)}"
           "</summary>", ""]
    if not tenant.changes:
        out.append("No changes.")
    else:
        out += ["| | object | kind | risk | reason |", "|---|---|---|---|---|"]
        out += [f"| `{SYMBOLS[c.action]}` {c.action} | `{c.object}` | {c.kind} | {c.risk} | {c.reason} |"
                for c in tenant.changes]
        for change in tenant.changes:
            if change.details:
                out += ["", f"`{change.object}`", "```diff"]
                for detail in change.details:
                    out += _detail_lines(detail)
                out.append("```")
    out += ["", "</details>", ""]
    return out


def diagnostics_text(diagnostics: Sequence[Diagnostic]) -> str:
    count = len(diagnostics)
    return "\n".join([*map(str, diagnostics), f"{count} problem{'s' if count != 1 else ''} found"])


def diagnostics_github(diagnostics: Sequence[Diagnostic]) -> str:
    return "\n".join(f"::error file={d.path},line={d.line},col={d.column},title={d.code}::"
                     f"{d.message.replace(chr(10), '%0A')}" for d in diagnostics)


def graph_json(graph: nx.DiGraph) -> str:
    nodes = [{"id": str(k), "kind": graph.nodes[k]["kind"]} for k in sorted(graph.nodes)]
    edges = [{"from": str(a), "to": str(b)} for a, b in sorted(graph.edges)]
    return json.dumps({"nodes": nodes, "edges": edges}, indent=2) + "\n"


def _node_id(key: ObjectKey) -> str:
    return f"{key.schema}__{key.name}"


def graph_mermaid(graph: nx.DiGraph) -> str:
    shapes = {"Table": ("[(", ")]"), "View": ("[", "]"), "DataFlow": ("[[", "]]"), "Connection": ("{{", "}}")}
    lines = ["flowchart LR"]
    for key in sorted(graph.nodes):
        left, right = shapes.get(graph.nodes[key]["kind"], ("[", "]"))
        lines.append(f'  {_node_id(key)}{left}"{key}"{right}')
    lines += [f"  {_node_id(a)} --> {_node_id(b)}" for a, b in sorted(graph.edges)]
    return "\n".join(lines) + "\n"


def graph_dot(graph: nx.DiGraph) -> str:
    shapes = {"Table": "cylinder", "View": "box", "DataFlow": "cds", "Connection": "hexagon"}
    lines = ["digraph landscape {", "  rankdir=LR;"]
    for key in sorted(graph.nodes):
        lines.append(f'  "{key}" [shape={shapes.get(graph.nodes[key]["kind"], "box")}];')
    lines += [f'  "{a}" -> "{b}";' for a, b in sorted(graph.edges)]
    return "\n".join(lines) + "\n}\n"
