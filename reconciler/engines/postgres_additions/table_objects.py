"""The objects hung off a table: its indexes (with their settings and the index it is clustered on),
constraints other than the primary key and NOT NULL, triggers, rules (a view's too), row-level
security policies and extended statistics.

Owns these readers and the statements, from PostgreSQL's own definitions (pg_get_indexdef,
pg_get_constraintdef, pg_get_triggerdef ...), that put each back; what the primary key's index
carries is refused (the rebuild replaces the key). Never writes.
"""

from __future__ import annotations

import psycopg

from .common import ENABLED, RELATIONS, REPLACES_KEY, TABLES, USER_SCHEMAS, Found, over, q, qualified, settings


def indexes(connection: psycopg.Connection, found: Found) -> None:
    for schema, name, index, definition in connection.execute(
            "SELECT n.nspname, c.relname, i.relname, pg_get_indexdef(x.indexrelid) FROM pg_catalog.pg_index x "
            "JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid JOIN pg_catalog.pg_class c ON c.oid = x.indrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE NOT x.indisprimary AND NOT EXISTS "
            "(SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid) "
            f"AND {USER_SCHEMAS} ORDER BY 1, 2, 3").fetchall():
        found.add(schema, name, f"index {index}", definition)


def constraints(connection: psycopg.Connection, found: Found) -> None:
    for schema, name, constraint, definition in connection.execute(
            "SELECT n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid) "
            "FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c "
            "ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE k.contype IN ('c', 'u', 'f', 'x') AND {USER_SCHEMAS} ORDER BY 1, 2, 3").fetchall():
        found.add(schema, name, f"constraint {constraint} ({definition})",
                  f"ALTER TABLE {qualified(schema, name)} ADD CONSTRAINT {q(constraint)} {definition}")


def index_settings(connection: psycopg.Connection, found: Found) -> None:
    """What pg_get_indexdef and pg_get_constraintdef leave out: an index's tablespace, a constraint's
    index's storage parameters, statistics targets of expression columns, the index a table is
    clustered on. The primary key's are refused: the rebuild replaces the key."""
    for schema, name, index, primary, constraint, space, options, clustered, targets in connection.execute(
            "SELECT n.nspname, c.relname, i.relname, x.indisprimary, EXISTS (SELECT 1 FROM "
            "pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid), s.spcname, i.reloptions, x.indisclustered, "
            "ARRAY(SELECT array[a.attnum, a.attstattarget] FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.oid "
            "AND a.attstattarget >= 0 ORDER BY a.attnum) FROM pg_catalog.pg_index x "
            "JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid JOIN pg_catalog.pg_class c ON c.oid = x.indrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_tablespace s ON s.oid = i.reltablespace "
            f"WHERE {USER_SCHEMAS} AND (s.spcname IS NOT NULL OR i.reloptions IS NOT NULL OR x.indisclustered OR "
            "i.oid IN (SELECT a.attrelid FROM pg_catalog.pg_attribute a WHERE a.attnum > 0 AND a.attstattarget >= 0)) "
            "ORDER BY 1, 2, 3").fetchall():
        named = qualified(schema, index)
        whose = f"the primary key's index {index}" if primary else f"index {index}"
        given = []
        if space is not None:
            given.append((f"tablespace {space} of {whose}", f"ALTER INDEX {named} SET TABLESPACE {q(space)}"))
        if options and (primary or constraint):   # a plain index's are in its definition
            given.append((f"storage parameters {', '.join(options)} of {whose}",
                          f"ALTER INDEX {named} SET ({', '.join(settings(options))})"))
        given += [(f"statistics target {target} of column {number} of {whose}",
                   f"ALTER INDEX {named} ALTER COLUMN {number} SET STATISTICS {target}") for number, target in targets]
        if clustered:
            given.append((f"clustered on {whose}", f"ALTER TABLE {qualified(schema, name)} CLUSTER ON {q(index)}"))
        for what, statement in given:
            if primary:
                found.add(schema, name, f"{what} {REPLACES_KEY}")
            else:
                found.add(schema, name, what, statement)


def triggers(connection: psycopg.Connection, found: Found) -> None:
    for schema, name, trigger, definition, enabled in connection.execute(
            "SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled FROM pg_catalog.pg_trigger t "
            "JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
            f"c.relnamespace WHERE NOT t.tgisinternal AND {USER_SCHEMAS} ORDER BY 1, 2, 3").fetchall():
        state, said = ENABLED.get(enabled, (None, None))
        found.add(schema, name, f"trigger {trigger}" + (f" ({said})" if said else ""), definition,
                  *([f"ALTER TABLE {qualified(schema, name)} {state} TRIGGER {q(trigger)}"] if state else []))


def rules(connection: psycopg.Connection, found: Found) -> None:
    """Rules (CREATE RULE) on a table or a view; only a table's can be other than enabled."""
    for schema, name, rule, definition, enabled in connection.execute(
            "SELECT n.nspname, c.relname, r.rulename, pg_get_ruledef(r.oid), r.ev_enabled "
            f"{over(RELATIONS, 'JOIN pg_catalog.pg_rewrite r ON r.ev_class = c.oid ')} "
            "AND r.rulename <> '_RETURN' ORDER BY 1, 2, 3").fetchall():
        state, said = ENABLED.get(enabled, (None, None))
        found.add(schema, name, f"rule {rule}" + (f" ({said})" if said else ""), definition.strip().rstrip(";"),
                  *([f"ALTER TABLE {qualified(schema, name)} {state} RULE {q(rule)}"] if state else []))


def policies(connection: psycopg.Connection, found: Found) -> None:
    for schema, name, policy, permissive, roles, command, using, check in connection.execute(
            "SELECT schemaname, tablename, policyname, permissive, roles, cmd, qual, with_check "
            "FROM pg_catalog.pg_policies n WHERE " + USER_SCHEMAS.replace("n.nspname", "n.schemaname")
            + " ORDER BY 1, 2, 3").fetchall():
        to = ", ".join("PUBLIC" if grantee == "public" else q(grantee) for grantee in roles)
        found.add(schema, name, f"policy {policy}",
                  f"CREATE POLICY {q(policy)} ON {qualified(schema, name)} AS {permissive} FOR {command} TO {to}"
                  + (f" USING ({using})" if using else "") + (f" WITH CHECK ({check})" if check else ""))


_STATISTICS = ("JOIN pg_catalog.pg_statistic_ext s ON s.stxrelid = c.oid "
               "JOIN pg_catalog.pg_namespace sn ON sn.oid = s.stxnamespace ")


def statistics(connection: psycopg.Connection, found: Found) -> None:
    """Extended statistics objects (CREATE STATISTICS) on the table, with their target and owner."""
    for schema, name, statistics_schema, statistics, definition, target, owner in connection.execute(
            "SELECT n.nspname, c.relname, sn.nspname, s.stxname, pg_get_statisticsobjdef(s.oid), s.stxstattarget, "
            "NULLIF(pg_get_userbyid(s.stxowner), current_user) "
            f"{over(TABLES, _STATISTICS)} "
            "ORDER BY 1, 2, 3, 4").fetchall():
        named = qualified(statistics_schema, statistics)
        found.add(schema, name, f"statistics object {statistics_schema}.{statistics}", definition,
                  *([f"ALTER STATISTICS {named} SET STATISTICS {target}"] if target is not None and target >= 0
                    else []),
                  *([f"ALTER STATISTICS {named} OWNER TO {q(owner)}"] if owner else []))
