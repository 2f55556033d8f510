"""Changes compiled into Snowflake SQL: what Snowflake's ALTER TABLE ... ALTER COLUMN reference says it
alters in place, and a rebuild's row checks and proof in the SQL Snowflake has (its TRY_CAST reads only
text; it has no EXCEPT ALL and no function that raises). Pure, as every compiler: never connects to
anything, and decides nothing but the statements of a change it is handed.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from ..desired import column_types, sql
from ..model import ObjectKey
from ..plan import Change
from ..state import LiveObject
from .ddl import Compiler

ENGINE = "snowflake"


class SnowflakeCompiler(Compiler):
    engine = ENGINE

    def create_table(self, key: ObjectKey, want, name: str | None = None, key_constraint: str | None = None) -> str:
        """As every engine's; re-creating a live table (compensation), with the comment it had."""
        created = super().create_table(key, want, name, key_constraint)
        comment = want.comment if isinstance(want, LiveObject) else None
        return f"{created} COMMENT = {sql.literal(comment).sql(ENGINE)}" if comment else created

    def renamed_to(self, key: ObjectKey) -> str:
        """Qualified: Snowflake resolves a RENAME TO's unqualified target in the session's current schema, not
        the table's, so a rebuilt table would move there (or fail where the session has none: 090106)."""
        return self.qk(key)

    def alters_in_place(self, change: Change, want, found: LiveObject) -> bool:
        """What Snowflake's ALTER TABLE ... ALTER COLUMN reference says it alters in place: an added column, a
        renamed or dropped one, a default dropped, a NOT NULL set or dropped, and a type retyped within its
        kind (a longer VARCHAR; a NUMBER of more or fewer digits and the same scale, fewer only where every
        value fits, which the change's row check proves first). A VARCHAR shortened, a NUMBER's scale changed,
        any other type change, a default set or changed (Snowflake changes a default only to a sequence's)
        and anything else is a rebuild (`rebuild_table`)."""
        current = {column.name.lower(): column.type for column in found.columns}
        for detail in change.details:
            if detail.column is None or detail.attribute == "comment":
                continue
            if detail.whole_column and detail.op in ("add", "drop") or detail.op == "rename":
                continue
            if detail.attribute == "nullable" or (detail.attribute == "default" and detail.after is None):
                continue
            if detail.attribute == "type" and _retypes_in_place(current.get(detail.column.lower(), ""), detail.after):
                continue
            return False
        return True

    def retype(self, table: str, column: str, new_type: str) -> str:
        return f"ALTER TABLE {table} ALTER COLUMN {column} SET DATA TYPE {new_type}"

    def misfit(self, column: str, new: str, old: str) -> str:
        """Snowflake's TRY_CAST reads only text: a value goes to `new` and back as its text (TO_VARCHAR), and
        a value too long for a VARCHAR(n) or CHAR(n) is counted by its length (a cast would cut it)."""
        bound = column_types.length_bound(new, ENGINE)
        if bound is not None:
            return f"(length({column}) > {bound[1]})"
        there = f"TRY_CAST(TO_VARCHAR({column}) AS {new})"
        return f"({there} IS NULL OR TRY_CAST(TO_VARCHAR({there}) AS {old}) IS DISTINCT FROM {column})"

    def cast_back(self, column: str, old_type: str) -> str:
        # no TRY_CAST on Snowflake but of text: a value that cannot go back fails the statement, which is as safe
        return f"CAST({column} AS {old_type})"

    def unless(self, condition: str, message: str) -> str:
        """Snowflake SQL raises nothing of its own: the message, when `condition` fails, is text that is no
        number, and the conversion's error carries it (IFF keeps it out of reach of constant folding)."""
        return f"SELECT TO_NUMBER(IFF({condition}, '1', {sql.literal(message).sql(ENGINE)}))"

    def same_rows(self, copy: str, original: str, pairs: Sequence[tuple[str, str, str]], message: str) -> str:
        """As every engine's proof, without EXCEPT ALL (Snowflake's EXCEPT is distinct): each row numbered
        among its equal rows (ROW_NUMBER over all its values), so a set difference of (row, number) both ways
        is the multiset's. NULLs are equal in a partition and in EXCEPT, as in EXCEPT ALL."""
        if not pairs:
            return self.unless(f"(SELECT count(*) FROM {original}) = (SELECT count(*) FROM {copy})", message)
        back = [self.cast_back(new, old_type) for new, _, old_type in pairs]
        before = [old for _, old, _ in pairs]
        numbered_before, numbered_back = _numbered(before, original), _numbered(back, copy)
        return self.unless(f"NOT EXISTS ({numbered_before} EXCEPT {numbered_back}) "
                           f"AND NOT EXISTS ({numbered_back} EXCEPT {numbered_before})", message)

    def unchanged_since_copy(self, key: ObjectKey, copy: str, pairs: Sequence[tuple[str, str, str]]) -> list[str]:
        """Snowflake's DDL ends any transaction, so nothing keeps another writer off the table between the
        proof and the DROP: just before it, the table's row count and digest must still be the proven copy's
        (every value of the copy cast back to its old type), else the apply stops there, the table kept."""
        live = [(old, old_type) for _, old, old_type in pairs]
        copied = [(self.cast_back(new, old_type), old_type) for new, _, old_type in pairs]
        return [self.unless(f"({count_and_digest(self.qk(key), live)}) = ({count_and_digest(copy, copied)})",
                            f"another session wrote to {key} after its rows were copied for this rebuild (its row "
                            "count or content is no longer that of the proven copy), so it was not dropped")]


def _numbered(values: Sequence[str], table: str) -> str:
    """Each row's values and its number among the rows equal to it."""
    listed = ", ".join(values)
    return f"SELECT {listed}, ROW_NUMBER() OVER (PARTITION BY {listed} ORDER BY {values[0]}) FROM {table}"


def count_and_digest(table: str, values: Sequence[tuple[str, str]]) -> str:
    """One value: the table's row count and the sum of each row's HASH over `values` ((SQL, its type)) and
    whether each is NULL, as text (a sum, blind to row order; TO_NUMBER, NUMBER(38,0): no overflow)."""
    hashed = ", ".join(f"{value}, {value} IS NULL" for value, _ in values)
    digest = f"coalesce(sum(TO_NUMBER(hash({hashed}))), 0)" if values else "0"
    return f"SELECT count(*) || ':' || {digest} FROM {table}"


COMPILER = SnowflakeCompiler()


def _retypes_in_place(old: str, new: str) -> bool:
    """Whether Snowflake retypes a column from `old` to `new` in place: a VARCHAR to one as long or longer
    (none: the maximum), a NUMBER to one of any precision and the same scale."""
    before, after = column_types.sized(old, ENGINE), column_types.sized(new, ENGINE)
    if before is None or after is None or before[0] != after[0]:
        return False
    kind, (old_sizes, new_sizes) = before[0], (before[1], after[1])
    if kind == exp.DataType.Type.VARCHAR:
        return not new_sizes or (bool(old_sizes) and new_sizes[0] >= old_sizes[0])
    if kind == exp.DataType.Type.DECIMAL and len(old_sizes) == len(new_sizes) == 2:
        return new_sizes[1] == old_sizes[1]
    return False
