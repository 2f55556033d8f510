"""Selective rollback of structure (issue 25, item 4): `rollback ENV --to REF --select EXPR` takes only
the selected objects (and what they read at REF that the folder no longer has) back to REF, leaving every
other object as it is, as a dry run, a pull request or at once; on DuckDB and a real PostgreSQL server."""

from __future__ import annotations

from conftest import DEMO_ROWS, EngineLandscape

MASTER = "environments/dev/sales/customer_master.yaml"
VIEW = "environments/dev/sales/views/vw_customer_active.yaml"
LOYAL = "environments/dev/sales/views/vw_loyal_customers.yaml"
NEW_VIEW = """kind: View
name: vw_loyal_customers
schema: sales
status: active
sql: SELECT id, loyalty_tier FROM sales.customer_master WHERE loyalty_tier IS NOT NULL
"""


def a_then_b(landscape: EngineLandscape) -> tuple[str, str]:
    """A applied with rows; B (a column holding a value, a view changed, a view added) applied."""
    assert landscape.run("apply", "dev", "--yes").code == 0
    for statement in DEMO_ROWS:
        landscape.sql(statement)
    commit_a = landscape.repo.head.commit.hexsha
    landscape.edit(MASTER, "primary_key", "  - {name: loyalty_tier, type: VARCHAR}\nprimary_key")
    landscape.edit(VIEW, "region, created_at", "region, created_at, loyalty_tier")
    landscape.write(LOYAL, NEW_VIEW)
    commit_b = landscape.commit("B: loyalty tiers")
    assert landscape.run("apply", "dev", "--yes").code == 0
    landscape.sql("UPDATE sales.customer_master SET loyalty_tier = 'GOLD' WHERE id = 1")
    return commit_a, commit_b


def view_columns(landscape: EngineLandscape, name: str) -> list[str]:
    return [row[0] for row in landscape.sql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'sales' "
        f"AND table_name = '{name}' ORDER BY ordinal_position")]


def test_only_the_selected_view_goes_back_and_every_other_object_stays(engine_landscape: EngineLandscape) -> None:
    landscape = engine_landscape
    commit_a, commit_b = a_then_b(landscape)
    assert "loyalty_tier" in view_columns(landscape, "vw_customer_active")

    dry = landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.vw_customer_active")
    assert dry.code == 0, dry.output
    assert "View sales.vw_customer_active" in dry.stdout and "vw_loyal_customers" not in dry.stdout
    assert "Table sales.customer_master" not in dry.stdout   # PostgreSQL recreates the view's readers too
    assert landscape.repo.head.commit.hexsha == commit_b
    assert "loyalty_tier" in view_columns(landscape, "vw_customer_active")   # a dry run changes nothing

    done = landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.vw_customer_active", "--execute")
    assert done.code == 0, done.output
    head, then, before = landscape.repo.head.commit, landscape.repo.commit(commit_a), landscape.repo.commit(commit_b)
    assert head.parents[0].hexsha == commit_b
    assert head.message.startswith(f"Roll back sales.vw_customer_active in environments/dev to {commit_a}")
    assert f"{commit_b[:8]} B: loyalty" in head.message
    assert head.tree[VIEW].hexsha == then.tree[VIEW].hexsha            # the selected file is REF's
    assert head.tree[MASTER].hexsha == before.tree[MASTER].hexsha      # the others are as they were
    assert head.tree[LOYAL].hexsha == before.tree[LOYAL].hexsha
    assert "loyalty_tier" not in view_columns(landscape, "vw_customer_active")
    assert landscape.sql("SELECT loyalty_tier FROM sales.customer_master WHERE id = 1") == [("GOLD",)]
    assert landscape.sql("SELECT count(*) FROM sales.vw_loyal_customers") == [(1,)]
    assert landscape.run("plan", "dev", "--detailed-exitcode").code == 0


