"""The pull request comment stays under GitHub's limit by dropping detail in a stated order."""

from __future__ import annotations

import json

from conftest import Landscape

from reconciler.planning.environment import Workspace, plan_environment
from reconciler.views import report


def test_markdown_drops_detail_in_order_to_fit_the_limit(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "region, created_at",
                   "upper(region) AS region, created_at, status")   # region flows into three more views
    landscape.edit("environments/dev/sales/customer_master.yaml", "primary_key",
                   "  - {name: tier, type: VARCHAR}\nprimary_key")
    planned = plan_environment(Workspace(landscape.root), "dev")
    graph = planned.states["dev"].desired.graph
    full = report.plan_markdown(planned.plan, graph)
    assert "~ sql:" in full and "+ columns.tier" in full and "Trimmed" not in full

    assert "<summary>SQL apply runs (" in full and 'ADD COLUMN "tier" TEXT;' in full

    sizes = [len(report._plan_markdown(planned.plan, graph, level)) for level in range(5)]
    assert sizes == sorted(sizes, reverse=True)
    steps = []
    for level in (1, 2, 3, 4):   # a limit each level just fits: the one before it is too long
        text = report.plan_markdown(planned.plan, graph, limit=sizes[level])
        assert len(text) <= sizes[level]
        steps.append(text)
    assert "SQL apply runs" not in steps[0] and "~ sql:" in steps[0]
    assert "Trimmed to fit a GitHub comment: statements left out" in steps[0]
    assert "~ sql:" not in steps[1] and "+ columns.tier" in steps[1]
    assert "statements, then SQL diffs left out" in steps[1]
    assert "+ columns.tier" not in steps[2] and "| `-/+` replace | `sales.vw_customer_active`" in steps[2]
    assert "| `-/+` replace" not in steps[3]
    assert "statements, then SQL diffs, then field-level details, then per-object rows left out" in steps[3]
    for text in steps:   # what a reviewer must always see survives every trim
        assert text.startswith("**reconciler plan for `dev`**: 1 to update, 4 to replace")
        assert "reconciler:plan environment=dev review-hash=" in text


def test_plans_show_the_statements_apply_sends(landscape: Landscape) -> None:
    """`plan --show-sql` prints, under each change, exactly the statements the JSON plan says apply sends,
    and the markdown plan holds them too; a plan without the flag prints none."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit("environments/dev/sales/customer_master.yaml", "primary_key",
                   "  - {name: tier, type: VARCHAR}\nprimary_key")
    saved = landscape.run("plan", "dev", "--format", "json")
    statements = [s for tenant in json.loads(saved.stdout)["tenants"] for c in tenant["changes"]
                  for s in c["statements"]]
    assert any("ADD COLUMN" in s and "tier" in s for s in statements)
    shown = landscape.run("plan", "dev", "--show-sql")
    assert shown.code == 0
    for statement in statements:
        assert f"{statement};" in shown.stdout
    assert not any(f"{s};" in landscape.run("plan", "dev").stdout for s in statements)
    markdown = landscape.run("plan", "dev", "--format", "markdown").stdout
    assert all(f"{s};" in markdown for s in statements)


def test_shown_statements_hide_the_values_they_spell(landscape: Landscape) -> None:
    """A statement can carry what the tenant holds and the folder never spelled (a rebuild carries a
    DBA's policy or property over): every string literal is hidden where people see it (the terminal, a
    pull request), the JSON plan keeps the statement whole."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "WHERE status = 'ACTIVE'",
                   "WHERE status = 'ACTIVE' AND name <> 'EU-north'")
    planned = landscape.run("plan", "dev", "--format", "json")
    assert "tenants" in planned.stdout, planned.output
    whole = [s for t in json.loads(planned.stdout)["tenants"]
             for c in t["changes"] for s in c["statements"] if "vw_customer_active" in s]
    assert whole and "'ACTIVE'" in whole[0] and "'EU-north'" in whole[0]
    hidden = whole[0].replace("'ACTIVE'", "'...'").replace("'EU-north'", "'...'").replace("'EU'", "'...'") + ";"
    shown = landscape.run("plan", "dev", "--show-sql").stdout
    assert hidden in shown and "EU-north" not in shown.split("~ sql:")[0]
    markdown = landscape.run("plan", "dev", "--format", "markdown").stdout
    statements = markdown.split("values hidden)</summary>")[1].split("</details>")[0]
    assert hidden in statements and "EU-north" not in statements
