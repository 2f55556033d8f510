"""sqlglot's compiled build (sqlglotc) is the one installed and loaded, and everything runs on it (issue 22).

sqlglotc refuses interpreted subclasses of its Parser and Generator; `$$NAME` parameters used to be
read by such subclasses, so every command exited 70 where it was installed. They are now read with
each dialect's own tokenizer and parser. Here: the CLI on the compiled build; `$$NAME` held against
two oracles, sqlglot's own reading of the same SQL with a literal where each parameter stands, and
the subclassing implementation it replaced (tests/templated_reference.py, in a process on the
pure-Python sqlglot); and SQL nested deep enough to overflow the compiled parser's C stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

import pytest
from conftest import Landscape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import cli
from reconciler.desired import sql

REFERENCE = Path(__file__).with_name("templated_reference.py")
# A probe running the CLI as `reconciler` does, then saying which sqlglot parser it ran on.
CLI = ("import sys\nfrom reconciler.cli import main\ncode = main(sys.argv[1:])\nimport sqlglot.parser\n"
       "print('parser:', sqlglot.parser.__file__, file=sys.stderr)\nsys.exit(code)")


def test_the_compiled_sqlglot_is_installed_at_sqlglots_version_and_loaded() -> None:
    import sqlglot.generator
    import sqlglot.parser
    import sqlglot.parsers.duckdb
    import sqlglot.tokenizer_core

    assert metadata.version("sqlglotc") == metadata.version("sqlglot")
    assert cli.sqlglot_compiled() and cli.sqlglot_recursion_limit() == 1_500
    for module in (sqlglot.parser, sqlglot.parsers.duckdb, sqlglot.generator, sqlglot.tokenizer_core):
        assert module.__file__.endswith(tuple(EXTENSION_SUFFIXES)), module.__file__


def test_validate_plan_and_apply_run_on_the_compiled_build(landscape: Landscape) -> None:
    """The demo's dev view reads `$$REGION_PARAM`: each command in a fresh process, as a user runs it."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", CLI, "--repo", str(landscape.root), *args],
                              capture_output=True, text=True)

    for args, said in ((["validate", "dev"], "valid: dev"), (["plan", "dev"], "Plan: 9 to create"),
                       (["apply", "dev", "--yes"], "dev: applied"), (["plan", "dev"], "No changes")):
        result = run(*args)
        assert result.returncode == 0 and said in result.stdout, result.stdout + result.stderr
        assert result.stderr.splitlines()[-1].endswith(tuple(EXTENSION_SUFFIXES)), result.stderr
    [(view,)] = landscape.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'vw_customer_active'")
    assert "region = 'EU'" in view


def test_a_dollar_pair_in_a_string_a_quoted_name_a_comment_or_a_dollar_quote_is_not_a_parameter() -> None:
    text = ("SELECT '$$A' AS \"$$B\", $q$ $$C $q$ AS c, DATE_TRUNC('$$D', d) AS m /* $$E */\n"
            "FROM t WHERE r = $$REGION -- $$F\n")
    for dialect in ("duckdb", "postgres"):
        assert sql.parameters_in(sql.parse(text, dialect)) == {"REGION"}
        assert sql.render(text, dialect, dialect, {}, {"REGION": "EU"}) == (
            "SELECT '$$A' AS \"$$B\", ' $$C ' AS c, DATE_TRUNC('$$D', d) AS m FROM t WHERE r = 'EU'")
        assert sql.analyze(text, dialect).canonical == (
            "SELECT '$$A' AS \"$$B\", ' $$C ' AS c, DATE_TRUNC('$$D', d) AS m FROM t WHERE r = $$REGION")


