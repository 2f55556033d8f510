"""The column references of one statement, scope by scope, as plain data.

Owns walking sqlglot's scopes once, when a statement is first analysed: each scope's sources (a
table by name, a derived scope by index), its column references with their positions and the
select-list item each stands in, select aliases, USING columns, select-list items and which of
them hold a subquery (what those compute from is not followed); for an INSERT, its target column list. `bind`
resolves these against the columns of the inputs without parsing again, and the result is
cached beside the statement's other facts. Pure: never touches a tenant, never hand-parses SQL.
"""

from __future__ import annotations


from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

SCOPES_VERSION = "4"


def extract(tree: exp.Expression) -> dict:
    """{"scopes": [...], "root": index or None, "insert": {...} or None}; see the module docstring."""
    insert = None
    query = tree
    if isinstance(tree, exp.Insert):
        listed = tree.this.expressions if isinstance(tree.this, exp.Schema) else []
        table = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        query = tree.expression
        insert = {"listed": [[i.name, *position(i)] for i in listed], "at": list(position(table)),
                  "selected": None if not isinstance(query, exp.Query) or query.is_star else len(query.selects)}
    if not isinstance(query, exp.Query):
        return {"scopes": [], "root": None, "insert": insert}
    scopes = list(traverse_scope(query))   # reads the (shared) tree; a source is keyed by its alias or name
    index = {id(scope): i for i, scope in enumerate(scopes)}
    return {"scopes": [_scope(scope, index) for scope in scopes], "root": len(scopes) - 1 if scopes else None,
            "insert": insert}


def _scope(scope: Scope, index: dict[int, int]) -> dict:
    sources = []
    for name, source in scope.sources.items():
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
            sources.append([name, "table", (f"{source.db}.{source.name}" if source.db else source.name).lower()])
        elif isinstance(source, Scope) and id(source) in index and not (
                isinstance(source.expression, exp.Values) and not source.expression.alias_column_names):
            sources.append([name, "derived", index[id(source)]])
        else:
            sources.append([name, "other", None])
    select = scope.expression if isinstance(scope.expression, exp.Select) else None
    columns = []
    for column in scope.columns:
        if isinstance(column.this, exp.Star) or _lambda_parameter(column):
            continue
        if select is not None and column.find_ancestor(exp.Select) is not select:
            continue   # sqlglot lends a correlated subquery's columns to its parent; that scope has them
        own = _projection_of(column, select)
        columns.append([column.table, column.name, *position(column.this),
                        own.alias.lower() if isinstance(own, exp.Alias) else None,
                        own.index if own is not None else None])
    items = []
    if select is not None:
        for item in select.expressions:
            if isinstance(item, exp.Star):
                items.append(["star", ""])
            elif isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
                items.append(["star", item.table])
            else:
                items.append(["name", item.alias_or_name])
    elif isinstance(scope.expression, exp.Query):   # a UNION: its columns are its first branch's
        items = [["star", ""]] if scope.expression.is_star else [["name", n] for n in scope.expression.named_selects]
    elif isinstance(scope.expression, exp.Values):   # (VALUES ...) AS t(a, b): the names its alias gives
        items = [["name", n] for n in scope.expression.alias_column_names]
    parent = scope.parent if scope.is_subquery else None
    opaque = [i for i, item in enumerate(select.expressions) if item.find(exp.Query)] if select else []
    return {"sources": sources, "columns": columns, "items": items, "opaque": opaque,
            "aliases": [e.alias.lower() for e in select.expressions if isinstance(e, exp.Alias)] if select else [],
            "using": [i.name.lower() for join in select.args.get("joins") or [] for i in join.args.get("using") or []]
            if select else [],
            "parent": index.get(id(parent)) if parent is not None else None,
            "union": not isinstance(scope.expression, exp.Select)}


def _projection_of(column: exp.Column, select: exp.Select | None) -> exp.Expression | None:
    """The select-list expression `column` stands in, if it stands in one of `select`'s."""
    node: exp.Expression | None = column
    while node is not None and select is not None and node.parent is not select:
        node = node.parent
    return node if node is not None and select is not None and node.arg_key == "expressions" else None


def _lambda_parameter(column: exp.Column) -> bool:
    lam = column.find_ancestor(exp.Lambda)
    while lam is not None:
        if column.name.lower() in {p.name.lower() for p in lam.expressions}:
            return True
        lam = lam.find_ancestor(exp.Lambda)
    return False


def position(node: exp.Expression) -> tuple[int, int]:
    """Where a node's text starts inside the SQL (sqlglot records where its last character is)."""
    identifier = node if isinstance(node, exp.Identifier) else node.find(exp.Identifier) or node
    meta = identifier.meta or {}
    line, end = meta.get("line", 1), meta.get("col", 1)
    width = len(identifier.name) + (2 if getattr(identifier, "quoted", False) else 0) if identifier.name else 1
    return line, max(end - width + 1, 1)
