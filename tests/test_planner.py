"""The planner on values alone: golden cases under tests/cases/planner/<case>/, planned with no
database and no git.

Each case is the desired state as users write it (`environments/dev/`, validated from the files),
the tenant as it was read (`live.json`: its tables and views, its `_reconciler` catalog, and the
answers to the row counts the plan asks: the rows of the tables it names, what a MaterializedTable's
query gives, each row check's count), `case.yaml` (`about`: what the case shows; `under_review`: plan
it as a pull request's plan) and `expected.txt`: the plan as `reconciler plan` prints it, then each
change's flags, statements and row checks. The questions the plan asks must be exactly those
`live.json` answers.

A case with `before/` (the objects as applied before, with the case's environment.yaml unless it holds
its own) and `setup.sql` (rows, drift and unmanaged objects, written for PostgreSQL and transpiled for
Spark) has a `live.json` the engine itself reported: `test_the_live_state_is_what_the_engine_reports_*`
applies `before/` to a real tenant, runs `setup.sql`, reads it and answers the plan's questions there,
and compares that with `live.json`. A case without `before/` is a state no apply makes (a hand-edited
catalog, a run that died mid-apply), written by hand. With
RECONCILER_UPDATE_GOLDEN=1 both tests rewrite their file; review the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import EngineLandscape
from pydantic import TypeAdapter, ValidationError

from reconciler.desired.render import render
from reconciler.desired.validate import load
from reconciler.engines.contract import adapter_for
from reconciler.engines.ddl import REBUILD_SUFFIX
from reconciler.model import ObjectKey
from reconciler.plan import Change, Plan, TenantPlan
from reconciler.planning.environment import Workspace
from reconciler.planning.tenant import Counts, Draft, Questions, Restoring, draft
from reconciler.state import Addition, CatalogRecord, ColumnState, LiveObject, LiveState, stable_hash
from reconciler.views.report import SYMBOLS, plan_text

CASES = Path(__file__).parent / "cases" / "planner"
UPDATE = bool(os.environ.get("RECONCILER_UPDATE_GOLDEN"))
ENGINES = {"duckdb": "duckdb", "postgresql": "postgres", "sc": "spark"}   # url scheme -> engine


def _cases(engine: str | None = None, recorded: bool = False) -> list[Path]:
    cases = sorted(p for p in CASES.iterdir() if p.is_dir())
    return [case for case in cases if (engine is None or _engine(case) == engine)
            and (not recorded or (case / "before").is_dir())]


def _engine(case: Path) -> str:
    environment = yaml.safe_load((case / "environments" / "dev" / "environment.yaml").read_text())
    return ENGINES[environment["tenants"][0]["url"].split(":", 1)[0]]


def _options(case: Path) -> dict:
    options = yaml.safe_load((case / "case.yaml").read_text())
    assert options.get("about"), f"{case.name}/case.yaml: say what the case shows (about:)"
    return options


# -- the live state as JSON -------------------------------------------------------------------

def live_json(live: LiveState, counts: Counts) -> str:
    """The live state and the counts, as a case keeps them: a catalog record's content hash only where
    it is not its definition's own (a hand-edited catalog); no digest, commit or run id (planning reads
    none of them)."""
    objects = [{"key": str(key), "kind": found.kind, "columns": [c.to_json() for c in found.columns],
                **({"primary_key": list(found.primary_key)} if found.primary_key else {}),
                **({"engine_sql": found.engine_sql} if found.engine_sql is not None else {}),
                **({"additions": [{"what": a.what, "recreate": list(a.recreate), "column": a.column,
                                   "before_drop": list(a.before_drop)} for a in found.additions]}
                   if found.additions else {}),
                **({"table_format": found.table_format, "properties": dict(found.properties)}
                   if found.table_format else {})}
               for key, found in sorted(live.objects.items())]
    catalog = [{"key": str(key), "kind": record.kind, "definition": record.definition,
                "dependencies": [str(d) for d in record.dependencies],
                **({"engine_sql": record.engine_sql} if record.engine_sql is not None else {}),
                **({"content_hash": record.content_hash} if record.content_hash != _own_hash(record.definition)
                   else {})}
               for key, record in sorted(live.catalog.items())]
    data = {"exists": live.exists, "schemas": sorted(live.schemas), "objects": objects, "catalog": catalog,
            **({"interrupted": list(live.interrupted)} if live.interrupted else {}),
            **({"unavailable_formats": dict(live.unavailable_formats)} if live.unavailable_formats else {}),
            "counts": {"tables": {str(k): v for k, v in sorted(counts.tables.items())},
                       "queries": dict(sorted(counts.queries.items())), "checks": dict(sorted(counts.checks.items()))}}
    return _compact(data) + "\n"


def _compact(value, indent: str = "") -> str:
    """JSON for review: a list or object on one line where that line is short, else one item a line."""
    flat = json.dumps(value)
    if not isinstance(value, (list, dict)) or not value or len(indent) + len(flat) <= 110:
        return flat
    inner = indent + "  "
    items = ([f"{inner}{json.dumps(k)}: {_compact(v, inner)}" for k, v in value.items()] if isinstance(value, dict)
             else [f"{inner}{_compact(v, inner)}" for v in value])
    brackets = "{}" if isinstance(value, dict) else "[]"
    return brackets[0] + "\n" + ",\n".join(items) + "\n" + indent + brackets[1]


def from_json(text: str) -> tuple[LiveState, Counts]:
    data = json.loads(text)
    live = LiveState({ObjectKey.parse(found["key"]): _live_object(found) for found in data["objects"]},
                     {ObjectKey.parse(record["key"]): _record(record) for record in data["catalog"]},
                     frozenset(data["schemas"]), data["exists"], tuple(data.get("interrupted", ())),
                     unavailable_formats=tuple(data.get("unavailable_formats", {}).items()))
    counts = data["counts"]
    tables = {ObjectKey.parse(key): rows for key, rows in counts["tables"].items()}
    return live, Counts(tables, counts["queries"], counts["checks"])


def _live_object(found: dict) -> LiveObject:
    additions = tuple(Addition(a["what"], tuple(a["recreate"]), a["column"], tuple(a["before_drop"]))
                      for a in found.get("additions", ()))
    return LiveObject(ObjectKey.parse(found["key"]), found["kind"], tuple(ColumnState(**c) for c in found["columns"]),
                      tuple(found.get("primary_key", ())), found.get("engine_sql"), additions,
                      found.get("table_format"), tuple(sorted(found.get("properties", {}).items())))


def _record(record: dict) -> CatalogRecord:
    return CatalogRecord(ObjectKey.parse(record["key"]), record["kind"],
                         record.get("content_hash") or _own_hash(record["definition"]),
                         json.dumps(record["definition"], sort_keys=True), json.dumps(record["dependencies"]),
                         record.get("engine_sql"), None, "recorded")


def _own_hash(definition: dict) -> str:
    """The content hash an apply records for a definition (`ObjectState.content_hash`)."""
    return stable_hash({key: value for key, value in definition.items() if key != "outputs"})


# -- the plan as text -------------------------------------------------------------------------

def shown(tenant_plan: TenantPlan) -> str:
    """The plan as `reconciler plan` prints it (no commit: nothing here is in git), then what the text
    does not show: each change's flags, statements and row checks."""
    plan = Plan(environment="dev", ref="worktree", commit=None, tenants=(tenant_plan,))
    lines = [line for line, _ in plan_text(plan)]
    if tenant_plan.changes:
        lines += ["", "Statements"]
    for change in tenant_plan.changes:
        flags = [name.replace("_", " ") for name in ("catalog_only", "conflict", "data_loss", "acknowledged", "drift")
                 if getattr(change, name)]
        lines.append(f"  {SYMBOLS[change.action]:>3} {change.kind} {change.object}"
                     + (f" [{', '.join(flags)}]" if flags else "")
                     + (f" (renamed from {change.renamed_from})" if change.renamed_from else ""))
        lines += [f"        {statement}" for statement in change.statements]
        lines += [f"        check: {check.query} -- {check.problem}" for check in change.checks]
    return "\n".join(lines) + "\n"


