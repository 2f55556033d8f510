"""The README's walkthrough, run command by command as written, on a fresh copy of the demo: alone, and
after the quick start's "edit a view" (the two make the same edit once), then promoted a second time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, Landscape


def readme_block(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    start, end = f"<!-- {name} -->\n```bash\n", f"```\n<!-- /{name} -->"
    return text[text.index(start) + len(start):text.index(end)]


def walkthrough_step(number: int) -> str:
    """One numbered step of the walkthrough: its comment line up to the blank line after it."""
    text = readme_block("walkthrough")
    start = text.index(f"# {number}. ")
    return text[start:text.index("\n\n", start)] + "\n"


def run(script: str, landscape: Landscape) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=landscape.root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def columns(landscape: Landscape, tenant: str, schema: str) -> list[str]:
    return [row[0] for row in landscape.sql(
        f"SELECT column_name FROM duckdb_columns() WHERE schema_name = '{schema}' "
        "AND table_name = 'vw_customer_active' ORDER BY column_index", tenant)]


@pytest.mark.parametrize("edited_first", [False, True], ids=["alone", "after-the-quick-start-edit"])
def test_the_readme_walkthrough_runs_as_written(landscape: Landscape, edited_first: bool) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0      # the quick start
    if edited_first:
        run(readme_block("edit-a-view"), landscape)
    result = run(readme_block("walkthrough"), landscape)

    assert "(4, 4)" in result.stdout   # step 1: the seeded rows, counted after the apply
    assert "1 row inserted" in result.stdout   # step 5: the data flow reads the seeded rows
    assert landscape.sql("SELECT count(*) FROM sales.customer_master")[0][0] == 4
    assert columns(landscape, "dev", "sales")[-2:] == ["created_at", "status"]   # status once
    assert columns(landscape, "qa", "sales_qa")[-2:] == ["created_at", "status"]
    assert columns(landscape, "prod-eu", "sales")[-1] == columns(landscape, "prod-us", "sales")[-1] == "created_at"
    assert "Rollback of prod to HEAD~1" in result.stdout and "waiting to be promoted" in result.stdout
    assert landscape.run("plan", "prod", "--detailed-exitcode").code == 0
    messages = [c.summary for c in landscape.repo.iter_commits()]
    assert messages[:3] == ['Revert "Promote qa -> prod: 1 object(s)"', "Promote qa -> prod: 1 object(s)",
                            "Promote dev -> qa: 1 object(s)"]


def test_a_second_promotion_runs_as_the_walkthrough_writes_it(landscape: Landscape) -> None:
    """Step 2 twice: `promote` deletes the promote branch the first merge took in, so the second
    `git merge "$(git for-each-ref ...)"` names one branch, the new one."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    run(walkthrough_step(0) + walkthrough_step(1) + walkthrough_step(2), landscape)
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "created_at, status", "status, created_at")
    landscape.commit("dev: status before created_at")
    assert landscape.run("apply", "dev", "--yes").code == 0
    second = run(walkthrough_step(2), landscape)

    assert "deleted merged branch promote/dev-to-qa-" in second.stdout
    assert columns(landscape, "qa", "sales_qa")[-2:] == ["status", "created_at"]
    assert [head.name for head in landscape.repo.heads if head.name.startswith("promote/")] == [
        f"promote/dev-to-qa-{landscape.repo.commit('HEAD~1').hexsha[:7]}"]   # the one just merged
