"""Logical replication: a table's REPLICA IDENTITY and its membership of publications that name it.

Owns these readers and the statements that put each back after the index a replica identity may name;
the primary key's index is refused (the rebuild replaces the key). Never writes.
"""

from __future__ import annotations

import psycopg

from .common import REPLACES_KEY, TABLES, Found, over, q, qualified

_REPLICA_IDENTITY = {"f": "FULL", "n": "NOTHING"}


_IDENTITY_INDEX = ("LEFT JOIN pg_catalog.pg_index x ON x.indrelid = c.oid AND x.indisreplident "
                   "LEFT JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid ")


def replica_identity(connection: psycopg.Connection, found: Found) -> None:
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
            found.add(schema, name, f"replica identity using the primary key's index {index} {REPLACES_KEY}")
        else:
            found.add(schema, name, f"replica identity using index {index}",
                      f"ALTER TABLE {qualified(schema, name)} REPLICA IDENTITY USING INDEX {q(index)}")


_PUBLISHED = ("JOIN pg_catalog.pg_publication_rel r ON r.prrelid = c.oid "
              "JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid ")


def publications(connection: psycopg.Connection, found: Found) -> None:
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
