"""Shared fixtures: a landscape repository in a temporary git repo, and a CLI runner.

Every test works on real files, a real git repository (GitPython) and real DuckDB tenant
files created inside the temporary repository; nothing is mocked.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import git
import pytest
import sqlglot

from reconciler.cli import main

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "environments"


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Landscape:
    """A throw-away landscape repository with helpers to edit, commit and run the CLI."""

    def __init__(self, root: Path):
        self.root = root
        self.repo = git.Repo.init(root, initial_branch="main")
        with self.repo.config_writer() as config:
            config.set_value("user", "name", "Test User")
            config.set_value("user", "email", "test@example.invalid")
        (root / ".gitignore").write_text(".tenants/\n.reconciler/\n")

    def run(self, *args: str) -> Result:
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["--repo", str(self.root), *args])
        return Result(code, stdout.getvalue(), stderr.getvalue())

    def path(self, relative: str) -> Path:
        return self.root / relative

    def write(self, relative: str, text: str) -> None:
        path = self.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def edit(self, relative: str, old: str, new: str) -> None:
        text = self.path(relative).read_text()
        assert old in text, f"{old!r} not in {relative}"
        self.path(relative).write_text(text.replace(old, new))

    def remove(self, relative: str) -> None:
        self.path(relative).unlink()

    def commit(self, message: str) -> str:
        self.repo.git.add(A=True)
        self.repo.index.commit(message)
        return self.repo.head.commit.hexsha

    def tenant(self, name: str = "dev") -> Path:
        return self.root / ".tenants" / f"{name}.duckdb"

    def sql(self, statement: str, tenant: str = "dev") -> list[tuple]:
        with duckdb.connect(str(self.tenant(tenant))) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []


# Rows every view of the demo returns something for: tests that compare engines load them into each.
DEMO_ROWS = ("INSERT INTO sales.customer_master VALUES (1, 'Ada', 'ada@example.com', 'EU', 'ACTIVE', "
             "TIMESTAMP '2024-01-01 10:00:00'), (2, 'Bob', NULL, 'EU', 'ACTIVE', NULL), "
             "(3, 'Cy', 'cy@example.com', 'US', 'ACTIVE', NULL), (4, 'Di', NULL, 'EU', 'CLOSED', NULL)",
             "INSERT INTO sales.customer_transactions VALUES (10, 1, 2500.00, 'EUR', 'web', NULL), "
             "(11, 1, 9000.50, 'EUR', 'shop', TIMESTAMP '2024-02-01 09:30:00'), (12, 2, 10.00, 'EUR', 'web', NULL), "
             "(13, 3, 99.99, 'USD', 'web', NULL)")
DEMO_SECRETS = ("ERP_PASSWORD", "ERP_TEST_PASSWORD", "ERP_PROD_PASSWORD")


@pytest.fixture(autouse=True)
def demo_secrets(monkeypatch) -> None:
    """The variables the demo's connections reference: an apply that deploys them needs them set."""
    for name in DEMO_SECRETS:
        monkeypatch.setenv(name, f"test-value-of-{name.lower()}")


@pytest.fixture(autouse=True)
def one_commands_disclosure():
    """What a test told `disclosure` (sensitive names, --show-engine-values) ends with it, as a command's does."""
    yield
    from reconciler import disclosure
    disclosure.forget()


@pytest.fixture
def landscape(tmp_path: Path) -> Landscape:
    """The demo landscape (dev, qa, prod), committed in a fresh git repository."""
    shutil.copytree(DEMO, tmp_path / "environments")
    result = Landscape(tmp_path)
    result.commit("demo landscape")
    return result