def _asked(*rounds: Questions) -> dict[str, set]:
    return {"tables": {str(key) for asked in rounds for key in asked.tables},
            "queries": {query for asked in rounds for query in asked.queries},
            "checks": {query for asked in rounds for query in asked.checks}}


def _answered(counts: Counts) -> dict[str, set]:
    return {"tables": set(map(str, counts.tables)), "queries": set(counts.queries), "checks": set(counts.checks)}


def _drafted(case: Path) -> tuple[Draft, Counts, tuple[str, ...]]:
    """The case's draft, the counts live.json answers with, and the environment's allow_data_loss."""
    landscape = load(case, "dev")   # from the files: no git
    [tenant] = landscape.environment.tenants
    desired = render(landscape, tenant)
    live, counts = from_json((case / "live.json").read_text())
    compiler = adapter_for(tenant, case)   # an adapter connects to nothing until it is asked to read
    drafted = draft(compiler, desired, live, under_review=_options(case).get("under_review", False))
    return drafted, counts, landscape.environment.allow_data_loss


@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.name)
def test_a_plan_from_values_matches_its_golden_plan(case: Path) -> None:
    drafted, counts, acknowledged = _drafted(case)
    compiled = drafted.compile(counts)
    assert _asked(drafted.questions, compiled.questions) == _answered(counts), \
        "live.json must answer exactly what the plan asks"
    actual = shown(compiled.plan(counts, acknowledged))

    if UPDATE:
        (case / "expected.txt").write_text(actual)
    assert actual == (case / "expected.txt").read_text()
    assert not (case / ".tenants").exists()   # nothing opened a DuckDB file


