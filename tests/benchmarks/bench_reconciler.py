"""Benchmark: this tool beside the raw DDL floor and the peers, on one generated landscape.

Not collected by pytest. Usage (from the repository root):

    .venv/bin/python tests/benchmarks/bench_reconciler.py --objects 1000 10000 50000
    .venv/bin/python tests/benchmarks/bench_reconciler.py --objects 1000 --engine postgres
    .venv/bin/python tests/benchmarks/bench_reconciler.py --objects 1000 --engine spark
    .venv/bin/python tests/benchmarks/bench_reconciler.py --objects 1000 --peers

For each N it generates a landscape with ../shared/bench/gen_landscape.py (same file format
as ours), commits it to a throw-away git repository, and times in fresh processes: the raw
DDL script in one transaction (the floor: DuckDB's execute() between BEGIN and COMMIT, or psql -1 -f
on PostgreSQL; on Spark, which has no transactions, the statements of the reconciler's own plan sent
one by one through one Spark Connect session to a server started from the pyspark wheel), `reconciler
validate`, a plan against an empty tenant, apply to an empty tenant, a no-op plan (recalled from what
the apply recorded in the tenant, and the long way: RECONCILER_NO_RECALL=1; with a warm cache, then
a cold one), and a one-view change planned and applied. With --peers, and when a venv holding
dbt-duckdb and SQLMesh exists (PEERS_VENV, default /tmp/peers-venv; ../shared/bench/peers.sh
creates it), `dbt run` and `sqlmesh plan --auto-apply` on a fresh database are timed too, and
the ratios to them printed. Prints wall seconds, peak RSS (MB) and CPU seconds per step: the CPU
(user + system) of the command's own processes, not of a database server, and far less moved than
the wall time by whatever else the machine runs, so two versions can be compared side by side on a
busy machine by it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT.parent / "shared" / "bench" / "gen_landscape.py"
PYTHON = sys.executable
RECONCILER = [str(Path(PYTHON).parent / "reconciler")]
PEERS = Path(os.environ.get("PEERS_VENV", "/tmp/peers-venv"))


class Timing(NamedTuple):
    wall: float     # seconds
    peak_mb: float  # the largest resident set of the command or a process it waited for
    cpu: float      # user + system seconds of the command and the processes it waited for


def timed(command: list[str], cwd: Path, ok: tuple[int, ...] = (0,), env: dict[str, str] | None = None
          ) -> Timing:
    """One command run in a fresh process (`env` added to its environment)."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors,
                                   env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code not in ok:
            errors.seek(0)
            sys.exit(f"{' '.join(command)} exited {code}: {errors.read().decode()[-2000:]}")
    return Timing(elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=b@x", *args], cwd=repo, check=True,
                   stdout=subprocess.DEVNULL)


