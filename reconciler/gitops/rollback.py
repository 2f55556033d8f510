"""Going back in time for structure: `rollback ENV --to REF` (the whole folder, or `--select`ed
objects and what they read), as a dry run, a pull request or at once, and finishing (`--resume`) or
taking back (`--abandon`) one that stopped.

Owns the order of a rollback (read and check every guard, record the intent, apply every tenant,
verify, then move git and tag), the impact it shows and the restores it offers. Git work is
`history`'s, tenant work `planning.environment`'s and the executor's; never prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import networkx as nx

from .. import faults
from .. import graph as graphs
from .. import plan as plans
from ..apply.executor import (
    TenantResult,
    apply_environment,
    current_actor,
    new_run_id,
    protocol_for,
    record_dry_run,
)
from ..apply.housekeeping import backups
from ..desired.source import ENVIRONMENTS, resolve_commit
from ..errors import (
    ApplyFailed,
    GuardRefused,
    TenantsStopped,
    UsageProblem,
)
from ..model import ObjectKey
from ..plan import Plan
from ..planning.environment import Planned, Workspace, plan_environment
from ..views.report import rollback_markdown
from . import history as gitops
from . import intent as intents


@dataclass(frozen=True)
class ImpactRow:
    tenant: str
    object: str
    kind: str
    action: str
    risk: str
    current: str      # the commit the tenant's catalog records for the object, or "absent"
    target: str       # the ref's version, or "absent"
    rows: int | None
    reason: str


@dataclass(frozen=True)
class RolledBack:
    environment: str
    ref: str
    target_commit: str
    mode: str                      # dry-run | pr | execute
    plan: Plan
    impact: tuple[ImpactRow, ...]
    undoes: tuple[str, ...]        # "<short sha> <subject>" of the commits the rollback undoes
    branch: str | None = None
    commit: str | None = None
    body_file: Path | None = None
    pull_request: str | None = None
    results: tuple[TenantResult, ...] = ()
    checkpoint: str | None = None
    audit_runs: tuple[str, ...] = field(default=())
    restores: tuple[RestoreOffer, ...] = ()


@dataclass(frozen=True)
class RestoreOffer:
    """A table the rollback gives back columns an apply dropped (empty, as any added column comes), and
    the newest backup of it, taken before the change that lost them: the restore that brings their
    values back once the rollback is applied, offered and never run unasked (it replaces the rows)."""

    tenant: str
    table: str
    columns: tuple[str, ...]
    backup: str
    command: str


def rollback(workspace: Workspace, environment: str, ref: str, mode: str = "dry-run",
             allow_data_loss: tuple[str, ...] = (), open_pr: bool = True, selection: str | None = None
             ) -> RolledBack:
    """Reconcile ENV back to the state of REF: a dry run, a pull request, or at once. `selection` (as
    `graph --select` names objects, at REF or now): only those objects' files, and what they need at REF
    to stay valid, go back; every other object stays as it is."""
    repo = workspace.repo
    target = resolve_commit(repo, ref)
    if selection is None:
        paths = (f"{ENVIRONMENTS}/{environment}",)
        undoes = tuple(f"{c.hexsha[:8]} {c.summary}" for c in gitops.commits_between(repo, ref, paths))
        message = _rollback_message(environment, ref, target.hexsha, undoes)
        selected = None
    else:
        taken = _selected_back(workspace, environment, target.hexsha, selection)
        paths = tuple(p for m in taken.moves for p in (m.source_path, m.target_path) if p)
        undoes = tuple(f"{c.hexsha[:8]} {c.summary}" for c in gitops.commits_between(repo, ref, paths)) \
            if paths else ()
        message = _rollback_message(environment, ref, target.hexsha, undoes, taken)
        selected = gitops.promotion_commit(repo, taken, message)   # an object, no ref yet: planned, validated
    # REF must hold a valid folder; a selection of it, with the rest as it is now, must be one too
    planned = plan_environment(workspace, environment, target.hexsha if selected is None else selected.hexsha)
    impact = tuple(_impact(planned, target.hexsha))
    base = RolledBack(environment, ref, target.hexsha, mode, planned.plan, impact, undoes,
                      restores=tuple(_restore_offers(workspace, environment, planned.plan)))
    if mode == "dry-run":
        runs = tuple(run for name, state in planned.states.items()
                     if (run := record_dry_run(state, planned.plan.tenant(name), planned.plan, "rollback",
                                               current_actor(repo))))
        return replace(base, audit_runs=runs)
    commit = selected or gitops.restore_commit(repo, environment, ref, message)   # an object, no ref yet
    if mode == "pr":
        branch = gitops.create_branch(repo, f"rollback/{environment}-to-{target.hexsha[:7]}-{commit.hexsha[:7]}",
                                      commit)
        body_file = gitops.write_body(repo, branch, rollback_markdown(base))
        pull_request = gitops.open_pull_request(repo, branch, gitops.current_branch(repo),
                                                f"Roll back {_what(environment, commit)} to {ref}", body_file) if open_pr else None
        return replace(base, branch=branch, commit=commit.hexsha, body_file=body_file, pull_request=pull_request)
    return _execute(workspace, base, commit, allow_data_loss)


def _selected_back(workspace: Workspace, environment: str, target: str, selection: str) -> gitops.Promotion:
    """The files a selective rollback takes back, as a promotion from the folder at REF to the folder now:
    what `selection` names (by REF's lineage; a name only the folder has now by its lineage now: one added
    since goes, one removed since comes back, a table renamed since with the table it was) and what those
    read at REF that the folder no longer has. What they read that is there in another version stays as
    it is (`+name` takes it back too); the folder this makes is validated and proven like any other."""
    then, now = workspace.load(environment, target), workspace.load(environment, "HEAD")
    try:
        chosen = set(graphs.select(then.graph, selection))
    except ValueError:
        try:
            chosen = set(graphs.select(nx.compose(then.graph, now.graph), selection))
        except ValueError as unknown:
            raise UsageProblem(f"--select: {unknown}") from None
    for key in list(chosen):   # a rename goes back whole: the table as it is called now and as it was
        for renamed, was in ((now.objects.get(key), then), (then.objects.get(key), now)):
            former = getattr(renamed, "renamed_from", None)
            if former and ObjectKey(key.schema, former) in was.objects:
                chosen.add(ObjectKey(key.schema, former))
    taken = gitops.plan_promotion(workspace.repo, then, now, sorted(map(str, chosen)), include_removals=False,
                                  lifecycle=False)
    taken = replace(taken, moves=tuple(m for m in taken.moves if not m.needed_by or m.key not in now.objects))
    if not taken.moves:
        raise UsageProblem(f"--select {selection}: {', '.join(sorted(map(str, chosen)))} "
                           f"{'is' if len(chosen) == 1 else 'are'} at REF as now; nothing to roll back")
    return taken


def _execute(workspace: Workspace, base: RolledBack, commit, allow_data_loss: tuple[str, ...]) -> RolledBack:
    """Break glass: apply the restore commit's tree to every tenant, verify, then move the branch to
    it and tag a checkpoint. The intent is recorded first, so a run killed at any point leaves
    something every later command names (`rollback ENV --resume` finishes it forward, `--abandon`
    takes it back); git moves only after every tenant committed, so it is never ahead of the tenants."""
    repo, environment = workspace.repo, base.environment
    problems = plans.violations(base.plan, allow_data_loss)
    if problems:  # refused before anything is written, git included
        raise GuardRefused("refused:\n  " + "\n  ".join(problems))
    gitops.require_clean(repo, [environment])
    intent = intents.Intent(environment=environment, ref=base.ref, target_commit=base.target_commit,
                            commit=commit.hexsha, head=gitops.open_repo(repo).head.commit.hexsha,
                            tag=f"reconciler/{environment}/{new_run_id()}", allow_data_loss=allow_data_loss)
    intents.write(workspace.rollback_intent(environment), intent)
    faults.reached("recorded")
    return _finish(workspace, base, intent)


def resume_rollback(workspace: Workspace, environment: str) -> RolledBack:
    """Finish an interrupted `rollback --execute` forward from its recorded intent (each step is
    idempotent: tenants already at the commit have nothing to do, a moved branch stays, a tag made
    is kept)."""
    intent = _recorded(workspace, environment, "resume")
    _require_head(workspace, intent)
    planned = plan_environment(workspace, environment, intent.commit, resuming=True)
    base = RolledBack(environment, intent.ref, intent.target_commit, "execute", planned.plan, (), ())
    return _finish(workspace, base, intent)


def _every_tenant(results: list[TenantResult], stopped: str, done: str, way_on: str) -> None:
    """TenantsStopped, with the failed tenants' own exit codes, when any failed: which and why, which
    did not fail, and the way on."""
    failed = [r for r in results if r.exit_code]
    if failed:
        listing = "\n  ".join(f"{r.tenant}: {r.error}" for r in failed)
        finished = [r.tenant for r in results if not r.exit_code]
        raise TenantsStopped(f"{stopped}:\n  {listing}\n" + (f"{done}: {', '.join(finished)}\n" if finished else "")
                             + way_on, [r.exit_code for r in failed])


def _recorded(workspace: Workspace, environment: str, verb: str) -> intents.Intent:
    path = workspace.rollback_intent(environment)
    if not path.is_file() or path.is_symlink():
        raise GuardRefused(f"no interrupted rollback of {environment} to {verb}")
    return intents.read(path, workspace.repo, environment)


def _require_head(workspace: Workspace, intent: intents.Intent) -> None:
    head = gitops.open_repo(workspace.repo).head.commit.hexsha
    if head not in (intent.head, intent.commit):
        raise GuardRefused(f"HEAD moved to {head[:12]} since the interrupted rollback (it was at "
                           f"{intent.head[:12]}); reset it there, then resume or abandon it")


def _finish(workspace: Workspace, base: RolledBack, intent: intents.Intent) -> RolledBack:
    repo, environment, commit = workspace.repo, base.environment, intent.commit
    planned = plan_environment(workspace, environment, commit, resuming=True)   # the restore commit's tree
    results = apply_environment(workspace, planned, planned.plan, intent.allow_data_loss, operation="rollback")
    _every_tenant(results, f"rollback of {environment} to {base.ref} stopped: tenants failed",
                  f"applied (they hold {base.ref}'s state now)",
                  f"git was not moved; fix the cause and run `reconciler rollback {environment} --resume`, or put "
                  f"every tenant back as it was before with `reconciler rollback {environment} --abandon`")
    faults.reached("applied")
    check = plan_environment(workspace, environment, commit, resuming=True)   # REF's folder, or a selection of it
    if check.plan.has_changes:
        raise ApplyFailed(f"applied, but tenants do not equal the rollback commit's state ({commit[:12]}): "
                          f"{plans_summary(check.plan)}; this is a reconciler bug, please report it")
    handle = gitops.open_repo(repo).commit(commit)
    gitops.advance_head(repo, handle, environment)
    faults.reached("moved")
    if intent.tag not in [t.name for t in gitops.open_repo(repo).tags]:
        gitops.tag(repo, intent.tag, handle,
                   f"Rollback checkpoint: {_what(environment, handle)} restored to {base.ref} "
                   f"({base.target_commit[:12]}).\nTenant runs: "
                   + ", ".join(f"{r.tenant}={r.run_id}" for r in results)
                   + f"\nTo undo this rollback: reconciler rollback {environment} --to {intent.tag}^\n")
    faults.reached("tagged")
    workspace.rollback_intent(environment).unlink()
    return replace(base, commit=commit, results=tuple(results), checkpoint=intent.tag)


@dataclass(frozen=True)
class Abandoned:
    """What `rollback --abandon` did: where the rollback started, each tenant it put back (its run),
    the tenants the rollback never changed, what it did in git, and what is left for a person."""

    environment: str
    start: str | None                          # None: the record could not be read
    results: tuple[TenantResult, ...] = ()
    untouched: tuple[str, ...] = ()
    git: tuple[str, ...] = ()
    left: tuple[str, ...] = ()


def abandon_rollback(workspace: Workspace, environment: str, allow_data_loss: tuple[str, ...] = ()) -> Abandoned:
    """Take an interrupted `rollback --execute` back to where it started: every tenant it changed (its
    audit says which: a run of this rollback's commit that applied, or never ended) is reconciled to
    the commit the rollback started from, under apply's guards (the rollback's --allow-data-loss is not
    carried over); then the branch goes back there too and the rollback's tag is deleted; then the
    record is removed. A tenant that cannot be put back stops it with the record kept (its error's
    exit code). A record that cannot be read is removed, and nothing else is done: it cannot say
    what the rollback changed."""
    repo, path = workspace.repo, workspace.rollback_intent(environment)
    try:
        intent = _recorded(workspace, environment, "abandon")
    except intents.UnreadableIntent as unreadable:
        path.unlink()
        return Abandoned(environment, None, left=(
            f"{str(unreadable).splitlines()[0]}; removed it. No tenant and nothing in git was changed: a record "
            f"that cannot be read does not say what the rollback did. `reconciler plan {environment}` shows how "
            f"each tenant differs from HEAD, `git log` whether a rollback commit was made",))
    _require_head(workspace, intent)
    gitops.require_clean(repo, [environment])
    changed, untouched, backups = _changed_by(workspace, intent)
    at_start = {tenant.name for tenant in workspace.load(environment, intent.head).environment.tenants}
    left = [f"{name}: not a tenant of {environment} at {intent.head[:12]}, where the rollback started; it keeps "
            f"what the rollback made of it" for name in changed if name not in at_start]
    back = [name for name in changed if name in at_start]
    results = []
    if back:
        planned = plan_environment(workspace, environment, intent.head, back, resuming=True)
        try:
            results = apply_environment(workspace, planned, planned.plan, allow_data_loss, operation="abandon")
        except GuardRefused as refused:
            raise GuardRefused(f"abandoning the rollback of {environment} {refused}\nnothing was changed; the "
                               f"record {path} is kept") from None
        _every_tenant(results, f"abandoning the rollback of {environment} stopped: tenants not put back", "put back",
                      f"git was not moved and the record {path} is kept; fix the cause and run `reconciler rollback "
                      f"{environment} --abandon` again, or `--resume` to finish the rollback instead")
    left += [f"{tenant}: the rollback backed up {backup['schema_name']}.{backup['table_name']} before losing "
             f"data in it; `reconciler restore {environment} '{backup['name']}' --yes` puts its rows back"
             for tenant, backup in backups if tenant in back]
    moved = _back_in_git(repo, environment, intent)
    path.unlink()
    return Abandoned(environment, intent.head, tuple(results), tuple(untouched), moved, tuple(left))


def _changed_by(workspace: Workspace, intent: intents.Intent) -> tuple[list[str], list[str], list[tuple[str, dict]]]:
    """The tenants the rollback changed, or may have (a run of its commit that applied; or one that never
    ended on an engine that commits statement by statement, whose compensation is still due: elsewhere
    the engine rolled it back), the tenants it left alone, and the backups its runs took (tenant, backup)."""
    changed, untouched, backups = [], [], []
    for tenant in workspace.load(intent.environment, intent.commit).environment.tenants:
        adapter = workspace.adapter(tenant, intent.environment)
        ended = protocol_for(adapter).changed_outcomes
        runs = {run["run_id"] for run in adapter.runs() if run.get("operation") == "rollback"
                and run["commit"] == intent.commit and run["outcome"] in ended}
        (changed if runs else untouched).append(tenant.name)
        backups += [(tenant.name, backup) for backup in adapter.backups() if backup["run_id"] in runs]
    return changed, untouched, backups


def _back_in_git(repo: Path, environment: str, intent: intents.Intent) -> tuple[str, ...]:
    """The rollback's tag deleted and the branch moved back to where it started, where they got to."""
    done = []
    if gitops.delete_tag(repo, intent.tag, intent.commit):
        done.append(f"deleted tag {intent.tag}")
    handle = gitops.open_repo(repo)
    if handle.head.commit.hexsha == intent.commit:
        gitops.advance_head(repo, handle.commit(intent.head), environment)
        done.append(f"moved the branch back from the rollback commit {intent.commit[:12]} to {intent.head[:12]}")
    return tuple(done)


