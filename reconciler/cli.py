"""The command line: arguments in, rendered output and one exit code out.

Owns argument parsing (click), printing (rich, colour only on a terminal and never with
NO_COLOR) and the single table mapping exception classes to exit codes. Holds no logic.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import importlib.machinery
import importlib.util
import json
import logging
import os
import sys
from dataclasses import asdict
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from . import __version__, parallel
from .errors import InvalidInput, ReconcilerError, StalePlan, first_code


def _lazy(name: str):
    """A module imported on first use (importlib's LazyLoader): `reconciler --help`, `--version` and
    argument errors never pay for sqlglot, DuckDB, psycopg, GitPython or networkx."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


checks, drawing, executor, graphs, housekeeping, observe = (_lazy(f"reconciler.{m}") for m in (
    "desired.checks", "views.drawing", "apply.executor", "graph", "apply.housekeeping", "gitops.observe"))
plans, reconcile, report, source, transport = (_lazy(f"reconciler.{m}") for m in (
    "plan", "planning.environment", "views.report", "desired.source", "gitops.transport"))
data_checks = _lazy("reconciler.apply.checks")

EXIT_OK, EXIT_ERROR, EXIT_CHANGES, EXIT_USAGE = 0, 1, 2, 64   # the others are on the error classes
EXIT_INTERRUPTED = 130   # 128 + SIGINT, as shells report it
EXIT_INTERNAL = 70       # EX_SOFTWARE: a bug in the reconciler
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def find_repo(start: Path) -> Path:
    """The nearest folder at or above `start` that holds an environments/ folder."""
    for folder in (start, *start.parents):
        if (folder / source.ENVIRONMENTS).is_dir():
            return folder
    raise click.UsageError(f"no {source.ENVIRONMENTS}/ folder in {start} or above; run inside a landscape "
                           "repository or pass --repo")


def _workspace(ctx: click.Context, lock_timeout: float = 0) -> reconcile.Workspace:
    repo = ctx.obj["repo"]
    if repo and not (Path(repo) / source.ENVIRONMENTS).is_dir():
        what = "does not exist" if not Path(repo).exists() else f"holds no {source.ENVIRONMENTS}/ folder"
        raise click.UsageError(f"--repo {repo} {what}; name a landscape repository")
    return reconcile.Workspace(Path(repo) if repo else find_repo(Path.cwd()), lock_timeout)


LOCK_TIMEOUT = click.option("--lock-timeout", type=click.FloatRange(min=0), default=0, show_default=True,
                            metavar="SECONDS", help="Wait this long for a tenant another run holds, then exit 4.")


def _print_table(table) -> None:
    # piped output (CI logs, files) is not squeezed to 80 columns: every cell stays whole
    (out if out.is_terminal else Console(highlight=False, width=400)).print(table)


def _print_lines(lines) -> None:
    # one Text for the whole plan: rich renders a print call at a time (10,000 calls: 0.66 s; one: 0.2 s)
    out.print(Text("\n").join(Text(line, style=style or "") for line, style in lines))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--repo", type=click.Path(file_okay=False), envvar="RECONCILER_REPO",
              help="Landscape repository (default: the nearest folder holding environments/).")
@click.option("--show-engine-values", is_flag=True,
              help="Show engine error messages whole, with the values they quote (a terminal only: refused in CI "
                   "and in a pull request's plan).")
