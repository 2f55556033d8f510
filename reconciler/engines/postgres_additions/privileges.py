"""Privileges and row-level security on a table or view: grants and revokes on it, on an identity
column's sequence and on its columns, exactly as they were; row-level security enabled or forced.

Owns these readers and the GRANT and REVOKE statements that make a new object's privileges those of
the one it replaces. Never writes.
"""

from __future__ import annotations

import psycopg

from .common import COLUMN, RELATIONS, SEQUENCES, TABLES, Found, over, q, qualified, role


def _acl_changes(objects: str, acl_kind: str, default_kind: str) -> str:
    """The privileges to revoke from, and to grant on, a new object so that it ends with those of the
    one it replaces: the new one is created with its owner's default (acldefault) and what ALTER
    DEFAULT PRIVILEGES gives whoever creates it. `objects` gives, per object: its id, its table's
    schema, name and column (or NULL), its own schema and name, owner, ACL, schema id and creator."""
    return (f"WITH every (id, nspname, relname, attname, schema, name, owner, acl, namespace, creator) AS ({objects}), "
            # an object with the default ACL that no default privilege would add to is made again as it was
            "object AS (SELECT * FROM every e WHERE e.acl IS NOT NULL OR EXISTS (SELECT 1 FROM "
            "pg_catalog.pg_default_acl d WHERE d.defaclrole = e.creator AND d.defaclobjtype = "
            f"'{default_kind}' AND d.defaclnamespace IN (0, e.namespace))), "
            f"was AS (SELECT o.id, a.grantee, a.privilege_type, a.is_grantable FROM object o, "
            f"aclexplode(coalesce(o.acl, acldefault('{acl_kind}', o.owner))) a), "
            f"fresh AS (SELECT o.id, a.grantee, a.privilege_type, a.is_grantable FROM object o, "
            f"aclexplode(acldefault('{acl_kind}', o.owner)) a UNION SELECT o.id, a.grantee, a.privilege_type, "
            "a.is_grantable FROM object o JOIN pg_catalog.pg_default_acl d ON d.defaclrole = o.creator "
            f"AND d.defaclobjtype = '{default_kind}' AND d.defaclnamespace IN (0, o.namespace), "
            "aclexplode(d.defaclacl) a), "
            "changes AS ((SELECT id, grantee, privilege_type, is_grantable, NULL::boolean AS had, false AS revoke "
            "FROM was EXCEPT SELECT id, grantee, privilege_type, is_grantable, NULL, false FROM fresh) "
            "UNION ALL SELECT f.id, f.grantee, f.privilege_type, f.is_grantable, w.id IS NOT NULL, true FROM fresh f "
            "LEFT JOIN was w USING (id, grantee, privilege_type) WHERE w.id IS NULL "
            "OR (f.is_grantable AND NOT w.is_grantable)) "
            "SELECT o.nspname, o.relname, o.attname, o.schema, o.name, CASE WHEN x.grantee = 0 THEN NULL "
            "ELSE pg_get_userbyid(x.grantee) END, x.privilege_type, x.is_grantable, x.had, x.revoke "
            "FROM changes x JOIN object o USING (id) ORDER BY 1, 2, 4, 5, 10, 6, 7, 8")


_ACLS = (  # (the object's privileges, what a grant calls it, acldefault's kind, ALTER DEFAULT PRIVILEGES' kind)
    (f"SELECT c.oid, n.nspname, c.relname, NULL::name, n.nspname, c.relname, c.relowner, c.relacl, c.relnamespace, "
     f"current_user::regrole::oid {over(RELATIONS)}", "", "r", "r"),
    # an identity column's sequence is created by its owner (the table's)
    (f"SELECT s.oid, n.nspname, c.relname, a.attname, sn.nspname, s.relname, s.relowner, s.relacl, s.relnamespace, "
     f"s.relowner {over(TABLES, COLUMN + SEQUENCES)} AND d.deptype = 'i'", "SEQUENCE ", "s", "S"))


def privileges(connection: psycopg.Connection, found: Found) -> None:
    """Privileges exactly as they were, on the table or view, on an identity column's sequence and on
    columns. Grantors are not kept: a grant made again is the owner's."""
    for objects, noun, acl_kind, default_kind in _ACLS:
        for (schema, name, column, object_schema, object_name, grantee, privilege, grantable, had,
             revoke) in connection.execute(_acl_changes(objects, acl_kind, default_kind)).fetchall():
            on, to, whom = f"ON {noun}{qualified(object_schema, object_name)}", role(grantee), grantee or "PUBLIC"
            of = f" on sequence {object_schema}.{object_name}" if noun else ""
            if not revoke:
                found.add(schema, name, f"grant of {privilege}{of} to {whom}",
                          f"GRANT {privilege} {on} TO {to}" + (" WITH GRANT OPTION" if grantable else ""),
                          column=column)
            elif had:   # the privilege was there, its grant option was not
                found.add(schema, name, f"no grant option for {privilege}{of} to {whom}",
                          f"REVOKE GRANT OPTION FOR {privilege} {on} FROM {to}", column=column)
            else:
                found.add(schema, name, f"no {privilege}{of} for {whom}", f"REVOKE {privilege} {on} FROM {to}",
                          column=column)
    for schema, name, column, grantee, privilege, grantable in connection.execute(
            "SELECT n.nspname, c.relname, a.attname, CASE WHEN g.grantee = 0 THEN NULL ELSE "
            "pg_get_userbyid(g.grantee) END, g.privilege_type, g.is_grantable "
            f"{over(RELATIONS, COLUMN + 'CROSS JOIN LATERAL aclexplode(a.attacl) g ')} AND g.grantee <> c.relowner "
            "ORDER BY 1, 2, 3, 4, 5").fetchall():
        found.add(schema, name, f"grant of {privilege} on column {column} to {grantee or 'PUBLIC'}",
                  f"GRANT {privilege} ({q(column)}) ON {qualified(schema, name)} TO {role(grantee)}"
                  + (" WITH GRANT OPTION" if grantable else ""), column=column)


def row_security(connection: psycopg.Connection, found: Found) -> None:
    for schema, name, enabled, forced in connection.execute(
            f"SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity {over(TABLES)} "
            "AND (c.relrowsecurity OR c.relforcerowsecurity) ORDER BY 1, 2").fetchall():
        if enabled:
            found.add(schema, name, "row-level security",
                      f"ALTER TABLE {qualified(schema, name)} ENABLE ROW LEVEL SECURITY")
        if forced:
            found.add(schema, name, "forced row-level security",
                      f"ALTER TABLE {qualified(schema, name)} FORCE ROW LEVEL SECURITY")
