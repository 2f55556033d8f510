"""What the tenants say about each object, under the object's name in the folder: a tenant names an
object by its own schema (qa's `sales_qa.customer_master` is the folder's `sales.customer_master`), and
the site's pages are the folder's objects.

Owns turning a tenant's names back into the folder's (the environment's and tenant's schema rules,
inverted) and indexing, once per site, each object's check results, backups, checkpoints and pending
changes, and each run's check results. Takes the report's finished data; never reads git or a tenant.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..model import ObjectKey


@dataclass
class Facts:
    """By the folder's object name (schema.name, lower case): lists of (environment, tenant, row or
    change); `names`: each lower-case name as the folder spells it."""

    check_results: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    backups: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    checkpoints: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    pending: dict[str, list] = field(default_factory=lambda: defaultdict(list))
    run_checks: dict[str, list] = field(default_factory=lambda: defaultdict(list))   # by run id: (object, row)
    names: dict[str, str] = field(default_factory=dict)

    def spelled(self, name: str) -> str:
        return self.names.get(name.lower(), name)


def folder_names(landscape, tenant: str):
    """A function from the tenant's name of an object (schema.name) to the folder's."""
    declared = next((t for t in landscape.environment.tenants if t.name == tenant), None)
    schemas = landscape.environment.rules_for(declared).schemas if declared else landscape.environment.rules.schemas
    back = {mapped.lower(): folder for folder, mapped in schemas.items()}

    def folder(name: str) -> str:
        key = ObjectKey.parse(name)
        return f"{back.get(key.schema.lower(), key.schema)}.{key.name}"
    return folder


def facts(data) -> Facts:
    found = Facts(names={name.lower(): name for name in data.versions})
    for (environment, tenant), audit in data.audits.items():
        folder = folder_names(data.landscapes[environment], tenant)
        for row in audit["check_results"]:
            name = folder(f"{row['schema_name']}.{row['name']}")
            found.check_results[name.lower()].append((environment, tenant, row))
            found.run_checks[row["run_id"]].append((found.spelled(name), row))
        for row in audit["backups"]:
            found.backups[folder(f"{row['schema_name']}.{row['table_name']}").lower()].append((environment, tenant, row))
        for row in audit["checkpoints"]:
            found.checkpoints[folder(f"{row['schema_name']}.{row['table_name']}").lower()].append(
                (environment, tenant, row))
    for (environment, tenant), plan in data.pending.items():
        folder = folder_names(data.landscapes[environment], tenant)
        for change in plan.changes:
            found.pending[folder(change.object).lower()].append((environment, tenant, change))
    return found
