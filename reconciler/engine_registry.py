"""Which engine adapters are installed: entry points in the `reconciler.engines` group, by URL
scheme. The reconciler's own adapters register there in pyproject.toml like any other package's.

Owns only the registry; never loads an adapter's module (`engines.contract.adapter_for` does). Imports
nothing of ours, so that validating a landscape can ask which engines exist without the adapters.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

ENGINE_GROUP = "reconciler.engines"   # entry points: URL scheme -> Adapter class


def engines() -> dict[str, EntryPoint]:
    """Installed engine adapters by URL scheme; another package adds one with an entry point."""
    return {point.name: point for point in entry_points(group=ENGINE_GROUP)}
