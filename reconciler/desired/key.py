"""The key of a desired state: everything validating and rendering an environment depends on.

Owns `desired_key` (every file validation reads, by git blob id, the environment names it checks
against, and the reconciler's own code and libraries, so an upgrade forgets every remembered plan).
Equal keys validate and render alike; `planning.recall` compares a tenant's record with one. Never
reads a tenant.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
from collections.abc import Iterable
from pathlib import Path

KEY_FORMAT = "1"
# the libraries whose behaviour a plan depends on: parsing and rendering SQL, models, engines' clients
LIBRARIES = ("sqlglot", "pydantic", "pyyaml", "networkx", "deepdiff", "duckdb", "psycopg", "pyspark")


@functools.cache
def code_identity() -> str:
    """The reconciler's own files and the versions of the libraries it plans with."""
    digest = hashlib.sha256(KEY_FORMAT.encode())
    root = Path(__file__).parents[1]   # the package, every module of it
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".json", ".yaml")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\x00" + path.read_bytes() + b"\x00")
    for name in LIBRARIES:
        try:
            digest.update(f"{name}={importlib.metadata.version(name)}\x00".encode())
        except importlib.metadata.PackageNotFoundError:
            digest.update(f"{name}=none\x00".encode())
    return digest.hexdigest()


def desired_key(environment: str, environments: Iterable[str], files: Iterable[tuple[str, str]]) -> str:
    """What validating and rendering an environment depends on: its files (path, git blob id), the
    environments it may name, and the code doing it. Equal keys validate and render alike."""
    text = json.dumps([environment, sorted(environments), sorted(files)], separators=(",", ":"))
    return hashlib.sha256(f"{code_identity()}\x00{text}".encode()).hexdigest()
