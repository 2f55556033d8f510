"""What a tenant remembers of the apply that last reconciled it: the key of the desired state it was
made to match, the digest of everything inspecting it read afterwards, and the (empty) plan that pair
gives. A plan whose desired state has that key, against a tenant whose inspection hashes to that
digest, is that plan: nothing needs validating, rendering or diffing.

Owns `recalled`, the checks a remembered plan must pass before it stands for a new one; the key
is `desired.key`'s, the digest is `LiveState.digest` (a session hashes each row `inspect` reads, in
order), the record is `engines.catalog`'s, and the lookup is `planning.environment.recall`. Never
decides a plan by itself: anything that differs, or cannot be told, takes the full path.
"""

from __future__ import annotations

from ..plan import TenantPlan
from ..state import LiveState


def recalled(record: tuple[str, str, str] | None, key: str, tenant: str, engine: str,
             live: LiveState) -> TenantPlan | None:
    """The plan a tenant's record (desired key, live digest, plan JSON) stands for when `key` is the
    desired state's and `live` hashes to the recorded digest; None otherwise. The record is read from
    the tenant, so its shape is checked against what was read: an empty plan for this tenant and
    engine, with the interrupted runs read and unmanaged objects among those read. Beyond that it is
    trusted as the rest of the catalog is (whoever can write `_reconciler` can make a record lie, as they
    can make a connection's catalog row lie); its live fingerprint is not recomputed (a fifth of the
    time a recalled plan takes at 10,000 objects)."""
    if record is None or live.digest is None:
        return None
    recorded_key, digest, plan_json = record
    if recorded_key != key or digest != live.digest:
        return None
    try:
        plan = TenantPlan.model_validate_json(plan_json)
    except ValueError:
        return None
    if plan.changes or plan.refused or plan.tenant != tenant or plan.engine != engine \
            or plan.create_database or plan.interrupted != live.interrupted \
            or not set(plan.unmanaged) <= {str(k) for k in live.objects if k not in live.catalog}:
        return None
    return plan
