"""Benchmark: `reconciler adopt` of a DuckDB tenant built by SQL alone, and the plans after it.

Not collected by pytest. Usage (from the repository root):

    .venv/bin/python tests/benchmarks/bench_adopt.py --objects 1000 10000

For each N it generates a landscape with ../shared/bench/gen_landscape.py and runs only its raw.sql
(CREATE SCHEMA, TABLE and VIEW, in one transaction) into a DuckDB file: a database nothing manages.
Then `reconciler init` makes a landscape with one environment on that file, and it times, in fresh
processes: `adopt` (every object written), the first plan (every object adopted, nothing changed), the
apply that records them, and the plan after it (recalled from what the apply recorded, as after any
apply). Prints wall seconds and peak RSS (MB) per step; exits non-zero when a step does not do what it
should (adopt writing fewer files than objects, a plan not saying "adopt N objects, 0 changes").
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_reconciler import GENERATOR, PYTHON, RECONCILER, ROOT, git, timed

# ../shared/bench from a clone; from a worktree under another folder, the nearest one above it
GENERATOR = next((found for found in (folder / "shared" / "bench" / "gen_landscape.py" for folder in ROOT.parents)
                  if found.exists()), GENERATOR)


def built_by_sql(work: Path, count: int) -> Path:
    """The tenant: gen_landscape's raw.sql run into a DuckDB file, in one transaction."""
    subprocess.run([PYTHON, str(GENERATOR), "--objects", str(count), "--out", str(work / "generated")],
                   check=True, stdout=subprocess.DEVNULL)
    tenant = work / "mine" / ".tenants" / "dev.duckdb"
    tenant.parent.mkdir(parents=True)
    subprocess.run([PYTHON, "-c", "import duckdb,sys; c = duckdb.connect(sys.argv[1]); c.execute('BEGIN'); "
                    "c.execute(open(sys.argv[2]).read()); c.execute('COMMIT')", str(tenant),
                    str(work / "generated" / "raw.sql")], check=True)
    return work / "mine"


def said(command: list[str], text: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if text not in result.stdout:
        sys.exit(f"{' '.join(command)} did not say {text!r}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    args = parser.parse_args()
    print(f"{'objects':>8} {'step':<44} {'wall_s':>8} {'peak_mb':>8}")
    for count in args.objects:
        work = Path(tempfile.mkdtemp(prefix=f"reconciler-adopt-{count}-"))
        repo = built_by_sql(work, count)
        subprocess.run([*RECONCILER, "init", str(repo), "--environments", "dev", "--force"], check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "a new landscape")
        objects = json.loads((work / "generated" / "manifest.json").read_text())["objects"]
        cli = [*RECONCILER, "--repo", str(repo)]
        rows = [("adopt",) + timed([*cli, "adopt", "dev", "--tenant", "dev"], repo)]
        written = len([p for p in (repo / "environments" / "dev").rglob("*.yaml") if p.name != "environment.yaml"])
        if written != len(objects):
            sys.exit(f"adopt wrote {written} files for {len(objects)} objects")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "adopt dev")
        said([*cli, "plan", "dev", "--no-verify"], f"Plan: adopt {len(objects)} objects, 0 changes.")
        shutil.rmtree(repo / ".git" / "reconciler", ignore_errors=True)   # the cache lives in the git directory
        rows.append(("first plan, adopting every object (cold cache)",) + timed([*cli, "plan", "dev"], repo))
        rows.append(("first plan, adopting every object (warm cache)",) + timed([*cli, "plan", "dev"], repo))
        rows.append(("apply: recorded as managed, no statement",) + timed([*cli, "apply", "dev", "--yes"], repo))
        rows.append(("no-op plan after it, recalled",) + timed([*cli, "plan", "dev", "--detailed-exitcode"], repo))
        for step, wall, peak in rows:
            print(f"{len(objects):>8} {step:<44} {wall:>8.2f} {peak:>8.0f}", flush=True)
        if not args.keep:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
