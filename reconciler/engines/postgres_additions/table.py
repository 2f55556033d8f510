"""What was set on a table itself: its owner (a view's too), identity columns and the sequences
columns own, its access method, tablespace, storage parameters and persistence, and its columns'
statistics targets, options, storage and compression.

Owns these readers and the statements that put each back on the rebuilt table; a collation other than
its type's or a generated column cannot be put back and is named. Never writes.
"""

from __future__ import annotations

import psycopg

from .common import COLUMN, RELATIONS, SEQUENCES, TABLES, Found, over, q, qualified, settings, text

_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
_COMPRESSION = {"p": "pglz", "l": "lz4"}


def owners(connection: psycopg.Connection, found: Found) -> None:
    # who owns what is compared with who creates (current_user) in the query: inspecting reads
    # nothing but rows (`LiveState.digest` hashes them)
    for schema, name, kind, owner in connection.execute(
            f"SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner) {over(RELATIONS)} "
            "AND pg_get_userbyid(c.relowner) <> current_user ORDER BY 1, 2").fetchall():
        found.add(schema, name, f"owner {owner}",
                  f"ALTER {'VIEW' if kind == 'v' else 'TABLE'} {qualified(schema, name)} OWNER TO {q(owner)}")


def identities(connection: psycopg.Connection, found: Found) -> None:
    """An identity column's sequence is part of its table and dropped with it: its value is kept in
    a setting of the transaction before the drop and given to the new one after."""
    for (schema, name, column, number, always, sequence_schema, sequence, increment, minimum, maximum, start, cache,
         cycle) in connection.execute(
            "SELECT n.nspname, c.relname, a.attname, a.attnum, a.attidentity = 'a', sn.nspname, s.relname, "
            "p.seqincrement, p.seqmin, p.seqmax, p.seqstart, p.seqcache, p.seqcycle "
            f"{over(TABLES, COLUMN + SEQUENCES + 'JOIN pg_catalog.pg_sequence p ON p.seqrelid = s.oid ')} "
            "AND d.deptype = 'i' AND a.attidentity <> '' ORDER BY 1, 2, a.attnum").fetchall():
        sequence_name, setting = qualified(sequence_schema, sequence), text(f"reconciler.identity_{number}")
        saved = f"current_setting({setting})"
        found.add(schema, name, f"identity of column {column} (sequence {sequence_schema}.{sequence} and its value)",
                  f"ALTER TABLE {qualified(schema, name)} ALTER COLUMN {q(column)} ADD GENERATED "
                  f"{'ALWAYS' if always else 'BY DEFAULT'} AS IDENTITY (SEQUENCE NAME {sequence_name} "
                  f"INCREMENT BY {increment} MINVALUE {minimum} MAXVALUE {maximum} START WITH {start} "
                  f"CACHE {cache} {'CYCLE' if cycle else 'NO CYCLE'})",
                  f"SELECT setval({text(sequence_name)}, split_part({saved}, ' ', 1)::bigint, "
                  f"split_part({saved}, ' ', 2)::boolean)",
                  column=column, before_drop=[
                      f"SELECT set_config({setting}, (SELECT last_value || ' ' || is_called FROM {sequence_name}), "
                      "true)"])


def owned_sequences(connection: psycopg.Connection, found: Found) -> None:
    """A sequence OWNED BY a column (serial) would be dropped with the original, and refuses to be
    while the copy's default calls it: it is let go before the drop (keeping its value, grants and
    comments) and owned by the new table's column after."""
    for schema, name, column, sequence_schema, sequence in connection.execute(
            f"SELECT n.nspname, c.relname, a.attname, sn.nspname, s.relname {over(TABLES, COLUMN + SEQUENCES)} "
            "AND d.deptype = 'a' ORDER BY 1, 2, 3, 4, 5").fetchall():
        sequence_name = qualified(sequence_schema, sequence)
        found.add(schema, name, f"sequence {sequence_schema}.{sequence} owned by column {column}",
                  f"ALTER SEQUENCE {sequence_name} OWNED BY {qualified(schema, name)}.{q(column)}",
                  column=column, before_drop=[f"ALTER SEQUENCE {sequence_name} OWNED BY NONE"])


