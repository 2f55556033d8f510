"""What every command shares: the `cli` group, the consoles, the repository, the shared options,
and the pipeline's modules imported on first use.

Owns the `reconciler` click group and its global options, printing (rich, colour only on a terminal
and never with NO_COLOR), finding the landscape repository. Holds no logic.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from .. import __version__


def lazy(name: str):
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


checks, drawing, executor, graphs, housekeeping, observe = (lazy(f"reconciler.{m}") for m in (
    "desired.checks", "views.drawing", "apply.executor", "graph", "apply.housekeeping", "gitops.observe"))
plans, reconcile, report, source, transport, rollbacks = (lazy(f"reconciler.{m}") for m in (
    "plan", "planning.environment", "views.report", "desired.source", "gitops.transport", "gitops.rollback"))
observed = lazy("reconciler.views.observed")
data_checks, data_rollback = lazy("reconciler.apply.checks"), lazy("reconciler.apply.data_rollback")
checkpoints = lazy("reconciler.apply.checkpoints")
graph_formats, report_page = lazy("reconciler.views.graph_formats"), lazy("reconciler.views.report_page")
site = lazy("reconciler.views.site")

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


def workspace_of(ctx: click.Context, lock_timeout: float = 0) -> reconcile.Workspace:
    repo = ctx.obj["repo"]
    if repo and not (Path(repo) / source.ENVIRONMENTS).is_dir():
        what = "does not exist" if not Path(repo).exists() else f"holds no {source.ENVIRONMENTS}/ folder"
        raise click.UsageError(f"--repo {repo} {what}; name a landscape repository")
    return reconcile.Workspace(Path(repo) if repo else find_repo(Path.cwd()), lock_timeout)


LOCK_TIMEOUT = click.option("--lock-timeout", type=click.FloatRange(min=0), default=0, show_default=True,
                            metavar="SECONDS", help="Wait this long for a tenant another run holds, then exit 4.")


def print_table(table) -> None:
    # piped output (CI logs, files) is not squeezed to 80 columns: every cell stays whole
    (out if out.is_terminal else Console(highlight=False, width=400)).print(table)


def print_lines(lines) -> None:
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
        lazy("reconciler.disclosure").reveal(True)