def test_an_update_never_copies_a_table() -> None:
    """Over every planner case: a change whose statements copy a table into a new one (a rebuild) is a
    replace, with the rows it copies, and an update only alters in place (issue 28, item 3)."""
    rebuilds = 0
    for case in _cases():
        drafted, counts, acknowledged = _drafted(case)
        compiled = drafted.compile(counts)
        for change in compiled.plan(counts, acknowledged).changes:
            copies = any(REBUILD_SUFFIX in statement.lower() for statement in change.statements)
            rebuilds += copies
            assert change.action == "replace" if copies else True, (case.name, change.object)
            said = change.rows is not None if change.data_loss else re.search(r"\(\d[\d,]* rows? now\)", change.reason)
            assert said or not copies, (case.name, change.object)   # the rows it copies (or loses)
    assert rebuilds >= 5   # the cases hold rebuilds on DuckDB, PostgreSQL and Spark


# -- a restore ---------------------------------------------------------------------------------

@pytest.mark.parametrize("case, statements", [
    ("table_add_column_in_place", [
        'DELETE FROM "sales"."orders"',
        'INSERT INTO "sales"."orders" ("id", "amount") SELECT "id", "amount" FROM "_reconciler_backup"."b1"']),
    ("spark_parquet_add_column_in_place", [
        "INSERT OVERWRITE TABLE `sales`.`orders` (`id`, `amount`) "
        "SELECT `id`, `amount` FROM `_reconciler_backup`.`b1`"]),
])
def test_a_restore_is_planned_from_the_columns_the_backup_holds(case: str, statements: list[str]) -> None:
    """`reconciler restore` asks one question, which columns the backup holds, and puts back those the
    live table has too, in the table's order, as the engine writes rows over (no DELETE on Spark's
    parquet tables); a change that loses the current rows on purpose (they are backed up first)."""
    drafted, _, _ = _drafted(CASES / case)
    restoring = Restoring(ObjectKey("sales", "orders"), "b1")
    assert restoring.questions == Questions(backups=("b1",))

    change = restoring.change(drafted.compiler, drafted.live, Counts(backups={"b1": ("amount", "gone", "id")}))
    assert (change.action, change.object, change.data_loss, change.acknowledged) == \
        ("update", "sales.orders", True, True)
    assert list(change.statements) == statements


# -- the plan format across the typed changes -------------------------------------------------

WRITTEN_BEFORE = Path(__file__).parent / "cases" / "plan_format" / "planner_cases_before_variants.json"


def test_a_plan_file_written_before_the_typed_changes_is_read_as_it_was_and_still_applies() -> None:
    """planner_cases_before_variants.json: `plan --out` of the planner cases that hold every kind of
    change there is (each action, blocked, catalog-only, drift, data loss counted and acknowledged,
    renamed, with an impact), each tenant named by its case, written by the code in which a change was
    one flat record. Read now, it is written back byte for byte (its fingerprint is the same), and it
    is the plan those cases give now, which is what apply checks a saved plan against."""
    text = WRITTEN_BEFORE.read_text()
    saved = Plan.from_json(text)
    assert saved.to_json() == text
    for tenant_plan in saved.tenants:
        drafted, counts, acknowledged = _drafted(CASES / tenant_plan.tenant)
        now = drafted.compile(counts).plan(counts, acknowledged).changes
        if tenant_plan.tenant in CALLED_A_REBUILD_SINCE:   # the same statements, said as what they do
            then = tenant_plan.changes[0]
            assert (then.action, now[0].action) == ("update", "replace")
            assert now[0].model_dump(exclude={"action", "reason"}) == then.model_dump(exclude={"action", "reason"})
            now = now[1:]
            tenant_plan = tenant_plan.model_copy(update={"changes": tenant_plan.changes[1:]})
        assert now == tenant_plan.changes, tenant_plan.tenant


