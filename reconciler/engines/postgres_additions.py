"""What was attached to PostgreSQL tables and views outside the reconciler, read from pg_catalog.

The reconciler declares only columns, NOT NULL, defaults, the primary key and a view's query; the
rest is a DBA's. Each attachment becomes a `state.Addition` with the statements that put it back on
a rebuilt table or a recreated view, written from PostgreSQL's own definitions, or with none when
it cannot be put back (a rebuild is then refused, naming it). Owns these catalog queries and the
statements they write; never decides what is rebuilt, never writes.

Every query gives its rows in a total order and reads nothing that moves with the data: inspection
is hashed into the state's digest (`LiveState.digest`), so a sequence's value is carried by
statements that read it at apply time. The readers run in the order their statements must run
after the swap: the owner first (ALTER ... OWNER moves the owner's privileges, and an owned sequence
must have its table's owner), identity columns before the table's persistence (an identity added to
an unlogged table gets a logged sequence), indexes before what names them (CLUSTER ON, REPLICA
IDENTITY USING INDEX), comments after what they are on. What cannot be put back is read last.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import psycopg

from ..desired import sql
from ..model import ObjectKey
from ..state import Addition

DIALECT = "postgres"
USER_SCHEMAS = ("n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' "
                "AND n.nspname NOT LIKE '\\_reconciler%'")
TABLES, RELATIONS = "('r', 'p')", "('r', 'p', 'v')"   # relkinds: tables; tables and views
_COLUMN = "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
_KEY = "(the rebuild replaces the primary key)"
# a table's trigger's or rule's state other than on ('O', how one is made): how it is set, and said
_ENABLED = {"D": ("DISABLE", "disabled"), "R": ("ENABLE REPLICA", "replica only"), "A": ("ENABLE ALWAYS", "always")}
_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "m": "MAIN", "x": "EXTENDED"}
_COMPRESSION = {"p": "pglz", "l": "lz4"}
_REPLICA_IDENTITY = {"f": "FULL", "n": "NOTHING"}
# what COMMENT ON calls each kind of object pg_identify_object names
_COMMENTED = {"index": "INDEX", "table constraint": "CONSTRAINT", "trigger": "TRIGGER", "policy": "POLICY",
              "rule": "RULE", "statistics object": "STATISTICS", "sequence": "SEQUENCE"}


def over(kinds: str, joins: str = "") -> str:
    """FROM and WHERE for relations `c` (in schema `n`) of these kinds in the user's schemas."""
    return (f"FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace {joins}"
            f"WHERE c.relkind IN {kinds} AND {USER_SCHEMAS}")


class _Found(defaultdict):
    """The additions found so far, by table or view, in the order they were read."""

    def __init__(self) -> None:
        super().__init__(list)

    def add(self, schema: str, name: str, what: str, *recreate: str, column: str | None = None,
            before_drop: Sequence[str] = ()) -> None:
        self[ObjectKey(schema, name)].append(Addition(what, tuple(recreate), column, tuple(before_drop)))


def additions(connection: psycopg.Connection) -> defaultdict[ObjectKey, list[Addition]]:
    """Everything attached to every table and view of the user's schemas, in the order it is put back."""
    found = _Found()
    for reader in READERS:
        reader(connection, found)
    return found


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


# -- put back ----------------------------------------------------------------------------------

def _owners(connection: psycopg.Connection, found: _Found) -> None:
    # who owns what is compared with who creates (current_user) in the query: inspecting reads
    # nothing but rows (`LiveState.digest` hashes them)
    for schema, name, kind, owner in connection.execute(
            f"SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner) {over(RELATIONS)} "
            "AND pg_get_userbyid(c.relowner) <> current_user ORDER BY 1, 2").fetchall():
        found.add(schema, name, f"owner {owner}",
                  f"ALTER {'VIEW' if kind == 'v' else 'TABLE'} {qualified(schema, name)} OWNER TO {q(owner)}")


_SEQUENCES = ("JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = c.oid "
              "AND d.refobjsubid = a.attnum AND d.classid = 'pg_catalog.pg_class'::regclass "
              "JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
              "JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace ")


