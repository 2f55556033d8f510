"""What every reader of pg_catalog shares: the user's schemas and the kinds of relation read, the
joins more than one reader makes, `Found` (the additions read so far), and the statements' quoting.

Owns these pieces alone. Never reads the catalog itself: each reader does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from ...desired import sql
from ...model import ObjectKey
from ...state import Addition

DIALECT = "postgres"
USER_SCHEMAS = ("n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' "
                "AND n.nspname NOT LIKE '\\_reconciler%'")
TABLES, RELATIONS = "('r', 'p')", "('r', 'p', 'v')"   # relkinds: tables; tables and views
COLUMN = "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
REPLACES_KEY = "(the rebuild replaces the primary key)"
# a table's trigger's or rule's state other than on ('O', how one is made): how it is set, and said
ENABLED = {"D": ("DISABLE", "disabled"), "R": ("ENABLE REPLICA", "replica only"), "A": ("ENABLE ALWAYS", "always")}
SEQUENCES = ("JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid "
             "AND d.refobjsubid = a.attnum AND d.classid = 'pg_catalog.pg_class'::regclass "
             "JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
             "JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace ")


def over(kinds: str, joins: str = "") -> str:
    """FROM and WHERE for relations `c` (in schema `n`) of these kinds in the user's schemas."""
    return (f"FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace {joins}"
            f"WHERE c.relkind IN {kinds} AND {USER_SCHEMAS}")


class Found(defaultdict):
    """The additions found so far, by table or view, in the order they were read."""

    def __init__(self) -> None:
        super().__init__(list)

    def add(self, schema: str, name: str, what: str, *recreate: str, column: str | None = None,
            before_drop: Sequence[str] = ()) -> None:
        self[ObjectKey(schema, name)].append(Addition(what, tuple(recreate), column, tuple(before_drop)))


def q(name: str) -> str:
    return sql.quote(name, DIALECT)


def qualified(schema: str, name: str) -> str:
    return sql.qualified(schema, name, DIALECT)


def text(value: str) -> str:
    return sql.literal(value).sql(DIALECT)


def role(name: str | None) -> str:
    return q(name) if name else "PUBLIC"


def settings(options: Sequence[str], prefix: str = "") -> list[str]:
    """Storage parameters as the catalog keeps them (`name=value`), as SET (...) takes them."""
    return [f"{prefix}{q(name)} = {text(value)}" for name, _, value in (o.partition("=") for o in options)]