@click.version_option(__version__, prog_name="reconciler")
@click.pass_context
def cli(ctx: click.Context, repo: str | None, show_engine_values: bool) -> None:
    """Reconcile data-platform objects (tables, views, data flows, connections) from git.

    \b
    Example:
      reconciler validate
      reconciler plan dev
      reconciler apply dev --yes
    """
    ctx.obj = {"repo": repo}
    if show_engine_values:
        unsafe = [name for name in ("CI", "GITHUB_ACTIONS", "RECONCILER_BASE_REF") if os.environ.get(name)]
        if unsafe:
            raise click.UsageError(f"--show-engine-values is for a person at a terminal; {unsafe[0]} is set, and an "
                                   "engine's message can quote a row's value or a secret into a log")
        _lazy("reconciler.disclosure").reveal(True)


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
    workspace = _workspace(ctx)
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
@LOCK_TIMEOUT
@click.pass_context
def plan(ctx: click.Context, environment: str, ref: str | None, fmt: str, out_file: str | None,
         detailed_exitcode: bool, tenants: tuple[str, ...], no_verify: bool, lock_timeout: float) -> None:
    """Show what apply would change in each tenant of ENVIRONMENT.

    \b
    Example:
      reconciler plan dev --detailed-exitcode
      reconciler plan prod --ref origin/main --format json --out prod.plan.json
      reconciler plan dev --no-verify
    """
    made, graph = reconcile.plan_for_review(_workspace(ctx, lock_timeout), environment, ref, tenants,
                                            verify=not no_verify)
    if out_file:
        Path(out_file).write_text(made.to_json())
    if fmt == "json":
        out.print(made.to_json(), markup=False, end="")
    elif fmt == "markdown":
        out.print(report.plan_markdown(made, graph), markup=False, end="")
    else:
        _print_lines(report.plan_text(made))
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
    workspace = _workspace(ctx, lock_timeout)
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
        _print_lines(report.plan_text(chosen))
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
    workspace = _workspace(ctx)
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
    render = {"mermaid": report.graph_mermaid, "dot": report.graph_dot, "json": report.graph_json}[fmt]
    out.print(render(picture), markup=False, end="")


@cli.command()
@click.argument("source")
@click.argument("target")
@click.option("--objects", "selection", help="Comma-separated objects (schema.name or a unique name); "
              "their missing dependencies are added.")
@click.option("--all", "include_removals", is_flag=True, help="Also promote removals.")
@click.option("--force", is_flag=True, help="Pass the protected-environment gate (needs --reason).")
@click.option("--reason", help="Why the gate is forced; recorded in the commit message.")
@click.option("--no-pr", is_flag=True, help="Only write the branch and the pull request body.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def promote(ctx: click.Context, source: str, target: str, selection: str | None, include_removals: bool,
            force: bool, reason: str | None, no_pr: bool, fmt: str) -> None:
    """Copy what changed in SOURCE into TARGET's folder, on a new branch, as a pull request.

    \b
    Example:
      reconciler promote dev qa
      reconciler promote qa prod --objects vw_customer_active
    """
    if force != bool(reason and reason.strip()):
        raise click.UsageError("--force and --reason go together; the reason is recorded in the commit")
    names = [n for n in (selection or "").split(",") if n.strip()] if selection is not None else None
    result = transport.promote(_workspace(ctx), source, target, names, include_removals,
                               reason if force else None, open_pr=not no_pr)
    promotion = result.promotion
    if fmt == "json":
        out.print(json.dumps({"source": promotion.source, "target": promotion.target,
                              "source_commit": promotion.source_commit,
                              "moves": [{**asdict(m), "key": str(m.key)} for m in promotion.moves],
                              "held_back": [{"object": o, "why": w} for o, w in promotion.held_back],
                              "branch": result.branch, "commit": result.commit,
                              "body_file": str(result.body_file) if result.body_file else None,
                              "pull_request": result.pull_request}, indent=2), markup=False)
        return
    for name, why in promotion.held_back:
        err.print(f"held back: {name}: {why}", markup=False)
    if not promotion.moves:
        out.print(f"nothing to promote: {target} already holds what {source} has to give", markup=False)
        return
    for move in promotion.moves:
        out.print(f"{move.action:>6} {move.key}  ({move.reason})", markup=False)
    out.print(f"branch {result.branch} (commit {result.commit[:12]})", markup=False)
    out.print(f"pull request body: {result.body_file}", markup=False)
    if result.pull_request:
        out.print(result.pull_request, markup=False)


@cli.command()
@click.argument("environment")
@click.option("--to", "ref", help="The commit, tag or branch to go back to.")
@click.option("--resume", is_flag=True, help="Finish an interrupted --execute (it says so when it was).")
@click.option("--abandon", is_flag=True, help="Take an interrupted --execute back: every tenant it changed and git "
              "return to where it started.")