class Hold:
    """Holds real applies at a chosen statement (RECONCILER_FAULT=HOLD:N) until the test lets them
    go: the apply says so on stderr and waits for a line on stdin. Every wait is on a pipe, never on
    the clock. Start held processes with `popen`."""

    def env(self, after: int = 1) -> dict[str, str]:
        return {**os.environ, "RECONCILER_FAULT": f"HOLD:{after}"}

    @staticmethod
    def popen(command: list[str], env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    @staticmethod
    def held(process: subprocess.Popen, *tenants: str) -> None:
        """Return once `process` holds every one of `tenants` (default dev) mid-transaction, in
        whatever order they say so; fail if it ends first."""
        waiting = set(tenants or ("dev",))
        while waiting:
            line = said(process, "reconciler fault: held ")
            waiting.discard(line.strip().rsplit(" ", 1)[-1])

    @staticmethod
    def release(process: subprocess.Popen, holders: int = 1) -> None:
        process.stdin.write("\n" * holders)
        process.stdin.flush()


def said(process: subprocess.Popen, text: str) -> str:
    """Read `process`'s stderr up to the line holding `text` (that line); fail if it ends without it, or
    a tenant says it failed (the fault hook's line: it will never get there, and another tenant may
    keep the process running). Whatever stops the wait (pytest-timeout's hang guard) shows what was said."""
    lines = []
    try:
        for line in process.stderr:
            lines.append(line)
            if text in line:
                return line
            if line.startswith("reconciler fault: failed "):
                break
    except BaseException as stopped:
        stopped.add_note(f"stderr so far: {''.join(lines)}")
        raise
    raise AssertionError(f"{text!r} never came; stderr: {''.join(lines)}")


@pytest.fixture
def hold() -> Hold:
    return Hold()


def snapshot(path: Path, audit: bool = True) -> dict:
    """Everything a tenant holds: objects, definitions, rows and the catalog; for before/after checks.

    With audit=False the audit table is left out (a failed apply records itself there).
    """
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = connection.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT internal ORDER BY 1, 2").fetchall()
        state = {"views": connection.execute(
            "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1, 2").fetchall(),
                 "columns": connection.execute(
            "SELECT schema_name, table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
            "ORDER BY ALL").fetchall()}
        for schema, table in tables:
            if not audit and (schema, table) == ("_reconciler", "runs"):
                continue
            state[f"{schema}.{table}"] = sorted(
                map(repr, connection.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()))
        return state


# -- both engines ----------------------------------------------------------------------------
# The shared behavioural suite (tests/test_engines.py) runs every case on DuckDB and on a real
# PostgreSQL server that the suite starts itself (pgserver bundles the binaries); no mocks.

@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory):
    import pgserver

    server = pgserver.get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture
def postgres_database(postgres_server, tmp_path: Path) -> str:
    """A fresh, empty database on the test server for this test: its tenant URL."""
    import psycopg

    name = f"t_{tmp_path.name.lower().replace('-', '_')}"[:60]
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@/{name}?host={postgres_server.get_uri().split('host=')[1]}"


