"""Moving desired state between environments: promote, export and import transport packages
(going back in time is `rollback`'s).

Owns the order of each operation (read, check every guard, then write git, then tenants)
and the gate that reads a source environment's tenants before promoting into a protected
one. Git work is `gitops`'s, tenant work `planning.environment`'s; never prints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..desired.landscape import Landscape
from ..desired.render import render
from ..desired.source import ENVIRONMENTS, available_environments
from ..errors import (
    GuardRefused,
    ReconcilerError,
    TenantError,
    TenantLocked,
)
from ..model import ObjectKey
from ..plan import Plan
from ..planning.environment import Workspace, plan_environment
from ..views.report import outlook_markdown, promotion_markdown
from . import history as gitops
from . import packages


@dataclass(frozen=True)
class TenantOutlook:
    """A tenant's plan, or why it could not be planned (locked, unreachable)."""

    tenant: str
    plan: Plan | None
    problem: str | None = None


@dataclass(frozen=True)
class Promoted:
    promotion: gitops.Promotion
    branch: str | None = None
    commit: str | None = None
    body_file: Path | None = None
    outlook: tuple[TenantOutlook, ...] = ()
    pull_request: str | None = None
    forced: str | None = None
    deleted_branches: tuple[str, ...] = ()   # earlier promote branches of this pair, merged, deleted


def promote(workspace: Workspace, source: str, target: str, selection: list[str] | None,
            include_removals: bool, force_reason: str | None = None, open_pr: bool = True) -> Promoted:
    """Copy what changed in SOURCE into TARGET's folder on a new branch, with a pull request body."""
    repo = workspace.repo
    landscapes = {name: workspace.load(name, "HEAD") for name in available_environments(repo, "HEAD")}
    for name in (source, target):
        if name not in landscapes:
            workspace.load(name, "HEAD")  # raises UnknownEnvironment naming the ones there are
    gitops.check_path(landscapes, source, target)
    gitops.require_clean(repo, [source, target])
    promotion = gitops.plan_promotion(repo, landscapes[source], landscapes[target], selection, include_removals)
    if not promotion.moves:
        return Promoted(promotion)
    if landscapes[target].environment.protected:
        unverified = unapplied(workspace, landscapes[source], promotion)
        if unverified and force_reason is None:
            raise GuardRefused(f"{target} is protected: these versions were not applied successfully to "
                               f"{source}'s tenants:\n  " + "\n  ".join(unverified) +
                               f"\napply {source} first, or pass --force --reason \"...\" (recorded in the commit)")
    commit = gitops.promotion_commit(repo, promotion, _promotion_message(promotion, force_reason))
    workspace.load(target, commit.hexsha)  # the promoted folder must validate before a branch exists
    deleted = gitops.delete_merged_branches(repo, f"promote/{source}-to-{target}-")
    branch = gitops.create_branch(repo, f"promote/{source}-to-{target}-{promotion.source_commit[:7]}", commit)
    outlook = _outlook(workspace, target, commit.hexsha)
    body = promotion_markdown(promotion, outlook, branch, force_reason)
    body_file = gitops.write_body(repo, branch, body)
    title = f"Promote {source} -> {target}: {len(promotion.moves)} object(s)"
    pull_request = gitops.open_pull_request(repo, branch, gitops.current_branch(repo), title, body_file) \
        if open_pr else None
    return Promoted(promotion, branch, commit.hexsha, body_file, outlook, pull_request, force_reason, tuple(deleted))


def unapplied(workspace: Workspace, source: Landscape, promotion: gitops.Promotion) -> list[str]:
    """Moves whose source version is not what the source tenants' catalogs record as applied."""
    problems = []
    moved_paths = {m.source_path: m for m in promotion.moves if m.source_path}
    removed = [m.key for m in promotion.moves if m.action == "remove"]
    for tenant in source.environment.tenants:
        try:
            live = workspace.adapter(tenant, source.name).inspect()
        except ReconcilerError as error:
            problems.append(f"{tenant.name}: cannot be read ({error})")
            continue
        desired = render(source, tenant, workspace.cache)
        for state in desired.objects.values():
            move = moved_paths.get(state.path)
            if move is None:
                continue
            record = live.catalog.get(state.key)
            if record is None or record.content_hash != state.content_hash:
                state_of = "not applied" if record is None else "another version applied"
                problems.append(f"{tenant.name}: {move.key} ({state_of})")
        schemas = source.environment.rules_for(tenant).schemas
        for key in removed:
            if ObjectKey(schemas.get(key.schema, key.schema), key.name) in live.catalog:
                problems.append(f"{tenant.name}: {key} (still present; its removal was not applied)")
    return problems


