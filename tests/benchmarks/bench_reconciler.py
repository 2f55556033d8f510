"""Benchmark: validate, plan and apply a generated landscape, beside the raw DDL floor.

Not collected by pytest. Usage (from the repository root):

    .venv/bin/python tests/benchmarks/bench_reconciler.py --objects 1000 10000

For each N it generates a landscape with ../shared/bench/gen_landscape.py (same file format
as ours), commits it to a throw-away git repository, and times in fresh processes: the raw
DDL script in one DuckDB execute() (the floor), `reconciler validate`, a plan against a
fresh tenant, apply to a fresh tenant, and a no-op plan (cold cache, then warm). Prints wall
seconds and peak RSS (MB) per step.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT.parent / "shared" / "bench" / "gen_landscape.py"
PYTHON = sys.executable
RECONCILER = [str(Path(PYTHON).parent / "reconciler")]


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command run in a fresh process."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        process.returncode = code = os.waitstatus_to_exitcode(status)
        if code != 0:
            errors.seek(0)
            sys.exit(f"{' '.join(command)} exited {code}: {errors.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    args = parser.parse_args()
    print(f"{'objects':>8} {'step':<28} {'wall_s':>8} {'peak_mb':>8} {'vs_floor':>8}")
    for count in args.objects:
        work = Path(tempfile.mkdtemp(prefix=f"reconciler-bench-{count}-"))
        subprocess.run([PYTHON, str(GENERATOR), "--objects", str(count), "--out", str(work)],
                       check=True, stdout=subprocess.DEVNULL)
        repo = work / "landscape"
        env_file = repo / "environments" / "dev" / "environment.yaml"
        env_file.write_text(env_file.read_text().replace(".duckdb\n", ".duckdb\n    create: true\n"))
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=b@x", "add", "-A"], cwd=repo, check=True)
        subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=b@x", "commit", "-qm", "l"],
                       cwd=repo, check=True)
        floor_db = work / "floor_raw.duckdb"
        floor, floor_mb = timed([PYTHON, "-c", "import duckdb,sys; duckdb.connect(sys.argv[1])"
                                 ".execute(open(sys.argv[2]).read())", str(floor_db), str(work / "raw.sql")], work)
        rows = [("raw DDL script (floor)", floor, floor_mb)]
        cli = [*RECONCILER, "--repo", str(repo)]
        shutil.rmtree(repo / ".reconciler", ignore_errors=True)
        rows.append(("validate (cold cache)",) + timed([*cli, "validate", "dev"], repo))
        rows.append(("validate (warm cache)",) + timed([*cli, "validate", "dev"], repo))
        rows.append(("plan, fresh tenant",) + timed([*cli, "plan", "dev"], repo))
        rows.append(("apply, fresh tenant",) + timed([*cli, "apply", "dev", "--yes"], repo))
        shutil.rmtree(repo / ".reconciler", ignore_errors=True)
        rows.append(("no-op plan (cold cache)",) + timed([*cli, "plan", "dev", "--detailed-exitcode"], repo))
        rows.append(("no-op plan (warm cache)",) + timed([*cli, "plan", "dev", "--detailed-exitcode"], repo))
        for step, wall, peak in rows:
            print(f"{count:>8} {step:<28} {wall:>8.2f} {peak:>8.0f} {wall / floor:>8.2f}", flush=True)
        if not args.keep:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
