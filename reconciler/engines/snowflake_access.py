"""What Snowflake's access control asks of a role for each kind of statement the reconciler sends, by its
access control privileges reference, so that a statement Snowflake refuses for a missing privilege
(SQLSTATE 42501, "Insufficient privileges to operate on ...", which names the object, not the privilege)
is said with the privilege to grant. Pure: reads the statement's syntax (sqlglot's Snowflake dialect),
never a grant, and never decides whether a statement may run (Snowflake does).
"""

from __future__ import annotations

from sqlglot import exp, parse_one
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

ENGINE = "snowflake"
USAGE = "USAGE on the database and on each schema named"   # what every statement on a schema's object asks first


def privilege_needed(statement: str) -> str | None:
    """The privileges `statement` needs and their objects, as a sentence (`CREATE TABLE on schema "SALES"
    and USAGE on the database and on each schema named`); None for a statement of a kind the reference
    was not read for here."""
    try:
        tree = normalize_identifiers(parse_one(statement, read=ENGINE), dialect=ENGINE)   # names as Snowflake folds them
    except SqlglotError:
        return None
    if isinstance(tree, exp.Create) and (tree.args.get("kind") or "").upper() == "SCHEMA":
        return "CREATE SCHEMA and USAGE on the database"
    needed = _needed(tree)
    if not needed:
        return None
    return f"{', '.join(needed)} and {USAGE}"


def _needed(tree: exp.Expression) -> list[str]:
    if isinstance(tree, exp.Create):
        return _create(tree)
    target = tree.find(exp.Table)
    if isinstance(tree, (exp.Alter, exp.Drop, exp.Comment)):
        renamed = tree.find(exp.AlterRename) if isinstance(tree, exp.Alter) else None
        return [f"OWNERSHIP of {_named(target)}",
                *([f"CREATE TABLE on schema {_schema_of(renamed.this)}"]
                  if renamed is not None and isinstance(renamed.this, exp.Table) else [])]
    if isinstance(tree, exp.Insert) and tree.args.get("overwrite"):   # empties the table first
        return [f"INSERT and DELETE on {_named(target)}", *_selected(tree, target)]
    for kind, privilege in ((exp.Insert, "INSERT"), (exp.Update, "UPDATE"), (exp.Delete, "DELETE"),
                            (exp.TruncateTable, "TRUNCATE"), (exp.Merge, "INSERT, UPDATE and DELETE")):
        if isinstance(tree, kind):
            return [f"{privilege} on {_named(target)}", *_selected(tree, target)]
    if isinstance(tree, exp.Query):
        return _selected(tree, None)
    return []


def _create(tree: exp.Create) -> list[str]:
    kind = (tree.args.get("kind") or "").upper()
    target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
    if kind not in ("TABLE", "VIEW") or not isinstance(target, exp.Table):
        return []
    needed = [f"CREATE {kind} on schema {_schema_of(target)}"]
    if tree.args.get("replace"):
        needed.append(f"OWNERSHIP of {_named(target)} (where it exists: it is replaced)")
    clone = tree.find(exp.Clone)
    if clone is not None and isinstance(clone.this, exp.Table):
        return [*needed, f"SELECT on {_named(clone.this)} (the table cloned)"]
    if tree.find(exp.LikeProperty) is not None:   # the reference asks SELECT for a clone and a CTAS only
        return needed
    return [*needed, *_selected(tree.expression, target)] if isinstance(tree.expression, exp.Query) else needed


def _selected(tree: exp.Expression, target: exp.Table | None) -> list[str]:
    """SELECT on the tables `tree` reads (each once, in the order found), but `target` and its CTEs."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    names: list[str] = []
    for table in tree.find_all(exp.Table):
        name = _named(table)
        if table.name and (table.db or table.name not in ctes) and name not in names and (
                target is None or name != _named(target)):
            names.append(name)
    return [f"SELECT on {', '.join(names)}"] if names else []


def _named(table: exp.Expression | None) -> str:
    if not isinstance(table, exp.Table):
        return "the object"
    parts = [table.catalog, table.db, table.name]
    return ".".join(exp.to_identifier(part, quoted=True).sql(ENGINE) for part in parts if part)


def _schema_of(table: exp.Table) -> str:
    return exp.to_identifier(table.db, quoted=True).sql(ENGINE) if table.db else "the current schema"