@click.option("--pr", "as_pr", is_flag=True, help="Write the rollback commit on a branch and open a pull request.")
@click.option("--execute", is_flag=True, help="Break glass: commit on this branch and apply at once.")
@click.option("--allow-data-loss", multiple=True, metavar="SCHEMA.NAME",
              help="With --execute or --abandon: accept losing data in this object (repeatable); backed up first.")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text")
@click.pass_context
def rollback(ctx: click.Context, environment: str, ref: str | None, resume: bool, abandon: bool, as_pr: bool,
             execute: bool, allow_data_loss: tuple[str, ...], fmt: str) -> None:
    """Reconcile ENVIRONMENT back to its state at an earlier ref (a dry run unless told).

    \b
    Example:
      reconciler rollback prod --to HEAD~1
      reconciler rollback prod --to v1.4 --pr
      reconciler rollback prod --resume
      reconciler rollback prod --abandon
    """
    if as_pr and execute:
        raise click.UsageError("choose one of --pr and --execute")
    if [bool(ref), resume, abandon].count(True) != 1:
        raise click.UsageError("name where to go back to with --to REF, or finish an interrupted one with --resume, "
                               "or take it back with --abandon")
    if abandon:
        _print_abandoned(transport.abandon_rollback(_workspace(ctx), environment, allow_data_loss), fmt)
        return
    mode = "execute" if execute or resume else "pr" if as_pr else "dry-run"
    result = (transport.resume_rollback(_workspace(ctx), environment) if resume else
              transport.rollback(_workspace(ctx), environment, ref, mode, allow_data_loss))
    if fmt == "json":
        out.print(json.dumps({"environment": result.environment, "ref": result.ref, "mode": result.mode,
                              "target_commit": result.target_commit, "undoes": list(result.undoes),
                              "impact": [asdict(row) for row in result.impact], "plan": result.plan.to_dict(),
                              "branch": result.branch, "commit": result.commit, "checkpoint": result.checkpoint,
                              "results": [asdict(r) for r in result.results]}, indent=2, default=str), markup=False)
        return
    if fmt == "markdown":
        out.print(report.rollback_markdown(result), markup=False)
    else:
        _print_lines(report.rollback_text(result))
    if result.branch:
        out.print(f"branch {result.branch} (commit {result.commit[:12]})", markup=False)
        out.print(f"pull request body: {result.body_file}", markup=False)
        if result.pull_request:
            out.print(result.pull_request, markup=False)
    for tenant_result in result.results:
        out.print(f"{tenant_result.tenant}: {tenant_result.outcome} (run {tenant_result.run_id})", markup=False)
    if result.checkpoint:
        out.print(f"checkpoint tag {result.checkpoint}; undo with: reconciler rollback {environment} "
                  f"--to {result.checkpoint}^", markup=False)
    if mode == "dry-run":
        out.print("dry run: no object was changed (the dry run is in each tenant's audit); --pr opens a "
                  "pull request, --execute applies at once",
                  markup=False)


def _print_abandoned(result, fmt: str) -> None:
    if fmt == "json":
        out.print(json.dumps(asdict(result), indent=2, default=str), markup=False)
        return
    if result.start:
        out.print(f"abandoned the rollback of {result.environment}: back where it started, {result.start[:12]}",
                  markup=False)
    for tenant_result in result.results:
        out.print(f"{tenant_result.tenant}: put back, {tenant_result.outcome} (run {tenant_result.run_id})",
                  markup=False)
    for tenant in result.untouched:
        out.print(f"{tenant}: the rollback never changed it", markup=False)
    for done in result.git:
        out.print(done, markup=False)
    for left in result.left:
        err.print(Text(f"left: {left}", style="yellow"))


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
    workspace = _workspace(ctx)
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
        _print_lines(report.checks_text(found))
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
    workspace = _workspace(ctx, lock_timeout)
    planned = reconcile.plan_environment(workspace, environment, None, tenants or None)
    actor = executor.current_actor(workspace.repo)
    codes = []
    for tenant, (key, source) in reconcile.runnable(planned, name).items():
        if source:
            err.print(Text(f"{tenant}: {key} reads through {source}: outside the tenant and out of reach here; "
                           "its SQL runs on the tenant, reading what the tenant holds", style="yellow"))
        try:
            result = executor.run_flow(planned.states[tenant], planned.plan.tenant(tenant), planned.plan, key, actor,
                                       dry_run)
        except ReconcilerError as error:
            err.print(Text(f"{tenant}: failed\n{error}", style="red"))
            codes.append(error.exit_code)
            continue
        for warning in executor.warnings(result.checks):
            err.print(Text(f"{tenant}: {warning}", style="yellow"))
        dry = "" if result.outcome == "applied" else " (rolled back: --dry-run)"
        done = f"{'wrote' if source else 'refreshed from its query'}{dry}: {result.written.describe()}"
        out.print(Text(f"{tenant}: {key} {done} in {result.seconds:.2f} s; {checks.summary(result.checks)} "
                       f"(run {result.run_id})", style="green"), markup=False)
    if codes:
        ctx.exit(first_code(codes))


