"""The entry point: run one command, map what it raised to one exit code.

Owns the single table mapping exception classes to exit codes (the codes are on the error classes;
Ctrl-C is 130, a bug 70 and never a traceback), the recursion limit sqlglot needs, and the warnings
the pipeline logs printed as they happen. Holds no logic.
"""

from __future__ import annotations

import gc
import importlib.machinery
import importlib.util
import logging
import os
import sys

import click

from .. import parallel
from ..errors import ReconcilerError
from . import gitops, pipeline, tenants  # noqa: F401  (each registers its commands on the group)
from .common import (
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    cli,
    err,
    lazy,
)


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
            said = lazy("reconciler.disclosure").shown(str(error), "")
            err.print(f"internal error: {type(error).__name__}: {said}\nthis is a reconciler bug: please report "
                      "it (RECONCILER_DEBUG=1 shows the traceback)", markup=False, style="red")
            return EXIT_INTERNAL
        if pressed.is_set():   # Ctrl-C came too late to stop anything, or was lost in a finalizer
            return _interrupted()
    return code if isinstance(code, int) else EXIT_OK


def _interrupted() -> int:
    if parallel.wrote():
        err.print("interrupted: the statements running were stopped; a tenant being written to was rolled back, "
                  "tenants finished before it keep their changes (see `reconciler history`)", markup=False)
    else:   # only reads so far (plan, site, check while its checks run): no tenant's lock was asked for
        err.print("interrupted: the statements running were stopped; no tenant was written to", markup=False)
    return EXIT_INTERRUPTED
