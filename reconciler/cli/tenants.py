"""The commands of tenant housekeeping: backups, restore, prune-backups, checkpoint, checkpoints, unlock,
and the schemas for maintainers.

Owns their arguments and how their results print. Holds no logic.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .common import (
    LOCK_TIMEOUT,
    cli,
    data_rollback,
    housekeeping,
    observed,
    out,
    plans,
    print_table,
    workspace_of,
)


@cli.command()
@click.argument("environment")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def backups(ctx: click.Context, environment: str, fmt: str) -> None:
    """List the backups taken before changes that lost data, in every tenant of ENVIRONMENT, and on
    Spark the restore points of runs that are running or were killed before they dropped them.

    \b
    Example:
      reconciler backups prod
    """
    found = housekeeping.backups(workspace_of(ctx), environment)
    if fmt == "json":
        out.print(json.dumps(found, indent=2, default=str), markup=False)
        return
    print_table(observed.backups_table(found))


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
    result = housekeeping.restore(workspace_of(ctx), environment, backup)
    out.print(f"{result.tenant}: restored from {backup} (run {result.run_id})", markup=False)


@cli.command("prune-backups")
@click.argument("environment")
@click.option("--older-than", type=click.IntRange(min=1), metavar="DAYS",
              help="Age in days (default: the environment's backup_retention_days).")
@click.option("--yes", is_flag=True, help="Drop them; without it the command only lists them.")
@click.pass_context
def prune_backups(ctx: click.Context, environment: str, older_than: int | None, yes: bool) -> None:
    """List, and with --yes drop, backups older than the retention, and the restore points that runs
    killed after their commit point left (whatever their age). Nothing is pruned silently.

    \b
    Example:
      reconciler prune-backups prod --older-than 90 --yes
    """
    expired = housekeeping.prune_backups(workspace_of(ctx), environment, older_than, yes)
    for backup in expired:
        out.print(f"{'dropped' if yes else 'would drop'} {backup['tenant']}: {backup['name']} "
                  f"({plans.row_count(backup['row_count'])}, taken {backup['created_at']:%Y-%m-%d}"
                  f"{', a restore point its run left' if backup.get('left') else ''}"
                  f"{', of checkpoint ' + backup['checkpoint'] if backup.get('checkpoint') else ''})", markup=False)
    if not expired:
        out.print("no backup is older than the retention", markup=False)
    elif not yes:
        out.print("nothing was dropped; rerun with --yes to drop these", markup=False)


@cli.command()
@click.argument("environment")
@click.option("--select", "selection", help="Only these tables, as `graph --select` names them: 'name', "
              "'schema:sales', '+name' (space-separated terms are a union); default every managed table.")
@click.option("--name", help="The checkpoint's name (default: checkpoint-<UTC time>); one per tenant.")
@click.option("--tenant", help="Only this tenant.")
@LOCK_TIMEOUT
@click.pass_context
def checkpoint(ctx: click.Context, environment: str, selection: str | None, name: str | None, tenant: str | None,
               lock_timeout: float) -> None:
    """Take a checkpoint of the rows of every selected table in each tenant of ENVIRONMENT: a copy of each
    in the backup schema, in one transaction under the tenant lock. `rollback --checkpoint` brings the rows
    back.

    \b
    Example:
      reconciler checkpoint prod --name before-backfill --select schema:sales
    """
    for taken in data_rollback.take(workspace_of(ctx, lock_timeout), environment, selection, name, tenant):
        rows = sum(point.row_count for point in taken.points)
        out.print(f"{taken.tenant}: checkpoint {taken.name}: {len(taken.points)} table"
                  f"{'s' * (len(taken.points) != 1)}, {plans.row_count(rows)} (run {taken.run_id})", markup=False)


@cli.command()
@click.argument("environment")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def checkpoints(ctx: click.Context, environment: str, fmt: str) -> None:
    """List the checkpoints of every tenant of ENVIRONMENT: name, time, commit, tables, rows, kind, and
    until when each can be restored.

    \b
    Example:
      reconciler checkpoints prod
    """
    found = data_rollback.listing(workspace_of(ctx), environment)
    if fmt == "json":
        out.print(json.dumps(found, indent=2, default=str), markup=False)
        return
    print_table(observed.checkpoints_table(found))


@cli.command()
@click.argument("environment")
@click.argument("run_id")
@click.option("--as-is", "as_is", is_flag=True,
              help="Put nothing back (Spark): conclude a run whose journal the reconciler refuses to obey, once a "
                   "person has put the tenant right by hand.")
@click.pass_context
def unlock(ctx: click.Context, environment: str, run_id: str, as_is: bool) -> None:
    """Release what a dead run left behind: its 'running' audit row and holder note (on Spark, its
    lock row too, even one whose lease is no time and so never runs out).

    The tenant lock itself is the engine's and dies with its process; a live holder is never
    released (exit 4). On Spark, whose statements committed one by one, the run is first
    compensated from its journal. RUN_ID must be exact, as `reconciler history` shows it.

    \b
    Example:
      reconciler unlock prod 20261122T070000Z-1a2b3c
    """
    tenant, what = housekeeping.unlock(workspace_of(ctx), environment, run_id, as_is)
    out.print(f"{tenant}: {what}", markup=False)


@cli.command()
@click.argument("out_dir", metavar="DIR", default="schemas", type=click.Path(file_okay=False))
def schemas(out_dir: str) -> None:
    """Write the JSON Schemas of object files and environment.yaml, from the installed version, into DIR.

    Editors (yaml-language-server) read them through each file's modeline; `init` writes them too.

    \b
    Example:
      reconciler schemas schemas
    """
    from ..model import json_schemas
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        (folder / name).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        out.print(f"wrote {folder / name}", markup=False)