@pytest.mark.parametrize(("text", "line", "column", "message"), [
    ("SELECT a,\n  $$ REGION", 2, 3, "`$$` must be followed directly by a parameter name"),
    ("SELECT $$1", 1, 8, "`$$` must be followed directly by a parameter name"),
    ("SELECT $$ body $$", 1, 8, "`$$` must be followed directly by a parameter name"),
    ("SELECT ($$A FROM t", 1, 16, "Expecting )"),
    ("SELECT $$A $$B $$C", 1, 16, "Invalid expression / Unexpected token"),
])
def test_a_parameter_that_is_not_one_is_refused_where_it_stands(text: str, line: int, column: int,
                                                                   message: str) -> None:
    for dialect in ("duckdb", "postgres", "spark"):
        with pytest.raises(sql.SqlProblem) as raised:
            sql.parse(text, dialect)
        assert (raised.value.line, raised.value.column) == (line, column) and message in str(raised.value)


# -- generated statements: parameters in many positions, `$$` in places that are text --------------

NAMES = ("REGION", "X", "min_amount", "p2", "select", "_n")
SHAPES = ("SELECT {} AS c FROM t", "SELECT a FROM t WHERE a = {}", "SELECT a FROM t WHERE a IN ({}, {})",
          "SELECT a FROM t WHERE a BETWEEN {} AND {}", "SELECT a FROM t WHERE a LIKE {}",
          "SELECT COALESCE(a, {}) AS c FROM t", "SELECT UPPER({}) FROM t", "SELECT CAST({} AS INT) FROM t",
          "SELECT {} + 1 AS c FROM t", "SELECT CASE WHEN a = {} THEN {} ELSE {} END AS c FROM t",
          "SELECT (SELECT {}) AS s FROM t", "WITH c AS (SELECT {} AS x) SELECT x FROM c",
          "SELECT t.a FROM t JOIN u ON t.a = {}", "SELECT a, COUNT(*) FROM t GROUP BY a HAVING COUNT(*) > {}",
          "SELECT {} || 'x' AS c FROM t", "INSERT INTO s.t SELECT {} FROM u", "SELECT a FROM t WHERE NOT a = {}",
          "SELECT a FROM t ORDER BY {}", "SELECT a FROM t LIMIT {}", "SELECT {} AS {quoted} FROM t")
QUOTES = {"duckdb": '"', "postgres": '"', "spark": "`"}


@dataclass
class Example:
    dialect: str
    with_parameters: str     # `$$NAME` where a value stands
    with_literals: str       # the same text with the literal of each parameter's value there (as long)
    values: dict[str, str] = field(default_factory=dict)
    parameters: set[str] = field(default_factory=set)   # the names placed as parameters


@st.composite
def examples(draw, dialects: tuple[str, ...] = ("duckdb", "postgres", "spark"), dollar_quotes: bool = True) -> Example:
    """A statement with values in many positions: `$$NAME` (its value's literal as long as it), or a
    literal, a column, or, where the dialect has them, a dollar-quoted string, each holding `$$`; the
    tokens apart by spaces, newlines, or comments holding `$$`; sometimes a broken tail."""
    dialect = draw(st.sampled_from(dialects))
    shape = draw(st.sampled_from(SHAPES)).replace("{quoted}", f"{QUOTES[dialect]}$${draw(st.sampled_from(NAMES))}"
                                                             f"{QUOTES[dialect]}")
    separators = st.sampled_from([" ", "  ", "\n", "\t", " /* $$X */ ", " -- $$X\n"])
    shape = "".join(part + draw(separators) for part in shape.split(" ")).rstrip()
    values = {name: draw(st.text("abXY 09$", min_size=len(name), max_size=len(name))) for name in NAMES}
    texts = ["'$$REGION'", "'a $$X b'", "a", "42"] + (["$q$ $$X $q$"] if dollar_quotes and dialect != "spark" else [])
    with_parameters, with_literals, placed = [], [], set()
    for _ in range(shape.count("{}")):
        name = draw(st.sampled_from(NAMES))
        value = draw(st.sampled_from([f"$${name}", *texts]))
        with_parameters.append(value)
        with_literals.append(f"'{values[name]}'" if value == f"$${name}" else value)
        placed |= {name} if value == f"$${name}" else set()
    tail = draw(st.sampled_from(["", "", "", " )", " FROM FROM", " WHERE"]))
    return Example(dialect, shape.format(*with_parameters) + tail, shape.format(*with_literals) + tail,
                   values, placed)


