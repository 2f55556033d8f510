"""Benchmark: a checkpoint and a data rollback of a large DuckDB table (issue 25: under 5 s for 1M rows).

Not collected by pytest. Usage (from the repository root):

    .venv/bin/python tests/benchmarks/bench_checkpoint.py --rows 1000000

For each N the demo landscape's dev is applied to a fresh DuckDB file and sales.customer_transactions
filled with N rows (INSERT ... SELECT over range(N), outside the reconciler). Then, each in a fresh
process: `checkpoints` (a listing: the start-up and reading every command pays), `checkpoint` of that
table, a data flow run (`run dev df_segment_scoring`, which checkpoints its target before writing), rows
deleted behind the reconciler's back (a tenth), the dry run of
`rollback --checkpoint` (counts only), the rollback itself (`--execute`: a checkpoint of the rows it
replaces, the restore, the checks, a checkpoint of the rows it restored), and an apply that adds a
column to the table (its automatic checkpoint included). Prints wall seconds, CPU seconds and peak RSS
(MB) per step; exits non-zero when a step does not do what it should (the rows not back after it).

Every command runs with Python's bytecode cache, as an installed reconciler has it (pip compiles
what it installs): the first apply writes it for an editable checkout. `--no-bytecode` keeps an
environment's PYTHONDONTWRITEBYTECODE instead (set on the project's machines), so every process
compiles every module again (about 0.15 s of CPU a command).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench_reconciler import PYTHON, RECONCILER, ROOT, git, timed

SECRETS = {name: "bench" for name in ("ERP_PASSWORD", "ERP_TEST_PASSWORD", "ERP_PROD_PASSWORD")}
TABLE = "sales.customer_transactions"


def duckdb(tenant: Path, statement: str) -> int:
    """Run one statement on the tenant file; the first value it returns (a count), else 0."""
    found = subprocess.run([PYTHON, "-c", "import duckdb,sys; r = duckdb.connect(sys.argv[1]).execute(sys.argv[2])"
                            ".fetchall(); print(r[0][0] if r else 0)", str(tenant), statement],
                           check=True, capture_output=True, text=True)
    return int(found.stdout.strip() or 0)


def filled(work: Path, rows: int) -> Path:
    """The demo landscape with dev applied, and `rows` rows in the table (and four customers)."""
    repo = work / "repo"
    shutil.copytree(ROOT / "environments", repo / "environments")
    (repo / ".gitignore").write_text(".tenants/\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "demo")
    timed([*RECONCILER, "apply", "dev", "--yes"], repo, env=SECRETS)
    tenant = repo / ".tenants" / "dev.duckdb"
    duckdb(tenant, "INSERT INTO sales.customer_master VALUES (1, 'Ada', NULL, 'EU', 'ACTIVE', NULL), "
                   "(2, 'Bob', NULL, 'EU', 'ACTIVE', NULL), (3, 'Cy', NULL, 'US', 'ACTIVE', NULL), "
                   "(4, 'Di', NULL, 'EU', 'ACTIVE', NULL)")
    duckdb(tenant, f"INSERT INTO {TABLE} SELECT i, 1 + i % 4, (i % 1000) / 10, 'EUR', 'web', NULL "
                   f"FROM range({rows}) t(i)")
    return repo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    parser.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE if it is set")
    args = parser.parse_args()
    if not args.no_bytecode:
        SECRETS["PYTHONDONTWRITEBYTECODE"] = ""   # empty is unset for Python
    print(f"{'rows':>10} {'step':<52} {'wall_s':>8} {'cpu_s':>8} {'peak_mb':>8}")
    for rows in args.rows:
        work = Path(tempfile.mkdtemp(prefix=f"reconciler-checkpoint-{rows}-"))
        repo = filled(work, rows)
        tenant = repo / ".tenants" / "dev.duckdb"

        def step(name: str, *command: str) -> None:
            timing = timed([*RECONCILER, *command], repo, env=SECRETS)
            print(f"{rows:>10,} {name:<52} {timing.wall:>8.2f} {timing.cpu:>8.2f} {timing.peak_mb:>8.0f}", flush=True)

        step("checkpoints (a listing: what any command costs)", "checkpoints", "dev")
        step("checkpoint (one table)", "checkpoint", "dev", "--name", "good", "--select", "customer_transactions")
        step("run a data flow (checkpoints its target first)", "run", "dev", "df_segment_scoring")
        duckdb(tenant, f"DELETE FROM {TABLE} WHERE id % 10 = 0")
        step("rollback --checkpoint (dry run: counts)", "rollback", "dev", "--checkpoint", "good")
        step("rollback --checkpoint --execute", "rollback", "dev", "--checkpoint", "good", "--execute")
        if duckdb(tenant, f"SELECT count(*) FROM {TABLE}") != rows:
            raise SystemExit(f"{TABLE} does not hold its {rows} rows after the rollback")
        text = (repo / "environments/dev/sales/customer_transactions.yaml").read_text()
        (repo / "environments/dev/sales/customer_transactions.yaml").write_text(
            text.replace("primary_key", "  - {name: note, type: VARCHAR}\nprimary_key"))
        git(repo, "commit", "-qam", "a note per transaction")
        step("apply: a column added (checkpoints the table first)", "apply", "dev", "--yes")
        if not args.keep:
            shutil.rmtree(work)


if __name__ == "__main__":
    main()