class EngineLandscape(Landscape):
    """The demo landscape with dev's tenant on one engine; helpers that read any engine (SQL is
    written as for PostgreSQL and transpiled for Spark)."""

    def __init__(self, root: Path, engine: str, postgres_url: str | None, spark=None):
        super().__init__(root)
        self.engine, self.postgres_url, self.spark = engine, postgres_url, spark

    def sql(self, statement: str, tenant: str = "dev") -> list[tuple]:
        if self.engine == "spark" and tenant == "dev":
            results: list[tuple] = []
            for part in sqlglot.transpile(statement, read="postgres", write="spark"):
                for table in sqlglot.parse_one(part, read="spark").find_all(sqlglot.exp.Table):
                    if self.spark.catalog.tableExists(table.sql("spark")):   # another session re-created it
                        self.spark.sql(f"REFRESH TABLE {table.sql('spark')}").collect()
                results = [tuple(row) for row in self.spark.sql(part).collect()]
            return results
        if self.engine == "duckdb" or tenant != "dev":
            return super().sql(statement, tenant)
        import psycopg

        with psycopg.connect(self.postgres_url, autocommit=True) as connection:
            results = []
            for part in [s for s in statement.split(";") if s.strip()]:
                cursor = connection.execute(part)
                results = cursor.fetchall() if cursor.description else []
            return results

    def columns(self, schema: str, table: str) -> list[str]:
        if self.engine == "spark":
            return [column.name for column in self.spark.catalog.listColumns(f"`{schema}`.`{table}`")]
        query = ("SELECT column_name FROM information_schema.columns WHERE table_schema = {0} AND table_name = {0} "
                 "ORDER BY ordinal_position")
        if self.engine == "duckdb":
            with duckdb.connect(str(self.tenant())) as connection:
                return [row[0] for row in connection.execute(query.format("?"), [schema, table]).fetchall()]
        import psycopg

        with psycopg.connect(self.postgres_url, autocommit=True) as connection:
            return [row[0] for row in connection.execute(query.format("%s"), [schema, table]).fetchall()]

    def state(self) -> dict:
        """Objects and rows of dev's tenant, read through information_schema (Spark: its catalog)."""
        if self.engine == "spark":
            return self._spark_state()
        user = "table_schema NOT IN ('information_schema', 'pg_catalog', '_reconciler', '_reconciler_backup')"
        tables = self.sql(f"SELECT table_schema, table_name, table_type FROM information_schema.tables "
                          f"WHERE {user} ORDER BY 1, 2")
        state = {"objects": tables, "columns": self.sql(
            f"SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            f"WHERE {user} ORDER BY 1, 2, ordinal_position")}
        for schema, table, kind in tables:
            state[f"{schema}.{table}"] = sorted(map(repr, self.sql(f'SELECT * FROM "{schema}"."{table}"')))
        return state


    def _spark_state(self) -> dict:
        state: dict = {"objects": [], "columns": []}
        for (schema,) in sorted(self.spark.sql("SHOW NAMESPACES").collect()):
            if schema.startswith("_reconciler") or schema == "default":
                continue
            for table in sorted(self.spark.catalog.listTables(schema), key=lambda t: t.name):
                name = f"`{schema}`.`{table.name}`"
                state["objects"].append((schema, table.name, table.tableType))
                state["columns"] += [(schema, table.name, c.name, c.dataType)
                                     for c in self.spark.catalog.listColumns(name)]
                state[f"{schema}.{table.name}"] = sorted(map(repr, self.sql(f'SELECT * FROM "{schema}"."{table.name}"')))
        return state


@pytest.fixture(params=["duckdb", "postgres"])
def engine_landscape(request, tmp_path: Path) -> EngineLandscape:
    """The demo with dev on DuckDB, then on PostgreSQL (engines with transactional DDL)."""
    return _engine_landscape(request, tmp_path)


@pytest.fixture(params=["duckdb", "postgres", "spark"])
def every_engine(request, tmp_path: Path) -> EngineLandscape:
    """The demo with dev on each engine in turn, Spark SQL included (tests/test_engines.py)."""
    return _engine_landscape(request, tmp_path)


def _engine_landscape(request, tmp_path: Path) -> EngineLandscape:
    url, spark = None, None
    shutil.copytree(DEMO, tmp_path / "environments")
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_database")
    elif request.param == "spark":
        url, spark = request.getfixturevalue("spark_server"), request.getfixturevalue("spark")
    if url:
        env = tmp_path / "environments" / "dev" / "environment.yaml"
        env.write_text(env.read_text().replace("duckdb:///.tenants/dev.duckdb", url))
    result = EngineLandscape(tmp_path, request.param, url if request.param == "postgres" else None, spark)
    result.commit("demo landscape")
    return result


def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist (`-n`, as .ci/run runs the suite), every test on the Spark server runs on one
    worker (`--dist loadgroup`): one JVM started once, not one per worker."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        params = getattr(item, "callspec", None)
        if {"spark", "spark_server", "spark_landscape", "delta_server"} & set(item.fixturenames) \
                or (params is not None and "spark" in params.params.values()):
            item.add_marker(pytest.mark.xdist_group("spark"))


# -- Spark ---------------------------------------------------------------------------------
# A real Spark Connect server started from the pyspark wheel (Java 17 is on the machine): the
# server class from its connect jar, an in-memory catalog and a warehouse in a temporary folder;
# with Delta Lake's session extension and catalog when its jars are given (.ci/run fetches them).

DELTA_JARS = "RECONCILER_DELTA_JARS"   # a folder of jars: delta-spark and delta-storage (.ci/delta/pom.xml)
DELTA_CONF = ("spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
              "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog")
WITHOUT_DELTA = (f"the test Spark server has no Delta Lake: run .ci/run, which fetches it, or fetch it with "
                 f"`mvn -q -f .ci/delta/pom.xml dependency:copy-dependencies -DoutputDirectory=DIR` and set "
                 f"{DELTA_JARS}=DIR")


def delta_jars() -> list[Path]:
    """The jars the folder in RECONCILER_DELTA_JARS holds; none when it is unset. A folder named
    that holds none is a broken setup, never a reason to run without Delta."""
    folder = os.environ.get(DELTA_JARS)
    if not folder:
        return []
    jars = sorted(Path(folder).glob("*.jar"))
    assert jars, f"{DELTA_JARS}={folder} holds no jars: {WITHOUT_DELTA}"
    return jars


@contextlib.contextmanager
def spark_connect_server(work: Path, jars: list[Path], port: int | None = None,
                         lasting: bool = False) -> Iterator[str]:
    """A Spark Connect server on `port` (else a free one), its warehouse in `work`, with `jars` (Delta's:
    then with its session extension and catalog); yields its `sc://` URL once it says it listens. Its
    catalog is in memory, or, `lasting`, a Hive metastore in `work` (Derby), which a server started again
    on the same `work` finds as it was left."""
    import socket
    import threading

    import pyspark

    home = Path(pyspark.__file__).parent
    jar = next((home / "jars").glob("spark-connect_*.jar"))
    if port is None:
        with socket.socket() as probe:   # a free port, chosen by the kernel
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
    delta = ["--jars", ",".join(map(str, jars)), *(part for conf in DELTA_CONF for part in ("--conf", conf))] \
        if jars else []
    catalog = ["--conf", "spark.sql.catalogImplementation=hive", "--driver-java-options", f"-Dderby.system.home={work}",
               "--conf", f"spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={work}/metastore;"
               "create=true"] if lasting else ["--conf", "spark.sql.catalogImplementation=in-memory"]
    server = subprocess.Popen(
        [str(home / "bin" / "spark-submit"), "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
         "--master", "local[2]", "--driver-memory", "1g", "--conf", "spark.ui.enabled=false", *delta,
         *catalog, "--conf", f"spark.sql.warehouse.dir={work}",
         "--conf", f"spark.connect.grpc.binding.port={port}", str(jar)],
        env={**os.environ, "SPARK_HOME": str(home)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    lines = []
    for line in server.stdout:   # the server's own word that it listens, not a clock
        lines.append(line)
        if "Spark Connect server started" in line:
            break
    else:
        raise AssertionError("the Spark Connect server did not start:\n" + "".join(lines[-30:]))
    threading.Thread(target=server.stdout.read, daemon=True).start()   # keep its log from filling the pipe
    try:
        yield f"sc://localhost:{port}"
    finally:
        os.killpg(server.pid, 15)
        server.wait()


@pytest.fixture(scope="session")
def spark_server(tmp_path_factory) -> Iterator[str]:
    """The `sc://` URL of a Spark Connect server this test session started, with Delta Lake when
    RECONCILER_DELTA_JARS gives its jars: every Spark test runs with Delta's catalog on."""
    with spark_connect_server(tmp_path_factory.mktemp("spark"), delta_jars()) as url:
        yield url


@pytest.fixture(scope="module")
def spark_server_without_delta(tmp_path_factory, spark_server: str) -> Iterator[str]:
    """A Spark Connect server without Delta Lake (what an endpoint without it answers): the test
    server itself when it has none, else a second one, for the module that asks."""
    if not delta_jars():
        yield spark_server
        return
    with spark_connect_server(tmp_path_factory.mktemp("spark-without-delta"), []) as url:
        yield url


def fresh_spark_session(url: str) -> Iterator:
    """A Spark Connect session on `url`, with every schema but `default` dropped first."""
    from pyspark.sql import SparkSession

    session = SparkSession.builder.remote(url).create()
    for (name,) in session.sql("SHOW NAMESPACES").collect():
        if name != "default":
            session.sql(f"DROP SCHEMA `{name}` CASCADE")
    yield session
    session.stop()
    _STOPPED_SPARK_SESSIONS.append(session)   # never collected mid-test: see reconciler/tenants/spark.py


@pytest.fixture
def spark(spark_server):
    """A Spark Connect session on the test server, with every schema but `default` dropped first."""
    yield from fresh_spark_session(spark_server)


@pytest.fixture
def delta_server(request) -> str:
    """The test server's URL, for a test of Delta tables: skipped where the server has no Delta Lake
    (before it starts; a person without the jars is told how to get them), failed under CI, which
    must run it."""
    if not delta_jars():
        if os.environ.get("CI") == "true":
            pytest.fail(WITHOUT_DELTA)
        pytest.skip(WITHOUT_DELTA)
    return request.getfixturevalue("spark_server")


@pytest.fixture
def delta_spark(delta_server: str, request):
    """A session on the test server with Delta Lake, every schema but `default` dropped first."""
    return request.getfixturevalue("spark")


_STOPPED_SPARK_SESSIONS: list = []


def landscape_on_spark(root: Path, url: str) -> Landscape:
    """The demo with dev on the Spark Connect server at `url`, committed."""
    shutil.copytree(DEMO, root / "environments")
    environment = root / "environments/dev/environment.yaml"
    environment.write_text(environment.read_text().replace("duckdb:///.tenants/dev.duckdb", url))
    landscape = Landscape(root)
    landscape.commit("the demo, dev on Spark")
    return landscape


@pytest.fixture
def spark_landscape(tmp_path: Path, spark_server: str, spark) -> Landscape:
    """The demo with dev on the test Spark Connect server (every other schema dropped), committed."""
    return landscape_on_spark(tmp_path, spark_server)


@contextlib.contextmanager
def a_host_nobody_may_reach() -> Iterator[int]:
    """A port on this machine that a test expects no connection to: yields it, then fails if anything
    connected while the block ran (a pull request's plan sending a secret to the host it names)."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    try:
        yield listener.getsockname()[1]
        try:
            listener.accept()
        except BlockingIOError:
            return
        raise AssertionError("something connected to the host the pull request named")
    finally:
        listener.close()
