"""Benchmark: an apply to the Snowflake double beside the same statements sent one by one (issue 26: a
1,000-object apply at most 1.5x that floor, a recalled no-op plan under 3 s).

Not collected by pytest. Runs in the Snowflake tests' own Python (.ci/run makes it: fakesnow pins an older
sqlglot than the suite's), from the repository root:

    ~/.cache/reconciler-ci/snowflake/bin/python tests/benchmarks/bench_snowflake.py --objects 1000

One fakesnow server (a Snowflake double over DuckDB, reached over HTTP as an account is) runs in this
process for the whole run. For each N a landscape is generated with ../shared/bench/gen_landscape.py, its
tenant a database of the double, and timed in fresh processes: the floor (the reconciler's own plan's
statements sent one by one through one connector connection, autocommit off and each committed, as the
adapter sends them, into a database of their own), the apply to an empty database, and a no-op plan,
recalled from what the apply recorded, with a warm cache and with none, then the long way
(RECONCILER_NO_RECALL=1). Prints wall seconds, peak RSS (MB), the ratio to the floor and CPU seconds
of the command's own processes (not of the double, which runs here).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import fakesnow
from bench_reconciler import GENERATOR, PYTHON, RECONCILER, git, timed

PASSWORD = {"SNOWFLAKE_PASSWORD": "bench"}   # the double takes any
GENERATED_BY = Path(os.environ.get("BENCH_GENERATOR", GENERATOR))   # another path where ../shared is elsewhere


def snowflake_url(double: dict, database: str) -> str:
    return (f"snowflake://bench@fakesnow/{database}?warehouse=BENCH&role=BENCH"
            f"&host={double['host']}&port={double['port']}&protocol=http")


def landscape(work: Path, count: int, url: str) -> Path:
    """The generated landscape, its one tenant at `url` with its password a reference, committed."""
    subprocess.run([PYTHON, str(GENERATED_BY), "--objects", str(count), "--out", str(work)], check=True,
                   stdout=subprocess.DEVNULL)
    repo = work / "landscape"
    environment = repo / "environments" / "dev" / "environment.yaml"
    environment.write_text(re.sub(r"duckdb:///\S+", f"{url}\n    password: env:SNOWFLAKE_PASSWORD",
                                  environment.read_text()))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "landscape")
    return repo


def floor(double: dict, database: str, statements: Path, work: Path):
    """The plan's statements through one connection, each committed, in a fresh process."""
    script = ("import json, sys; import snowflake.connector as c; "
              "a = json.loads(sys.argv[1]); k = c.connect(**a, database=sys.argv[2], autocommit=False); "
              "u = k.cursor()\nfor s in json.load(open(sys.argv[3])):\n    u.execute(s); k.commit()")
    return timed([PYTHON, "-c", script, json.dumps(double), database, str(statements)], work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[1000])
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    args = parser.parse_args()
    print(f"{'objects':>8} {'step':<44} {'wall_s':>8} {'peak_mb':>8} {'vs_floor':>8} {'cpu_s':>8}")
    with fakesnow.server() as double:
        for count in args.objects:
            work = Path(tempfile.mkdtemp(prefix=f"reconciler-bench-snowflake-{count}-"))
            repo = landscape(work, count, snowflake_url(double, f"BENCH_{count}"))
            cli = [*RECONCILER, "--repo", str(repo)]
            planned = subprocess.run([*cli, "plan", "dev", "--format", "json"], capture_output=True, text=True,
                                     env={**os.environ, **PASSWORD})
            if planned.returncode != 0:
                raise SystemExit(f"plan exited {planned.returncode}: {planned.stderr[-2000:]}")
            statements = work / "statements.json"
            statements.write_text(json.dumps([s for tenant in json.loads(planned.stdout)["tenants"]
                                              for change in tenant["changes"] for s in change["statements"]]))
            base = floor(double, f"FLOOR_{count}", statements, work)
            rows = [(f"floor: {len(json.loads(statements.read_text()))} statements one by one", *base)]
            rows.append(("apply, empty database",) + timed([*cli, "apply", "dev", "--yes"], repo, env=PASSWORD))
            no_op = [*cli, "plan", "dev", "--detailed-exitcode"]
            rows.append(("no-op plan, recalled (warm cache)",) + timed(no_op, repo, env=PASSWORD))
            shutil.rmtree(repo / ".git" / "reconciler", ignore_errors=True)   # the cache lives in the git directory
            rows.append(("no-op plan, recalled (no cache)",) + timed(no_op, repo, env=PASSWORD))
            rows.append(("no-op plan, the long way (warm cache)",) + timed(
                no_op, repo, env={**PASSWORD, "RECONCILER_NO_RECALL": "1"}))
            for step, wall, peak, cpu in rows:
                print(f"{count:>8} {step:<44} {wall:>8.2f} {peak:>8.0f} {wall / base.wall:>8.2f} {cpu:>8.2f}",
                      flush=True)
            if not args.keep:
                shutil.rmtree(work)


if __name__ == "__main__":
    main()
