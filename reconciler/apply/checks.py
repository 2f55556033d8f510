"""Running data checks through a session: after an apply's statements, after a data flow, and for
`reconciler check`.

Owns running the queries `desired.checks` builds: one query per object counts the offending rows of
all its checks, and only a check that found some fetches a sample of at most `SAMPLE_ROWS`, never of
a sensitive column. Reads only: what a failure means is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .. import faults
from .. import graph as graphs
from ..check_types import Result
from ..desired.checks import SAMPLE_ROWS
from ..engines.contract import Session
from ..errors import TenantError, UsageProblem
from ..planning.environment import Planned, Workspace, plan_environment
from ..sessions import StatementFailed
from ..state import ObjectState


def run(session: Session, objects: Iterable[ObjectState]) -> list[Result]:
    """Run every check of `objects` through `session`: one counting query per object, then a sample of
    each check that found offending rows."""
    results = []
    for obj in objects:
        if not obj.checks:
            continue
        counted = " UNION ALL ".join(f"SELECT {i} AS check_index, count(*) AS offending FROM ({c.query}) AS c{i}"
                                     for i, c in enumerate(obj.checks))
        faults.reached("checks", session.adapter.tenant.name)
        try:
            session.fresh(counted)   # the rows committed by now, where a session keeps what it read (Spark)
            offending = {int(i): int(n) for i, n in session.execute(counted)}
            for i, check in enumerate(obj.checks):
                sample: tuple[dict, ...] = ()
                if offending[i] and check.shown:
                    sampled = f"SELECT * FROM ({check.query}) AS offending LIMIT {SAMPLE_ROWS}"
                    session.fresh(sampled)
                    sample = tuple(dict(zip(check.shown, row)) for row in session.execute(sampled))
                results.append(Result(str(obj.key), check.name, check.kind, check.severity, offending[i], sample))
        except StatementFailed as failure:   # the engine would not run them (a value of another type)
            failure.subject = f"the checks of {obj.key}"
            raise
    return results



@dataclass(frozen=True)
class TenantChecks:
    """What `reconciler check` found in one tenant."""

    tenant: str
    results: tuple[Result, ...]
    skipped: tuple[str, ...] = ()       # objects whose checks did not run, and why
    where: dict[tuple[str, str], tuple[str, int]] = field(default_factory=dict)   # (object, check) -> file, line

    @property
    def failed(self) -> bool:
        return any(result.outcome == "failed" for result in self.results)


def check_environment(workspace: Workspace, environment: str, ref: str | None = None,
                      tenants: Sequence[str] | None = None, selection: str | None = None
                      ) -> tuple[Planned, list[TenantChecks]]:
    """Run the data checks of every object (or those `selection` names, in `graph --select` terms) in
    each tenant, through one read session per tenant (shared-locked like a plan). An object the tenant
    does not hold as the folder declares it (a pending change to it, other than to its description or
    checks: they may name what is not there yet) is skipped and said so. Reads only; the audit record
    is the caller's (`executor.record_checks`)."""
    planned = plan_environment(workspace, environment, ref, tenants)
    found = []
    for tenant_plan in planned.plan.tenants:
        state = planned.states[tenant_plan.tenant]
        graph = state.desired.graph
        try:
            chosen = set(graphs.select(graph, selection)) if selection else set(graph)
        except ValueError as error:
            raise UsageProblem(f"--select: {error}") from None
        pending = {change.key for change in tenant_plan.changes if not change.catalog_only}
        objects, skipped = [], []
        for key in sorted(chosen):
            obj = state.desired.objects[key]
            if not obj.checks:
                continue
            if key in pending or state.live.object(key) is None:
                skipped.append(f"{key}: the tenant does not hold it as the folder declares it (the plan "
                               "changes it); apply first")
            else:
                objects.append(obj)
        with state.adapter.reading() as reading, reading.read_only():
            try:
                results = run(reading, objects)
            except StatementFailed as failure:
                raise TenantError(f"tenant {tenant_plan.tenant}: {failure.subject} could not run: {failure.message}\n"
                                  f"  statement: {failure.statement}") from None
        where = {(str(obj.key), check.name): (obj.path, check.line) for obj in objects for check in obj.checks}
        found.append(TenantChecks(tenant_plan.tenant, tuple(results), tuple(skipped), where))
    return planned, found


__all__ = ["run", "TenantChecks", "check_environment"]
