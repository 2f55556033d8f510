"""A remembered plan (issue 12): after an apply, a tenant records the key of the desired state it
was made to match and the digest of what inspecting it read; a plan of the same desired state
against a tenant that hashes alike is that plan, made without validating, rendering or diffing.

Every test compares with the plan made the long way (`RECONCILER_NO_CACHE=1`) on a real tenant, and
counts validations of the folder's objects (a wrapped `validation.shape.objects`) to tell which way a plan was made.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter

import pytest
from conftest import EngineLandscape, Landscape

from reconciler.desired import key as desired_key
from reconciler.desired.validation import shape


@pytest.fixture
def validations(monkeypatch) -> Counter:
    counted: Counter = Counter()

    def counting(run, _real=shape.objects):   # environment.yaml alone is checked before a tenant is opened: the folder
        counted[run.source.name] += 1
        return _real(run)

    monkeypatch.setattr(shape, "objects", counting)
    return counted


def plans(landscape: Landscape, monkeypatch, validations: Counter, *args: str) -> tuple[dict, dict, int]:
    """The plan as `plan` makes it, the plan made the long way, and how many validations the first took."""
    validations.clear()
    made = landscape.run("plan", "dev", "--format", "json", *args)
    assert made.code in (0, 2), made.output
    recalled_validations = validations["dev"]
    with monkeypatch.context() as patched:
        patched.setenv("RECONCILER_NO_CACHE", "1")
        long_way = landscape.run("plan", "dev", "--format", "json", *args)
    assert long_way.code == made.code, long_way.output
    return json.loads(made.stdout), json.loads(long_way.stdout), recalled_validations


def test_a_no_op_plan_after_an_apply_is_recalled_and_is_the_plan_made_the_long_way(
        engine_landscape: EngineLandscape, monkeypatch, validations: Counter) -> None:
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    made, long_way, validated = plans(landscape, monkeypatch, validations)
    assert validated == 0, "the no-op plan after an apply validated the folder again"
    assert made == long_way
    assert not any(tenant["changes"] for tenant in made["tenants"])
    shutil.rmtree(landscape.root / ".git" / "reconciler")   # a fresh CI runner: the tenant remembers
    made, long_way, validated = plans(landscape, monkeypatch, validations)
    assert (validated, made) == (0, long_way)
    made, long_way, validated = plans(landscape, monkeypatch, validations, "--ref", "HEAD")   # a commit's files
    assert (validated, made, made["ref"]) == (0, long_way, "HEAD")
    monkeypatch.setenv("RECONCILER_NO_RECALL", "1")   # the long way, asked for
    made, long_way, validated = plans(landscape, monkeypatch, validations)
    assert (validated, made) == (1, long_way)


HAND_EDITS = {
    "a column added": "ALTER TABLE sales.customer_master ADD COLUMN note VARCHAR",
    "a comment": "COMMENT ON TABLE sales.customer_master IS 'owned by finance'",
    "an index": "CREATE INDEX ix_region ON sales.customer_master (region)",
    "an unmanaged table": "CREATE TABLE sales.scratch (id INTEGER)",
    "a view redefined": "CREATE OR REPLACE VIEW sales.vw_customer_active AS "
                        "SELECT id, name, email, region, created_at FROM sales.customer_master",
    "a view dropped": "DROP VIEW sales.vw_customer_segmentation",
    "a catalog record edited": "UPDATE _reconciler.objects SET definition = '{}' WHERE name = 'customer_master'",
    "a catalog record removed": "DELETE FROM _reconciler.objects WHERE kind = 'Connection'",
    "a run left running": "UPDATE _reconciler.runs SET outcome = 'running'",
}


def test_a_grant_given_by_hand_is_planned_the_long_way(postgres_database: str, landscape: Landscape, monkeypatch,
                                                        validations: Counter) -> None:
    """What a DBA gives a table on PostgreSQL (here a grant) is read by inspecting it, so it is in the digest."""
    import psycopg

    landscape.edit("environments/dev/environment.yaml", "duckdb:///.tenants/dev.duckdb", postgres_database)
    landscape.commit("dev on postgres")
    assert landscape.run("apply", "dev", "--yes").code == 0
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("GRANT SELECT ON sales.customer_master TO PUBLIC")
    made, long_way, validated = plans(landscape, monkeypatch, validations)
    assert (validated, made) == (1, long_way)


@pytest.mark.parametrize("edit", HAND_EDITS)
def test_any_hand_edit_is_planned_the_long_way(engine_landscape: EngineLandscape, monkeypatch,
                                               validations: Counter, edit: str) -> None:
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql(HAND_EDITS[edit])
    made, long_way, validated = plans(landscape, monkeypatch, validations)
    assert validated == 1, f"{edit}: the plan was recalled although the tenant changed"
    assert made == long_way


def test_rows_written_into_tables_do_not_forget_the_plan(engine_landscape: EngineLandscape, monkeypatch,
                                                         validations: Counter) -> None:
    """Data loads are what production tenants do all day: they change no object and no catalog row."""
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("INSERT INTO sales.customer_master (id, name, email, region) VALUES (1, 'Ada', 'a@x', 'EU')")
    if landscape.engine == "postgres":
        landscape.sql("ANALYZE")   # the engine's own statistics move; nothing the plan reads does
    made, long_way, validated = plans(landscape, monkeypatch, validations)
    assert (validated, made) == (0, long_way)


def test_a_tampered_record_is_not_believed(engine_landscape: EngineLandscape, monkeypatch,
                                           validations: Counter) -> None:
    """The record is read from the tenant: a plan in it that is not the one the state gives (here it hides
    an unmanaged table a DBA created, or claims one that is not there) is checked, not trusted."""
    landscape = engine_landscape
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("UPDATE _reconciler.snapshots SET tenant_plan = replace(tenant_plan, '\"unmanaged\":[]', "
                  "'\"unmanaged\":[\"sales.ghost\"]')")
    made, long_way, validated = plans(landscape, monkeypatch, validations)
    assert (validated, made) == (1, long_way)
    assert made["tenants"][0]["unmanaged"] == []


def test_a_changed_folder_or_reconciler_is_planned_the_long_way(landscape: Landscape, monkeypatch,
                                                                  validations: Counter) -> None:
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "region, created_at",
                   "region, created_at, status")
    made, long_way, validated = plans(landscape, monkeypatch, validations)
    assert validated == 1 and made == long_way and made["tenants"][0]["changes"]
    landscape.edit("environments/dev/sales/views/vw_customer_active.yaml", "region, created_at, status",
                   "region, created_at")
    made, _, validated = plans(landscape, monkeypatch, validations)
    assert validated == 0, "the folder is back to what was applied"
    monkeypatch.setattr(desired_key, "code_identity", lambda: "another version of the reconciler")
    made, long_way, validated = plans(landscape, monkeypatch, validations)
    assert (validated, made) == (1, long_way)


def test_a_recalled_plan_saved_to_a_file_applies(landscape: Landscape, monkeypatch, validations: Counter,
                                                 tmp_path) -> None:
    """Its fingerprints are the ones planning gives: `apply --plan` accepts it (nothing to do)."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    validations.clear()
    saved = tmp_path / "dev.plan.json"
    assert landscape.run("plan", "dev", "--out", str(saved)).code == 0
    assert validations["dev"] == 0
    applied = landscape.run("apply", "dev", "--plan", str(saved), "--yes")
    assert applied.code == 0, applied.output


