"""`reconciler init`: a new landscape that validates and plans to nothing at once, whose workflows pass
actionlint, whose modelines point at schemas written from the installed models, and which refuses to
write into a folder holding anything; and empty environments, valid and promoted into (issue 27)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import git
import pytest
import yaml
from conftest import ROOT, Landscape
from test_workflows import actionlint

from reconciler import __version__
from reconciler.model import json_schemas



def initialised(root: Path, *options: str) -> Landscape:
    """`reconciler init` into `root`, then `git init` and a first commit, as the README says."""
    code = Landscape.__new__(Landscape)   # not Landscape(): its constructor writes a .gitignore of its own
    code.root = root
    assert code.run("init", str(root), *options).code == 0
    code.repo = git.Repo.init(root, initial_branch="main")
    with code.repo.config_writer() as config:
        config.set_value("user", "name", "Test User")
        config.set_value("user", "email", "test@example.invalid")
    code.commit("a new landscape")
    return code


def run_readme_block(name: str, cwd: Path) -> None:
    """The README's bash block between `<!-- name -->` and `<!-- /name -->`, run as written in `cwd` with
    this Python's `reconciler` first on the PATH; fails the test with its output when it fails."""
    text = (ROOT / "README.md").read_text()
    start, end = f"<!-- {name} -->\n```bash\n", f"```\n<!-- /{name} -->"
    block = text[text.index(start) + len(start):text.index(end)]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "Test User", "GIT_AUTHOR_EMAIL": "test@example.invalid",
           "GIT_COMMITTER_NAME": "Test User", "GIT_COMMITTER_EMAIL": "test@example.invalid"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_new_landscape_validates_and_plans_to_no_changes(tmp_path: Path) -> None:
    landscape = initialised(tmp_path / "mine")
    assert landscape.run("validate").stdout.strip() == "valid: dev, prod, qa"
    for environment in ("dev", "qa", "prod"):
        plan = landscape.run("plan", environment, "--detailed-exitcode")
        assert plan.code == 0 and "No changes" in plan.stdout, plan.output
    chain = {e: yaml.safe_load(landscape.path(f"environments/{e}/environment.yaml").read_text())
             for e in ("dev", "qa", "prod")}
    assert [chain[e].get("promotes_from") for e in ("dev", "qa", "prod")] == [None, "dev", "qa"]
    assert [chain[e].get("protected", False) for e in ("dev", "qa", "prod")] == [False, False, True]
    assert not landscape.repo.is_dirty(untracked_files=True)   # planning wrote nothing git sees (.gitignore)


def test_the_modelines_point_at_schemas_written_from_the_installed_models(tmp_path: Path) -> None:
    landscape = initialised(tmp_path / "mine", "--environments", "dev")
    environment = landscape.path("environments/dev/environment.yaml")
    modeline = re.match(r"# yaml-language-server: \$schema=(\S+)\n", environment.read_text())
    assert modeline, environment.read_text()
    schema = (environment.parent / modeline.group(1)).resolve()
    assert schema == landscape.path("schemas/environment.schema.json").resolve()
    assert {p.name: json.loads(p.read_text()) for p in landscape.path("schemas").iterdir()} == json_schemas()
    assert "github.com" not in environment.read_text()   # nothing points into the reconciler's repository


@pytest.mark.parametrize("engine, dialect", [("postgresql", "postgres"), ("sc", "spark")])
def test_other_engines_are_declared_valid(tmp_path: Path, engine: str, dialect: str) -> None:
    landscape = initialised(tmp_path / "mine", "--engine", engine, "--environments", "dev,prod")
    assert landscape.run("validate").code == 0
    assert yaml.safe_load(landscape.path("environments/prod/environment.yaml").read_text())["dialect"] == dialect


