"""The TPC-H and TPC-DS corpus, written out by DuckDB's own `tpch` and `tpcds` extensions.

`PYTHON tests/tools/tpc.py OUT` (PYTHON: a Python whose DuckDB can load the extensions: .ci/run makes
one with PyPI's `duckdb==1.5.5`, `duckdb-extension-tpch==1.5.5` and `duckdb-extension-tpcds==1.5.5`,
which are built for that DuckDB only) writes into OUT:

- `corpus.json`: per benchmark (schema `tpch`, `tpcds`), each table's columns (name, type, nullable)
  in order, and the queries as the extension publishes them (`tpch_queries()`, `tpcds_queries()`);
- `data/<schema>/<table>.parquet`: the tables' rows at scale factor `SCALE` (`dbgen`, `dsdgen`).

Nothing of TPC's is kept in this repository: the queries and the generators are TPC's, under TPC's
End User License Agreement (DuckDB ships it with dbgen and dsdgen), and come from the packages each
time (a few seconds). Runs only in that other Python; imports nothing of the reconciler.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SCALE = 0.01   # the smallest scale both generators support (dsdgen loops below it) and DuckDB's answers use
BENCHMARKS = {"tpch": ("duckdb_extension_tpch", "dbgen", "tpch_queries"),
              "tpcds": ("duckdb_extension_tpcds", "dsdgen", "tpcds_queries")}


def extension(package: str, duckdb_version: str) -> Path:
    """The extension file a PyPI extension package holds for this DuckDB (loaded from it: nothing is
    downloaded at run time)."""
    module = __import__(package)
    name = package.removeprefix("duckdb_extension_")
    return Path(module.__file__).parent / "extensions" / f"v{duckdb_version}" / f"{name}.duckdb_extension"


def write(out: Path) -> None:
    import duckdb

    corpus = {}
    with duckdb.connect() as connection:
        for schema, (package, generator, queries) in BENCHMARKS.items():
            connection.execute(f"LOAD '{extension(package, duckdb.__version__)}'")
            connection.execute(f"CREATE SCHEMA {schema}")
            connection.execute(f"CALL {generator}(sf = {SCALE}, schema = '{schema}')")
            tables = {}
            for table, column, kind, nullable in connection.execute(
                    "SELECT table_name, column_name, data_type, is_nullable FROM duckdb_columns() "
                    "WHERE schema_name = ? ORDER BY table_name, column_index", [schema]).fetchall():
                tables.setdefault(table, []).append({"name": column, "type": kind, "nullable": nullable})
            (out / "data" / schema).mkdir(parents=True, exist_ok=True)
            for table in tables:
                connection.execute(f"COPY {schema}.{table} TO '{out / 'data' / schema / table}.parquet' "
                                   "(FORMAT parquet)")
            corpus[schema] = {"tables": tables, "queries": {
                f"q{number:02d}": text for number, text in
                connection.execute(f"SELECT query_nr, query FROM {queries}() ORDER BY query_nr").fetchall()}}
        corpus["origin"] = {"duckdb": duckdb.__version__, "scale_factor": SCALE}
    (out / "corpus.json").write_text(json.dumps(corpus, indent=1))


if __name__ == "__main__":
    write(Path(sys.argv[1]))
