"""The landscape report: a static page checked in a real headless browser (Debian's chromium,
driven by playwright-core from npm; .ci/run installs both)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from conftest import ROOT, Landscape

NODE_MODULES = Path(os.environ.get("RECONCILER_PLAYWRIGHT_NODE_MODULES",
                                   Path.home() / ".cache" / "reconciler-ci" / "playwright" / "node_modules"))
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


def test_the_report_loads_in_a_browser_with_every_part(landscape: Landscape, tmp_path_factory) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    assert landscape.run("check", "dev").code == 0
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "SELECT id,", "SELECT DISTINCT id,")
    landscape.commit("dev ahead of qa")
    out = tmp_path_factory.mktemp("report")
    result = landscape.run("report", "--out", str(out))
    assert result.code == 0, result.output
    page = (out / "index.html").read_text()
    assert "<script" not in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert '">5 passed (check ' in page and "<td>5 passed</td>" in page   # status, and the run in history

    assert Path(CHROMIUM).exists() and (NODE_MODULES / "playwright-core").is_dir(), (
        "the browser test needs Debian's chromium and npm's playwright-core (.ci/run installs them)")
    browsed = subprocess.run(
        ["node", str(ROOT / "tests" / "tools" / "browse.cjs"), str(out / "index.html"), str(out / "report.png"),
         "#status tbody tr", "#matrix tbody tr", "#matrix td.waiting", "#graph svg g.node", "#history tbody tr"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "NODE_PATH": str(NODE_MODULES),
                                                          "CHROMIUM": CHROMIUM})
    assert browsed.returncode == 0, browsed.stderr
    seen = json.loads(browsed.stdout)
    assert seen["errors"] == [] and seen["title"] == "reconciler: landscape report"
    assert seen["present"]["#status tbody tr"] == 4            # dev, qa, prod-eu, prod-us
    assert seen["present"]["#matrix tbody tr"] == 11           # every object of every environment
    assert seen["present"]["#matrix td.waiting"] == 2   # the view dev changed and its beta flow; not qa's own connections
    assert seen["present"]["#graph svg g.node"] == 9
    assert seen["present"]["#history tbody tr"] == 2   # the apply, the check
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