def _identities(connection: psycopg.Connection, found: _Found) -> None:
    """An identity column's sequence is part of its table and dropped with it: its value is kept in
    a setting of the transaction before the drop and given to the new one after."""
    for (schema, name, column, number, always, sequence_schema, sequence, increment, minimum, maximum, start, cache,
         cycle) in connection.execute(
            "SELECT n.nspname, c.relname, a.attname, a.attnum, a.attidentity = 'a', sn.nspname, s.relname, "
            "p.seqincrement, p.seqmin, p.seqmax, p.seqstart, p.seqcache, p.seqcycle "
            f"{over(TABLES, _COLUMN + _SEQUENCES + 'JOIN pg_catalog.pg_sequence p ON p.seqrelid = s.oid ')} "
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


def _owned_sequences(connection: psycopg.Connection, found: _Found) -> None:
    """A sequence OWNED BY a column (serial) would be dropped with the original, and refuses to be
    while the copy's default calls it: it is let go before the drop (keeping its value, grants and
    comments) and owned by the new table's column after."""
    for schema, name, column, sequence_schema, sequence in connection.execute(
            f"SELECT n.nspname, c.relname, a.attname, sn.nspname, s.relname {over(TABLES, _COLUMN + _SEQUENCES)} "
            "AND d.deptype = 'a' ORDER BY 1, 2, 3, 4, 5").fetchall():
        sequence_name = qualified(sequence_schema, sequence)
        found.add(schema, name, f"sequence {sequence_schema}.{sequence} owned by column {column}",
                  f"ALTER SEQUENCE {sequence_name} OWNED BY {qualified(schema, name)}.{q(column)}",
                  column=column, before_drop=[f"ALTER SEQUENCE {sequence_name} OWNED BY NONE"])


_STORED_IN = ("LEFT JOIN pg_catalog.pg_am m ON m.oid = c.relam LEFT JOIN pg_catalog.pg_tablespace s "
              "ON s.oid = c.reltablespace LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid ")


def _storage(connection: psycopg.Connection, found: _Found) -> None:
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


def _columns(connection: psycopg.Connection, found: _Found) -> None:
    """A column's planner and storage settings a DBA gave it: statistics target, options (n_distinct),
    storage and compression. A collation other than its type's, or a generated column, is not what
    the declared column creates and cannot be given to it after: the rebuild is refused."""
    for (schema, name, column, target, options, storage, usual_storage, compression, generated, collation,
         usual_collation) in connection.execute(
            "SELECT n.nspname, c.relname, a.attname, a.attstattarget, a.attoptions, a.attstorage, "
            "a.attstorage = t.typstorage, a.attcompression, a.attgenerated <> '', o.collname, "
            "a.attcollation = t.typcollation "
            f"{over(TABLES, _COLUMN + _TYPED)} AND (a.attstattarget >= 0 OR a.attoptions IS NOT NULL OR "
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
     f"s.relowner {over(TABLES, _COLUMN + _SEQUENCES)} AND d.deptype = 'i'", "SEQUENCE ", "s", "S"))


def _privileges(connection: psycopg.Connection, found: _Found) -> None:
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
            f"{over(RELATIONS, _COLUMN + 'CROSS JOIN LATERAL aclexplode(a.attacl) g ')} AND g.grantee <> c.relowner "
            "ORDER BY 1, 2, 3, 4, 5").fetchall():
        found.add(schema, name, f"grant of {privilege} on column {column} to {grantee or 'PUBLIC'}",
                  f"GRANT {privilege} ({q(column)}) ON {qualified(schema, name)} TO {role(grantee)}"
                  + (" WITH GRANT OPTION" if grantable else ""), column=column)


def _row_security(connection: psycopg.Connection, found: _Found) -> None:
    for schema, name, enabled, forced in connection.execute(
            f"SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity {over(TABLES)} "
            "AND (c.relrowsecurity OR c.relforcerowsecurity) ORDER BY 1, 2").fetchall():
        if enabled:
            found.add(schema, name, "row-level security",
                      f"ALTER TABLE {qualified(schema, name)} ENABLE ROW LEVEL SECURITY")
        if forced:
            found.add(schema, name, "forced row-level security",
                      f"ALTER TABLE {qualified(schema, name)} FORCE ROW LEVEL SECURITY")


def _indexes(connection: psycopg.Connection, found: _Found) -> None:
    for schema, name, index, definition in connection.execute(
            "SELECT n.nspname, c.relname, i.relname, pg_get_indexdef(x.indexrelid) FROM pg_catalog.pg_index x "
            "JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid JOIN pg_catalog.pg_class c ON c.oid = x.indrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE NOT x.indisprimary AND NOT EXISTS "
            "(SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = x.indexrelid) "
            f"AND {USER_SCHEMAS} ORDER BY 1, 2, 3").fetchall():
        found.add(schema, name, f"index {index}", definition)


def _constraints(connection: psycopg.Connection, found: _Found) -> None:
    for schema, name, constraint, definition in connection.execute(
            "SELECT n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid) "
            "FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c "
            "ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE k.contype IN ('c', 'u', 'f', 'x') AND {USER_SCHEMAS} ORDER BY 1, 2, 3").fetchall():
        found.add(schema, name, f"constraint {constraint} ({definition})",
                  f"ALTER TABLE {qualified(schema, name)} ADD CONSTRAINT {q(constraint)} {definition}")


def _index_settings(connection: psycopg.Connection, found: _Found) -> None:
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
                found.add(schema, name, f"{what} {_KEY}")
            else:
                found.add(schema, name, what, statement)


def _triggers(connection: psycopg.Connection, found: _Found) -> None:
    for schema, name, trigger, definition, enabled in connection.execute(
            "SELECT n.nspname, c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled FROM pg_catalog.pg_trigger t "
            "JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = "
            f"c.relnamespace WHERE NOT t.tgisinternal AND {USER_SCHEMAS} ORDER BY 1, 2, 3").fetchall():
        state, said = _ENABLED.get(enabled, (None, None))
        found.add(schema, name, f"trigger {trigger}" + (f" ({said})" if said else ""), definition,
                  *([f"ALTER TABLE {qualified(schema, name)} {state} TRIGGER {q(trigger)}"] if state else []))


