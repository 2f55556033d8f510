"""One YAML reading (issue 22, break 6): every plain scalar by the YAML 1.2 core schema, and a parameter is
the text written, inlined as SQL text unless it is declared `{numeric: NUMBER}`. And (break 10c) aliases
expand a file within a budget of characters, not only of values.

The oracles: the spec's own table (YAML 1.2.2, 10.3.2) as the spec writes it, Python's Decimal for the
value of a number's text, PyYAML's event parser for what a plain scalar's text is, and DuckDB for what a
rendered literal means.
"""

from __future__ import annotations

import re
from decimal import Decimal

import duckdb
import pytest
import yaml
from conftest import Landscape
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.desired import documents, sql
from reconciler.desired.source import EnvironmentSource, parse_yaml
from reconciler.desired.validate import valid_environment

ENVIRONMENT = """name: dev
tenants:
  - {name: dev, url: "duckdb:///.tenants/dev.duckdb"}
rules:
  parameters:
    VALUE: """
# YAML 1.2.2, 10.3.2 Tag Resolution (the core schema), as the spec's table writes it
SPEC = [(r"null|Null|NULL|~", "null"), (r"/\* Empty \*/", "null"), (r"true|True|TRUE|false|False|FALSE", "bool"),
        (r"[-+]? [0-9]+", "int"), (r"0o [0-7]+", "int"), (r"0x [0-9a-fA-F]+", "int"),
        (r"[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?", "float"),
        (r"[-+]? ( \.inf | \.Inf | \.INF )", "float"), (r"\.nan | \.NaN | \.NAN", "float")]
SPEC_PATTERNS = [(re.compile("(?:" + pattern.replace(" ", "").replace(r"/\*Empty\*/", "") + r")\Z"), tag)
                 for pattern, tag in SPEC]


def parameter_sql(written: str) -> str:
    """`SELECT $$VALUE` rendered for DuckDB, the parameter written as `VALUE: <written>` in environment.yaml."""
    document = parse_yaml("environments/dev/environment.yaml", ENVIRONMENT + written + "\n")
    environment = valid_environment(EnvironmentSource("dev", "worktree", None, document, (), ()), ["dev"])
    assert environment is not None, f"VALUE: {written} was refused"
    return sql.render("SELECT $$VALUE AS value", "duckdb", "duckdb", {},
                      environment.rules_for(environment.tenants[0]).parameters)


def on_duckdb(statement: str):
    with duckdb.connect() as connection:
        return connection.execute(statement).fetchone()[0]


def quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.mark.parametrize("written", ["1:30", "1_000", "0o17", "0x1F", "1e3", ".inf", "~", "2024-01-01", "NO", "yes",
                                     "on", "010", "true", "1.50", "O'Hare", "null"])
def test_a_parameter_is_the_text_written_whatever_it_looks_like(written: str) -> None:
    rendered = parameter_sql(written)
    assert rendered == f"SELECT {quoted(written)} AS value"
    assert on_duckdb(rendered) == written


@pytest.mark.parametrize("written", ["1.50", "-2", "1e3", ".5", "007", "-0.000"])
def test_a_declared_numeric_is_the_number_exactly_as_written(written: str) -> None:
    rendered = parameter_sql(f"{{numeric: {written}}}")
    assert rendered == f"SELECT {written} AS value"
    assert Decimal(str(on_duckdb(rendered))) == Decimal(written)


def plain_scalar(text: str) -> bool:
    """Whether `VALUE: <text>` holds one plain scalar whose text is `text` (PyYAML's parser, no tags resolved);
    nothing written is no value (refused: `parameters_not_written_as_text_or_a_number`)."""
    if not text:
        return False
    try:
        events = list(yaml.parse(ENVIRONMENT + text + "\n"))
    except yaml.YAMLError:
        return False
    scalars = [e for e in events if isinstance(e, yaml.ScalarEvent)]
    return scalars[-1].value == text and scalars[-1].style is None and isinstance(events[-3], yaml.MappingEndEvent)


@settings(deadline=None)   # a loaded CI machine is slow, never wrong
@given(st.one_of(st.text(alphabet="0123456789.:-+_~eExXoabfnlNTtrsuY'", min_size=1, max_size=12),
                 *(st.from_regex(pattern, fullmatch=True) for pattern, _ in SPEC_PATTERNS)))
def test_every_plain_scalar_renders_as_its_text(text: str) -> None:
    if not plain_scalar(text):
        return
    rendered = parameter_sql(text)
    assert rendered == f"SELECT {quoted(text)} AS value"
    assert on_duckdb(rendered) == text


def loaded(text: str):
    return parse_yaml("x.yaml", f"value: {text}\n").data["value"]


@st.composite
def core_integers(draw) -> tuple[str, int]:
    number = draw(st.integers(min_value=0, max_value=10 ** 30))
    form = draw(st.sampled_from(["decimal", "octal", "hex"]))
    if form == "octal":
        return f"0o{number:o}", number
    if form == "hex":
        digits = "".join(draw(st.sampled_from([c, c.upper()])) for c in f"{number:x}")
        return f"0x{digits}", number
    sign = draw(st.sampled_from(["", "+", "-"]))
    zeros = "0" * draw(st.integers(0, 3))
    return f"{sign}{zeros}{number}", -number if sign == "-" else number


@settings(deadline=None)   # a loaded CI machine is slow, never wrong
@given(core_integers())
def test_a_core_integer_is_the_number_the_spec_says(case: tuple[str, int]) -> None:
    text, number = case
    value = loaded(text)
    assert type(value) is int and value == number


