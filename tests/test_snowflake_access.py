"""The privilege Snowflake's access control asks for each kind of statement the reconciler sends (a golden
case: `cases/snowflake_privileges/`, one statement a line and what it needs). No Snowflake here can refuse
one (the double grants everything), so these are the reference read, as statements; test_snowflake.py
checks that a refusal says them."""

from __future__ import annotations

from pathlib import Path

from test_cases import _expect

from reconciler.engines.snowflake_access import privilege_needed

CASE = Path(__file__).parent / "cases" / "snowflake_privileges"


def test_each_statement_names_the_privileges_snowflake_asks_of_its_role() -> None:
    statements = (CASE / "statements.sql").read_text().splitlines()
    actual = "".join(f"{statement}\n  -> {privilege_needed(statement)}\n" for statement in statements)
    assert actual == _expect(CASE, actual)
