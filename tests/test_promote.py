"""Promotion between environment folders, through the CLI, in real git repositories."""

from __future__ import annotations

from conftest import Landscape

DEV_VIEW = "environments/dev/sales/views/vw_customer_active.yaml"
QA_VIEW = "environments/qa/sales/views/vw_customer_active.yaml"
NEW_TABLE = """kind: Table
name: loyalty_points
schema: sales
status: active
columns:
  - {name: customer_id, type: BIGINT, nullable: false}
  - {name: points, type: INTEGER}
primary_key: [customer_id]
"""
NEW_VIEW = """kind: View
name: vw_loyalty
schema: sales
status: active
sql: |
  SELECT c.id, c.name, p.points
  FROM sales.vw_customer_active AS c JOIN sales.loyalty_points AS p ON p.customer_id = c.id
"""


def branches(landscape: Landscape) -> list[str]:
    return sorted(head.name for head in landscape.repo.heads)


def blob(landscape: Landscape, ref: str, path: str) -> bytes:
    return (landscape.repo.commit(ref).tree / path).data_stream.read()


def promoted_branch(landscape: Landscape) -> str:
    names = [name for name in branches(landscape) if name.startswith("promote/")]
    assert len(names) == 1, names
    return names[0]


def test_promote_copies_changed_files_byte_for_byte_on_a_new_branch(landscape: Landscape) -> None:
    landscape.edit(DEV_VIEW, "SELECT id, name", "SELECT id,   name")
    landscape.write("environments/dev/sales/loyalty_points.yaml", NEW_TABLE)
    source = landscape.commit("dev: loyalty points, reformatted view")
    head, qa_env = landscape.repo.head.commit.hexsha, landscape.path("environments/qa/environment.yaml").read_text()

    result = landscape.run("promote", "dev", "qa")

    assert result.code == 0, result.output
    branch = promoted_branch(landscape)
    assert branch == f"promote/dev-to-qa-{source[:7]}"
    for name in ("sales/views/vw_customer_active.yaml", "sales/loyalty_points.yaml"):
        assert blob(landscape, branch, f"environments/qa/{name}") == blob(landscape, source, f"environments/dev/{name}")
    commit = landscape.repo.commit(branch)
    assert commit.parents[0].hexsha == head
    assert f"environments/dev at {source}" in commit.message
    assert "add sales.loyalty_points" in commit.message and "change sales.vw_customer_active" in commit.message
    assert {d.a_path or d.b_path for d in commit.parents[0].diff(commit)} == {
        "environments/qa/sales/views/vw_customer_active.yaml", "environments/qa/sales/loyalty_points.yaml"}
    # the beta data flow stays in dev; qa's rules and the user's checkout are untouched
    assert "held back: integration.df_segment_scoring: status is beta" in result.stderr
    assert landscape.repo.head.commit.hexsha == head and not landscape.repo.is_dirty(untracked_files=True)
    assert landscape.path("environments/qa/environment.yaml").read_text() == qa_env
    body = landscape.path(result.stdout.split("pull request body: ")[1].split("\n")[0]).read_text()
    assert "| add | `sales.loyalty_points` | new in dev |" in body
    assert "reconciler:plan environment=qa review-hash=" in body and "sales_qa.loyalty_points" in body
    assert "gh is not installed or not logged in" in result.stdout or "opened" in result.stdout


def test_the_promoted_branch_plans_and_applies_in_the_target(landscape: Landscape) -> None:
    landscape.edit(DEV_VIEW, "region, created_at", "region, created_at, status")
    landscape.commit("dev: status in the active view")
    assert landscape.run("promote", "dev", "qa").code == 0
    landscape.repo.git.merge(promoted_branch(landscape), "--ff-only")
    assert landscape.run("apply", "qa", "--yes").code == 0
    assert landscape.sql("SELECT column_name FROM duckdb_columns() WHERE table_name = 'vw_customer_active' "
                         "ORDER BY column_index", "qa")[-1] == ("status",)


def test_skipping_an_environment_is_refused(landscape: Landscape) -> None:
    landscape.edit(DEV_VIEW, "SELECT id, name", "SELECT id,  name")
    landscape.commit("dev change")
    result = landscape.run("promote", "dev", "prod")
    assert result.code == 3
    assert "dev -> prod is not a step of the landscape order dev -> qa -> prod" in result.stderr
    assert "promote dev -> qa first" in result.stderr
    assert branches(landscape) == ["main"]
    assert landscape.run("promote", "qa", "dev").code == 3


