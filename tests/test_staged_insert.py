"""A flow's INSERT split in two (`sql.staged`: its rows into a stage made like its target, then from the stage
into the target) must leave the target exactly as the INSERT itself does, Spark being the oracle: each generated
INSERT (column lists in every order, some columns left to their default, BY NAME, OVERWRITE, VALUES, a CTE,
values cast on the way in, some of which Spark refuses to cast) runs on one parquet table directly and on a
twin through the stage: both refused or neither, and the two tables' rows the same."""

from __future__ import annotations

import itertools

from reconciler.desired import sql

COLUMNS = "id INT, amount DECIMAL(10,2), note STRING DEFAULT 'none', day DATE"
ROWS = "SELECT 1 AS id, 2.5 AS amount, 'a' AS note, DATE'2026-01-02' AS day " \
       "UNION ALL SELECT 2, 3, NULL, DATE'2026-01-03'"
LISTS = [names for n in (2, 3, 4) for names in itertools.permutations(["id", "amount", "note", "day"], n)
         if "id" in names][::5]   # every shape of list, thinned to keep the run short


def inserts(table: str) -> list[str]:
    """INSERTs into `table` of every shape a flow may write (and a refresh's INSERT OVERWRITE)."""
    shapes = [f"INSERT INTO {table} {ROWS}", f"INSERT OVERWRITE {table} {ROWS}",
              f"INSERT INTO {table} VALUES (7, 1, 'v', DATE'2026-02-01')",
              f"WITH src AS ({ROWS}) INSERT INTO {table} SELECT id + 10, amount * 2, note, day FROM src",
              f"INSERT INTO {table} BY NAME SELECT DATE'2026-03-01' AS day, 9 AS id",
              f"INSERT INTO {table} BY NAME SELECT * FROM ({ROWS}) AS r"]
    for names in LISTS:
        source = {"id": "id * 100", "amount": "CAST(amount AS STRING)", "note": "upper(note)", "day": "day"}
        shapes.append(f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(source[n] for n in names)} "
                      f"FROM ({ROWS}) AS r")
    return shapes


def rows(spark, table: str) -> list[tuple]:
    return sorted((tuple(row) for row in spark.sql(f"SELECT * FROM {table}").collect()), key=repr)


def test_a_staged_insert_leaves_the_target_as_the_insert_itself_does(spark) -> None:
    spark.sql("CREATE SCHEMA staging_oracle")
    direct, through, stage = "staging_oracle.direct", "staging_oracle.through", "staging_oracle.t__run_staged"
    compared: list[bool] = []
    for statement in inserts(direct):
        for table in (direct, through):
            spark.sql(f"DROP TABLE IF EXISTS {table}")
            spark.sql(f"CREATE TABLE {table} ({COLUMNS}) USING parquet")
            spark.sql(f"INSERT INTO {table} VALUES (0, 0, 'kept', DATE'2026-01-01')")
        refused = outcome(spark, [statement])
        into_stage, move = sql.staged(statement.replace(direct, through), stage, "spark")
        spark.sql(f"DROP TABLE IF EXISTS {stage}")
        spark.sql(f"CREATE TABLE {stage} LIKE {through}")
        said = f"{statement}\n  staged: {into_stage}\n  moved: {move}"
        assert (outcome(spark, [into_stage, move]) is None) == (refused is None), said
        assert rows(spark, through) == rows(spark, direct), said
        compared.append(refused is None)
    assert len(compared) == len(inserts(direct)) > 10 and 1 < sum(compared) < len(compared)   # both kinds seen


def outcome(spark, statements: list[str]) -> str | None:
    """None once `statements` ran, else why Spark refused one (the rest not run)."""
    from pyspark.errors import AnalysisException

    for statement in statements:
        try:
            spark.sql(statement).collect()
        except AnalysisException as refused:
            return str(refused).splitlines()[0]
    return None
