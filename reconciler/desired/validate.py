"""From documents to a valid landscape: typed objects, resolved dependencies, a graph.

Owns the order of the passes (`validation`: the shape through pydantic, the SQL, references,
cycles, columns, data checks, rules, secrets) and what they give together: a `Landscape`, or every
problem of a run reported at once as diagnostics with file:line:column. Never stops at the first
error; never touches a tenant.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .. import graph as graphs
from ..errors import InvalidInput
from ..model import Environment
from . import bind
from .cache import NO_CACHE, Cache
from .key import desired_key
from .landscape import Landscape
from .source import EnvironmentSource, available_environments, read_environment
from .validation import columns, data_checks, references, rules, sensitive, shape, statements
from .validation.run import DEFAULT_DIALECT, Run
from .validation.tenants import url_problem


def load(repo: Path, name: str, ref: str | None = None, cache: Cache = NO_CACHE) -> Landscape:
    """Read and validate one environment; raise InvalidInput listing every problem."""
    source = read_environment(repo, name, ref, cache)
    return validate(source, available_environments(repo, ref), cache)


def validate(source: EnvironmentSource, environments: Iterable[str] = (),
             cache: Cache = NO_CACHE) -> Landscape:
    """A folder with no objects yet (only environment.yaml) is valid: a new landscape, or the target of
    a first promotion. Planning it against a tenant that manages objects is refused
    (`planning.environment`), never read as "delete everything"."""
    environments = tuple(environments)
    run = Run(source, cache)
    environment = shape.environment(run, set(environments))
    run.dialect = environment.dialect if environment else DEFAULT_DIALECT
    if environment is not None:   # tenants whose url names no usable engine are reported with environment.yaml
        usable = {t.name: t.engine for t in environment.tenants if url_problem(t.url) is None}
        run.callers = (frozenset(usable.values()), frozenset(name.lower() for name in environment.allow_functions))
    objects = shape.objects(run)
    dialect = run.dialect
    facts = statements.analyse(run, objects, dialect)
    if environment is not None:
        statements.engines(run, objects, facts, dialect, usable)
    references.renames(run, objects)
    dependencies = references.references(run, objects, facts)
    graph = graphs.build(dependencies, {k: o.kind for k, o in objects.items()})
    cyclic = references.cycles(run, graph)
    bound = columns.columns(run, objects, facts, dependencies, graph, dialect) if not cyclic else ({}, {}, {}, {})
    unnamed = frozenset(key for key, found in bound[0].items() if bind.UNNAMED in found)
    bound = ({key: {name: kind for name, kind in found.items() if name != bind.UNNAMED}
              for key, found in bound[0].items()}, *bound[1:])
    sensitive_columns = sensitive.sensitive(objects, graph, *bound) if not cyclic else {}
    checks = data_checks.checks(run, objects, dependencies, graph, bound[0], sensitive_columns, dialect) \
        if not cyclic else {}
    if environment is not None and objects:
        rules.rules(run, environment, objects, facts, checks)
    if run.diagnostics:
        raise InvalidInput(run.diagnostics)
    assert environment is not None
    files = [(d.path, d.blob) for d in (source.environment, *source.objects) if d is not None]
    return Landscape(source, environment, dict(sorted(objects.items())), run.documents,
                     facts, dependencies, graph, *bound, checks,
                     key=desired_key(source.name, environments, files), sensitive=sensitive_columns,
                     unnamed=unnamed)


def valid_environment(source: EnvironmentSource, environments: Iterable[str], cache: Cache = NO_CACHE
                      ) -> Environment | None:
    """environment.yaml alone, checked as `validate` checks it (its objects are not read): the
    tenants a plan may open before the folder is validated (`planning.environment.recall`). None when it has a
    problem: only validating says which."""
    run = Run(source, cache)
    environment = shape.environment(run, set(environments))
    return None if run.diagnostics else environment
