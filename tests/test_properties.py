"""Property-based tests (hypothesis): random landscapes and random sequences of them, applied to
real DuckDB tenants in a real git repository.

After each apply the tenant equals the desired state (a new plan is empty) and a second apply
changes nothing; rows of tables present in both states survive with the values of the columns
both states have; the latest state applied to an empty tenant gives the same catalog as every
step in turn; rolling back to any earlier state converges.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from conftest import Landscape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

COLUMNS = {"a": "INTEGER", "b": "VARCHAR", "c": "DOUBLE", "d": "DATE"}
TABLES = ["t0", "t1", "t2", "t3"]
VALUES = {"a": lambda n: n * 7, "b": lambda n: f"v{n}", "c": lambda n: n / 4, "d": lambda n: f"2024-01-{n % 28 + 1:02}"}
ENVIRONMENT = """name: dev
dialect: duckdb
tenants:
  - {name: steps, url: "duckdb:///.tenants/steps.duckdb", create: true}
  - {name: fresh, url: "duckdb:///.tenants/fresh.duckdb", create: true}
"""


@st.composite
def states(draw) -> dict:
    """One desired state: tables (id plus some columns) and views selecting some of their columns."""
    tables = {name: draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=4, unique=True))
              for name in draw(st.lists(st.sampled_from(TABLES), min_size=1, max_size=4, unique=True))}
    views = {}
    for index in range(draw(st.integers(0, 3))):
        table = draw(st.sampled_from(sorted(tables)))
        picked = draw(st.lists(st.sampled_from(tables[table]), max_size=len(tables[table]), unique=True))
        views[f"v{index}"] = (table, picked, draw(st.booleans()))
    return {"tables": tables, "views": views}


def write_state(root: Path, state: dict) -> None:
    folder = root / "environments" / "dev"
    shutil.rmtree(folder / "sales", ignore_errors=True)
    (folder / "sales").mkdir(parents=True)
    for name, columns in state["tables"].items():
        spec = "\n".join(f"  - {{name: {c}, type: {COLUMNS[c]}}}" for c in sorted(columns))
        (folder / "sales" / f"{name}.yaml").write_text(
            f"kind: Table\nname: {name}\nschema: sales\nstatus: active\ncolumns:\n"
            f"  - {{name: id, type: BIGINT, nullable: false}}\n{spec}\nprimary_key: [id]\n")
    for name, (table, picked, filtered) in state["views"].items():
        where = " WHERE id > 1" if filtered else ""
        (folder / "sales" / f"{name}.yaml").write_text(
            f"kind: View\nname: {name}\nschema: sales\nstatus: active\n"
            f"sql: SELECT {', '.join(['id', *picked])} FROM sales.{table}{where}\n")


def apply(landscape: Landscape, tenant: str = "steps") -> str:
    acknowledged = [arg for name in TABLES for arg in ("--allow-data-loss", f"sales.{name}")]
    result = landscape.run("apply", "dev", "--yes", "--tenant", tenant, *acknowledged)
    assert result.code == 0, result.output
    return result.stdout


def table_rows(landscape: Landscape, tenant: str, name: str) -> dict[int, dict]:
    with_names = landscape.sql(f"SELECT * FROM sales.{name}", tenant)
    columns = [r[0] for r in landscape.sql(f"SELECT column_name FROM duckdb_columns() WHERE schema_name = 'sales' "
                                           f"AND table_name = '{name}' ORDER BY column_index", tenant)]
    return {row[0]: {c: str(v) for c, v in zip(columns, row) if c != "id"} for row in with_names}


def catalog(landscape: Landscape, tenant: str) -> list[tuple]:
    return landscape.sql("SELECT schema_name, name, kind, content_hash, definition FROM _reconciler.objects "
                         "ORDER BY ALL", tenant)


def converges(landscape: Landscape, state: dict, expected: dict[str, dict[int, dict]]) -> None:
    """Apply `state`; check it holds, that a second apply is a no-op, and that rows survived with
    the values of the columns both states have (columns new to a row read NULL)."""
    write_state(landscape.root, state)
    apply(landscape)
    assert landscape.run("plan", "dev", "--tenant", "steps", "--detailed-exitcode").code == 0
    assert "steps: no-changes" in apply(landscape)
    for name in list(expected):
        if name not in state["tables"]:
            del expected[name]
            continue
        columns = state["tables"][name]
        expected[name] = {row_id: {c: v for c, v in values.items() if c in columns}
                          for row_id, values in expected[name].items()}
        assert table_rows(landscape, "steps", name) == {
            row_id: {c: values.get(c, "None") for c in columns} for row_id, values in expected[name].items()}


def add_rows(landscape: Landscape, state: dict, expected: dict[str, dict[int, dict]], step: int) -> None:
    for name, columns in state["tables"].items():
        row_id = 100 * step + TABLES.index(name)
        values = {c: VALUES[c](row_id) for c in columns}
        names = ", ".join(["id", *values])
        literals = ", ".join([str(row_id), *(f"'{v}'" if isinstance(v, str) else str(v) for v in values.values())])
        landscape.sql(f"INSERT INTO sales.{name} ({names}) VALUES ({literals})", "steps")
        expected.setdefault(name, {})[row_id] = table_rows(landscape, "steps", name)[row_id]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=st.lists(states(), min_size=2, max_size=3), back_to=st.integers(min_value=0))
def test_any_sequence_of_states_converges_keeps_rows_and_rolls_back(sequence: list[dict], back_to: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="reconciler-property-"))
    try:
        (root / "environments" / "dev").mkdir(parents=True)
        (root / "environments" / "dev" / "environment.yaml").write_text(ENVIRONMENT)
        landscape = Landscape(root)
        expected: dict[str, dict[int, dict]] = {}
        for step, state in enumerate(sequence):
            converges(landscape, state, expected)
            add_rows(landscape, state, expected, step)
            landscape.commit(f"state {step}")

        apply(landscape, "fresh")   # the latest state, straight onto an empty tenant
        assert catalog(landscape, "fresh") == catalog(landscape, "steps")

        earlier = sequence[back_to % (len(sequence) - 1)]
        converges(landscape, earlier, expected)
        plan = json.loads(landscape.run("plan", "dev", "--tenant", "steps", "--format", "json").stdout)
        assert plan["summary"] == {"create": 0, "update": 0, "replace": 0, "delete": 0}
    finally:
        shutil.rmtree(root, ignore_errors=True)