def test_an_object_added_since_goes_and_one_removed_since_comes_back(engine_landscape: EngineLandscape) -> None:
    landscape = engine_landscape
    commit_a, commit_b = a_then_b(landscape)

    pr = landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.vw_loyal_customers", "--pr")
    assert pr.code == 0, pr.output
    branch = next(b for b in landscape.repo.branches if b.name.startswith("rollback/dev-to-"))
    assert LOYAL not in {item.path for item in branch.commit.tree.traverse()}   # added since: removed
    assert branch.commit.tree[VIEW].hexsha == landscape.repo.commit(commit_b).tree[VIEW].hexsha
    assert landscape.repo.head.commit.hexsha == commit_b                        # the checkout stays

    landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.vw_loyal_customers", "--execute")
    assert landscape.sql("SELECT count(*) FROM information_schema.views WHERE table_name = 'vw_loyal_customers'") \
        == [(0,)]
    commit_c = landscape.repo.head.commit.hexsha
    back = landscape.run("rollback", "dev", "--to", commit_b, "--select", "sales.vw_loyal_customers", "--execute")
    assert back.code == 0, back.output                                           # removed since: comes back
    assert landscape.repo.head.commit.parents[0].hexsha == commit_c
    assert landscape.sql("SELECT count(*) FROM sales.vw_loyal_customers") == [(1,)]


def test_a_selection_that_needs_a_table_taken_back_says_so_and_changes_nothing(
        engine_landscape: EngineLandscape) -> None:
    """The new view reads a column the table has only since B: taking the table back alone would leave
    the view reading a column that is gone. The folder the rollback makes is validated and refused."""
    landscape = engine_landscape
    commit_a, commit_b = a_then_b(landscape)
    state = landscape.state()
    refused = landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.customer_master", "--execute",
                            "--allow-data-loss", "sales.customer_master")
    assert refused.code == 1, refused.output
    assert "loyalty_tier" in refused.stderr and "vw_loyal_customers" in refused.stderr
    assert landscape.repo.head.commit.hexsha == commit_b
    assert landscape.state() == state

    unknown = landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.nowhere")
    assert unknown.code == 64 and "no object 'sales.nowhere'" in unknown.stderr
    assert landscape.run("rollback", "dev", "--select", "sales.customer_master").code == 64


def test_a_draft_object_rolls_back_and_a_selection_that_changes_nothing_says_so(
        engine_landscape: EngineLandscape) -> None:
    """Found by review: the promotion's lifecycle rule (drafts stay behind) refused a rollback inside one
    environment; a selection of objects that are at REF as now failed with git's 'nothing to commit'."""
    landscape = engine_landscape
    commit_a, _ = a_then_b(landscape)
    landscape.write(LOYAL, NEW_VIEW.replace("status: active", "status: draft"))
    landscape.commit("C: the new view is a draft again")
    assert landscape.run("apply", "dev", "--yes").code == 0

    back = landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.vw_loyal_customers", "--execute")
    assert back.code == 0, back.output
    assert LOYAL not in {item.path for item in landscape.repo.head.commit.tree.traverse()}

    same = landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.customer_transactions")
    assert same.code == 64 and "is at REF as now; nothing to roll back" in same.stderr, same.output


def test_a_table_renamed_since_goes_back_with_its_former_name(engine_landscape: EngineLandscape) -> None:
    """Found by review: selecting a table renamed since removed it and never brought back the table it was.
    The rename goes back whole, under the data-loss guard as in a whole rollback (REF's file has no rename)."""
    landscape = engine_landscape
    commit_a, _ = a_then_b(landscape)
    text = landscape.path("environments/dev/sales/customer_transactions.yaml").read_text()
    landscape.remove("environments/dev/sales/customer_transactions.yaml")
    landscape.write("environments/dev/sales/transactions.yaml",
                    text.replace("name: customer_transactions", "name: transactions\nrenamed_from: customer_transactions"))
    for path in landscape.root.joinpath("environments/dev").rglob("*.yaml"):
        if "sales.customer_transactions" in path.read_text():
            path.write_text(path.read_text().replace("sales.customer_transactions", "sales.transactions"))
    landscape.commit("C: customer_transactions is transactions")
    assert landscape.run("apply", "dev", "--yes").code == 0, landscape.run("apply", "dev", "--yes").output

    alone = landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.transactions")
    assert alone.code == 1   # its readers name it as it is called now: the folder it would make is invalid
    assert "sales.transactions does not exist (did you mean sales.customer_transactions?)" in alone.stderr

    dry = landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.transactions+")
    assert dry.code == 0, dry.output
    assert "create Table sales.customer_transactions" in dry.stdout and "delete Table sales.transactions" in dry.stdout
    refused = landscape.run("rollback", "dev", "--to", commit_a, "--select", "sales.transactions+", "--execute")
    assert refused.code == 3 and "would lose data" in refused.stderr, refused.output
