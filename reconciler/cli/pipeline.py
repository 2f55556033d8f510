"""The commands of the pipeline: validate, plan, apply, graph, check, run.

Owns their arguments and how their results print. Holds no logic: each calls one function of the
package and prints what it returns.
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict
from pathlib import Path

import click
from rich.text import Text

from ..errors import InvalidInput, ReconcilerError, StalePlan, first_code
from .common import (
    EXIT_CHANGES,
    EXIT_ERROR,
    LOCK_TIMEOUT,
    checks,
    cli,
    data_checks,
    drawing,
    err,
    executor,
    graph_formats,
    graphs,
    observe,
    out,
    plans,
    print_lines,
    reconcile,
    report,
    source,
    workspace_of,
)


@cli.command()
@click.argument("environment", required=False)
@click.option("--ref", help="Validate the folder as it is at this git ref (commit, branch, tag).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default="text")
@click.pass_context
def validate(ctx: click.Context, environment: str | None, ref: str | None, fmt: str) -> None:
    """Check the desired state of one environment, or of all of them.

    \b
    Example:
      reconciler validate dev
    """
    workspace = workspace_of(ctx)
    names = [environment] if environment else source.available_environments(workspace.repo, ref)
    diagnostics = []
    for name in names:
        try:
            workspace.load(name, ref)
        except InvalidInput as error:
            diagnostics.extend(error.diagnostics)
    diagnostics.sort()
    if fmt == "json":
        out.print(json.dumps({"environments": names, "diagnostics": [d.to_json() for d in diagnostics]},
                             indent=2), markup=False)
    elif fmt == "github":
        if diagnostics:
            out.print(report.diagnostics_github(diagnostics), markup=False)
    elif diagnostics:
        err.print(report.diagnostics_text(diagnostics), markup=False)
    else:
        out.print(f"valid: {', '.join(names)}", markup=False)
    if diagnostics:
        ctx.exit(EXIT_ERROR)


@cli.command()
@click.argument("environment")
@click.option("--ref", help="Plan the folder as it is at this git ref instead of the working tree.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text")
@click.option("--out", "out_file", type=click.Path(dir_okay=False), help="Also save the plan (JSON) here.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes.")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.option("--no-verify", is_flag=True,
              help="Do not prove the plan on each tenant (on a shadow of it; on Spark, by EXPLAIN).")
@click.option("--show-sql", is_flag=True, help="Print each change's statements, as apply sends them (text; the "
              "markdown and JSON plans always hold them).")
@LOCK_TIMEOUT
@click.pass_context
def plan(ctx: click.Context, environment: str, ref: str | None, fmt: str, out_file: str | None,
         detailed_exitcode: bool, tenants: tuple[str, ...], no_verify: bool, show_sql: bool,
         lock_timeout: float) -> None:
    """Show what apply would change in each tenant of ENVIRONMENT.

    \b
    Example:
      reconciler plan dev --detailed-exitcode
      reconciler plan prod --ref origin/main --format json --out prod.plan.json
      reconciler plan dev --no-verify
      reconciler plan dev --show-sql
    """
    try:
        made, graph = reconcile.plan_for_review(workspace_of(ctx, lock_timeout), environment, ref, tenants,
                                                verify=not no_verify)
    except ReconcilerError as error:
        if fmt == "json":   # a program reading stdout is answered too; stderr and the exit code say it as ever
            out.print(json.dumps(report.error_json(error), indent=2, sort_keys=True), markup=False)
        raise
    if out_file:
        Path(out_file).write_text(made.to_json())
    if fmt == "json":
        out.print(made.to_json(), markup=False, end="")
    elif fmt == "markdown":
        out.print(report.plan_markdown(made, graph), markup=False, end="")
    else:
        print_lines(report.plan_text(made, show_sql=show_sql))
    if made.refused:   # a green plan is a promise: one the engine refuses fails here, not at merge
        ctx.exit(EXIT_ERROR)
    if detailed_exitcode and made.has_changes:
        ctx.exit(EXIT_CHANGES)


@cli.command()
@click.argument("environment")
@click.option("--plan", "plan_file", type=click.Path(exists=True, dir_okay=False),
              help="Apply exactly this saved plan (refused when anything moved since).")
@click.option("--ref", help="Apply the folder as it is at this git ref.")
@click.option("--allow-data-loss", multiple=True, metavar="SCHEMA.NAME",
              help="Accept losing data in this object (repeatable); it is backed up first.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.option("--expect-review-hash", help="Refuse unless the plan is the one reviewed (the hash in a "
              "pull request's plan comment, or its first 12 or more hex digits).")
@LOCK_TIMEOUT
@click.option("--verbose", "-v", is_flag=True, help="A line per object as it is applied.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the result per tenant (and errors).")
@click.option("--smoke", is_flag=True, help="First rehearse the apply with every data flow it deploys run and the "
              "checks of what they write, then roll that back; apply only when it all passed.")
@click.pass_context
def apply(ctx: click.Context, environment: str, plan_file: str | None, ref: str | None,
          allow_data_loss: tuple[str, ...], yes: bool, tenants: tuple[str, ...],
          expect_review_hash: str | None, lock_timeout: float, verbose: bool, quiet: bool, smoke: bool) -> None:
    """Make every tenant of ENVIRONMENT match the desired state.

    \b
    Example:
      reconciler apply dev --yes
      reconciler apply prod --plan prod.plan.json --yes
    """
    workspace = workspace_of(ctx, lock_timeout)
    saved = _read_plan(plan_file) if plan_file else None
    if saved is not None and saved.environment != environment:
        raise StalePlan(f"the plan was made for environment {saved.environment}, not {environment}")
    if saved is not None and ref is None and saved.ref != "worktree":
        ref = saved.ref
    planned = reconcile.plan_environment(workspace, environment, ref,
                               tenants or ([t.tenant for t in saved.tenants] if saved else None))
    chosen = planned.plan   # a saved plan is a claim to compare, never what runs
    if expect_review_hash is not None:
        expected = expect_review_hash.strip().lower()
        if len(expected) < 12 or any(c not in "0123456789abcdef" for c in expected):
            raise click.UsageError("--expect-review-hash takes the review hash a plan shows: at least 12 hex digits")
        if not planned.plan.review_hash.startswith(expected):
            raise StalePlan(f"the plan differs from the reviewed one (review hash {expected[:12]}, now "
                            f"{planned.plan.review_hash[:12]}): the tenant or the folder moved since review; "
                            "nothing was applied")
    if not quiet:
        print_lines(report.plan_text(chosen))
    if chosen.has_changes and not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("apply needs --yes when not run from a terminal")
        click.confirm("Apply these changes?", abort=True)
    # under each tenant's lock the plan is made again: a plan someone saved, reviewed or confirmed must
    # still be the same (exit 5 otherwise); with --yes alone the newer plan runs, guards permitting
    reviewed = saved is not None or expect_review_hash is not None or not yes
    with _progress(chosen, verbose and not quiet, quiet) as progress:
        results = executor.apply_environment(workspace, planned, chosen, allow_data_loss, progress=progress,
                                    moved="refuse" if reviewed else "follow", claim=saved, smoke=smoke)
    for result in results:
        for note in result.notes:
            err.print(Text(f"{result.tenant}: {note}", style="yellow"))
        if result.exit_code:
            err.print(Text(f"{result.tenant}: {result.outcome}\n{result.error}", style="red"))
        else:
            out.print(Text(f"{result.tenant}: {result.outcome} (run {result.run_id}) "
                           + report.summary_line(result.summary).replace("Plan: ", ""), style="green"))
    codes = [r.exit_code for r in results if r.exit_code]
    if codes:
        ctx.exit(first_code(codes))


@contextlib.contextmanager
def _progress(plan: plans.Plan, verbose: bool, quiet: bool):
    """A progress bar on a terminal; a plain line per object with --verbose (CI logs); else nothing."""
    total = sum(len(t.changes) for t in plan.tenants)
    if verbose:
        def line(tenant: str, change) -> None:
            out.print(f"{tenant}: {change.action} {change.kind} {change.object}", markup=False)
        yield line
    elif out.is_terminal and not quiet and total:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True) as bar:
            task = bar.add_task("applying", total=total)
            yield lambda tenant, change: bar.advance(task)
    else:
        yield None


def _read_plan(path: str) -> plans.Plan:
    try:
        return plans.Plan.from_json(Path(path).read_text())
    except (ValueError, OSError) as error:
        raise StalePlan(f"{path}: not a usable plan file: {str(error).splitlines()[0]}") from None


@cli.command()
@click.argument("environment")
@click.option("--ref", help="The graph as it is at this git ref.")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "json", "svg", "html"]), default="mermaid")
@click.option("--select", "selection", help="dbt-style: '+name', 'name+', 'kind:View', 'schema:sales', "
              "'state:modified+' (space-separated terms are a union).")
@click.option("--state", "against", help="What state:modified compares with: another environment or a git ref.")
@click.option("--columns", "columns", metavar="OBJECT[.COLUMN]",
              help="Column lineage instead: this object's columns (or one) and, transitively, what reads them.")
@click.pass_context
def graph(ctx: click.Context, environment: str, ref: str | None, fmt: str, selection: str | None,
          against: str | None, columns: str | None) -> None:
    """Print the lineage of ENVIRONMENT: what reads what, arrows in the direction data flows.

    \b
    Example:
      reconciler graph dev --format html --select 'state:modified+' --state qa > dev.html
      reconciler graph dev --format dot | dot -Tsvg > dev.svg
      reconciler graph dev --columns sales.customer_transactions.amount
    """
    workspace = workspace_of(ctx)
    landscape = workspace.load(environment, ref)
    if columns is not None:
        if selection or against:
            raise click.UsageError("--columns draws column lineage; it does not combine with --select or --state")
        try:
            picture = graphs.column_lineage(landscape.reads, landscape.derived, landscape.columns,
                                            {k: o.kind for k, o in landscape.objects.items()}, columns)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
        _print_graph(picture, fmt, f"{environment} column lineage ({columns})", {})
        return
    modified = observe.modified(workspace, landscape, against) if against else set()
    chosen = landscape.graph    # selected by what reads what (dbt's + means "and what it reads")
    if selection:
        try:
            chosen = graphs.select(chosen, selection, modified)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
    picture = landscape.lineage.subgraph(chosen.nodes).copy()   # drawn in the direction data flows
    _print_graph(picture, fmt, f"{environment} lineage" + (f" ({selection})" if selection else ""),
                 {key: "modified" for key in modified})


def _print_graph(picture, fmt: str, title: str, states: dict) -> None:
    if fmt in ("svg", "html"):
        text = drawing.svg(picture, states) if fmt == "svg" else drawing.html(picture, title, states)
        out.print(text, markup=False, end="")
        return
    render = {"mermaid": graph_formats.graph_mermaid, "dot": graph_formats.graph_dot,
              "json": graph_formats.graph_json}[fmt]
    out.print(render(picture), markup=False, end="")


@cli.command()
@click.argument("environment")
@click.option("--select", "selection", help="Only these objects, as `graph --select` names them: 'name', "
              "'name+', 'schema:sales', 'kind:View'.")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.option("--ref", help="The checks as the folder declares them at this git ref.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "github"]), default="text")
@click.pass_context
def check(ctx: click.Context, environment: str, selection: str | None, tenants: tuple[str, ...], ref: str | None,
          fmt: str) -> None:
    """Run the data checks of ENVIRONMENT's objects in every tenant; exit 1 when a check of severity
    error finds offending rows. Changes no object; the results go to each tenant's audit.

    \b
    Example:
      reconciler check prod
      reconciler check prod --select 'sales.orders+' --format github
    """
    workspace = workspace_of(ctx)
    planned, found = data_checks.check_environment(workspace, environment, ref, tenants or None, selection)
    actor = executor.current_actor(workspace.repo)
    recorded = {}
    for tenant in found:
        state = planned.states[tenant.tenant]
        try:
            recorded[tenant.tenant] = executor.record_checks(state, planned.plan.tenant(tenant.tenant), planned.plan,
                                                             tenant.results, actor)
        except ReconcilerError as error:   # the results stand; only their audit record is missing
            err.print(Text(f"{tenant.tenant}: the results were not recorded in the audit: {error}", style="yellow"))
    if fmt == "json":
        out.print(json.dumps([{"tenant": t.tenant, "run_id": recorded.get(t.tenant),
                               "results": [{**asdict(r), "outcome": r.outcome} for r in t.results],
                               "skipped": list(t.skipped)} for t in found], indent=2, default=str), markup=False)
    elif fmt == "markdown":
        out.print(report.checks_markdown(found), markup=False)
    elif fmt == "github":
        text = report.checks_github(found)
        if text:
            out.print(text, markup=False)
    else:
        print_lines(report.checks_text(found))
    if any(tenant.failed for tenant in found):
        ctx.exit(EXIT_ERROR)


@cli.command("run")
@click.argument("environment")
@click.argument("name")
@click.option("--tenant", "tenants", multiple=True, help="Only this tenant (repeatable).")
@click.option("--dry-run", is_flag=True, help="Run it and its checks, report, then roll the rows back.")
@LOCK_TIMEOUT
@click.pass_context
def run_command(ctx: click.Context, environment: str, name: str, tenants: tuple[str, ...], dry_run: bool,
                lock_timeout: float) -> None:
    """Run the data flow NAME (its INSERT ... SELECT), or refresh the MaterializedTable NAME from its
    query, in every tenant of ENVIRONMENT, then the checks of what it writes, in one transaction that
    commits only when they pass (exit 3 otherwise, rolled back).

    \b
    Example:
      reconciler run dev df_customer_enrichment --dry-run
    """
    workspace = workspace_of(ctx, lock_timeout)
    planned = reconcile.plan_environment(workspace, environment, None, tenants or None)
    actor = executor.current_actor(workspace.repo)
    codes = []
    for tenant, (key, reads_from) in reconcile.runnable(planned, name).items():
        if reads_from:
            err.print(Text(f"{tenant}: {key} reads through {reads_from}: outside the tenant and out of reach here; "
                           "its SQL runs on the tenant, reading what the tenant holds", style="yellow"))
        try:
            result = executor.run_flow(planned.states[tenant], planned.plan.tenant(tenant), planned.plan, key, actor,
                                       dry_run)
        except ReconcilerError as error:
            err.print(Text(f"{tenant}: failed\n{error}", style="red"))
            codes.append(error.exit_code)
            continue
        for warning in (*executor.warnings(result.checks), *result.notes):
            err.print(Text(f"{tenant}: {warning}", style="yellow"))
        dry = "" if result.outcome == "applied" else " (rolled back: --dry-run)"
        done = f"{'wrote' if reads_from else 'refreshed from its query'}{dry}: {result.written.describe()}"
        out.print(Text(f"{tenant}: {key} {done} in {result.seconds:.2f} s; {checks.summary(result.checks)} "
                       f"(run {result.run_id})", style="green"), markup=False)
    if codes:
        ctx.exit(first_code(codes))
