"""What no rebuild can carry over, read last and named: a foreign key of another table referencing
this one, partitioning, inheritance, a typed table, extension membership, a subscription, and every
other object that depends on the table.

Owns these readers; each addition has no statements, so a rebuild is refused naming it. Never writes.
"""

from __future__ import annotations

import psycopg

from .common import TABLES, USER_SCHEMAS, Found, over


def referencing_foreign_keys(connection: psycopg.Connection, found: Found) -> None:
    """A foreign key of another table that references this one cannot be put back by rebuilding this
    table (DROP TABLE refuses while it exists)."""
    for schema, name, constraint, referrer in connection.execute(
            "SELECT n.nspname, c.relname, k.conname, k.conrelid::regclass::text FROM pg_catalog.pg_constraint k "
            "JOIN pg_catalog.pg_class c ON c.oid = k.confrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
            f"c.relnamespace WHERE k.contype = 'f' AND k.conrelid <> k.confrelid AND {USER_SCHEMAS} "
            "ORDER BY 1, 2, 3, 4").fetchall():
        found.add(schema, name, f"foreign key {constraint} of {referrer}, which references it")


# what makes a table more than its columns, each as (what, the relations it is read over, joins, condition)
_STRUCTURE = (
    ("'partitioned by ' || pg_get_partkeydef(c.oid)", "('p')", "", ""),
    ("'partition of ' || i.inhparent::regclass::text || ' ' || pg_get_expr(c.relpartbound, c.oid)", TABLES,
     "JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid ", "AND c.relispartition"),
    ("'inheritance from ' || i.inhparent::regclass::text", TABLES,
     "JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid ", "AND NOT c.relispartition"),
    ("'table ' || i.inhrelid::regclass::text || ', which inherits from it'", "('r')",
     "JOIN pg_catalog.pg_inherits i ON i.inhparent = c.oid ", ""),
    ("'typed table of ' || c.reloftype::regtype::text", TABLES, "", "AND c.reloftype <> 0"),
    ("'member of extension ' || e.extname", TABLES,
     "JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid "
     "AND d.deptype = 'e' JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid ", ""),
    ("'subscription ' || s.subname || ', which replicates into it'", TABLES,
     "JOIN pg_catalog.pg_subscription_rel r ON r.srrelid = c.oid "
     "JOIN pg_catalog.pg_subscription s ON s.oid = r.srsubid ", ""),
)


def structure(connection: psycopg.Connection, found: Found) -> None:
    """Partitioning, being a partition, inheritance either way, a row type the table was created OF,
    membership of an extension, a subscription replicating into it (its state is the table's, and
    ALTER SUBSCRIPTION ... REFRESH cannot run in a transaction): a copy has none of them."""
    union = " UNION ALL ".join(f"SELECT n.nspname, c.relname, {what} {over(kinds, joins)} {condition}"
                               for what, kinds, joins, condition in _STRUCTURE)
    for schema, name, what in connection.execute(f"{union} ORDER BY 1, 2, 3").fetchall():
        found.add(schema, name, what)


# what the table's own objects are, each as (its class, the catalog that says whose it is, the object's
# key there, its relation): readers above put them back or refuse them by name
_OWN = (("pg_constraint", "pg_constraint", "oid", "conrelid"), ("pg_trigger", "pg_trigger", "oid", "tgrelid"),
        ("pg_policy", "pg_policy", "oid", "polrelid"), ("pg_rewrite", "pg_rewrite", "oid", "ev_class"),
        ("pg_statistic_ext", "pg_statistic_ext", "oid", "stxrelid"), ("pg_attrdef", "pg_attrdef", "oid", "adrelid"),
        ("pg_publication_rel", "pg_publication_rel", "oid", "prrelid"),
        ("pg_class", "pg_index", "indexrelid", "indrelid"))
# what depends on a table depends on it, on one of its columns, on its row type or on that type's array
_REFERENCED = (("pg_class", "t.oid", ""), ("pg_type", "t.reltype", ""),
               ("pg_type", "y.typarray", "JOIN pg_catalog.pg_type y ON y.oid = t.reltype "))


def dependents(connection: psycopg.Connection, found: Found) -> None:
    """Every other object that depends on the table (a materialized view reading it, a function
    returning its rows, a column of its type, a rule or a policy of another table that reads it,
    ...): a copy cannot take it over, and DROP TABLE refuses while it exists. Views of the user's
    schemas are not named here: the plan recreates or refuses them (`Compiler.pinned`); nor are
    foreign keys of other tables or tables inheriting from it (named above)."""
    dependencies = " UNION ALL ".join(
        "SELECT t.nspname, t.relname, t.oid AS relid, d.classid, d.objid, d.objsubid, d.deptype FROM target t "
        f"{joins}JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.{catalog}'::regclass AND d.refobjid = {oid}"
        for catalog, oid, joins in _REFERENCED)
    own = " OR ".join(f"(x.classid = 'pg_catalog.{kind}'::regclass AND EXISTS (SELECT 1 FROM pg_catalog.{catalog} o "
                      f"WHERE o.{key} = x.objid AND o.{relation} = x.relid))" for kind, catalog, key, relation in _OWN)
    for schema, name, what in connection.execute(
            f"WITH target AS (SELECT c.oid, n.nspname, c.relname, c.reltype {over(TABLES)}), x AS ({dependencies}) "
            # a view or materialized view depends on a table through its _RETURN rule: it is named instead
            "SELECT DISTINCT x.nspname, x.relname, coalesce((SELECT "
            "pg_describe_object('pg_catalog.pg_class'::regclass, w.ev_class, 0) FROM pg_catalog.pg_rewrite w "
            "WHERE x.classid = 'pg_catalog.pg_rewrite'::regclass "
            "AND w.oid = x.objid AND w.rulename = '_RETURN'), pg_describe_object(x.classid, x.objid, x.objsubid)) "
            f"|| ', which depends on it' FROM x WHERE x.deptype IN ('n', 'a') AND NOT ({own}) "
            "AND NOT (x.classid = 'pg_catalog.pg_class'::regclass AND x.deptype = 'a' AND EXISTS (SELECT 1 FROM "
            "pg_catalog.pg_class s WHERE s.oid = x.objid AND s.relkind = 'S')) "
            "AND NOT (x.classid = 'pg_catalog.pg_constraint'::regclass AND EXISTS (SELECT 1 FROM "
            "pg_catalog.pg_constraint k WHERE k.oid = x.objid AND k.contype = 'f')) "
            "AND NOT (x.classid = 'pg_catalog.pg_class'::regclass AND EXISTS (SELECT 1 FROM "
            "pg_catalog.pg_inherits i WHERE i.inhrelid = x.objid AND i.inhparent = x.relid)) "
            "AND NOT (x.classid = 'pg_catalog.pg_rewrite'::regclass AND EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite w "
            "JOIN pg_catalog.pg_class c ON c.oid = w.ev_class JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE w.oid = x.objid AND w.rulename = '_RETURN' AND c.relkind = 'v' AND {USER_SCHEMAS})) "
            "ORDER BY 1, 2, 3").fetchall():
        found.add(schema, name, what)
