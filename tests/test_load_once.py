"""Load once, read once (issue 12): every command validates each environment at each ref once,
and a plan opens one connection per tenant.

Counted in process: `validation.shape.objects` (once per validation) and the DuckDB adapter's
`_connect` (one per connection) are wrapped so that each call still runs for real.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import EngineLandscape, Landscape

from reconciler.desired import source as sources
from reconciler.desired.validation import shape
from reconciler.engines import duckdb as duckdb_tenant
from reconciler.engines import postgres as postgres_tenant


@pytest.fixture
def validations(monkeypatch) -> Counter:
    counted: Counter = Counter()

    def counting(run, _real=shape.objects):   # validating a folder; a plan checks environment.yaml first (`recall`)
        source = run.source
        counted[(source.name, source.ref if source.commit is None else source.commit)] += 1
        return _real(run)

    monkeypatch.setattr(shape, "objects", counting)
    return counted


@pytest.fixture
def documents(monkeypatch) -> Counter:
    """How many times each file's document is made (parsed, or decoded from the cache)."""
    counted: Counter = Counter()

    def counting(path, *args, _real=sources._load, **kwargs):
        counted[path] += 1
        return _real(path, *args, **kwargs)

    monkeypatch.setattr(sources, "_load", counting)
    return counted


@pytest.fixture
def connections(monkeypatch) -> Counter:
    counted: Counter = Counter()
    for adapter in (duckdb_tenant.DuckDBAdapter, postgres_tenant.PostgresAdapter):
        def counting(self, *args, _real=adapter._connect, **kwargs):
            counted[self.tenant.name] += 1
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(adapter, "_connect", counting)
    return counted


def test_every_command_validates_each_environment_once(landscape: Landscape, validations: Counter,
                                                        tmp_path: Path) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "region, created_at",
                   "region, created_at, status")
    landscape.commit("dev: status on the active customers")
    for command in (["status"], ["report", "--out", str(tmp_path / "report")], ["plan", "dev"],
                    ["apply", "dev", "--yes"], ["promote", "dev", "qa"], ["drift", "dev"], ["validate"]):
        validations.clear()
        result = landscape.run(*command)
        assert result.code == 0, (command, result.output)
        assert validations and max(validations.values()) == 1, (command, validations)


def test_the_commands_that_read_every_environment_make_each_document_once(
        landscape: Landscape, documents: Counter, tmp_path: Path) -> None:
    """The folder is listed by blob id before anything is parsed: a second load of unchanged files (the
    plans `status` makes after reading the audit) finds the first, and never decodes them again. Only
    environment.yaml is read twice by `report` and `site`, as by `plan`: alone first, to open the tenants
    it declares while the folder is validated."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    for command in (["status"], ["report", "--out", str(tmp_path / "report")], ["site", "--out", str(tmp_path / "site")]):
        documents.clear()
        result = landscape.run(*command)
        assert result.code == 0, (command, result.output)
        objects = {path: count for path, count in documents.items() if not path.endswith("/environment.yaml")}
        assert objects and max(objects.values()) == 1, (command, documents.most_common(3))
        assert max(documents.values()) <= (1 if command == ["status"] else 2), (command, documents.most_common(3))


def test_the_site_opens_each_tenant_once(landscape: Landscape, connections: Counter, tmp_path: Path) -> None:
    """Its audit, then its plan, on one read session (a DuckDB file of 10,000 tables takes a third of a
    second to attach)."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    connections.clear()
    result = landscape.run("site", "--out", str(tmp_path / "site"))
    assert result.code == 0, result.output
    assert connections and max(connections.values()) == 1, connections


def test_rollback_execute_validates_each_commit_once(landscape: Landscape, validations: Counter) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    before = landscape.repo.head.commit.hexsha
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "region, created_at",
                   "region, created_at, status")
    landscape.commit("dev: status on the active customers")
    assert landscape.run("apply", "dev", "--yes").code == 0
    validations.clear()
    result = landscape.run("rollback", "dev", "--to", before, "--execute")
    assert result.code == 0, result.output
    assert validations and max(validations.values()) == 1, validations


def test_a_plan_opens_one_connection_per_tenant(engine_landscape: EngineLandscape, connections: Counter) -> None:
    """Inspecting, counting the rows a change would lose, two NOT NULL checks and the shadow run:
    all on one connection."""
    landscape = engine_landscape
    master = "environments/dev/sales/customer_master.yaml"
    landscape.edit(master, "primary_key", "  - {name: note, type: VARCHAR}\nprimary_key")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master (id, name, email, region) VALUES (1, 'Ada', 'a@x', 'EU')")
    for column in ("email", "region"):
        landscape.edit(master, f"{{name: {column}, type: VARCHAR}}", f"{{name: {column}, type: VARCHAR, nullable: false}}")
    landscape.edit(master, "  - {name: note, type: VARCHAR}\n", "")
    connections.clear()
    result = landscape.run("plan", "dev")
    assert result.code == 0, result.output
    assert "columns.email.nullable" in result.stdout and "drops column note [risk high, 1 row]" in result.stdout
    assert connections == Counter({"dev": 1})
