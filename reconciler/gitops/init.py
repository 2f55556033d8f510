"""A new landscape repository: `reconciler init`.

Owns what a new landscape holds (one folder per environment with its environment.yaml and the
promotion chain, .gitignore, the CI workflows, the JSON Schemas the modelines point at, a short
README) and the refusal to write into a folder that holds anything already. Every file is checked
before the first one is written, so a refused init writes nothing. Never runs git and never touches a
tenant: a new environment is empty, and an empty environment plans to "No changes".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml

from .. import __version__
from ..desired.source import ENVIRONMENT_FILE, ENVIRONMENTS
from ..errors import UsageProblem
from ..model import TENANT_NAME, Environment, json_schemas

SCHEMAS = "schemas"
WORKFLOWS = ".github/workflows"
GITIGNORE = "/.tenants/\n/.reconciler/\n/.venv/\n__pycache__/\n"
CALLER = "reconciler.yml"
REUSABLE_WORKFLOW = ".github/workflows/reconcile.yml"
CI_FROM = "OWNER/reconciler"   # a placeholder to edit: where the reusable workflow is published


@dataclass(frozen=True)
class Engine:
    """How `init` declares a tenant on one engine: its dialect and its url (a placeholder to edit,
    except for DuckDB, whose file `create: true` makes on the first apply)."""

    dialect: str
    url: str
    password: str | None = None

    def tenant(self, environment: str) -> dict:
        tenant = {"name": environment, "url": self.url.format(environment=environment)}
        if self.password:
            tenant["password"] = self.password.format(variable=environment.upper().replace("-", "_"))
        if self.url.startswith("duckdb:"):
            tenant["create"] = True
        return tenant


ENGINES = {
    "duckdb": Engine("duckdb", "duckdb:///.tenants/{environment}.duckdb"),
    "postgresql": Engine("postgres", "postgresql://reconciler@localhost:5432/{environment}",
                         "env:{variable}_PASSWORD"),
    "sc": Engine("spark", "sc://localhost:15002"),
}


def landscape_files(engine: str, environments: list[str], name: str, package: str = "",
                    ci_from: str = CI_FROM) -> dict[str, str]:
    """Every file of a new landscape, by path relative to its root: the environments chained in the
    order given (each promotes from the one before; the last of several is protected)."""
    if engine not in ENGINES:
        raise UsageProblem(f"unknown engine {engine}; choose one of {', '.join(ENGINES)}")
    _check_names(environments)
    files = {".gitignore": GITIGNORE}
    for index, environment in enumerate(environments):
        files[f"{ENVIRONMENTS}/{environment}/{ENVIRONMENT_FILE}"] = _environment_yaml(
            engine, environment, environments[index - 1] if index else None,
            protected=len(environments) > 1 and index == len(environments) - 1)
    for schema_name, schema in json_schemas().items():
        files[f"{SCHEMAS}/{schema_name}"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    files[f"{WORKFLOWS}/{CALLER}"] = _caller(package, ci_from)
    files["README.md"] = _template("README.md", {
        "@NAME@": name, "@CHAIN@": " -> ".join(environments), "@VERSION@": __version__,
        "@FIRST@": environments[0], "@SECOND@": environments[1] if len(environments) > 1 else "ENV"})
    return files


def init(folder: Path, engine: str, environments: list[str], force: bool = False, package: str = "",
         ci_from: str = CI_FROM) -> list[Path]:
    """Write a new landscape into `folder` (created when missing) and return the files written.
    Refused, with nothing written, when the folder holds anything but a .git (unless `force`), or
    holds environments, or any file the landscape would write."""
    files = landscape_files(engine, environments, folder.resolve().name, package, ci_from)
    if (folder / ENVIRONMENTS).exists():
        raise UsageProblem(f"{folder} already holds {ENVIRONMENTS}/: it is a landscape; nothing was written")
    present = sorted(p.name for p in folder.iterdir() if p.name != ".git") if folder.is_dir() else []
    if present and not force:
        raise UsageProblem(f"{folder} is not empty ({', '.join(present[:5])}{', ...' if len(present) > 5 else ''}); "
                           "init writes into an empty folder (or one holding only .git), or with --force into "
                           "one whose files it would not overwrite; nothing was written")
    clashing = [path for path in files if (folder / path).exists()]
    if clashing:
        raise UsageProblem(f"{folder} already holds {', '.join(clashing)}; init never overwrites a file; "
                           "nothing was written")
    written = []
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def _check_names(environments: list[str]) -> None:
    if not environments:
        raise UsageProblem("--environments names no environment; give one or more, e.g. dev,qa,prod")
    bad = [name for name in environments if not re.fullmatch(TENANT_NAME, name) or len(name) > 63]
    if bad:
        raise UsageProblem(f"environment names are letters, digits, '-' and '_' (a letter or digit first): "
                           f"{', '.join(map(repr, bad))}")
    repeated = sorted({name for name in environments if environments.count(name) > 1})
    if repeated:
        raise UsageProblem(f"--environments names {', '.join(repeated)} more than once")


def _environment_yaml(engine: str, name: str, promotes_from: str | None, protected: bool) -> str:
    declared = {"name": name, **({"promotes_from": promotes_from} if promotes_from else {}),
                **({"protected": True} if protected else {}), "dialect": ENGINES[engine].dialect,
                "tenants": [ENGINES[engine].tenant(name)]}
    Environment.model_validate(declared)   # what init writes is valid by construction, or a bug
    modeline = f"# yaml-language-server: $schema=../../{SCHEMAS}/environment.schema.json\n"
    return modeline + yaml.safe_dump(declared, sort_keys=False, default_flow_style=None)


def _caller(package_spec: str, ci_from: str) -> str:
    """The landscape's one workflow: a caller of the reconciler's reusable workflow at a pinned ref,
    naming no environment (the reusable workflow reads them from the folder)."""
    repository, _, ref = ci_from.partition("@")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository) or (ref and not re.fullmatch(r"[\w./-]+", ref)):
        raise UsageProblem(f"--ci-from {ci_from!r}: give OWNER/NAME or OWNER/NAME@REF (a tag or a commit), "
                           "the GitHub repository that publishes the reconciler's reusable workflow")
    return _template(CALLER, {"@WORKFLOW@": f"{repository}/{REUSABLE_WORKFLOW}@{ref or 'v' + __version__}",
                              "@PACKAGE@": json.dumps(package_spec)})   # a YAML string, quotes and all


def _template(name: str, values: dict[str, str]) -> str:
    text = resources.files(__package__).joinpath("landscape", name).read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text