def change_one_view(repo: Path) -> None:
    """A mid-layer view's filter changes: a one-object change with the same columns."""
    views = sorted(p for p in (repo / "environments" / "dev").rglob("*.yaml") if "kind: View" in p.read_text())
    view = views[len(views) // 2]
    text = view.read_text()
    view.write_text(re.sub(r"\bSELECT\b", "SELECT DISTINCT", text, count=1))


def portable_rounding(sql_text: str) -> str:
    """The generator's views call ROUND(double, digits), which PostgreSQL lacks (it rounds
    numerics only) and sqlglot cannot know from types it does not see: cast the argument."""
    import sqlglot
    from sqlglot import exp

    def cast(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Round) and node.args.get("decimals") is not None:
            node.set("this", exp.cast(node.this, "DECIMAL(38, 10)"))
        return node

    return ";\n".join(tree.transform(cast).sql(dialect="duckdb")
                       for tree in sqlglot.parse(sql_text, read="duckdb") if tree) + "\n"


def make_portable(repo: Path, work: Path) -> None:
    """Apply `portable_rounding` to every view of the landscape and to raw.sql (untimed)."""
    import yaml

    for path in (repo / "environments" / "dev").rglob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        if document.get("kind") == "View" and "ROUND(" in document["sql"].upper():
            document["sql"] = portable_rounding(document["sql"]).rstrip().rstrip(";")
            path.write_text(yaml.safe_dump(document, sort_keys=False))
    raw = work / "raw.sql"
    raw.write_text(portable_rounding(raw.read_text()))


class Postgres:
    """A throw-away PostgreSQL server (pgserver) with one database per run."""

    def __init__(self) -> None:
        import pgserver
        import psycopg

        data = Path(tempfile.mkdtemp(prefix="reconciler-bench-pg-"))
        server = pgserver.get_server(data, cleanup_mode="stop")
        # one transaction per apply holds a lock per object; the default (64 per connection)
        # runs out near 5,000 objects, for the floor's psql -1 as for the reconciler
        with psycopg.connect(server.get_uri(), autocommit=True) as connection:
            connection.execute("ALTER SYSTEM SET max_locks_per_transaction = 4096")
        server.cleanup()
        self.server = pgserver.get_server(data, cleanup_mode="stop")
        self.socket = self.server.get_uri().split("host=")[1]
        self.psql = str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "psql")

    def database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.server.get_uri(), autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
            connection.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@/{name}?host={self.socket}"