@cli.command()
@click.argument("environment")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def history(ctx: click.Context, environment: str, fmt: str) -> None:
    """List the audit records of every tenant of ENVIRONMENT: applies, rollbacks, dry runs.

    \b
    Example:
      reconciler history prod --format json | jq '.[-1]'
    """
    runs = observe.history(_workspace(ctx), environment)
    if fmt == "json":
        out.print(json.dumps(runs, indent=2, default=str), markup=False)
        return
    _print_table(report.history_table(runs))


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Every environment and tenant: applied commit, pending changes, drift, locks; then what
    waits to be promoted.

    \b
    Example:
      reconciler status
    """
    rows, waiting = observe.status(_workspace(ctx))
    if fmt == "json":
        out.print(json.dumps({"tenants": [asdict(r) for r in rows], "waiting": [asdict(w) for w in waiting]},
                             indent=2), markup=False)
        return
    _print_table(report.status_table(rows))
    for line in report.waiting_lines(waiting):
        out.print(line, markup=False)


@cli.command()
@click.argument("environment")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def drift(ctx: click.Context, environment: str, fmt: str) -> None:
    """Objects changed outside the reconciler, and objects it does not manage; exit 2 if any.

    \b
    Example:
      reconciler drift prod || echo "prod drifted"
    """
    found = observe.drift(_workspace(ctx), environment)
    if fmt == "json":
        out.print(json.dumps([{"tenant": d.tenant, "changed": [c.model_dump(mode="json") for c in d.changed],
                               "unmanaged": list(d.unmanaged)} for d in found], indent=2), markup=False)
    else:
        for line in report.drift_lines(found):
            out.print(line, markup=False)
    if any(d.changed or d.unmanaged for d in found):
        ctx.exit(EXIT_CHANGES)


@cli.command()
@click.argument("environment")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def backups(ctx: click.Context, environment: str, fmt: str) -> None:
    """List the backups taken before changes that lost data, in every tenant of ENVIRONMENT.

    \b
    Example:
      reconciler backups prod
    """
    found = housekeeping.backups(_workspace(ctx), environment)
    if fmt == "json":
        out.print(json.dumps(found, indent=2, default=str), markup=False)
        return
    _print_table(report.backups_table(found))


@cli.command()
@click.argument("environment")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False), help="The package file (.zip).")
@click.option("--version", "version", required=True, help="The package's semantic version, e.g. 1.4.0.")
@click.option("--objects", "selection", help="Comma-separated objects; what they read comes along.")
@click.option("--name", help="Package name (default: the environment).")
@click.option("--notes", default="", help="Release notes.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def export(ctx: click.Context, environment: str, out_file: str, version: str, selection: str | None,
           name: str | None, notes: str, fmt: str) -> None:
    """Write a transport package: objects, their dependencies, a manifest and checksums.

    \b
    Example:
      reconciler export dev --objects vw_customer_segmentation --version 1.0.0 --out segmentation.zip
    """
    names = [n for n in selection.split(",") if n.strip()] if selection else None
    manifest = transport.export_package(_workspace(ctx), environment, names, Path(out_file), name, version, notes)
    if fmt == "json":
        out.print(json.dumps(manifest, indent=2), markup=False)
        return
    for entry in manifest["objects"]:
        out.print(f"{entry['kind']:<10} {entry['object']}", markup=False)
    for added in manifest["dependency_report"]:
        out.print(f"added {added['object']}: read by {', '.join(added['added_because'])}", markup=False)
    out.print(f"wrote {out_file}: {manifest['name']} {manifest['version']}, {len(manifest['objects'])} objects",
              markup=False)


@cli.command("import")
@click.argument("package", type=click.Path(exists=True, dir_okay=False))
@click.option("--into", "environment", required=True, help="The environment whose folder receives the objects.")
@click.option("--no-pr", is_flag=True, help="Only write the branch and the pull request body.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def import_(ctx: click.Context, package: str, environment: str, no_pr: bool, fmt: str) -> None:
    """Verify a transport package and copy its objects into ENV's folder on a new branch.

    \b
    Example:
      reconciler import segmentation.zip --into qa
    """
    result = transport.import_package(_workspace(ctx), Path(package), environment, open_pr=not no_pr)
    if fmt == "json":
        out.print(json.dumps({"package": result.package.manifest, "branch": result.branch, "commit": result.commit,
                              "body_file": str(result.body_file), "pull_request": result.pull_request}, indent=2),
                  markup=False)
        return
    out.print(f"verified {result.package.label}: {len(result.package.files)} files, every checksum matches",
              markup=False)
    out.print(f"branch {result.branch} (commit {result.commit[:12]})", markup=False)
    out.print(f"pull request body: {result.body_file}", markup=False)
    if result.pull_request:
        out.print(result.pull_request, markup=False)


@cli.command("report")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for index.html (created if missing).")
@click.pass_context
def report_command(ctx: click.Context, out_dir: str) -> None:
    """Write a static HTML report of the landscape: status, versions, dependencies, history.

    \b
    Example:
      reconciler report --out landscape-report && open landscape-report/index.html
    """
    data = observe.landscape_report(_workspace(ctx))
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (folder / "index.html").write_text(report.landscape_html(data, generated))
    out.print(f"wrote {folder / 'index.html'}", markup=False)


@cli.command()
@click.argument("environment")
@click.argument("backup")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def restore(ctx: click.Context, environment: str, backup: str, yes: bool) -> None:
    """Put a backup's rows back into its table (the rows it replaces are backed up first).

    \b
    Example:
      reconciler restore prod 'sales.orders@20261122T070000Z-1a2b3c' --yes
    """
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("restore needs --yes when not run from a terminal")
        click.confirm(f"Replace the rows of the table with those of {backup}?", abort=True)
    result = housekeeping.restore(_workspace(ctx), environment, backup)
    out.print(f"{result.tenant}: restored from {backup} (run {result.run_id})", markup=False)


@cli.command("prune-backups")
@click.argument("environment")
@click.option("--older-than", type=click.IntRange(min=1), metavar="DAYS",
              help="Age in days (default: the environment's backup_retention_days).")
@click.option("--yes", is_flag=True, help="Drop them; without it the command only lists them.")
@click.pass_context
def prune_backups(ctx: click.Context, environment: str, older_than: int | None, yes: bool) -> None:
    """List, and with --yes drop, backups older than the retention. Nothing is pruned silently.

    \b
    Example:
      reconciler prune-backups prod --older-than 90 --yes
    """
    expired = housekeeping.prune_backups(_workspace(ctx), environment, older_than, yes)
    for backup in expired:
        out.print(f"{'dropped' if yes else 'would drop'} {backup['tenant']}: {backup['name']} "
                  f"({plans.row_count(backup['row_count'])}, taken {backup['created_at']:%Y-%m-%d})", markup=False)
    if not expired:
        out.print("no backup is older than the retention", markup=False)
    elif not yes:
        out.print("nothing was dropped; rerun with --yes to drop these", markup=False)


@cli.command()
@click.argument("environment")
@click.argument("run_id")
@click.pass_context
def unlock(ctx: click.Context, environment: str, run_id: str) -> None:
    """Release what a dead run left behind: its 'running' audit row and holder note (on Spark, its
    lock row too, even one whose lease is no time and so never runs out).

    The tenant lock itself is the engine's and dies with its process; a live holder is never
    released (exit 4). On Spark, whose statements committed one by one, the run is first
    compensated from its journal. RUN_ID must be exact, as `reconciler history` shows it.

    \b
    Example:
      reconciler unlock prod 20261122T070000Z-1a2b3c
    """
    tenant, what = housekeeping.unlock(_workspace(ctx), environment, run_id)
    out.print(f"{tenant}: {what}", markup=False)


@cli.command(hidden=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="schemas", show_default=True)
def schemas(out_dir: str) -> None:
    """Write the JSON Schemas generated from the models (for maintainers)."""
    from .model import json_schemas
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (folder / name).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        out.print(f"wrote {folder / name}", markup=False)


class _Notices(logging.Handler):
    """Warnings from the pipeline (a run waiting for a tenant's lock) on stderr, as they happen."""

    def emit(self, record: logging.LogRecord) -> None:
        err.print(self.format(record), markup=False, style="yellow")


logging.getLogger("reconciler").addHandler(_Notices(logging.WARNING))
logging.getLogger("reconciler").propagate = False


def sqlglot_recursion_limit() -> int:
    """Room for SQL nested several hundred levels deep (deeper is a clear SqlProblem, never a traceback).
    sqlglot recurses about fifteen Python frames per nesting level, which take no C stack; its compiled
    build (sqlglotc) two, each on the C stack, which a limit of 20,000 lets overflow (a crash, not a
    RecursionError) at a few thousand levels: 1,500 reads 700 levels in under 3 MB of the 8 MB a thread has."""
    return 1_500 if sqlglot_compiled() else 20_000


def sqlglot_compiled() -> bool:
    """Whether the sqlglot Python would import is its compiled build (sqlglotc's extension modules beside
    sqlglot's own), found without importing it."""
    package = importlib.machinery.PathFinder.find_spec("sqlglot")
    parser = package and package.submodule_search_locations and importlib.machinery.PathFinder.find_spec(
        "sqlglot.parser", package.submodule_search_locations)
    return bool(parser) and isinstance(parser.loader, importlib.machinery.ExtensionFileLoader)


def main(argv: list[str] | None = None) -> int:
    # A plan holds tens of thousands of long-lived objects; with the default thresholds the
    # collector rescans them over and over (a third of a warm 10k-object plan). mypy's setting.
    gc.set_threshold(200_000, 30, 30)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), sqlglot_recursion_limit()))
    try:
        return _run(argv)
    finally:   # what a command told `disclosure` is its own (tests run many commands in one process)
        if "reconciler.disclosure" in sys.modules:
            sys.modules["reconciler.disclosure"].forget()


