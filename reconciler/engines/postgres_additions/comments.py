"""Comments and security labels: on a table or view, on its columns, and on what hangs off it (its
indexes, constraints, triggers, rules, policies, statistics objects, identity sequences).

Owns these readers and the COMMENT ON and SECURITY LABEL statements that put each back, read after
what they are on; a comment on the primary key or its index is refused. Never writes.
"""

from __future__ import annotations

import psycopg

from .common import COLUMN, RELATIONS, REPLACES_KEY, USER_SCHEMAS, Found, over, q, qualified, text

# what COMMENT ON calls each kind of object pg_identify_object names
_COMMENTED = {"index": "INDEX", "table constraint": "CONSTRAINT", "trigger": "TRIGGER", "policy": "POLICY",
              "rule": "RULE", "statistics object": "STATISTICS", "sequence": "SEQUENCE"}


_PARTS = tuple(f"'pg_catalog.{catalog}'::regclass" for catalog in (
    "pg_class", "pg_constraint", "pg_trigger", "pg_policy", "pg_rewrite", "pg_statistic_ext"))


def comments(connection: psycopg.Connection, found: Found) -> None:
    """Comments on the table or view, on its columns, and on what hangs off it (its indexes,
    constraints, triggers, rules, policies, statistics objects, identity sequences)."""
    described = ("JOIN pg_catalog.pg_description d ON d.classoid = 'pg_catalog.pg_class'::regclass "
                 "AND d.objoid = c.oid ")
    for schema, name, kind, comment in connection.execute(
            f"SELECT n.nspname, c.relname, c.relkind, d.description {over(RELATIONS, described)} "
            "AND d.objsubid = 0 ORDER BY 1, 2").fetchall():
        noun = "VIEW" if kind == "v" else "TABLE"
        found.add(schema, name, f"a comment on the {noun.lower()}",
                  f"COMMENT ON {noun} {qualified(schema, name)} IS {text(comment)}")
    for schema, name, column, comment in connection.execute(
            f"SELECT n.nspname, c.relname, a.attname, d.description {over(RELATIONS, described + COLUMN)} "
            "AND a.attnum = d.objsubid ORDER BY 1, 2, a.attnum").fetchall():
        found.add(schema, name, f"a comment on column {column}", f"COMMENT ON COLUMN {qualified(schema, name)}."
                  f"{q(column)} IS {text(comment)}", column=column)
    for schema, name, kind, identity, primary, column, comment in connection.execute(
            "SELECT n.nspname, c.relname, o.type, o.identity, p.primary_key, p.attname, d.description "
            "FROM pg_catalog.pg_description d CROSS JOIN LATERAL ("
            "SELECT indrelid, indisprimary, NULL::name FROM pg_catalog.pg_index "
            "WHERE d.classoid = 'pg_catalog.pg_class'::regclass AND indexrelid = d.objoid "
            "UNION ALL SELECT conrelid, contype = 'p', NULL FROM pg_catalog.pg_constraint "
            "WHERE d.classoid = 'pg_catalog.pg_constraint'::regclass AND oid = d.objoid AND conrelid <> 0 "
            "UNION ALL SELECT tgrelid, false, NULL FROM pg_catalog.pg_trigger "
            "WHERE d.classoid = 'pg_catalog.pg_trigger'::regclass AND oid = d.objoid AND NOT tgisinternal "
            "UNION ALL SELECT polrelid, false, NULL FROM pg_catalog.pg_policy "
            "WHERE d.classoid = 'pg_catalog.pg_policy'::regclass AND oid = d.objoid "
            "UNION ALL SELECT ev_class, false, NULL FROM pg_catalog.pg_rewrite "
            "WHERE d.classoid = 'pg_catalog.pg_rewrite'::regclass AND oid = d.objoid AND rulename <> '_RETURN' "
            "UNION ALL SELECT stxrelid, false, NULL FROM pg_catalog.pg_statistic_ext "
            "WHERE d.classoid = 'pg_catalog.pg_statistic_ext'::regclass AND oid = d.objoid "
            # an identity column's sequence
            "UNION ALL SELECT i.refobjid, false, a.attname FROM pg_catalog.pg_depend i "
            "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.refobjid AND a.attnum = i.refobjsubid "
            "WHERE d.classoid = 'pg_catalog.pg_class'::regclass "
            "AND i.classid = 'pg_catalog.pg_class'::regclass AND i.objid = d.objoid "
            "AND i.refclassid = 'pg_catalog.pg_class'::regclass AND i.deptype = 'i' AND i.refobjsubid > 0"
            ") p (relid, primary_key, attname) "
            "JOIN pg_catalog.pg_class c ON c.oid = p.relid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.classoid, d.objoid, 0) o "
            f"WHERE d.objsubid = 0 AND d.classoid IN ({', '.join(_PARTS)}) AND {USER_SCHEMAS} "
            "ORDER BY 1, 2, 3, 4").fetchall():
        what = f"a comment on {kind} {identity}"
        if primary:
            found.add(schema, name, f"{what} {REPLACES_KEY}")
        else:
            found.add(schema, name, what, *([f"COMMENT ON {_COMMENTED[kind]} {identity} IS {text(comment)}"]
                                            if kind in _COMMENTED else []), column=column)


def security_labels(connection: psycopg.Connection, found: Found) -> None:
    for schema, name, kind, column, provider, label in connection.execute(
            "SELECT n.nspname, c.relname, c.relkind, a.attname, l.provider, l.label FROM pg_catalog.pg_seclabel l "
            "JOIN pg_catalog.pg_class c ON c.oid = l.objoid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = l.objsubid "
            f"WHERE l.classoid = 'pg_catalog.pg_class'::regclass AND c.relkind IN ('r', 'p', 'v') AND {USER_SCHEMAS} "
            "ORDER BY 1, 2, l.objsubid, 5").fetchall():
        on = (f"COLUMN {qualified(schema, name)}.{q(column)}" if column else
              f"{'VIEW' if kind == 'v' else 'TABLE'} {qualified(schema, name)}")
        found.add(schema, name, f"security label of {provider}" + (f" on column {column}" if column else ""),
                  f"SECURITY LABEL FOR {q(provider)} ON {on} IS {text(label)}", column=column)
