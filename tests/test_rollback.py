"""Rolling back by earlier commits: git revert, and `reconciler rollback` (dry run, --pr, --execute)."""

from __future__ import annotations

import json

from conftest import Landscape, snapshot

MASTER = "environments/dev/sales/customer_master.yaml"
VIEW = "environments/dev/sales/views/vw_customer_active.yaml"
ROWS = ("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'ada@example.com', 'EU', 'ACTIVE', NULL), "
        "(2, 'Bob', NULL, 'EU', 'ACTIVE', NULL)")
NEW_VIEW = """kind: View
name: vw_loyal_customers
schema: sales
status: active
sql: SELECT id, loyalty_tier FROM sales.customer_master WHERE loyalty_tier IS NOT NULL
"""


def shape(landscape: Landscape) -> dict:
    """The tenant's objects and data, without the reconciler's own bookkeeping and backups."""
    state = {k: v for k, v in snapshot(landscape.tenant(), audit=False).items() if not k.startswith("_reconciler")}
    state["columns"] = [c for c in state["columns"] if not c[0].startswith("_reconciler")]
    return state


def applied_a_then_b(landscape: Landscape) -> tuple[str, str, dict]:
    """Commit A applied with rows; commit B (a column with data, a changed view, a new view) applied."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql(ROWS)
    state_a = shape(landscape)
    commit_a = landscape.repo.head.commit.hexsha
    landscape.edit(MASTER, "primary_key", "  - {name: loyalty_tier, type: VARCHAR}\nprimary_key")
    landscape.edit(VIEW, "region, created_at", "region, created_at, loyalty_tier")
    landscape.write("environments/dev/sales/views/vw_loyal_customers.yaml", NEW_VIEW)
    commit_b = landscape.commit("B: loyalty tiers")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("UPDATE sales.customer_master SET loyalty_tier = 'GOLD' WHERE id = 1")
    return commit_a, commit_b, state_a


def test_git_revert_then_apply_returns_to_the_earlier_state_without_losing_rows(landscape: Landscape) -> None:
    _, commit_b, state_a = applied_a_then_b(landscape)
    landscape.repo.git.revert(commit_b, "--no-edit")
    before = snapshot(landscape.tenant(), audit=False)

    refused = landscape.run("apply", "dev", "--yes")
    assert refused.code == 3
    assert "sales.customer_master: drops column loyalty_tier (2 rows) would lose data" in refused.stderr
    assert "rerun with --allow-data-loss sales.customer_master" in refused.stderr
    assert snapshot(landscape.tenant(), audit=False) == before

    result = landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.customer_master")
    assert result.code == 0, result.output
    assert shape(landscape) == state_a
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_rollback_dry_run_shows_the_impact_and_changes_nothing(landscape: Landscape) -> None:
    commit_a, commit_b, _ = applied_a_then_b(landscape)
    before = shape(landscape)
    result = landscape.run("rollback", "dev", "--to", commit_a[:10])
    assert result.code == 0, result.output
    assert f"undoes {commit_b[:8]} B: loyalty tiers" in result.stdout
    assert (f"dev: update Table sales.customer_master (risk high, 2 rows at risk): {commit_b[:8]} -> "
            f"{commit_a[:8]}; drops column loyalty_tier") in result.stdout
    assert f"dev: delete View sales.vw_loyal_customers (risk low): {commit_b[:8]} -> absent" in result.stdout
    assert "dry run: no object was changed" in result.stdout
    assert shape(landscape) == before and landscape.repo.head.commit.hexsha == commit_b
    runs = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    assert [(r["operation"], r["outcome"], r["dry_run"], r["commit"]) for r in runs][-1] == \
        ("rollback", "dry-run", True, commit_a)


def test_rollback_refuses_bad_refs(landscape: Landscape) -> None:
    for ref, message in (("--upload-pack=x", "cannot start with '-'"), ("no-such-ref", "does not resolve")):
        result = landscape.run("rollback", "dev", "--to", ref)
        assert result.code in (1, 64) and (message in result.stderr or "No such option" in result.stderr)
    assert landscape.run("rollback", "dev", "--to=-x").stderr.strip().endswith("invalid ref '-x': a ref "
                                                                            "cannot start with '-'")
    landscape.write("environments/dev/sales/broken.yaml", "kind: View\nname: broken\nschema: sales\nsql: SELEC 1\n")
    broken = landscape.commit("a broken dev folder")
    landscape.remove("environments/dev/sales/broken.yaml")
    landscape.commit("fixed")
    result = landscape.run("rollback", "dev", "--to", broken)
    assert result.code == 1 and "environments/dev/sales/broken.yaml:4" in result.stderr


def test_rollback_execute_commits_applies_verifies_and_tags(landscape: Landscape) -> None:
    commit_a, commit_b, state_a = applied_a_then_b(landscape)
    refused = landscape.run("rollback", "dev", "--to", commit_a, "--execute")
    assert refused.code == 3 and "would lose data" in refused.stderr
    assert landscape.repo.head.commit.hexsha == commit_b and not landscape.repo.tags

    result = landscape.run("rollback", "dev", "--to", commit_a, "--execute", "--allow-data-loss",
                           "sales.customer_master")
    assert result.code == 0, result.output
    head = landscape.repo.head.commit
    assert head.parents[0].hexsha == commit_b
    assert f"Roll back environments/dev to {commit_a}" in head.message and f"{commit_b[:8]} B: loyalty" in head.message
    assert head.tree["environments/dev"].hexsha == landscape.repo.commit(commit_a).tree["environments/dev"].hexsha
    assert not landscape.repo.is_dirty(untracked_files=True)
    assert not landscape.path("environments/dev/sales/views/vw_loyal_customers.yaml").exists()
    assert shape(landscape) == state_a
    [tag] = landscape.repo.tags
    assert tag.name.startswith("reconciler/dev/") and tag.commit == head and tag.tag is not None
    assert "To undo this rollback" in tag.tag.message
    runs = json.loads(landscape.run("history", "dev", "--format", "json").stdout)
    assert runs[-1]["operation"] == "rollback" and runs[-1]["outcome"] == "applied"
    assert runs[-1]["commit"] == head.hexsha

    # the rollback itself can be rolled back, to the state just before it
    undo = landscape.run("rollback", "dev", "--to", f"{tag.name}^", "--execute")
    assert undo.code == 0, undo.output
    assert landscape.repo.head.commit.tree["environments/dev"].hexsha == \
        landscape.repo.commit(commit_b).tree["environments/dev"].hexsha
    assert landscape.sql("SELECT id, loyalty_tier FROM sales.customer_master ORDER BY id") == [(1, None), (2, None)]
    assert landscape.sql("SELECT count(*) FROM sales.vw_loyal_customers") == [(0,)]


def test_rollback_pr_writes_a_branch_and_leaves_the_checkout_alone(landscape: Landscape) -> None:
    commit_a, commit_b, _ = applied_a_then_b(landscape)
    before = shape(landscape)
    result = landscape.run("rollback", "dev", "--to", commit_a, "--pr")
    assert result.code == 0, result.output
    [branch] = [h for h in landscape.repo.heads if h.name.startswith("rollback/")]
    assert branch.commit.parents[0].hexsha == commit_b
    assert branch.commit.tree["environments/dev"].hexsha == \
        landscape.repo.commit(commit_a).tree["environments/dev"].hexsha
    assert landscape.repo.head.commit.hexsha == commit_b and shape(landscape) == before
    body = landscape.path(result.stdout.split("pull request body: ")[1].split("\n")[0]).read_text()
    assert "| dev | `sales.customer_master` | update | high |" in body and "| 2 |" in body


def test_rollback_needs_a_ref_that_holds_the_environment(landscape: Landscape) -> None:
    landscape.repo.git.rm("-r", "-q", "environments/dev")
    without_dev = landscape.commit("dev folder removed")
    landscape.repo.git.revert(without_dev, "--no-edit")
    result = landscape.run("rollback", "dev", "--to", without_dev)
    assert result.code == 1
    assert f"environment 'dev' does not exist in the ref {without_dev}" in result.stderr
    assert not landscape.tenant().exists()


def test_rollback_and_promote_speak_json(landscape: Landscape) -> None:
    commit_a, commit_b, _ = applied_a_then_b(landscape)
    dry = json.loads(landscape.run("rollback", "dev", "--to", commit_a, "--format", "json").stdout)
    assert dry["mode"] == "dry-run" and dry["target_commit"] == commit_a
    assert {"tenant": "dev", "object": "sales.vw_loyal_customers", "kind": "View", "action": "delete",
            "risk": "low", "current": commit_b[:8], "target": "absent", "rows": None,
            "reason": "removed from the folder"} in dry["impact"]
    promoted = json.loads(landscape.run("promote", "dev", "qa", "--no-pr", "--format", "json").stdout)
    assert promoted["branch"].startswith("promote/dev-to-qa-")
    assert {m["key"] for m in promoted["moves"]} == {"sales.customer_master", "sales.vw_customer_active",
                                                    "sales.vw_loyal_customers"}