@st.composite
def core_floats(draw) -> str:
    whole = draw(st.from_regex(r"[0-9]{0,6}", fullmatch=True))
    fraction = draw(st.one_of(st.none(), st.from_regex(r"[0-9]{0,6}", fullmatch=True)))
    if not whole and not fraction:
        whole = "0"
    mantissa = whole + ("" if fraction is None else "." + fraction)
    if not whole and fraction is not None:
        mantissa = "." + fraction
    exponent = draw(st.one_of(st.none(), st.integers(-30, 30)))
    text = draw(st.sampled_from(["", "+", "-"])) + mantissa + ("" if exponent is None else f"e{exponent}")
    return text


@settings(deadline=None)   # a loaded CI machine is slow, never wrong
@given(core_floats())
def test_a_core_float_is_the_number_the_spec_says(text: str) -> None:
    value = loaded(text)
    spec_tag = next(tag for pattern, tag in SPEC_PATTERNS if pattern.match(text))
    assert type(value) is (int if spec_tag == "int" else float)
    assert value == (int(text) if spec_tag == "int" else float(Decimal(text)))


@pytest.mark.parametrize(("text", "value"), [
    (".inf", float("inf")), ("-.Inf", float("-inf")), ("+.INF", float("inf")), (".NaN", float("nan")), ("~", None),
    ("null", None), ("", None), ("True", True), ("FALSE", False), ("0o17", 15), ("0x1F", 31), ("1e3", 1000.0)])
def test_the_spec_s_special_values(text: str, value) -> None:
    assert type(loaded(text)) is type(value)
    assert repr(loaded(text)) == repr(value)   # nan is no number's equal, its own included


@pytest.mark.parametrize("text", ["1:30", "1_000", "2024-01-01", "NO", "yes", "on", "off", "y", "0b101", "0O17",
                                  "0X1F", ".NaN1", "1e", "0o8", "nul", "tRUE", "-0x1", "+0o7", "1__0", "1.5.0"])
def test_what_no_core_pattern_matches_is_text(text: str) -> None:
    assert not any(pattern.match(text) for pattern, _ in SPEC_PATTERNS)
    assert loaded(text) == text


@pytest.mark.parametrize(("written", "message"), [
    ("value: !!int 1_000", "'1_000' is not a YAML 1.2 int"), ("value: !!timestamp 2024-01-01", "is not supported"),
    ("value: !!binary aGk=", "is not supported"), ("value: !!set {a, b}", "is not supported"),
    ("value: !!python/object/apply:os.system [ls]", "is not supported")])
def test_a_tag_outside_the_core_schema_is_refused(written: str, message: str) -> None:
    from reconciler.desired.documents import YamlProblem

    with pytest.raises(YamlProblem, match=re.escape(message)):
        parse_yaml("x.yaml", written + "\n")


def test_accepted_values_compare_numbers_with_numbers_and_text_with_text(landscape: Landscape) -> None:
    """Under the core schema `0x1F` and `1e3` are numbers, `1:30`, `1_000` and `NO` are text, and `.inf`
    is no bound: a check compares like with like, or validation says why it cannot."""
    path = "environments/dev/sales/codes.yaml"
    landscape.write(path, "kind: Table\nname: codes\nschema: sales\ncolumns:\n"
                    "  - {name: id, type: BIGINT, checks: [{accepted_values: [1, 0x1F, 1e3]}]}\n"
                    "  - {name: code, type: VARCHAR, checks: [{accepted_values: [NO, 1:30, yes]}]}\n")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.codes VALUES (31, '1:30'), (1000, 'NO'), (1, 'yes')")
    checked = landscape.run("check", "dev")
    assert checked.code == 0, checked.output

    landscape.sql("INSERT INTO sales.codes VALUES (90, '90')")   # what YAML 1.1 read `1:30` as
    failed = landscape.run("check", "dev")
    assert failed.code == 1 and "accepted_values(id): failed (1 offending row)" in failed.stdout
    assert "accepted_values(code): failed (1 offending row)" in failed.stdout

    landscape.edit(path, "[1, 0x1F, 1e3]", "[1_000]")
    refused = landscape.run("validate", "dev")
    assert refused.code == 1
    assert f"{path}:5:" in refused.stderr and "'1_000' is not a number, and the column is BIGINT" in refused.stderr
    landscape.edit(path, "checks: [{accepted_values: [NO, 1:30, yes]}]", "checks: [{accepted_range: {max: .inf}}]")
    refused = landscape.run("validate", "dev")
    assert refused.code == 1 and f"{path}:6:65: error[schema]: max: Input should be a finite number" in refused.stderr


def test_an_alias_bomb_of_one_long_string_is_refused_at_its_alias_having_made_no_more_than_the_budget(
        landscape: Landscape, monkeypatch) -> None:
    """99,000 aliases of a 999,000-character string: under the value cap, and 99 GB once expanded (the
    reconciler died of MemoryError after 20 s). Ten copies fit the budget (the anchor and nine aliases);
    the tenth alias is refused where it stands, and no scalar beyond the budget was ever made."""
    path = "environments/dev/sales/bomb.yaml"
    landscape.write(path, "kind: Table\nname: bomb\nschema: sales\n"
                    f"text: &text \"{'x' * 999_000}\"\ncopies: [{', '.join(['*text'] * 99_000)}]\n")
    made = []
    scalar = documents._scalar
    monkeypatch.setattr(documents, "_scalar", lambda node: made.append(len(node.value)) or scalar(node))

    result = landscape.run("validate", "dev")

    assert result.code == 1, result.output
    assert result.stderr == (f"{path}:5:{len('copies: [') + len('*text, ') * 9 + 1}: error[yaml]: the file expands to "
                             "more than 10,000,000 characters (YAML aliases?); an object file is far smaller\n"
                             "1 problem found\n")
    assert made.count(999_000) == 10   # 9,990,000 characters made of that string, never 10,989,000