def _rules(connection: psycopg.Connection, found: _Found) -> None:
    """Rules (CREATE RULE) on a table or a view; only a table's can be other than enabled."""
    for schema, name, rule, definition, enabled in connection.execute(
            "SELECT n.nspname, c.relname, r.rulename, pg_get_ruledef(r.oid), r.ev_enabled "
            f"{over(RELATIONS, 'JOIN pg_catalog.pg_rewrite r ON r.ev_class = c.oid ')} "
            "AND r.rulename <> '_RETURN' ORDER BY 1, 2, 3").fetchall():
        state, said = _ENABLED.get(enabled, (None, None))
        found.add(schema, name, f"rule {rule}" + (f" ({said})" if said else ""), definition.strip().rstrip(";"),
                  *([f"ALTER TABLE {qualified(schema, name)} {state} RULE {q(rule)}"] if state else []))


def _policies(connection: psycopg.Connection, found: _Found) -> None:
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


def _statistics(connection: psycopg.Connection, found: _Found) -> None:
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


_PARTS = tuple(f"'pg_catalog.{catalog}'::regclass" for catalog in (
    "pg_class", "pg_constraint", "pg_trigger", "pg_policy", "pg_rewrite", "pg_statistic_ext"))


def _comments(connection: psycopg.Connection, found: _Found) -> None:
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
            f"SELECT n.nspname, c.relname, a.attname, d.description {over(RELATIONS, described + _COLUMN)} "
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
            found.add(schema, name, f"{what} {_KEY}")
        else:
            found.add(schema, name, what, *([f"COMMENT ON {_COMMENTED[kind]} {identity} IS {text(comment)}"]
                                            if kind in _COMMENTED else []), column=column)


def _security_labels(connection: psycopg.Connection, found: _Found) -> None:
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


_IDENTITY_INDEX = ("LEFT JOIN pg_catalog.pg_index x ON x.indrelid = c.oid AND x.indisreplident "
                   "LEFT JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid ")


def _replica_identity(connection: psycopg.Connection, found: _Found) -> None:
    """What logical decoding logs of a row an UPDATE or DELETE changed (REPLICA IDENTITY), after the
    index it may name is back; the primary key's index is refused (the rebuild replaces the key)."""
    for schema, name, identity, index, primary in connection.execute(
            "SELECT n.nspname, c.relname, c.relreplident, i.relname, x.indisprimary "
            f"{over(TABLES, _IDENTITY_INDEX)} "
            "AND c.relreplident <> 'd' ORDER BY 1, 2").fetchall():
        if identity in _REPLICA_IDENTITY or index is None:   # an index dropped since: as NOTHING
            written = _REPLICA_IDENTITY.get(identity, "NOTHING")
            found.add(schema, name, f"replica identity {written}",
                      f"ALTER TABLE {qualified(schema, name)} REPLICA IDENTITY {written}")
        elif primary:
            found.add(schema, name, f"replica identity using the primary key's index {index} {_KEY}")
        else:
            found.add(schema, name, f"replica identity using index {index}",
                      f"ALTER TABLE {qualified(schema, name)} REPLICA IDENTITY USING INDEX {q(index)}")


_PUBLISHED = ("JOIN pg_catalog.pg_publication_rel r ON r.prrelid = c.oid "
              "JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid ")


def _publications(connection: psycopg.Connection, found: _Found) -> None:
    """Membership of a publication that names the table (ALTER PUBLICATION ... ADD TABLE), with its
    column list and row filter; a publication of all tables or of the schema takes the new one in
    by itself."""
    for schema, name, publication, columns, condition in connection.execute(
            "SELECT n.nspname, c.relname, p.pubname, ARRAY(SELECT a.attname FROM pg_catalog.pg_attribute a "
            "WHERE a.attrelid = c.oid AND a.attnum = ANY (r.prattrs) ORDER BY a.attnum), "
            "pg_get_expr(r.prqual, r.prrelid) "
            f"{over(TABLES, _PUBLISHED)} "
            "ORDER BY 1, 2, 3").fetchall():
        found.add(schema, name, f"publication {publication}",
                  f"ALTER PUBLICATION {q(publication)} ADD TABLE {qualified(schema, name)}"
                  + (f" ({', '.join(map(q, columns))})" if columns else "")
                  + (f" WHERE ({condition})" if condition else ""))


# -- refused -----------------------------------------------------------------------------------

def _referencing_foreign_keys(connection: psycopg.Connection, found: _Found) -> None:
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


def _structure(connection: psycopg.Connection, found: _Found) -> None:
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


def _dependents(connection: psycopg.Connection, found: _Found) -> None:
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


READERS: tuple[Callable[[psycopg.Connection, _Found], None], ...] = (
    _owners, _identities, _owned_sequences, _storage, _columns, _privileges, _row_security, _indexes, _constraints,
    _index_settings, _triggers, _rules, _policies, _statistics, _comments, _security_labels, _replica_identity,
    _publications, _referencing_foreign_keys, _structure, _dependents)
