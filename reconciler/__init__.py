"""reconciler: a GitOps reconciler for data-platform objects."""

__version__ = "0.1.0"
