"""Benchmark: `reconciler site` for a generated landscape (issue 28: 10,000 objects in under 10 s).

Not collected by pytest. Usage (from the repository root):

    .venv/bin/python tests/benchmarks/bench_site.py --objects 1000 10000

For each N it generates a landscape with ../shared/bench/gen_landscape.py (as bench_reconciler.py
does), commits it to a throw-away git repository, applies it to a fresh DuckDB tenant and runs its
checks (so the site has an audit to show, and a plan that is recalled, as a landscape in use has),
then times `reconciler site --out DIR` in a fresh process, twice: wall seconds, CPU seconds (user +
system) and peak RSS (MB), and how many files it wrote.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_reconciler import ROOT, git, timed

RECONCILER = str(Path(sys.executable).parent / "reconciler")
# ../shared/bench beside the repository, or beside the folder of worktrees a clone's worktree is in
GENERATOR = next((folder / "shared" / "bench" / "gen_landscape.py" for folder in (ROOT.parent, ROOT.parent.parent)
                  if (folder / "shared" / "bench" / "gen_landscape.py").exists()), ROOT.parent / "shared")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep each landscape (generated, applied, checked) in KEEP/N and reuse "
                        "it when it is already there: to profile `reconciler site` on it alone")
    arguments = parser.parse_args()
    if not GENERATOR.exists():
        sys.exit(f"the generator is not at {GENERATOR}")
    for count in arguments.objects:
        work = arguments.keep.resolve() / str(count) if arguments.keep else Path(tempfile.mkdtemp(prefix=f"bench-site-{count}-"))
        try:
            repo = work / "gen" / "landscape"
            if not (work / "applied").exists():
                prepare(work, count)
            else:   # kept: applied again (no changes), so the tenant remembers its plan as made by this code
                timed([RECONCILER, "apply", "dev", "--yes"], repo)
            for run in range(arguments.runs):
                site = work / f"site-{run}"
                shutil.rmtree(site, ignore_errors=True)
                took = timed([RECONCILER, "site", "--out", str(site)], repo)
                files = sum(1 for path in site.rglob("*") if path.is_file())
                size = sum(path.stat().st_size for path in site.rglob("*") if path.is_file())
                print(f"{count} objects, run {run + 1}: site {took.wall:.2f} s wall, {took.cpu:.2f} s CPU, "
                      f"{took.peak_mb:.0f} MB, {files} files, {size / 1e6:.0f} MB written", flush=True)
        finally:
            if not arguments.keep:
                shutil.rmtree(work, ignore_errors=True)


def prepare(work: Path, count: int) -> None:
    """Generate the landscape, commit it, apply it to a fresh DuckDB tenant and run its checks."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    subprocess.run([sys.executable, str(GENERATOR), "--objects", str(count), "--out", str(work / "gen")],
                   check=True, stdout=subprocess.DEVNULL)
    repo = work / "gen" / "landscape"
    env_file = repo / "environments" / "dev" / "environment.yaml"
    tenant_url = f"duckdb:///{work}/gen/tenants/dev.duckdb"
    env_file.write_text(env_file.read_text().replace(tenant_url + "\n", tenant_url + "\n    create: true\n"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "generated")
    timed([RECONCILER, "apply", "dev", "--yes"], repo)
    timed([RECONCILER, "check", "dev"], repo)
    (work / "applied").touch()


if __name__ == "__main__":
    main()
