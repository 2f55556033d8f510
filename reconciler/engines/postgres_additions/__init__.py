"""What was attached to PostgreSQL tables and views outside the reconciler, read from pg_catalog.

The reconciler declares only columns, NOT NULL, defaults, the primary key and a view's query; the
rest is a DBA's. Each attachment becomes a `state.Addition` with the statements that put it back on
a rebuilt table or a recreated view, written from PostgreSQL's own definitions, or with none when
it cannot be put back (a rebuild is then refused, naming it). Owns the order of the readers (their
catalog queries and the statements they write are `table`'s, `privileges`', `table_objects`',
`comments`', `replication`'s and `refused`'s; `common` holds what they share); never decides what is
rebuilt, never writes.

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
from collections.abc import Callable

import psycopg

from ...model import ObjectKey
from ...state import Addition
from .comments import comments, security_labels
from .common import USER_SCHEMAS, Found
from .privileges import privileges, row_security
from .refused import dependents, referencing_foreign_keys, structure
from .replication import publications, replica_identity
from .table import columns, identities, owned_sequences, owners, storage
from .table_objects import constraints, index_settings, indexes, policies, rules, statistics, triggers

__all__ = ["READERS", "USER_SCHEMAS", "additions"]


def additions(connection: psycopg.Connection) -> defaultdict[ObjectKey, list[Addition]]:
    """Everything attached to every table and view of the user's schemas, in the order it is put back."""
    found = Found()
    for reader in READERS:
        reader(connection, found)
    return found


READERS: tuple[Callable[[psycopg.Connection, Found], None], ...] = (
    owners, identities, owned_sequences, storage, columns, privileges, row_security, indexes, constraints,
    index_settings, triggers, rules, policies, statistics, comments, security_labels, replica_identity,
    publications, referencing_foreign_keys, structure, dependents)