def plans_summary(plan: Plan) -> str:
    return ", ".join(f"{c.action} {c.object}" for t in plan.tenants for c in t.changes[:5])


def _impact(planned: Planned, target_commit: str):
    for tenant_plan in planned.plan.tenants:
        live = planned.states[tenant_plan.tenant].live
        for change in tenant_plan.changes:
            record = live.record(change.key)
            current = (record.commit or "?")[:8] if record else "absent"
            yield ImpactRow(tenant_plan.tenant, change.object, change.kind, change.action, change.risk, current,
                            "absent" if change.action == "delete" else target_commit[:8], change.rows,
                            change.reason)


def _restore_offers(workspace: Workspace, environment: str, plan: Plan):
    readded = {(tenant_plan.tenant, str(change.key).lower()): tuple(d.column for d in change.details
                                                                  if d.whole_column and d.op == "add")
               for tenant_plan in plan.tenants for change in tenant_plan.changes if change.kind == "Table"}
    readded = {where: columns for where, columns in readded.items() if columns}
    if not readded:
        return
    newest = {}
    for backup in backups(workspace, environment):   # oldest first: the last one of a table stays
        newest[(backup["tenant"], f"{backup['schema_name']}.{backup['table_name']}".lower())] = backup
    for (tenant, table), columns in readded.items():
        if (tenant, table) in newest:
            name = newest[(tenant, table)]["name"]
            yield RestoreOffer(tenant, table, columns, name, f"reconciler restore {environment} '{name}' --yes")


def _what(environment: str, commit) -> str:
    """What a rollback commit takes back, for titles: the environment, or the objects its message names."""
    first = commit.message.splitlines()[0]
    return first.removeprefix("Roll back ").rsplit(" to ", 1)[0] if " in " in first else environment


def _rollback_message(environment: str, ref: str, commit: str, undoes: tuple[str, ...],
                      taken: gitops.Promotion | None = None) -> str:
    if taken is None:
        lines = [f"Roll back {ENVIRONMENTS}/{environment} to {ref}", "",
                 f"Restores {ENVIRONMENTS}/{environment} to its content at {ref} ({commit})."]
    else:
        lines = [f"Roll back {', '.join(taken.objects) or 'nothing'} in {ENVIRONMENTS}/{environment} to {ref}", "",
                 f"Restores these objects' files to their content at {ref} ({commit}); every other object "
                 "stays as it is:", *(f"  {m.key}: {m.reason}" for m in taken.moves)]
    if undoes:
        lines += ["", "Undoes:"] + [f"  {line}" for line in undoes]
    return "\n".join(lines) + "\n"
