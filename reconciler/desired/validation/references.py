"""References and names: what each object reads and writes, resolved to the objects of the folder.

Owns resolving a name written in SQL (schema-qualified, in the tenant's own database, an object that
holds rows), a data flow's target and connection and an upsert's key, the dependency cycles, and
`renamed_from:` naming what is gone. Each name that does not resolve is a problem with a "did you mean";
never one about a file already broken. Never parses SQL: `statements` gives what each one names.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import networkx as nx

from ... import graph as graphs
from ...errors import Diagnostic
from ...model import Connection, DataFlow, MaterializedTable, ObjectKey, Table, View
from .. import sql
from ..documents import Document
from .run import Run, did_you_mean

READABLE = (Table, View, MaterializedTable)   # what SQL (and checks) may read: what holds rows


def references(run: Run, objects, facts) -> dict[ObjectKey, tuple[ObjectKey, ...]]:
    index, connections = {key.folded(): key for key in objects}, connections_by_name(objects)
    return {key: dependencies(run, key, objects, facts, index, connections) for key in objects}


def dependencies(run: Run, key: ObjectKey, objects, facts, index, connections) -> tuple[ObjectKey, ...]:
    """What one object reads and writes, each problem with that reported."""
    obj = objects[key]
    document = run.documents[key]
    found: list[ObjectKey] = []
    read = facts.get(key)
    for reference, at in zip(read.references, read.located) if read is not None else ():
        resolved = relation(run, document, reference, index, objects, at=at)
        if resolved is not None and resolved != key:
            found.append(resolved)
        elif resolved == key:
            run.report(document, "cycle", f"{key} reads itself", "sql")
    if isinstance(obj, DataFlow):
        target = index.get(ObjectKey.parse(obj.target).folded())
        if run.unknowable(obj.target):
            pass
        elif target is None or not isinstance(objects[target], Table):
            what = "is not a Table" if target else "does not exist"
            run.report(document, "reference", f"target {obj.target} {what}"
                       f"{_hint(run, obj.target, [str(k) for k in objects])}", "target")
        else:
            found.append(target)
            if obj.mode == "upsert":
                _upsert(run, document, obj, objects[target], facts.get(key))
        connection = _connection(obj.connection, index, connections, objects)
        if connection is None and not run.unknowable(obj.connection):
            names = [o.name for o in objects.values() if isinstance(o, Connection)]
            run.report(document, "reference", f"connection {obj.connection} does not exist"
                       f"{did_you_mean(obj.connection, names)}", "connection")
        else:
            if connection is not None:
                found.append(connection)
    return tuple(dict.fromkeys(found))


def relation(run: Run, document, reference: str, index, objects, loc: tuple = ("sql",),
             at: tuple[int, int] | None = None) -> ObjectKey | None:
    """The object a reference in SQL names (`at`: where it is written inside the SQL at `loc`)."""
    if reference.count(".") > 1:   # a catalog too: the tenant's own database is the only one
        catalog, _, rest = reference.partition(".")
        others = [str(k) for k in objects if run.documents[k] is not document]
        message = (f"{reference} names a database ({catalog}): objects are read as schema.name, in the "
                   f"tenant's own database{did_you_mean(rest, others)}")
        if at is None:
            run.report(document, "reference", message, *loc)
        else:
            line, column = document.where_inside(loc, *at)
            run.diagnostics.append(Diagnostic(document.path, line, column, "reference", message))
        return None
    wanted = ObjectKey.parse(reference) if "." in reference else None
    if wanted is None:
        run.report(document, "reference", f"'{reference}' is not schema-qualified; write "
                   f"schema.{reference}{did_you_mean(reference, [k.name for k in objects], objects)}",
                   *loc)
        return None
    resolved = index.get(wanted.folded())
    if resolved is None:
        if not run.unknowable(reference):
            others = [str(k) for k in objects if run.documents[k] is not document]
            run.report(document, "reference", f"{reference} does not exist{_hint(run, reference, others)}", *loc)
        return None
    if not isinstance(objects[resolved], READABLE):
        run.report(document, "reference", f"{reference} is a {objects[resolved].kind}; SQL can "
                   "only read tables and views", *loc)
        return None
    return resolved


def _hint(run: Run, reference: str, others: list[str]) -> str:
    """What follows "does not exist": where the file named after the object declares another name, the
    typo is likely there, never to be copied here; else a did-you-mean."""
    name = reference.lower().rpartition(".")[2]
    for key, document in run.documents.items():
        if PurePosixPath(document.path).stem.lower() == name and key.name.lower() != name:
            return f"; {document.path} declares {key} (a typo there?)"
    return did_you_mean(reference, others)


def connections_by_name(objects) -> dict[str, list[ObjectKey]]:
    """The connections by their plain name (lower case): a data flow may name one without its schema."""
    found: dict[str, list[ObjectKey]] = {}
    for key, obj in objects.items():
        if isinstance(obj, Connection):
            found.setdefault(obj.name.lower(), []).append(key)
    return found


def cycles(run: Run, graph: nx.DiGraph) -> bool:
    found = graphs.cycles(graph)
    for cycle in found:
        path = " -> ".join(map(str, cycle))
        run.report(run.documents[cycle[0]], "cycle", f"dependency cycle: {path}", "sql")
    return bool(found)


def renames(run: Run, objects) -> None:
    """`renamed_from:` names what is gone: a table or column of that name still declared would be
    renamed away and then created again (or wedge the tenant halfway)."""
    declared = {key.folded() for key in objects}
    for key, obj in objects.items():
        if not isinstance(obj, Table):
            continue
        document = run.documents[key]
        if obj.renamed_from and ObjectKey(key.schema, obj.renamed_from).folded() in declared \
                and obj.renamed_from.lower() != obj.name.lower():
            run.report(document, "rename", f"renamed_from: {obj.renamed_from} names a table that is still "
                       f"declared ({key.schema}.{obj.renamed_from}); remove its file in the same change",
                       "renamed_from")
        columns = {c.name.lower() for c in obj.columns}
        for index, column in enumerate(obj.columns):
            if column.renamed_from and column.renamed_from.lower() in columns \
                    and column.renamed_from.lower() != column.name.lower():
                run.report(document, "rename", f"column {column.name}: renamed_from: {column.renamed_from} "
                           "names a column that is still declared", "columns", index, "renamed_from")


def _upsert(run: Run, document: Document, flow: DataFlow, target: Table, facts: sql.SqlFacts | None) -> None:
    """An upsert replaces a row by its target's primary key (what ON CONFLICT can name), and the flow
    must give every key column."""
    keys = [name.lower() for name in target.primary_key]
    if not keys:
        run.report(document, "reference", f"mode: upsert replaces rows by the primary key of {flow.target}, "
                   "which has none", "mode")
    elif sorted(name.lower() for name in flow.unique_key) != sorted(keys):
        run.report(document, "reference", f"unique_key: an upsert replaces a row by the primary key of "
                   f"{flow.target}: [{', '.join(target.primary_key)}]", "unique_key")
    else:
        listed = facts.insert_columns if facts is not None else ()
        missing = [name for name in flow.unique_key if listed and name.lower() not in {c.lower() for c in listed}]
        if missing:
            run.report(document, "sql", f"the INSERT lists no value for key column{'s' * (len(missing) > 1)} "
                       f"{', '.join(missing)}, which an upsert matches rows by", "sql")


def _connection(name: str, index, connections, objects) -> ObjectKey | None:
    if "." in name:
        key = index.get(ObjectKey.parse(name).folded())
        return key if key is not None and isinstance(objects[key], Connection) else None
    candidates = connections.get(name.lower(), [])
    return candidates[0] if len(candidates) == 1 else None