def _promotion_message(promotion: gitops.Promotion, force_reason: str | None) -> str:
    lines = [f"Promote {promotion.source} -> {promotion.target}: {len(promotion.moves)} object(s)", "",
             f"Source: {ENVIRONMENTS}/{promotion.source} at {promotion.source_commit}", "Objects:"]
    lines += [f"  {m.action} {m.key} ({m.reason})" for m in promotion.moves]
    if force_reason is not None:
        lines += ["", f"Forced past the promotion gate: {force_reason}"]
    return "\n".join(lines) + "\n"


def _outlook(workspace: Workspace, environment: str, ref: str) -> tuple[TenantOutlook, ...]:
    """The plan of the environment (one review hash, as CI computes it); when a tenant cannot be
    reached, the plan of each tenant that can, and why the others cannot."""
    try:
        planned = plan_environment(workspace, environment, ref, verify=True)   # reviewers see what would fail
        return (TenantOutlook(environment, planned.plan),)
    except (TenantLocked, TenantError):
        pass
    results = []
    for tenant in workspace.load(environment, ref).environment.tenants:
        try:
            results.append(TenantOutlook(tenant.name, plan_environment(workspace, environment, ref,
                                                                       [tenant.name], verify=True).plan))
        except ReconcilerError as error:
            results.append(TenantOutlook(tenant.name, None, str(error)))
    return tuple(results)


# -- transport packages --------------------------------------------------------------------

def export_package(workspace: Workspace, environment: str, selection: list[str] | None, out: Path,
                   name: str | None, version: str, notes: str) -> dict:
    """Write a package of ENV's committed objects (a selection and what it reads); its manifest."""
    gitops.require_clean(workspace.repo, [environment])
    landscape = workspace.load(environment, "HEAD")
    data = packages.export(workspace.repo, landscape, selection, name or environment, version, notes)
    out.write_bytes(data)
    return packages.read(out).manifest


@dataclass(frozen=True)
class Imported:
    package: packages.Package
    branch: str
    commit: str
    body_file: Path
    pull_request: str | None


def import_package(workspace: Workspace, path: Path, environment: str, open_pr: bool = True) -> Imported:
    """Verify a package, then copy its objects into ENV's folder on a new branch, like promote."""
    package = packages.read(path)
    repo = workspace.repo
    target = workspace.load(environment, "HEAD")
    gitops.require_clean(repo, [environment])
    handle = gitops.open_repo(repo)
    record = packages.record_path(environment, package.manifest["name"])
    try:
        installed = json.loads((handle.head.commit.tree / record).data_stream.read())
    except KeyError:
        installed = None
    packages.check_version(package, installed)
    existing = {str(key): doc.path for key, doc in target.documents.items()}
    root = f"{ENVIRONMENTS}/{environment}"
    writes, deletes = {}, []
    for entry in package.manifest["objects"]:
        destination = f"{root}/{entry['path']}"
        if existing.get(entry["object"], destination) != destination:
            deletes.append(existing[entry["object"]])   # the same object, filed elsewhere here
        writes[destination] = (0o100644, gitops.store_blob(handle, package.files[entry["path"]]))
    writes[record] = (0o100644, gitops.store_blob(handle, json.dumps(package.manifest, indent=2).encode()))
    source = package.manifest["source"]
    message = (f"Import package {package.label} into {environment}\n\nSource: environments/{source['environment']} "
               f"at {source['commit']}\nObjects:\n"
               + "".join(f"  {entry['object']}\n" for entry in package.manifest["objects"]))
    commit = gitops.write_commit(handle, handle.head.commit, writes, deletes, message)
    workspace.load(environment, commit.hexsha)   # the folder with the package must validate
    branch = gitops.create_branch(repo, f"import/{package.manifest['name']}-{package.manifest['version']}", commit)
    body = (f"## Import `{package.label}` into `{environment}`\n\n{package.manifest.get('release_notes') or ''}\n\n"
            + "\n".join(f"- `{o['object']}` ({o['kind']})" for o in package.manifest["objects"]) + "\n\n"
            + "\n".join(_outlook_lines(workspace, environment, commit.hexsha)))
    body_file = gitops.write_body(repo, branch, body)
    pull_request = gitops.open_pull_request(repo, branch, gitops.current_branch(repo), f"Import {package.label}",
                                            body_file) if open_pr else None
    return Imported(package, branch, commit.hexsha, body_file, pull_request)


def _outlook_lines(workspace: Workspace, environment: str, ref: str) -> list[str]:
    return outlook_markdown(_outlook(workspace, environment, ref))