def test_the_written_workflow_calls_the_reusable_one_at_a_pinned_ref_and_names_no_environment(tmp_path: Path) -> None:
    """One thin caller: the reconciler's reusable workflow at the tag of this version (or the ref given),
    on the three events it serves, and no environment named, so adding one changes no workflow."""
    landscape = initialised(tmp_path / "mine", "--environments", "dev,test,live")
    workflows = sorted(landscape.path(".github/workflows").glob("*.yml"))
    assert [p.name for p in workflows] == ["reconciler.yml"]
    assert actionlint(workflows) == []
    text = workflows[0].read_text()
    caller = yaml.safe_load(text)
    assert set(caller[True]) == {"pull_request", "push", "workflow_dispatch"}   # YAML 1.1 reads `on` as True
    job = caller["jobs"]["reconcile"]
    assert job["uses"] == f"OWNER/reconciler/.github/workflows/reconcile.yml@v{__version__}"
    assert set(job["with"]) <= set(yaml.safe_load((ROOT / ".github/workflows/reconcile.yml").read_text())[True][
        "workflow_call"]["inputs"])   # every input it passes is one the reusable workflow takes
    assert not re.search(r"(?<![/\w-])(dev|test|live)(?![\w-])", text), text
    pinned = initialised(tmp_path / "pinned", "--ci-from", f"platform/reconciler@{'0123456789abcdef' * 2}01234567")
    uses = yaml.safe_load(pinned.path(".github/workflows/reconciler.yml").read_text())["jobs"]["reconcile"]["uses"]
    assert uses == f"platform/reconciler/.github/workflows/reconcile.yml@{'0123456789abcdef' * 2}01234567"
    refused = pinned.run("init", str(tmp_path / "bad"), "--ci-from", "platform")
    assert refused.code == 64 and "OWNER/NAME" in refused.stderr and not (tmp_path / "bad").exists(), refused.output


def test_the_workflow_installs_only_the_reconciler_the_landscape_names(tmp_path: Path) -> None:
    """A CI job holds the landscape's secrets: it never pip-installs a guess at a package of that name
    (PyPI's `reconciler` is another project). Without --package the caller passes an empty one, which the
    reusable workflow stops on with an error saying what to set; with it, the pin goes through as written."""
    unnamed = initialised(tmp_path / "unnamed")
    pinned = 'reconciler @ git+https://git.example.invalid/platform/reconciler@0123456789abcdef0123456789abcdef01234567'
    named = initialised(tmp_path / "named", "--package", pinned)
    assert yaml.safe_load(unnamed.path(".github/workflows/reconciler.yml").read_text())["jobs"]["reconcile"][
        "with"]["package"] == ""
    assert yaml.safe_load(named.path(".github/workflows/reconciler.yml").read_text())["jobs"]["reconcile"][
        "with"]["package"] == pinned
    reusable = yaml.safe_load((ROOT / ".github/workflows/reconcile.yml").read_text())
    installs = [s["run"] for job in reusable["jobs"].values() for s in job["steps"] if "pip install" in s.get("run", "")]
    assert installs and all(run.startswith('test -n "$RECONCILER_PACKAGE" || {') for run in installs)
    assert actionlint(sorted(named.path(".github/workflows").glob("*.yml"))) == []


def test_init_refuses_a_folder_holding_anything_and_writes_nothing(tmp_path: Path) -> None:
    landscape = initialised(tmp_path / "mine")
    before = tree(landscape.root)
    again = landscape.run("init", str(landscape.root), "--force")
    assert again.code == 64 and "already holds environments/" in again.stderr, again.output
    assert tree(landscape.root) == before
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine\n")
    refused = landscape.run("init", str(busy))
    assert refused.code == 64 and "is not empty (notes.txt)" in refused.stderr, refused.output
    (busy / "README.md").write_text("mine too\n")
    clash = landscape.run("init", str(busy), "--force")
    assert clash.code == 64 and "README.md" in clash.stderr and "never overwrites" in clash.stderr, clash.output
    assert tree(busy) == {"notes.txt": b"mine\n", "README.md": b"mine too\n"}
    bad = landscape.run("init", str(tmp_path / "new"), "--environments", "dev,q a")
    assert bad.code == 64 and not (tmp_path / "new").exists(), bad.output


def test_an_empty_folder_is_refused_on_a_tenant_that_manages_objects(landscape: Landscape) -> None:
    """An empty environment is valid, but never read as 'delete everything' on a tenant it manages."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    for path in landscape.path("environments/dev").rglob("*.yaml"):
        if path.name != "environment.yaml":
            path.unlink()
    landscape.commit("dev emptied")
    before = landscape.sql("SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL")
    assert landscape.run("validate", "dev").code == 0
    for command in (("plan", "dev"), ("apply", "dev", "--yes")):
        refused = landscape.run(*command)
        assert refused.code == 3 and "delete everything" in refused.stderr, refused.output
    assert landscape.sql("SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL") == before


def test_the_readme_start_your_own_landscape_runs_as_written(tmp_path: Path) -> None:
    run_readme_block("own-landscape", tmp_path)
    landscape = tmp_path / "my-landscape"
    import duckdb

    for environment in ("dev", "prod"):   # the first promotion into an empty environment, applied
        with duckdb.connect(str(landscape / ".tenants" / f"{environment}.duckdb")) as connection:
            assert connection.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                      "'sales' AND table_name = 'orders' ORDER BY ordinal_position"
                                      ).fetchall() == [("id",), ("amount",)]
