"""Whether a journal read back from the catalog may direct a compensation: a journal is data, never a
program, and never authority over what the reconciler does not manage.

Owns the rules the journal of a run found dead (`journaled.recover`, for the next apply and `unlock`
alike) must pass before anything is put back, its digest already checked (`catalog.read_journal`):
every row names an object of its run's plan (a change's object, the table it was renamed from, or the
working table of a rebuild of one); a table or view it says existed is one the catalog manages (an
applied run recorded it); an object it says was absent and that is there now is not one the catalog
manages (the catalog would say it existed). A view's text is accepted only as one query, or one
CREATE VIEW of that very view (sqlglot), and only ever runs as the query of a CREATE VIEW the
compensation writes. Never writes; a journal that fails is JournalRefused, before anything changed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlglot import exp

from ..desired import sql
from ..engines.catalog import Before, Journal
from ..engines.ddl import REBUILD_SUFFIX
from ..errors import JournalRefused
from ..model import ObjectKey
from ..state import LiveObject

Folded = tuple[str, str]


def check(journal: Journal, managed: Collection[Folded], now: Mapping[Folded, LiveObject], engine: str) -> None:
    """JournalRefused, naming every row at fault, unless each may direct the compensation. `managed`: the
    folded keys the catalog records; `now`: the tenant's objects by folded key."""
    faults = [fault for before in journal.befores for fault in _faults(before, journal.plan, managed, now, engine)]
    if faults:
        raise JournalRefused("its journal names what its run could not have touched, so nothing of it is put back "
                             "and nothing was changed: " + "; ".join(faults))


def _faults(before: Before, plan: Collection[Folded], managed: Collection[Folded],
            now: Mapping[Folded, LiveObject], engine: str) -> list[str]:
    key = before.key.folded()
    if not in_plan(before.key, plan):
        return [f"{before.key} is outside the run's plan"]
    if before.kind in ("Table", "View") and key not in managed:
        return [f"{before.key} is said to have been a {before.kind.lower()} before the run, and the catalog does "
                "not manage it"]
    if before.kind == "absent" and key in now and key in managed:
        return [f"{before.key} is said to have been absent before the run, and the catalog manages it (an applied "
                "run made it)"]
    if before.kind == "View":
        try:
            view_query(before, engine)
        except JournalRefused as refused:
            return [str(refused)]
    return []


def in_plan(key: ObjectKey, plan: Collection[Folded]) -> bool:
    schema, name = key.folded()
    return (schema, name) in plan or (name.endswith(REBUILD_SUFFIX)
                                      and (schema, name.removesuffix(REBUILD_SUFFIX)) in plan)


def view_query(before: Before, engine: str) -> str:
    """The journaled text of a view as the query a compensation's CREATE VIEW of it may hold: the text
    as the engine kept it, once sqlglot reads it as exactly one query (or one CREATE VIEW of this very
    view, whose query is then taken); JournalRefused for anything else (another statement, two, none)."""
    text = before.view_text or ""
    try:
        tree = sql.parse(text, engine)
    except sql.SqlProblem as problem:
        raise JournalRefused(f"the text journaled for view {before.key} is not one query ({problem})") from None
    if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "VIEW":
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if ObjectKey(target.db, target.name).folded() != before.key.folded() \
                or not isinstance(tree.expression, exp.Query):
            raise JournalRefused(f"the text journaled for view {before.key} creates another object")
        return tree.expression.sql(dialect=engine)
    if not isinstance(tree, exp.Query) or any(isinstance(node, (exp.DDL, exp.DML)) for node in tree.walk()):
        raise JournalRefused(f"the text journaled for view {before.key} is not a query: "
                             f"{text.strip().splitlines()[0] if text.strip() else 'nothing'}")
    return text
