"""The commands on the landscape's history and across environments: init, promote, rollback, history,
status, drift, export, import, report, site.

Owns their arguments and how their results print. Holds no logic.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path

import click
from rich.text import Text

from .. import files, parallel
from ..errors import ReconcilerError, first_code
from .common import (
    EXIT_CHANGES,
    checkpoints,
    cli,
    data_rollback,
    err,
    lazy,
    observe,
    observed,
    out,
    print_lines,
    print_table,
    report,
    report_page,
    rollbacks,
    site,
    transport,
    workspace_of,
)


@cli.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@click.option("--engine", type=click.Choice(["duckdb", "postgresql", "sc"]), default="duckdb", show_default=True,
              help="The engine of every tenant (sc: Spark Connect); urls other than DuckDB's are placeholders to edit.")
@click.option("--environments", default="dev,qa,prod", show_default=True,
              help="Comma-separated environments, in promotion order; the last of several is protected.")
@click.option("--force", is_flag=True, help="Write into a folder that holds other files (never over one).")
@click.option("--package", default="", metavar="SPEC",
              help="What CI pip-installs as the reconciler: a version on your package index, or a git URL pinned to "
                   "a commit. Without it CI stops with an error until the workflow's `package` is set.")
@click.option("--ci-from", default="OWNER/reconciler", show_default=True, metavar="OWNER/NAME[@REF]",
              help="The GitHub repository whose reusable workflow CI calls, at a tag or commit (default: the tag "
                   "v<this version>); the default is a placeholder to edit.")
def init(folder: str, engine: str, environments: str, force: bool, package: str, ci_from: str) -> None:
    """Start a new landscape repository in FOLDER: environments, workflows, schemas, a README.

    \b
    Example:
      reconciler init my-landscape --engine postgresql --environments dev,prod
    """
    names = [name.strip() for name in environments.split(",") if name.strip()]
    written = lazy("reconciler.gitops.init").init(Path(folder), engine, names, force, package, ci_from)
    for path in written:
        out.print(f"wrote {path}", markup=False)
    out.print(f"next: cd {folder} && git init && git add -A && git commit -m 'a new landscape' && "
              f"reconciler plan {names[0]}", markup=False)


@cli.command()
@click.argument("environment")
@click.option("--tenant", required=True, help="The tenant whose tables and views to adopt.")
@click.option("--schema", "schemas", multiple=True, help="Only this schema (repeatable).")
@click.option("--select", "selection", help="Only these objects, as `graph --select` names them: 'name', '+name' "
              "(and what it reads), 'name+', 'schema:sales', 'kind:View' (space-separated terms are a union).")
@click.pass_context
def adopt(ctx: click.Context, environment: str, tenant: str, schemas: tuple[str, ...], selection: str | None) -> None:
    """Write one YAML file per table and view TENANT holds that no catalog manages; the next apply
    records them as managed without running a statement.

    \b
    Example:
      reconciler adopt dev --tenant dev --schema sales
      reconciler adopt dev --tenant dev --select '+sales.vw_order_totals'
    """
    adopted = lazy("reconciler.gitops.adopt").adopt(workspace_of(ctx), environment, tenant, schemas, selection)
    for path in adopted.written:
        out.print(f"wrote {path}", markup=False)
    for name in adopted.as_reported:
        err.print(f"review: {name}: written in the engine's own SQL (it did not survive the round trip)", markup=False)
    for name, why in adopted.left:
        err.print(f"not adopted: {name}: {why}", markup=False)
    count = len(adopted.written)
    out.print(f"adopted {count} object{'s' * (count != 1)}; commit them, then `reconciler plan {environment}`",
              markup=False)


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
    result = transport.promote(workspace_of(ctx), source, target, names, include_removals,
                               reason if force else None, open_pr=not no_pr)
    promotion = result.promotion
    if fmt == "json":
        out.print(json.dumps({"source": promotion.source, "target": promotion.target,
                              "source_commit": promotion.source_commit,
                              "moves": [{**asdict(m), "key": str(m.key)} for m in promotion.moves],
                              "held_back": [{"object": o, "why": w} for o, w in promotion.held_back],
                              "branch": result.branch, "commit": result.commit,
                              "deleted_branches": list(result.deleted_branches),
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
    for branch in result.deleted_branches:
        out.print(f"deleted merged branch {branch}", markup=False)
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
@click.option("--checkpoint", help="Roll tables' rows back to this checkpoint (`reconciler checkpoints`), not the "
              "structure to a ref.")
@click.option("--select", "selection", metavar="EXPR", help="With --checkpoint: only these of its tables "
              "(schema.name or a name, comma-separated). With --to: only these objects (as `graph --select` "
              "names them, at REF or now) and what they need go back; every other object stays as it is.")
@click.option("--tenant", help="With --checkpoint: only this tenant.")
@click.option("--all-or-nothing", is_flag=True, help="With --checkpoint, where tables restore one by one (Spark): "
              "a table that fails puts every restored one back (by default the others stay restored).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text")
@click.pass_context
def rollback(ctx: click.Context, environment: str, ref: str | None, resume: bool, abandon: bool, as_pr: bool,
             execute: bool, allow_data_loss: tuple[str, ...], checkpoint: str | None, selection: str | None,
             tenant: str | None, all_or_nothing: bool, fmt: str) -> None:
    """Reconcile ENVIRONMENT back to its state at an earlier ref, or roll tables' rows back to a
    checkpoint (a dry run unless told).

    \b
    Example:
      reconciler rollback prod --to HEAD~1
      reconciler rollback prod --to v1.4 --pr
      reconciler rollback prod --to HEAD~3 --select 'sales.vw_orders+' --pr
      reconciler rollback prod --resume
      reconciler rollback prod --abandon
      reconciler rollback prod --checkpoint before-backfill --select sales.orders --execute
    """
    if as_pr and execute:
        raise click.UsageError("choose one of --pr and --execute")
    if [bool(ref), resume, abandon, bool(checkpoint)].count(True) != 1:
        raise click.UsageError("name where to go back to with --to REF or --checkpoint NAME, or finish an interrupted "
                               "one with --resume, or take it back with --abandon")
    if checkpoint:
        if as_pr or allow_data_loss or fmt == "markdown":
            raise click.UsageError("--checkpoint takes --select, --tenant, --execute and --format text|json")
        _rollback_rows(ctx, environment, checkpoint, selection, tenant, execute, all_or_nothing, fmt)
        return
    if tenant or all_or_nothing or (selection and not ref):
        raise click.UsageError("--tenant and --all-or-nothing go with --checkpoint, --select with --checkpoint or "
                               "--to")
    if abandon:
        _print_abandoned(rollbacks.abandon_rollback(workspace_of(ctx), environment, allow_data_loss), fmt)
        return
    mode = "execute" if execute or resume else "pr" if as_pr else "dry-run"
    result = (rollbacks.resume_rollback(workspace_of(ctx), environment) if resume else
              rollbacks.rollback(workspace_of(ctx), environment, ref, mode, allow_data_loss, selection=selection))
    if fmt == "json":
        out.print(json.dumps({"environment": result.environment, "ref": result.ref, "mode": result.mode,
                              "target_commit": result.target_commit, "undoes": list(result.undoes),
                              "impact": [asdict(row) for row in result.impact], "plan": result.plan.to_dict(),
                              "branch": result.branch, "commit": result.commit, "checkpoint": result.checkpoint,
                              "results": [asdict(r) for r in result.results],
                              "restores": [asdict(r) for r in result.restores]}, indent=2, default=str), markup=False)
        return
    if fmt == "markdown":
        out.print(report.rollback_markdown(result), markup=False)
    else:
        print_lines(report.rollback_text(result))
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


def _rollback_rows(ctx: click.Context, environment: str, name: str, selection: str | None, tenant: str | None,
                   execute: bool, all_or_nothing: bool, fmt: str) -> None:
    """`rollback --checkpoint`: the impact per table, what ran, and the exit code of what stopped it."""
    tables = [part.strip() for part in selection.split(",") if part.strip()] if selection else None
    result = data_rollback.rollback(workspace_of(ctx), environment, name, tables, tenant, execute, all_or_nothing)
    refusals = [stop for stop in (checkpoints.refusal(r.impacts) for r in result.results) if stop]
    if fmt == "json":
        out.print(json.dumps({"environment": environment, "checkpoint": name, "execute": execute,
                              "results": [{**asdict(r), "impacts": [
                                  {**asdict(i), "difference": i.difference, "since": i.since.total_seconds()}
                                  for i in r.impacts]} for r in result.results],
                              "errors": [{"tenant": t, "error": str(e), "exit_code": e.exit_code}
                                         for t, e in result.errors]}, indent=2, default=str), markup=False)
    else:
        print_lines([(line, None) for line in observed.data_rollback_lines(result)])
        for tenant_name, error in result.errors:
            err.print(Text(f"{tenant_name}: {error}", style="red"))
        for refused in refusals:
            err.print(Text(str(refused), style="red"))
        if not execute:
            out.print("dry run: no row was changed (the dry run is in each tenant's audit); --execute restores",
                      markup=False)
    codes = [error.exit_code for _, error in result.errors] + [refused.exit_code for refused in refusals]
    if codes:
        ctx.exit(first_code(codes))


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
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def history(ctx: click.Context, environment: str, fmt: str) -> None:
    """List the audit records of every tenant of ENVIRONMENT: applies, rollbacks, dry runs.

    \b
    Example:
      reconciler history prod --format json | jq '.[-1]'
    """
    runs = observe.history(workspace_of(ctx), environment)
    if fmt == "json":
        out.print(json.dumps(runs, indent=2, default=str), markup=False)
        return
    print_table(observed.history_table(runs))


@cli.command()
@click.option("--changed-since", "ref", metavar="REF",
              help="Only the environments whose folder differs between REF and the checked-out commit.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def environments(ctx: click.Context, ref: str | None, fmt: str) -> None:
    """The environments, in landscape order (first to last along promotes_from), one a line or as a
    JSON list; what CI plans and applies, so no workflow names an environment.

    \b
    Example:
      reconciler environments --changed-since origin/main --format json
    """
    names = observe.environments(workspace_of(ctx), ref)
    out.print(json.dumps(names) if fmt == "json" else "\n".join(names), markup=False, soft_wrap=True)


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
    rows, waiting = observe.status(workspace_of(ctx))
    if fmt == "json":
        out.print(json.dumps({"tenants": [asdict(r) for r in rows], "waiting": [asdict(w) for w in waiting]},
                             indent=2), markup=False)
        return
    print_table(observed.status_table(rows))
    for line in observed.waiting_lines(waiting):
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
    found = observe.drift(workspace_of(ctx), environment)
    if fmt == "json":
        out.print(json.dumps([{"tenant": d.tenant, "changed": [c.model_dump(mode="json") for c in d.changed],
                               "unmanaged": list(d.unmanaged)} for d in found], indent=2), markup=False)
    else:
        for line in observed.drift_lines(found):
            out.print(line, markup=False)
    if any(d.changed or d.unmanaged for d in found):
        ctx.exit(EXIT_CHANGES)


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
    manifest = transport.export_package(workspace_of(ctx), environment, names, Path(out_file), name, version, notes)
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
    result = transport.import_package(workspace_of(ctx), Path(package), environment, open_pr=not no_pr)
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
    data = observe.landscape_report(workspace_of(ctx))
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    (folder / "index.html").write_text(report_page.landscape_html(data, generated))
    out.print(f"wrote {folder / 'index.html'}", markup=False)


@cli.command("site")
@click.argument("environments", nargs=-1, metavar="[ENV]...")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the site (created if missing; the files the site holds are replaced).")
@click.pass_context
def site_command(ctx: click.Context, environments: tuple[str, ...], out_dir: str) -> None:
    """Write the landscape (or only the environments ENV...) as a static site: environments and tenants,
    a page per object, lineage, runs, what is pending, and search. Static files only: open index.html
    from disk, or publish the folder.

    \b
    Example:
      reconciler site --out landscape-site && open landscape-site/index.html
      reconciler site qa prod --out release-site
    """
    workspace = workspace_of(ctx)
    data = observe.landscape_report(workspace, history_size=None, environments=environments)
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    prepared = site.prepare(data, observe.run_changes(workspace, data), generated)
    folder, names = Path(out_dir), list(data.versions)

    try:   # the objects' pages (nearly all the work) are independent: made and written in parts, one a core,
        # while this process makes and writes the rest
        written = sum(parallel.in_parts(
            lambda part, count: files.write_tree(folder, site.object_files(prepared, names[part::count])),
            meanwhile=lambda: files.write_tree(folder, site.common(prepared))))
    except OSError as error:   # a folder that cannot be written is the user's to fix, not a bug
        raise ReconcilerError(f"cannot write the site to {folder}: {error.strerror or error} "
                              f"({error.filename})") from None
    out.print(f"wrote {written} files to {folder}; open {folder / 'index.html'}", markup=False)