def test_a_pull_request_plan_and_an_interrupted_rollback_are_never_recalled(landscape: Landscape, monkeypatch,
                                                                           validations: Counter) -> None:
    """A pull request's plan must first compare the tenants' urls with the base's (never recalled before
    that); an interrupted `rollback --execute` must be finished before anything is planned."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    with monkeypatch.context() as patched:
        patched.setenv("RECONCILER_BASE_REF", landscape.repo.head.commit.hexsha)
        made, long_way, validated = plans(landscape, monkeypatch, validations)
    assert (validated, made) == (1, long_way)
    intent = landscape.root / ".git" / "reconciler" / "rollback-dev.json"
    intent.write_text("{}")
    refused = landscape.run("plan", "dev")
    assert refused.code != 0 and "rollback dev --resume" in refused.output


def test_a_spark_tenant_recalls_its_plan_until_a_hand_edit_and_again_once_it_is_undone(
        spark_landscape: Landscape, spark, monkeypatch, validations: Counter) -> None:
    """Spark has no transaction: the journaled apply records its converged plan after its commit point,
    read in a fresh session. Every question inspecting puts to Spark and its answer is in the digest."""
    landscape = spark_landscape

    def recalled() -> bool:
        made, long_way, validated = plans(landscape, monkeypatch, validations)
        assert made == long_way
        return validated == 0

    def applied(*args: str) -> None:
        result = landscape.run("apply", "dev", "--yes", *args)
        assert result.code == 0, result.output

    applied()
    assert recalled(), "the no-op plan after an apply validated the folder again"
    spark.sql("INSERT INTO sales.customer_master (id, name) VALUES (1, 'Ada')").collect()
    assert recalled(), "rows loaded into a table change no object"
    spark.sql("CREATE TABLE sales.scratch (id INT) USING parquet").collect()
    assert not recalled()
    spark.sql("DROP TABLE sales.scratch").collect()
    assert recalled(), "the tenant is back to what was recorded"
    spark.sql("ALTER TABLE sales.customer_master ADD COLUMN note STRING").collect()
    assert not recalled()
    applied("--allow-data-loss", "sales.customer_master")
    assert recalled()
    spark.sql("CREATE OR REPLACE VIEW sales.vw_customer_active AS SELECT id, name, email, region, created_at "
              "FROM sales.customer_master").collect()
    assert not recalled()
    applied()
    assert recalled()
    spark.sql("INSERT INTO _reconciler.object_log SELECT schema_name, name, kind, content_hash, '{}', dependencies, "
              "engine_sql, commit, run_id, current_timestamp(), deleted FROM _reconciler.object_log "
              "WHERE name = 'customer_master'").collect()
    assert not recalled(), "a catalog record edited (appended: the newest row is the record)"
    applied()
    assert recalled()
    spark.sql("INSERT INTO _reconciler.run_log SELECT run_id, environment, tenant, ref, commit, actor, host, pid, "
              "started_at, ended_at, 'running', dry_run, summary, error, plan_fingerprint, capacity, operation, "
              "current_timestamp() FROM _reconciler.runs").collect()
    assert not recalled(), "a run left running"


def test_the_site_and_report_recall_what_each_tenant_remembers_and_show_what_the_long_way_shows(
        landscape: Landscape, monkeypatch) -> None:
    """`site` and `report` read every environment's status: an environment whose tenants remember the plan
    for its files (dev, applied) is not planned again; one whose tenants do not (qa and prod, never
    applied; dev once a view is dropped by hand) is, and both ways say the same."""
    from reconciler.gitops import observe
    from reconciler.planning import environment

    planned: Counter = Counter()

    def counting(reading, adapter, desired, *args, _real=environment.plan_through, **kwargs):
        planned[desired.environment] += 1
        return _real(reading, adapter, desired, *args, **kwargs)

    monkeypatch.setattr(environment, "plan_through", counting)
    assert landscape.run("apply", "dev", "--yes").code == 0

    def both_ways() -> observe.LandscapeReport:
        """The report as `site` makes it (environments planned counted), checked against the long way."""
        with monkeypatch.context() as patched:
            patched.setenv("RECONCILER_NO_RECALL", "1")
            long_way = observe.landscape_report(environment.Workspace(landscape.root), history_size=None)
        planned.clear()
        recalled = observe.landscape_report(environment.Workspace(landscape.root), history_size=None)
        assert (recalled.status, recalled.pending) == (long_way.status, long_way.pending)
        return recalled

    recalled = both_ways()
    assert "dev" not in planned and planned["qa"] and planned["prod"], planned
    assert not recalled.pending["dev", "dev"].changes

    landscape.sql("DROP VIEW sales.vw_customer_active")   # a hand edit: the tenant no longer hashes as it did
    recalled = both_ways()
    assert planned["dev"] == 1, planned
    assert [str(change.key) for change in recalled.pending["dev", "dev"].changes] == ["sales.vw_customer_active"]