class Spark:
    """A Spark Connect server started from the pyspark wheel (as the tests start it), in-memory catalog."""

    def __init__(self) -> None:
        import socket

        import pyspark

        home = Path(pyspark.__file__).parent
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.work = Path(tempfile.mkdtemp(prefix="reconciler-bench-spark-"))
        self.server = subprocess.Popen(
            [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
             "--master", "local[2]", "--driver-memory", "2g", "--conf", "spark.ui.enabled=false",
             "--conf", "spark.sql.catalogImplementation=in-memory", "--conf", f"spark.sql.warehouse.dir={self.work}",
             "--conf", f"spark.connect.grpc.binding.port={self.port}", str(next((home / "jars").glob("spark-connect_*.jar")))],
            env={**os.environ, "SPARK_HOME": str(home)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        for line in self.server.stdout:
            if "Spark Connect server started" in line:
                break
        import threading

        threading.Thread(target=self.server.stdout.read, daemon=True).start()
        self.url = f"sc://localhost:{self.port}"

    def empty(self) -> None:
        from pyspark.sql import SparkSession

        session = SparkSession.builder.remote(self.url).create()
        for (name,) in session.sql("SHOW NAMESPACES").collect():
            if name != "default":
                session.sql(f"DROP SCHEMA `{name}` CASCADE").collect()

    def floor(self, statements: Path, cwd: Path) -> Timing:
        """The plan's statements, one by one through one Spark Connect session."""
        return timed([PYTHON, "-c", "import json, sys; from pyspark.sql import SparkSession; "
                      "s = SparkSession.builder.remote(sys.argv[1]).create(); "
                      "[s.sql(q).collect() for q in json.load(open(sys.argv[2]))]", self.url, str(statements)], cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--engine", choices=["duckdb", "postgres", "spark"], default="duckdb")
    parser.add_argument("--peers", action="store_true", help="also time dbt run and sqlmesh plan (DuckDB)")
    parser.add_argument("--keep", action="store_true", help="keep the generated folders")
    parser.add_argument("--checks", action="store_true", help="also apply the landscape with a not_null and a "
                        "unique check on every table to a second empty tenant, and time `reconciler check`")
    args = parser.parse_args()
    postgres = Postgres() if args.engine == "postgres" else None
    spark = Spark() if args.engine == "spark" else None
    print(f"{'objects':>8} {args.engine:<10} {'step':<44} {'wall_s':>8} {'peak_mb':>8} {'vs_floor':>8} {'cpu_s':>8}")
    for count in args.objects:
        work = Path(tempfile.mkdtemp(prefix=f"reconciler-bench-{count}-"))
        subprocess.run([PYTHON, str(GENERATOR), "--objects", str(count), "--out", str(work)],
                       check=True, stdout=subprocess.DEVNULL)
        repo = work / "landscape"
        env_file = repo / "environments" / "dev" / "environment.yaml"
        tenant_url = f"duckdb:///{work}/tenants/dev.duckdb"
        if postgres:
            make_portable(repo, work)
            tenant_url = postgres.database(f"bench_{count}")
            env_file.write_text(re.sub(r"duckdb:///\S+", tenant_url, env_file.read_text()))
        if spark:
            spark.empty()
            tenant_url = spark.url
            env_file.write_text(re.sub(r"duckdb:///\S+", tenant_url, env_file.read_text()))
        env_file.write_text(env_file.read_text().replace(tenant_url + "\n", tenant_url + "\n    create: true\n"))
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "landscape")

        if spark:
            import json

            planned = subprocess.run([*RECONCILER, "--repo", str(repo), "plan", "dev", "--format", "json"],
                                     capture_output=True, text=True, check=True)
            statements = work / "spark_statements.json"
            statements.write_text(json.dumps([q for tenant in json.loads(planned.stdout)["tenants"]
                                              for change in tenant["changes"] for q in change["statements"]]))
            spark.floor(statements, work)   # once to warm the server's JVM, which the reconciler then finds warm
            spark.empty()
            floor = spark.floor(statements, work)
            spark.empty()
        elif postgres:
            import sqlglot

            script = work / "raw_postgres.sql"
            script.write_text(";\n".join(sqlglot.transpile((work / "raw.sql").read_text(), read="duckdb",
                                                           write="postgres")) + ";\n")
            floor_url = postgres.database(f"floor_{count}")
            floor = timed([postgres.psql, "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(script), floor_url],
                          work)
        else:
            # the floor is the whole script in one transaction, as an apply runs it (autocommitted
            # statements are about 1.4x slower, which would flatter the ratio)
            floor = timed([PYTHON, "-c", "import duckdb,sys; c = duckdb.connect(sys.argv[1]); "
                           "c.execute('BEGIN'); c.execute(open(sys.argv[2]).read()); c.execute('COMMIT')",
                           str(work / "floor_raw.duckdb"), str(work / "raw.sql")], work)
        rows = [("raw DDL script (floor)", *floor)]
        cli = [*RECONCILER, "--repo", str(repo)]
        shutil.rmtree(repo / ".git" / "reconciler", ignore_errors=True)   # the cache lives in the git directory
        rows.append(("validate (cold cache)",) + timed([*cli, "validate", "dev"], repo))
        rows.append(("validate (warm cache)",) + timed([*cli, "validate", "dev"], repo))
        rows.append(("plan, empty tenant, --no-verify",) + timed([*cli, "plan", "dev", "--no-verify"], repo))
        rows.append(("plan, empty tenant, proven on a shadow",) + timed([*cli, "plan", "dev"], repo))
        rows.append(("apply, empty tenant",) + timed([*cli, "apply", "dev", "--yes"], repo))
        # what the apply recorded in the tenant makes the recalled plans: nothing validated, rendered or diffed
        no_op = [*cli, "plan", "dev", "--detailed-exitcode"]
        rows.append(("no-op plan, recalled (warm cache)",) + timed(no_op, repo))
        rows.append(("no-op plan, the long way (warm cache)",) + timed(no_op, repo, env={"RECONCILER_NO_RECALL": "1"}))
        shutil.rmtree(repo / ".git" / "reconciler", ignore_errors=True)
        rows.append(("no-op plan, recalled (cold cache)",) + timed(no_op, repo))
        rows.append(("no-op plan, the long way (no cache)",) + timed(no_op, repo, env={"RECONCILER_NO_CACHE": "1"}))
        timed(no_op, repo, env={"RECONCILER_NO_RECALL": "1"})   # the cache warm again, as before the edit below
        change_one_view(repo)
        timed([*cli, "validate", "dev"], repo)   # the edit is parsed once, as an editor or CI would
        rows.append(("one-view change: plan (warm), --no-verify",) + timed(
            [*cli, "plan", "dev", "--detailed-exitcode", "--no-verify"], repo, ok=(2,)))
        rows.append(("one-view change: plan (warm), proven",) + timed([*cli, "plan", "dev", "--detailed-exitcode"],
                                                                     repo, ok=(2,)))
        rows.append(("one-view change: apply (warm)",) + timed([*cli, "apply", "dev", "--yes"], repo))
        if args.checks:
            rows += with_checks(repo, cli, tenant_url)
        if args.peers and not postgres:
            rows += peers(work)
        for step, wall, peak, cpu in rows:
            print(f"{count:>8} {args.engine:<10} {step:<44} {wall:>8.2f} {peak:>8.0f} {wall / floor.wall:>8.2f} "
                  f"{cpu:>8.2f}", flush=True)
        if not args.keep:
            shutil.rmtree(work)
    if spark:
        os.killpg(spark.server.pid, 15)


def with_checks(repo: Path, cli: list[str], tenant_url: str) -> list[tuple[str, float, float, float]]:
    """The same landscape with `checks: [not_null, unique]` on every table's first column, applied to a
    second empty tenant (beside the apply without checks above), then `reconciler check` alone."""
    import yaml

    for path in (repo / "environments").rglob("*.yaml"):
        document = yaml.safe_load(path.read_text())
        if isinstance(document, dict) and document.get("kind") == "Table":
            document["columns"][0]["checks"] = ["not_null", "unique"]
            path.write_text(yaml.safe_dump(document, sort_keys=False))
    env_file = repo / "environments" / "dev" / "environment.yaml"
    if tenant_url.startswith("duckdb:///"):
        env_file.write_text(env_file.read_text().replace(tenant_url, tenant_url.replace("dev.duckdb", "checked.duckdb")))
    else:
        sys.exit("--checks is measured on DuckDB")
    git(repo, "commit", "-qam", "a not_null and a unique check on every table")
    timed([*cli, "validate", "dev"], repo)   # parsed once, as the apply without checks found it
    return [("apply, empty tenant, 2 checks per table",) + timed([*cli, "apply", "dev", "--yes"], repo),
            ("check (every table's 2 checks)",) + timed([*cli, "check", "dev"], repo)]


def peers(work: Path) -> list[tuple[str, float, float, float]]:
    """dbt run and sqlmesh plan --auto-apply on fresh databases holding only the source tables."""
    if not (PEERS / "bin" / "dbt").exists() or not (PEERS / "bin" / "sqlmesh").exists():
        print(f"# no peers venv at {PEERS} (../shared/bench/peers.sh creates it); peers skipped", flush=True)
        return []
    load = [str(PEERS / "bin" / "python"), "-c", "import duckdb,sys; duckdb.connect(sys.argv[1])"
            ".execute(open(sys.argv[2]).read())"]
    subprocess.run([*load, str(work / "dbt.duckdb"), str(work / "dbt" / "setup_sources.sql")], check=True)
    dbt = timed([str(PEERS / "bin" / "dbt"), "run", "--project-dir", str(work / "dbt"), "--profiles-dir",
                 str(work / "dbt")], work)
    subprocess.run([*load, str(work / "sqlmesh.duckdb"), str(work / "sqlmesh" / "setup_sources.sql")], check=True)
    sqlmesh = timed([str(PEERS / "bin" / "sqlmesh"), "-p", str(work / "sqlmesh"), "plan", "--auto-apply",
                     "--no-prompts"], work)
    return [("peer: dbt run (empty database)",) + dbt, ("peer: sqlmesh plan --auto-apply",) + sqlmesh]


if __name__ == "__main__":
    main()