def test_a_selection_brings_its_missing_dependencies_and_says_why(landscape: Landscape) -> None:
    landscape.write("environments/dev/sales/loyalty_points.yaml", NEW_TABLE)
    landscape.write("environments/dev/sales/views/vw_loyalty.yaml", NEW_VIEW)
    landscape.edit(DEV_VIEW, "SELECT id, name", "SELECT id,  name")  # a second version of an upstream
    landscape.write("environments/dev/sales/views/vw_unrelated.yaml",
                    NEW_VIEW.replace("vw_loyalty", "vw_unrelated"))
    landscape.commit("dev: loyalty")

    result = landscape.run("promote", "dev", "qa", "--objects", "vw_loyalty")

    assert result.code == 0, result.output
    assert "add sales.vw_loyalty  (selected)" in result.stdout
    assert "add sales.loyalty_points  (needed by sales.vw_loyalty -> sales.loyalty_points: qa lacks it)" \
        in result.stdout
    assert ("change sales.vw_customer_active  (needed by sales.vw_loyalty -> sales.vw_customer_active: "
            "qa holds another version)") in result.stdout
    tree = landscape.repo.commit(promoted_branch(landscape)).tree
    assert "environments/qa/sales/views/vw_unrelated.yaml" not in [b.path for b in tree.traverse()]
    body = landscape.path(result.stdout.split("pull request body: ")[1].split("\n")[0]).read_text()
    assert "**Dependencies added**" in body and "needed by `sales.vw_loyalty`" in body


def test_draft_and_beta_objects_never_leave_their_folder(landscape: Landscape) -> None:
    result = landscape.run("promote", "dev", "qa", "--objects", "df_segment_scoring")
    assert result.code == 3 and "status is beta" in result.stderr

    landscape.write("environments/dev/sales/loyalty_points.yaml", NEW_TABLE.replace("active", "draft"))
    landscape.write("environments/dev/sales/views/vw_loyalty.yaml", NEW_VIEW)
    landscape.commit("dev: loyalty, table still a draft")
    chained = landscape.run("promote", "dev", "qa", "--objects", "sales.vw_loyalty")
    assert chained.code == 3
    assert "sales.loyalty_points, whose status is draft (sales.vw_loyalty -> sales.loyalty_points)" \
        in chained.stderr
    everything = landscape.run("promote", "dev", "qa")
    assert everything.code == 0 and "nothing to promote" in everything.stdout
    assert "held back: sales.vw_loyalty: it depends on sales.loyalty_points" in everything.stderr
    assert branches(landscape) == ["main"]


def test_a_dirty_environment_folder_is_refused(landscape: Landscape) -> None:
    landscape.edit(DEV_VIEW, "SELECT id, name", "SELECT id,  name")
    landscape.commit("dev change")
    landscape.write("environments/dev/sales/scratch.yaml", NEW_TABLE)
    result = landscape.run("promote", "dev", "qa")
    assert result.code == 3 and "uncommitted changes" in result.stderr and "scratch.yaml" in result.stderr
    assert branches(landscape) == ["main"]


def test_removals_move_only_with_all_or_by_name(landscape: Landscape) -> None:
    landscape.remove("environments/dev/sales/views/vw_customer_segmentation.yaml")
    landscape.remove("environments/dev/integration/df_segment_scoring.yaml")  # dev-only reader of it
    landscape.commit("dev: segmentation retired")
    plain = landscape.run("promote", "dev", "qa")
    assert plain.code == 0 and "nothing to promote" in plain.stdout
    named = landscape.run("promote", "dev", "qa", "--objects", "vw_customer_segmentation", "--no-pr")
    assert named.code == 0 and "remove sales.vw_customer_segmentation" in named.stdout
    tree = landscape.repo.commit(promoted_branch(landscape)).tree
    assert "environments/qa/sales/views/vw_customer_segmentation.yaml" not in [b.path for b in tree.traverse()]
    landscape.repo.delete_head(promoted_branch(landscape), force=True)
    assert landscape.run("promote", "dev", "qa", "--all").code == 0


def test_a_promotion_that_would_break_the_target_is_refused(landscape: Landscape) -> None:
    landscape.remove("environments/dev/sales/views/vw_customer_lifetime_value.yaml")
    landscape.remove("environments/dev/sales/views/vw_customer_segmentation.yaml")
    landscape.remove("environments/dev/integration/df_segment_scoring.yaml")
    landscape.commit("dev: lifetime value and segmentation retired")
    result = landscape.run("promote", "dev", "qa", "--objects", "vw_customer_lifetime_value")
    assert result.code == 1
    assert "vw_customer_segmentation.yaml" in result.stderr and "vw_customer_lifetime_value" in result.stderr
    assert branches(landscape) == ["main"]


def test_protected_targets_need_the_versions_applied_upstream(landscape: Landscape) -> None:
    landscape.edit(QA_VIEW, "SELECT id, name", "SELECT id,  name")
    landscape.commit("qa change")
    refused = landscape.run("promote", "qa", "prod")
    assert refused.code == 3
    assert "prod is protected" in refused.stderr and "qa: sales.vw_customer_active (not applied)" in refused.stderr
    assert landscape.run("promote", "qa", "prod", "--force").code == 64
    forced = landscape.run("promote", "qa", "prod", "--force", "--reason", "hotfix INC-42", "--no-pr")
    assert forced.code == 0, forced.output
    assert "Forced past the promotion gate: hotfix INC-42" in landscape.repo.commit(promoted_branch(landscape)).message
    landscape.repo.delete_head(promoted_branch(landscape), force=True)

    assert landscape.run("apply", "qa", "--yes").code == 0
    gated = landscape.run("promote", "qa", "prod", "--no-pr")
    assert gated.code == 0, gated.output
    assert "Forced" not in landscape.repo.commit(promoted_branch(landscape)).message
