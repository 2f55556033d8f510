"""What a tenant remembers of the apply that last reconciled it: the key of the desired state it was
made to match, the digest of everything inspecting it read afterwards, and the (empty) plan that pair
gives. A plan whose desired state has that key, against a tenant whose inspection hashes to that
digest, is that plan: nothing needs validating, rendering or diffing.

Owns the two halves of that equality: `desired_key` (every file validation reads, by git blob id,
the environment names it checks against, and the reconciler's own code and libraries, so an upgrade
forgets every snapshot) and `recalled` (the checks a remembered plan must pass before it stands for a
new one). The digest is `LiveState.digest` (a session hashes each row `inspect` reads, in order), the
record is `tenants.catalog`'s, and the lookup is `reconcile.recall`. Never decides a plan by
itself: anything that differs, or cannot be told, takes the full path.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
from collections.abc import Iterable
from pathlib import Path

from .plan import TenantPlan
from .state import LiveState

KEY_FORMAT = "1"
# the libraries whose behaviour a plan depends on: parsing and rendering SQL, models, engines' clients
LIBRARIES = ("sqlglot", "pydantic", "pyyaml", "networkx", "deepdiff", "duckdb", "psycopg", "pyspark")


@functools.cache
def code_identity() -> str:
    """The reconciler's own files and the versions of the libraries it plans with."""
    digest = hashlib.sha256(KEY_FORMAT.encode())
    root = Path(__file__).parent
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".json", ".yaml")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\x00" + path.read_bytes() + b"\x00")
    for name in LIBRARIES:
        try:
            digest.update(f"{name}={importlib.metadata.version(name)}\x00".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{name}=none\x00".encode())
    return digest.hexdigest()


def desired_key(environment: str, environments: Iterable[str], files: Iterable[tuple[str, str]],
                allow_empty: bool = False) -> str:
    """What validating and rendering an environment depends on: its files (path, git blob id), the
    environments it may name, whether an empty folder was allowed, and the code doing it. Equal keys
    validate and render alike."""
    text = json.dumps([environment, sorted(environments), sorted(files), allow_empty], separators=(",", ":"))
    return hashlib.sha256(f"{code_identity()}\x00{text}".encode()).hexdigest()


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
