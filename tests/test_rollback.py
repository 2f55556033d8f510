"""Rolling back by earlier commits: git revert, and `reconciler rollback` (dry run, --pr, --execute,
--resume, --abandon)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Landscape, snapshot

RECONCILER = str(Path(sys.executable).parent / "reconciler")

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


def test_a_rollback_that_brings_back_a_dropped_column_offers_its_backup_restore(landscape: Landscape) -> None:
    """A column dropped with --allow-data-loss comes back empty with a rollback; the rollback names the
    backup that holds its values and the exact restore command, and that command, run as printed once
    the rollback is applied, brings them back (DuckDB)."""
    _, commit_b, _ = applied_a_then_b(landscape)
    landscape.repo.git.revert(commit_b, "--no-edit")
    assert landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.customer_master").code == 0
    [backup] = [b[0] for b in landscape.sql("SELECT name FROM _reconciler.backups")]

    [offered] = json.loads(landscape.run("rollback", "dev", "--to", commit_b, "--format", "json").stdout)["restores"]
    assert offered == {"tenant": "dev", "table": "sales.customer_master", "columns": ["loyalty_tier"], "backup": backup,
                       "command": f"reconciler restore dev '{backup}' --yes"}
    for mode in ((), ("--format", "markdown"), ("--execute",)):   # the dry run and the pull request body say it too
        rolled = landscape.run("rollback", "dev", "--to", commit_b, *mode)
        assert rolled.code == 0, rolled.output
        offer = f"reconciler restore dev '{backup}' --yes"
        assert f"sales.customer_master gets loyalty_tier back empty; backup {backup}" in " ".join(rolled.stdout.split())
        assert offer in rolled.stdout, rolled.stdout
    assert landscape.sql("SELECT id, loyalty_tier FROM sales.customer_master ORDER BY id") == [(1, None), (2, None)]

    command = offer.split()
    restored = landscape.run(*command[1:3], command[3].strip("'"), *command[4:])
    assert restored.code == 0, restored.output
    assert landscape.sql("SELECT id, loyalty_tier FROM sales.customer_master ORDER BY id") == [(1, "GOLD"), (2, None)]
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
    for ref, message in (("--upload-pack=x", "cannot start with '-'"), ("no-such-ref", "does not resolve"),
                         ("0" * 40, "does not resolve")):   # a full hash is read, not taken on trust
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
    assert result.code == 64   # a usage error, as an unknown tenant is
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


# -- issue 22: an interrupted rollback always has a way forward and a way back ----------------

LEGACY = "environments/dev/sales/legacy.yaml"
REGION = "{name: region, type: VARCHAR}"
EU_ONLY = "{name: region, type: VARCHAR, checks: [{accepted_values: [EU]}]}"


def killed_rollback(landscape: Landscape, fault: str, *args: str) -> subprocess.CompletedProcess:
    """A real `rollback dev --execute` process, killed by the fault hook (tests/test_crash.py)."""
    killed = subprocess.run([RECONCILER, "--repo", str(landscape.root), "rollback", "dev", *args, "--execute"],
                            env={**os.environ, "RECONCILER_FAULT": fault}, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    return killed


def test_issue22_9_a_rollback_a_check_refuses_exits_3_and_can_be_abandoned(landscape: Landscape) -> None:
    landscape.edit(MASTER, REGION, EU_ONLY)
    commit_a = landscape.commit("A: every customer is in the EU")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit(MASTER, EU_ONLY, REGION)
    commit_b = landscape.commit("B: customers anywhere")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master VALUES (1, 'Ada', NULL, 'US', 'ACTIVE', NULL)")
    before = shape(landscape)

    refused = landscape.run("rollback", "dev", "--to", commit_a, "--execute")
    assert refused.code == 3, refused.output   # a failed check is 3, as in apply
    assert "accepted_values(region): failed (1 offending row)" in refused.stderr
    assert "rollback dev --resume" in refused.stderr and "rollback dev --abandon" in refused.stderr
    named = landscape.run("plan", "dev")
    assert named.code == 3 and "rollback dev --abandon" in named.stderr, named.output
    assert landscape.run("rollback", "dev", "--resume").code == 3   # the same check, as often as asked

    abandoned = landscape.run("rollback", "dev", "--abandon")
    assert abandoned.code == 0, abandoned.output
    assert f"back where it started, {commit_b[:12]}" in abandoned.stdout
    assert "dev: the rollback never changed it" in abandoned.stdout
    assert shape(landscape) == before
    assert landscape.repo.head.commit.hexsha == commit_b and not landscape.repo.tags
    assert not landscape.path(".git/reconciler/rollback-dev.json").exists()
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    assert landscape.run("rollback", "dev", "--abandon").code == 3   # nothing left to abandon


@pytest.mark.parametrize("kill", ["SIGKILL@recorded", "SIGKILL:2", "SIGKILL@applied", "SIGKILL@moved",
                                  "SIGKILL@tagged"])
def test_issue22_9_abandon_takes_a_rollback_killed_at_any_step_back_to_where_it_started(
        landscape: Landscape, kill: str) -> None:
    """Tenants, branch and tags as they were before the rollback; rows the rollback dropped (it was
    allowed to) are named with the backup that holds them, and that restore puts them back."""
    commit_a, commit_b, _ = applied_a_then_b(landscape)
    before = shape(landscape)
    killed_rollback(landscape, kill, "--to", commit_a, "--allow-data-loss", "sales.customer_master")

    abandoned = landscape.run("rollback", "dev", "--abandon")

    assert abandoned.code == 0, abandoned.output
    assert landscape.repo.head.commit.hexsha == commit_b and not landscape.repo.tags
    assert landscape.repo.git.status("--porcelain", "--", "environments") == ""
    assert not landscape.path(".git/reconciler/rollback-dev.json").exists()
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0
    if kill in ("SIGKILL@recorded", "SIGKILL:2"):   # no tenant had committed the rollback
        assert "dev: the rollback never changed it" in abandoned.stdout
        assert "left:" not in abandoned.stderr
    else:
        assert "dev: put back, applied" in abandoned.stdout
        [restore] = [line.split("`")[1] for line in abandoned.stderr.splitlines() if "reconciler restore" in line]
        assert "the rollback backed up sales.customer_master before losing data in it" in abandoned.stderr
        restored = landscape.run(*restore.split()[1:-2], restore.split()[-2].strip("'"), "--yes")
        assert restored.code == 0, restored.output
    assert shape(landscape) == before
    assert landscape.sql("SELECT id, loyalty_tier FROM sales.customer_master ORDER BY id") == [(1, "GOLD"), (2, None)]


def test_issue22_9_abandon_implies_no_data_loss(landscape: Landscape) -> None:
    """Rows written into what the rollback created are guarded like any apply's: abandon refuses to drop
    them until told, whatever the rollback itself was allowed."""
    landscape.write(LEGACY, "kind: Table\nname: legacy\nschema: sales\nstatus: active\n"
                            "columns:\n  - {name: id, type: BIGINT}\n")
    commit_a = landscape.commit("A: a legacy table")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.remove(LEGACY)
    commit_b = landscape.commit("B: no legacy table")
    assert landscape.run("apply", "dev", "--yes", "--allow-data-loss", "sales.legacy").code == 0
    before = shape(landscape)
    killed_rollback(landscape, "SIGKILL@applied", "--to", commit_a, "--allow-data-loss", "sales.legacy")
    landscape.sql("INSERT INTO sales.legacy VALUES (1)")   # written while the rollback's state stood
    written = shape(landscape)

    refused = landscape.run("rollback", "dev", "--abandon")
    assert refused.code == 3, refused.output
    assert "abandoning the rollback of dev refused:\n  dev: sales.legacy: removed from the folder: drops the table " \
           "and its rows (1 row) would lose data; rerun with --allow-data-loss sales.legacy" in refused.stderr
    assert shape(landscape) == written and landscape.path(".git/reconciler/rollback-dev.json").exists()

    abandoned = landscape.run("rollback", "dev", "--abandon", "--allow-data-loss", "sales.legacy")
    assert abandoned.code == 0, abandoned.output
    assert shape(landscape) == before and landscape.repo.head.commit.hexsha == commit_b
    assert [(b["table_name"], b["row_count"]) for b in
            json.loads(landscape.run("backups", "dev", "--format", "json").stdout)] == [("legacy", 0), ("legacy", 1)]


def test_issue22_10a_a_garbage_rollback_intent_is_named_never_an_internal_error(landscape: Landscape) -> None:
    """Each way a record can be wrong: a message naming the file and what is wrong, exit 1, and
    `--abandon` as the way out (it removes the record and changes nothing it cannot know about)."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    commit_a = landscape.repo.head.commit.hexsha
    landscape.edit(VIEW, "region, created_at", "region, created_at, status")
    landscape.commit("B")
    assert landscape.run("apply", "dev", "--yes").code == 0
    before = shape(landscape)
    killed_rollback(landscape, "SIGKILL@recorded", "--to", commit_a)
    path = landscape.path(".git/reconciler/rollback-dev.json")
    recorded = json.loads(path.read_text())
    garbage = {
        "not JSON": ('{"environment": "dev",', "line 1 column 23: not JSON"),
        "not an object": ("[1, 2]", "input should be a valid dictionary"),
        "a field missing": (json.dumps({k: v for k, v in recorded.items() if k != "head"}), "head: field required"),
        "a field too many": (json.dumps({**recorded, "hook": "x"}), "hook: extra inputs are not permitted"),
        "a commit that is no commit": (json.dumps({**recorded, "commit": "0" * 40}),
                                       f"commit: {'0' * 40} is not a commit of this repository"),
        "a branch for a commit": (json.dumps({**recorded, "head": "main"}), "head: 'main' does not match"),
        "a commit not made on head": (json.dumps({**recorded, "commit": recorded["head"]}),
                                      "is not a rollback commit made on head"),
        "a ref like an option": (json.dumps({**recorded, "ref": "--upload-pack=touch pwned"}),
                                 "ref: '--upload-pack=touch pwned' does not match"),
        "a tag like an option": (json.dumps({**recorded, "tag": "-d"}), "tag: '-d' does not match"),
        "an acknowledgement like an option": (json.dumps({**recorded, "allow_data_loss": ["--all"]}),
                                              "allow_data_loss.0: '--all' does not match"),
        "another environment's": (json.dumps({**recorded, "environment": "prod"}), "it names prod, not dev"),
    }
    for case, (text, what) in garbage.items():
        path.write_text(text)
        resumed = landscape.run("rollback", "dev", "--resume")
        assert resumed.code == 1, (case, resumed.output)
        assert f"{path}: not a rollback intent this reconciler wrote: " in resumed.stderr, case
        assert what in resumed.stderr, (case, resumed.stderr)
        assert "rollback dev --abandon" in resumed.stderr, case
        abandoned = landscape.run("rollback", "dev", "--abandon")
        assert abandoned.code == 0, (case, abandoned.output)
        assert "No tenant and nothing in git was changed" in abandoned.stderr, case
        assert not path.exists() and shape(landscape) == before, case
    assert not (landscape.root / "pwned").exists()

    path.write_text(json.dumps(recorded))   # the record as written is believed
    assert landscape.run("rollback", "dev", "--resume").code == 0