_STORED_IN = ("LEFT JOIN pg_catalog.pg_am m ON m.oid = c.relam LEFT JOIN pg_catalog.pg_tablespace s "
              "ON s.oid = c.reltablespace LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid ")


def storage(connection: psycopg.Connection, found: Found) -> None:
    """The table's own settings a copy made by CREATE TABLE would not have: its access method and
    tablespace, storage parameters (its TOAST table's too), and being unlogged (last: an identity
    added before it keeps its sequence unlogged with the table)."""
    for schema, name, method, usual, space, options, toast, unlogged in connection.execute(
            "SELECT n.nspname, c.relname, m.amname, m.amname = current_setting('default_table_access_method'), "
            "s.spcname, c.reloptions, t.reloptions, c.relpersistence = 'u' "
            f"{over(TABLES, _STORED_IN)} AND (m.amname <> current_setting('default_table_access_method') "
            "OR s.spcname IS NOT NULL OR c.reloptions IS NOT NULL OR t.reloptions IS NOT NULL "
            "OR c.relpersistence = 'u') "
            "ORDER BY 1, 2").fetchall():
        table = qualified(schema, name)
        if method is not None and not usual:
            found.add(schema, name, f"access method {method}", f"ALTER TABLE {table} SET ACCESS METHOD {q(method)}")
        if space is not None:
            found.add(schema, name, f"tablespace {space}", f"ALTER TABLE {table} SET TABLESPACE {q(space)}")
        parameters = [*(options or ()), *(f"toast.{o}" for o in toast or ())]
        if parameters:
            written = [*settings(options or ()), *settings(toast or (), "toast.")]
            found.add(schema, name, f"storage parameters {', '.join(parameters)}",
                      f"ALTER TABLE {table} SET ({', '.join(written)})")
        if unlogged:
            found.add(schema, name, "unlogged", f"ALTER TABLE {table} SET UNLOGGED")


_TYPED = ("JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
          "LEFT JOIN pg_catalog.pg_collation o ON o.oid = a.attcollation ")


def columns(connection: psycopg.Connection, found: Found) -> None:
    """A column's planner and storage settings a DBA gave it: statistics target, options (n_distinct),
    storage and compression. A collation other than its type's, or a generated column, is not what
    the declared column creates and cannot be given to it after: the rebuild is refused."""
    for (schema, name, column, target, options, storage, usual_storage, compression, generated, collation,
         usual_collation) in connection.execute(
            "SELECT n.nspname, c.relname, a.attname, a.attstattarget, a.attoptions, a.attstorage, "
            "a.attstorage = t.typstorage, a.attcompression, a.attgenerated <> '', o.collname, "
            "a.attcollation = t.typcollation "
            f"{over(TABLES, COLUMN + _TYPED)} AND (a.attstattarget >= 0 OR a.attoptions IS NOT NULL OR "
            "a.attstorage <> t.typstorage OR a.attcompression IN ('p', 'l') OR a.attgenerated <> '' OR "
            "a.attcollation <> t.typcollation) ORDER BY 1, 2, a.attnum").fetchall():
        table, named = qualified(schema, name), q(column)
        if generated:
            found.add(schema, name, f"generated column {column}", column=column)
        if not usual_collation:
            found.add(schema, name, f"collation {collation} of column {column}", column=column)
        if target is not None and target >= 0:
            found.add(schema, name, f"statistics target {target} of column {column}",
                      f"ALTER TABLE {table} ALTER COLUMN {named} SET STATISTICS {target}", column=column)
        if options:
            found.add(schema, name, f"options {', '.join(options)} of column {column}",
                      f"ALTER TABLE {table} ALTER COLUMN {named} SET ({', '.join(settings(options))})", column=column)
        if not usual_storage:
            found.add(schema, name, f"storage {_STORAGE[storage]} of column {column}",
                      f"ALTER TABLE {table} ALTER COLUMN {named} SET STORAGE {_STORAGE[storage]}", column=column)
        if compression in _COMPRESSION:
            found.add(schema, name, f"compression {_COMPRESSION[compression]} of column {column}",
                      f"ALTER TABLE {table} ALTER COLUMN {named} SET COMPRESSION {_COMPRESSION[compression]}",
                      column=column)