# Cases whose first change was written as an update that rebuilds the table (copies its rows): a plan
# saved then is not what apply runs now (apply refuses it as stale), and says a replace now.
CALLED_A_REBUILD_SINCE = {"spark_parquet_drop_column_rebuilds_the_table"}


@pytest.mark.parametrize("action, field, value", [
    ("create", "data_loss", True), ("create", "renamed_from", "sales.old"), ("create", "rows", 3),
    ("create", "details", [{"field": "sql", "op": "change", "before": "a", "after": "b"}]),
    ("delete", "renamed_from", "sales.old"), ("delete", "drift", True),
    ("delete", "impact", [{"column": "id", "change": "type INT -> BIGINT", "read_by": ["sales.v"]}]),
])
def test_a_change_holds_only_what_its_action_can_have(action: str, field: str, value: object) -> None:
    """The record every change is written as has each field; one its action cannot have must hold
    that action's value (a create never loses data, only an update or a replace renames)."""
    record = {"action": action, "kind": "Table", "object": "sales.t", "risk": "low", "reason": "r"}
    adapter = TypeAdapter(Change)
    assert adapter.validate_python(record).action == action
    with pytest.raises(ValidationError) as refused:
        adapter.validate_python({**record, field: value})
    assert [error["loc"] for error in refused.value.errors()] == [(action, field)]


# -- live.json against the engine -------------------------------------------------------------

def recorded(root: Path, case: Path, engine: str, url: str | None = None, spark=None) -> str:
    """`before/` applied to a real tenant, `setup.sql` run on it, then the tenant read and the plan's
    questions answered there, as live.json keeps them."""
    landscape = EngineLandscape(root, engine, url if engine == "postgres" else None, spark)
    folder = root / "environments" / "dev"
    environment = case / "before" / "environment.yaml"
    environment = environment if environment.exists() else case / "environments" / "dev" / "environment.yaml"
    shutil.copytree(case / "before", folder)
    _on_tenant(environment, folder / "environment.yaml", url)
    if any(path.name != "environment.yaml" for path in folder.rglob("*.yaml")):
        landscape.commit("before")
        applied = landscape.run("apply", "dev", "--yes")
        assert applied.code == 0, applied.output
    if (case / "setup.sql").exists():
        landscape.sql((case / "setup.sql").read_text())
    shutil.rmtree(folder)
    shutil.copytree(case / "environments" / "dev", folder)
    _on_tenant(case / "environments" / "dev" / "environment.yaml", folder / "environment.yaml", url)
    workspace = Workspace(root)
    loaded = workspace.load("dev")
    [tenant] = loaded.environment.tenants
    desired = render(loaded, tenant)
    adapter = workspace.adapter(tenant, "dev")
    with adapter.reading() as reading:
        live = reading.inspect()
        drafted = draft(adapter, desired, live, _options(case).get("under_review", False))
        counts = drafted.questions.answer(reading)
        compiled = drafted.compile(counts)
        return live_json(live, dataclasses.replace(counts, checks=compiled.questions.answer(reading).checks))


def _on_tenant(source: Path, target: Path, url: str | None) -> None:
    """environment.yaml with the tenant's url made the test tenant's (DuckDB's file is the repository's)."""
    text = source.read_text()
    target.write_text(re.sub(r"url: \S+", f"url: {url}", text) if url else text)


def _same_as_recorded(case: Path, actual: str) -> None:
    if UPDATE:
        (case / "live.json").write_text(actual)
    assert json.loads(actual) == json.loads((case / "live.json").read_text())


@pytest.mark.parametrize("case", _cases("duckdb", recorded=True), ids=lambda p: p.name)
def test_the_live_state_is_what_the_engine_reports_duckdb(tmp_path: Path, case: Path) -> None:
    _same_as_recorded(case, recorded(tmp_path, case, "duckdb"))


@pytest.mark.parametrize("case", _cases("postgres", recorded=True), ids=lambda p: p.name)
def test_the_live_state_is_what_the_engine_reports_postgres(tmp_path: Path, case: Path, postgres_database: str) -> None:
    _same_as_recorded(case, recorded(tmp_path, case, "postgres", postgres_database))


@pytest.mark.parametrize("case", _cases("spark", recorded=True), ids=lambda p: p.name)
def test_the_live_state_is_what_the_engine_reports_spark(tmp_path: Path, case: Path, spark_server: str, spark) -> None:
    _same_as_recorded(case, recorded(tmp_path, case, "spark", spark_server, spark))