def rendered(text: str, dialect: str, values: dict[str, str]) -> str | None:
    try:
        return sql.render(text, dialect, dialect, {}, values)
    except sql.SqlProblem:
        return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example=examples())
def test_a_parameter_reads_and_renders_as_its_literal_written_in_its_place(example: Example) -> None:
    """sqlglot's own reading is the oracle: the statement with each parameter's literal written where it
    stands parses (or fails at the same line and column), renders the same, and keeps every `$$` that
    is text; the canonical form prints `$$NAME` back and reads as the same statement again."""
    dialect = example.dialect
    try:
        sql.parse(example.with_literals, dialect)
    except sql.SqlProblem as expected:
        with pytest.raises(sql.SqlProblem) as raised:
            sql.parse(example.with_parameters, dialect)
        assert (raised.value.line, raised.value.column) == (expected.line, expected.column)
        return
    tree = sql.parse(example.with_parameters, dialect)
    assert sql.parameters_in(tree) == example.parameters
    assert rendered(example.with_parameters, dialect, example.values) == rendered(example.with_literals, dialect, {})
    canonical = sql.analyze(example.with_parameters, dialect).canonical
    again = sql.parse(canonical, dialect)
    assert again.sql(dialect=dialect, comments=False) == canonical
    assert sql.parameters_in(again) == sql.parameters_in(tree)


@pytest.fixture(scope="module")
def reference():
    """The subclassing implementation, in its own process on the pure-Python sqlglot."""
    process = subprocess.Popen([sys.executable, str(REFERENCE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    assert json.loads(process.stdout.readline())["parser"].endswith(".py")

    def ask(example: Example) -> dict:
        process.stdin.write(json.dumps({"sql": example.with_parameters, "dialect": example.dialect,
                                        "values": example.values}) + "\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline())

    yield ask
    process.stdin.close()
    assert process.wait() == 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(example=examples(dialects=("duckdb", "spark"), dollar_quotes=False))   # it read neither of those
def test_a_parameter_reads_as_the_subclassing_implementation_read_it(example: Example, reference) -> None:
    old = reference(example)
    try:
        tree = sql.parse(example.with_parameters, example.dialect)
    except sql.SqlProblem as problem:
        assert not old["parsed"] and (problem.line, problem.column) == (old["line"], old["column"]), old
        return
    assert old["parsed"], old
    assert {"canonical": sql.analyze(example.with_parameters, example.dialect).canonical,
            "parameters": sorted(sql.parameters_in(tree)),
            "rendered": rendered(example.with_parameters, example.dialect, example.values)} == {
        key: old[key] for key in ("canonical", "parameters", "rendered")}


# -- nesting: the compiled parser recurses on the C stack ------------------------------------------

def test_sql_and_types_nested_thousands_deep_are_refused_not_a_crash(landscape: Landscape) -> None:
    """100,000 nested subqueries, or a STRUCT type 100,000 deep, overflow the compiled parser's C stack (a
    segfault, whatever the recursion limit): refused with a message, where the nesting goes too deep."""
    depth = 100_000
    landscape.write("environments/dev/sales/views/vw_deep.yaml",
                    "kind: View\nname: vw_deep\nschema: sales\nsql: SELECT * FROM "
                    f"{'(SELECT * FROM ' * depth}sales.customer_master{')' * depth}\n")
    landscape.write("environments/dev/sales/deep_table.yaml",
                    "kind: Table\nname: deep_table\nschema: sales\ncolumns:\n"
                    f"  - {{name: c, type: '{'STRUCT<a ' * depth}INT{'>' * depth}'}}\n")
    result = subprocess.run([sys.executable, "-c", CLI, "--repo", str(landscape.root), "validate", "dev"],
                            capture_output=True, text=True)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "vw_deep.yaml:4:3860: error[sql]: SQL does not parse: the SQL nests too deeply" in result.stderr
    assert "deep_table.yaml:5:21: error[type]: the SQL nests too deeply" in result.stderr