def _run(argv: list[str] | None) -> int:
    with parallel.ctrl_c() as pressed:
        try:
            # without standalone mode click returns ctx.exit()'s code instead of raising it
            code = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
        except click.exceptions.Abort as abort:
            if isinstance(abort.__cause__, KeyboardInterrupt) or pressed.is_set():
                return _interrupted()
            err.print("aborted; nothing was changed", markup=False)
            return EXIT_ERROR
        except click.ClickException as error:
            error.show()
            return EXIT_USAGE
        except KeyboardInterrupt:   # outside click's own handling (before or after the command ran)
            return _interrupted()
        except Exception as error:
            if pressed.is_set():   # what stopping raised on its way out: the command was interrupted
                return _interrupted()
            if isinstance(error, ReconcilerError):
                err.print(str(error), markup=False, style="red")
                return error.exit_code
            if os.environ.get("RECONCILER_DEBUG"):
                raise
            # a bug: one line and its own exit code, never a traceback (a driver's message may quote a value)
            said = _lazy("reconciler.disclosure").shown(str(error), "")
            err.print(f"internal error: {type(error).__name__}: {said}\nthis is a reconciler bug: please report "
                      "it (RECONCILER_DEBUG=1 shows the traceback)", markup=False, style="red")
            return EXIT_INTERNAL
        if pressed.is_set():   # Ctrl-C came too late to stop anything, or was lost in a finalizer
            return _interrupted()
    return code if isinstance(code, int) else EXIT_OK


def _interrupted() -> int:
    err.print("interrupted: the statements running were stopped; a tenant being applied was rolled back, tenants "
              "finished before it keep their changes (see `reconciler history`)", markup=False)
    return EXIT_INTERRUPTED
