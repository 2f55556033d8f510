"""The README's walkthrough, run command by command as written, on a fresh copy of the demo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, Landscape

START, END = "<!-- walkthrough -->\n```bash\n", "```\n<!-- /walkthrough -->"


def walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index(START) + len(START):text.index(END)]


def test_the_readme_walkthrough_runs_as_written(landscape: Landscape) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0      # the quick start
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", walkthrough()], cwd=landscape.root, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    def columns(tenant: str, schema: str) -> list[str]:
        return [row[0] for row in landscape.sql(
            f"SELECT column_name FROM duckdb_columns() WHERE schema_name = '{schema}' "
            "AND table_name = 'vw_customer_active' ORDER BY column_index", tenant)]

    assert columns("dev", "sales")[-1] == "status"
    assert columns("qa", "sales_qa")[-1] == "status"
    assert columns("prod-eu", "sales")[-1] == columns("prod-us", "sales")[-1] == "created_at"  # reverted
    assert "Rollback of prod to HEAD~1" in result.stdout and "waiting to be promoted" in result.stdout
    assert landscape.run("plan", "prod", "--detailed-exitcode").code == 0
    messages = [c.summary for c in landscape.repo.iter_commits()]
    assert messages[:3] == ['Revert "Promote qa -> prod: 1 object(s)"', "Promote qa -> prod: 1 object(s)",
                            "Promote dev -> qa: 1 object(s)"]
