"""Changes compiled into SQL statements for one engine: shared by the SQL engine adapters.

Owns the DDL of every change (create, alter, rebuild by copy and swap, rename, drop), the row
checks that must count zero before an alter, and the quoting of every name through sqlglot for
the engine's dialect. Pure: never connects to anything. An adapter subclasses `Compiler` only
where its engine differs (how a rebuild verifies its row count, what cannot be altered in place).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..desired import sql
from ..model import ObjectKey
from ..plan import Change, Check
from ..state import Addition, ColumnState, DesiredState, LiveObject, LiveState, ObjectState
from .stores import BACKUP_SCHEMA

REBUILD_SUFFIX = "__reconciler_rebuild"   # a rebuild's working table: the table's name and this


class Compiler:
    engine = "duckdb"

    def q(self, name: str) -> str:
        return sql.quote(name, self.engine)

    def qk(self, key: ObjectKey) -> str:
        return sql.qualified(key.schema, key.name, self.engine)

    def renamed_to(self, key: ObjectKey) -> str:
        """A RENAME TO's target: the name alone, which keeps the table in its schema (DuckDB and PostgreSQL
        take no other)."""
        return self.q(key.name)

    def compile(self, changes: Sequence[Change], desired: DesiredState, live: LiveState) -> list[Change]:
        """The same changes, each carrying the statements that carry it out, in order."""
        schemas = set(live.schemas)
        compiled = []
        for change in changes:
            statements: list[str] = []
            want = desired.objects.get(change.key)
            if want is not None and change.action != "delete" and want.kind in ("Table", "View", "MaterializedTable") \
                    and want.key.schema not in schemas:
                statements.append(f"CREATE SCHEMA IF NOT EXISTS {self.q(want.key.schema)}")
                schemas.add(want.key.schema)
            checks: tuple[Check, ...] = ()
            if not change.catalog_only and not change.conflict:
                statements += self.statements(change, want, live)
                checks = self.checks(change, live)
            compiled.append(self._additions(change.model_copy(update={"statements": tuple(statements),
                                                                      "checks": checks}), want, live))
        return compiled

    def restore_statements(self, table: ObjectKey, backup: str, columns: Sequence[str]) -> list[str]:
        """The table's rows replaced with the backup's, for `columns`."""
        listed, source = ", ".join(self.q(c) for c in columns), self.qk(ObjectKey(BACKUP_SCHEMA, backup))
        target = self.qk(table)
        return [f"DELETE FROM {target}", f"INSERT INTO {target} ({listed}) SELECT {listed} FROM {source}"]

    def rebuilds(self, change: Change, want: ObjectState | None, found: LiveObject | None) -> bool:
        """Whether the change copies the table into a new one and swaps it in."""
        if want is None or want.kind != "Table" or found is None or found.kind != "Table" \
                or change.action in ("create", "delete") or change.catalog_only or change.conflict:
            return False
        return change.action == "replace" or not self.alters_in_place(change, want, found)

    def alters_in_place(self, change: Change, want: ObjectState, found: LiveObject) -> bool:
        """Whether ALTER TABLE statements can make the change (else it is a rebuild)."""
        return self.retypes_in_place({d.column for d in change.details if d.attribute == "type"}, want)

    def keeps_view_additions(self, change: Change) -> bool:
        """Whether redefining a view keeps what a DBA gave it (grants, comments): on DuckDB, CREATE OR
        REPLACE VIEW drops its comments."""
        return False

    def _additions(self, change: Change, want: ObjectState | None, live: LiveState) -> Change:
        """A rebuild carries over what a DBA added to the table, and a redefined view what was given to
        it, and says so; what cannot be carried over (nothing recreates it) refuses the rebuild,
        naming it."""
        found = live.object(change.live_key)
        if change.kind == "View" and change.action in ("update", "replace") and not change.catalog_only \
                and not change.conflict and found is not None and found.kind == "View" and found.additions \
                and not self.keeps_view_additions(change):
            given = set(want.exposes) if want is not None else set()
            carried = [a for a in found.additions if a.column is None or a.column.lower() in given]
            if not carried:
                return change
            return change.model_copy(update={
                "statements": (*change.statements, *(s for a in carried for s in a.recreate)),
                "reason": f"{change.reason}; carries over {', '.join(a.what for a in carried)}"})
        if change.kind == "MaterializedTable" and change.action == "replace" and not change.catalog_only \
                and not change.conflict and found is not None and found.kind == "Table" and found.additions:
            lost = [a.what for a in found.additions if not a.recreate]
            if lost:
                return change.model_copy(update={"conflict": True, "statements": (), "reason": (
                    f"{change.reason}; blocked: the rebuild would drop what was added outside the reconciler and "
                    f"cannot be put back: {', '.join(lost)}; remove it by hand first")})
            given = set(want.exposes) if want is not None else set()
            carried = [a for a in found.additions if a.column is None or a.column.lower() in given]
            return change.model_copy(update={
                "statements": (*(s for a in carried for s in a.before_drop), *change.statements,
                               *(s for a in carried for s in a.recreate)),
                "reason": f"{change.reason}; carries over {', '.join(a.what for a in carried)}" if carried
                else change.reason})
        if not self.rebuilds(change, want, found) or not found.additions:
            return change
        carried, lost = self.carried_over(found, want, change)
        if lost:
            return change.model_copy(update={"conflict": True, "statements": (), "checks": (), "reason": (
                f"{change.reason}; blocked: the rebuild would drop what was added outside the reconciler and "
                f"cannot be put back: {', '.join(lost)}; remove it by hand first, or change the table in place")})
        if not carried:
            return change
        return change.model_copy(update={
            "reason": f"{change.reason}; carries over {', '.join(a.what for a in carried)}"})

    @staticmethod
    def carried_over(found: LiveObject | None, want: ObjectState, change: Change) -> tuple[list[Addition], list[str]]:
        """What a rebuild puts back on the new table, in order, and what it cannot (named): an addition
        nothing recreates, or one of a column the rebuild renames (its statements name the old
        column). An addition of a column the rebuild drops goes with the column."""
        kept = {c.name for c in want.columns}
        renamed = {d.before for d in change.details if d.op == "rename" and d.column is not None}
        carried: list[Addition] = []
        lost: list[str] = []
        for addition in found.additions if found else ():
            if addition.column in renamed:
                lost.append(f"{addition.what} (its column is renamed: rename it in a change of its own first)")
            elif addition.column is not None and addition.column not in kept:
                continue
            elif addition.recreate:
                carried.append(addition)
            else:
                lost.append(addition.what)
        return carried, lost

    def statements(self, change: Change, want: ObjectState | None, live: LiveState) -> list[str]:
        key = change.key
        if change.renamed_from:
            previous = live.objects[live.find(ObjectKey.parse(change.renamed_from))]
            renamed = replace(previous, key=key, engine_sql=None, additions=())
            rest = self.statements(change.model_copy(update={"renamed_from": None}), want,
                                    replace(live, objects={**live.objects, key: renamed}))
            return [f"ALTER TABLE {self.qk(previous.key)} RENAME TO {self.renamed_to(key)}", *rest]
        found = live.object(key)
        if found is not None:   # an object the tenant has is addressed as the engine spells it
            key = found.key
        if change.action == "delete":
            return [f"DROP {'TABLE' if found and found.kind == 'Table' else 'VIEW'} {self.qk(key)}"] if found else []
        assert want is not None
        if want.kind == "MaterializedTable":   # built from its query, whatever was there before
            drop = [self.drop(found)] if found is not None else []
            return [*drop, f"CREATE TABLE {self.qk(key)} AS {want.sql}"]
        if want.kind == "View":
            drop = [self.drop(found)] if found is not None and found.kind != "View" else []
            verb = "CREATE VIEW" if change.action == "create" or drop else "CREATE OR REPLACE VIEW"
            return [*drop, f"{verb} {self.qk(key)} AS {want.sql}"]
        if change.action == "create" or (found is not None and found.kind != "Table"):
            drop = [self.drop(found)] if found is not None else []
            return [*drop, self.create_table(key, want)]
        if self.rebuilds(change, want, found):
            return self.rebuild_table(key, want, found, change)
        return self.alter_table(key, change)

    def lock(self, tables: Sequence[ObjectKey]) -> list[str]:
        """Statements that keep every other writer off these tables until the transaction ends, so
        the row checks and the change see the same rows. None on DuckDB: its file lock is already
        exclusive to the applying process."""
        return []

    def retypes_in_place(self, columns: set[str], want: ObjectState) -> bool:
        """Whether ALTER COLUMN ... TYPE works for these columns (DuckDB refuses key columns)."""
        return not columns & set(want.primary_key)

    def retype(self, table: str, column: str, new_type: str) -> str:
        """DuckDB casts the values of deleted rows too (they stay in storage until the table is
        rewritten), so a value no row holds any more would fail the ALTER. The row check before it, in
        the same transaction (`checks`), proved every row's value converts unchanged: TRY_CAST keeps
        those as the plain cast would, and leaves the deleted ones alone."""
        return f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {new_type} USING TRY_CAST({column} AS {new_type})"

    def unless(self, condition: str, message: str) -> str:
        """A statement that fails, aborting the transaction, unless `condition` holds."""
        return f"SELECT CASE WHEN {condition} THEN 1 ELSE error({sql.literal(message).sql(self.engine)}) END"

    def same_rows(self, copy: str, original: str, pairs: Sequence[tuple[str, str, str]], message: str) -> str:
        """A statement that fails unless the copy holds exactly the original's rows: every value, cast
        back to its old type, equal (as multisets, both ways; NULL equals NULL in EXCEPT ALL).
        `pairs` are (column in the copy, column in the original, the original's type)."""
        back = ", ".join(f"{self.cast_back(new, old_type)}" for new, _, old_type in pairs) or "1"
        before = ", ".join(old for _, old, _ in pairs) or "1"
        return self.unless(f"NOT EXISTS (SELECT {before} FROM {original} EXCEPT ALL SELECT {back} FROM {copy}) "
                           f"AND NOT EXISTS (SELECT {back} FROM {copy} EXCEPT ALL SELECT {before} FROM {original})",
                           message)

    def cast_back(self, column: str, old_type: str) -> str:
        return f"TRY_CAST({column} AS {old_type})"

    def drop(self, found: LiveObject) -> str:
        return f"DROP {'TABLE' if found.kind == 'Table' else 'VIEW'} {self.qk(found.key)}"

    def checks(self, change: Change, live: LiveState) -> tuple[Check, ...]:
        """Row counts that must be zero for a table change to keep every value: an alter in place or a
        rebuild (copy and swap) alike. Checks name the live columns: they run before the change."""
        found = live.object(change.live_key)
        if change.kind != "Table" or change.action not in ("update", "replace") or found is None \
                or found.kind != "Table":
            return ()
        table, current = self.qk(found.key), {c.name: c for c in found.columns}
        renamed = {d.after: d.before for d in change.details if d.op == "rename" and d.column is not None}
        checks = []
        for detail in change.details:
            if detail.column is None:
                continue
            name = renamed.get(detail.column, detail.column)
            column = self.q(name)
            if detail.whole_column and detail.op == "add" and not detail.after.get("nullable", True) \
                    and detail.after.get("default") is None:
                checks.append(Check(query=f"SELECT count(*) FROM {table}",
                                    problem=f"no value for the new NOT NULL column {detail.column} "
                                            "(give it a default)"))
            elif detail.attribute == "nullable" and detail.after is False:
                checks.append(Check(query=f"SELECT count(*) FROM {table} WHERE {column} IS NULL",
                                    problem=f"NULL in {detail.column}, which becomes NOT NULL"))
            elif detail.attribute == "type" and name in current:
                new, old = detail.after, current[name].type
                checks.append(Check(
                    query=f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL "
                          f"AND {self.misfit(column, new, old)}",
                    problem=f"a value in {detail.column} that would not fit {new} unchanged"))
        return tuple(checks)

    def misfit(self, column: str, new: str, old: str) -> str:
        """A condition true for a value that does not survive the trip to `new` and back unchanged."""
        return (f"(TRY_CAST({column} AS {new}) IS NULL "
                f"OR TRY_CAST(TRY_CAST({column} AS {new}) AS {old}) IS DISTINCT FROM {column})")

    def column_sql(self, column: ColumnState) -> str:
        parts = [self.q(column.name), column.type]
        if column.default is not None:
            parts.append(f"DEFAULT {column.default}")
        if not column.nullable:
            parts.append("NOT NULL")
        return " ".join(parts)

    def create_table(self, key: ObjectKey, want: ObjectState, name: str | None = None,
                     key_constraint: str | None = None) -> str:
        body = [self.column_sql(c) for c in want.columns]
        if want.primary_key:
            named = f"CONSTRAINT {self.q(key_constraint)} " if key_constraint else ""
            body.append(f"{named}PRIMARY KEY ({', '.join(map(self.q, want.primary_key))})")
        target = sql.qualified(key.schema, name, self.engine) if name else self.qk(key)
        return f"CREATE TABLE {target} ({', '.join(body)})"

    def rebuild_table(self, key: ObjectKey, want: ObjectState, found: LiveObject | None, change: Change) -> list[str]:
        """Copy and swap inside the transaction: the rows move to the new definition (renamed
        columns carry their values), and before the original is dropped the copy must hold exactly
        its rows, every kept value unchanged when cast back to its old type (and still hold them as
        the table is dropped, where no transaction keeps other writers off: `unchanged_since_copy`)."""
        temporary = sql.qualified(key.schema, f"{key.name}{REBUILD_SUFFIX}", self.engine)
        sources = {d.after: d.before for d in change.details if d.op == "rename" and d.column is not None}
        existing = {f.name: f for f in found.columns} if found else {}
        kept = [(c.name, sources.get(c.name, c.name)) for c in want.columns if sources.get(c.name, c.name) in existing]
        targets, selected = ", ".join(self.q(new) for new, _ in kept), ", ".join(self.q(old) for _, old in kept)
        pairs = [(self.q(new), self.q(old), existing[old].type) for new, old in kept]
        carried, _ = self.carried_over(found, want, change)
        return [self.create_table(key, want, f"{key.name}{REBUILD_SUFFIX}", self.rebuild_key_constraint(key)),
                f"INSERT INTO {temporary} ({targets}) SELECT {selected} FROM {self.qk(key)}",
                self.same_rows(temporary, self.qk(key), pairs,
                               f"rebuilding {key} would change or lose rows; nothing was changed"),
                *(statement for addition in carried for statement in addition.before_drop),
                *self.unchanged_since_copy(key, temporary, pairs),
                f"DROP TABLE {self.qk(key)}",
                f"ALTER TABLE {temporary} RENAME TO {self.renamed_to(key)}",
                *self.after_swap(key, want),
                *(statement for addition in carried for statement in addition.recreate)]

    def unchanged_since_copy(self, key: ObjectKey, copy: str, pairs: Sequence[tuple[str, str, str]]) -> list[str]:
        """What a rebuild runs just before it drops the table, to show no other writer reached it since the
        copy was proven (`pairs` as in `same_rows`): nothing where the rebuild runs in one transaction that
        keeps other writers off the table (`lock`)."""
        return []

    def rebuild_key_constraint(self, key: ObjectKey) -> str | None:
        """The primary key constraint's name on the copy, where constraints have names of their own."""
        return None

    def after_swap(self, key: ObjectKey, want: ObjectState) -> list[str]:
        """What makes the swapped-in copy look like the table did (its constraint names)."""
        return []

    def alter_table(self, key: ObjectKey, change: Change) -> list[str]:
        statements = []
        table = self.qk(key)
        for detail in change.details:
            if detail.column is None:
                continue
            column = self.q(detail.column)
            if detail.op == "rename":
                statements.append(f"ALTER TABLE {table} RENAME COLUMN {self.q(detail.before)} TO {column}")
            elif detail.whole_column and detail.op == "add":
                spec = ColumnState(detail.column, **detail.after)
                add = ColumnState(spec.name, spec.type, True, spec.default)
                statements.append(f"ALTER TABLE {table} ADD COLUMN {self.column_sql(add)}")
                if not spec.nullable:
                    statements.append(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL")
            elif detail.whole_column and detail.op == "drop":
                statements.append(f"ALTER TABLE {table} DROP COLUMN {column}")
            elif detail.attribute == "type":
                statements.append(self.retype(table, column, detail.after))
            elif detail.attribute == "nullable":
                statements.append(f"ALTER TABLE {table} ALTER COLUMN {column} "
                                  f"{'DROP NOT NULL' if detail.after else 'SET NOT NULL'}")
            elif detail.attribute == "default":
                statements.append(f"ALTER TABLE {table} ALTER COLUMN {column} " + (
                    "DROP DEFAULT" if detail.after is None else f"SET DEFAULT {detail.after}"))
        return statements
