"""Promotion and rollback as git history: what moves between environment folders, and the
commits, branches and tags that record it.

Owns comparing two environment folders at a commit, the dependency closure of a selection,
the rule that draft and beta objects never leave their folder, and writing commits with
GitPython on an in-memory index so the user's working tree and index are never touched.
Never talks to tenants: the gate on protected environments is `transport`'s.
"""

from __future__ import annotations

import io
import re
import shlex
import shutil
import subprocess
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import git
from git.index.typ import BaseIndexEntry, IndexEntry
from gitdb.base import IStream

from .. import files
from ..desired.landscape import Landscape
from ..desired.source import ENVIRONMENTS, open_repo, resolve_commit
from ..errors import GitError, GuardRefused, did_you_mean
from ..model import ObjectKey

UNPROMOTABLE = ("draft", "beta")


PR_FOLDER = Path(".reconciler") / "pull-requests"   # pull request bodies, for CI and people


@dataclass(frozen=True)
class Move:
    """One object's file going from the source folder to the target folder."""

    key: ObjectKey
    action: str                   # add | change | remove
    source_path: str | None       # repository path in the source folder (None: remove)
    target_path: str | None       # repository path it replaces in the target (None: add)
    reason: str
    needed_by: tuple[str, ...] = ()   # selected objects that pulled it in as a dependency


@dataclass(frozen=True)
class Promotion:
    source: str
    target: str
    source_commit: str
    moves: tuple[Move, ...]
    held_back: tuple[tuple[str, str], ...]   # (object, why) never promoted this time

    @property
    def objects(self) -> list[str]:
        return [str(m.key) for m in self.moves]


def landscape_order(landscapes: dict[str, Landscape]) -> list[str]:
    """Environments from the first to the last along `promotes_from`."""
    following = {ls.environment.promotes_from: name for name, ls in landscapes.items()}
    order, current = [], following.get(None)
    while current is not None and current not in order:
        order.append(current)
        current = following.get(current)
    return order + sorted(set(landscapes) - set(order))


def check_path(landscapes: dict[str, Landscape], source: str, target: str) -> None:
    """Only one step along the landscape order; never skip an environment."""
    if landscapes[target].environment.promotes_from == source:
        return
    order = landscape_order(landscapes)
    route = " -> ".join(order)
    expected = landscapes[target].environment.promotes_from
    if expected is None:
        raise GuardRefused(f"{target} is the first environment (landscape order {route}); nothing "
                           "promotes into it")
    raise GuardRefused(f"{source} -> {target} is not a step of the landscape order {route}: "
                       f"{target} promotes from {expected}; promote {source} -> {expected} first")


def plan_promotion(repo: Path, source: Landscape, target: Landscape, selection: list[str] | None,
                   include_removals: bool, lifecycle: bool = True) -> Promotion:
    """What a promotion moves: everything that differs, or a selection and its closure. `lifecycle`: draft
    and beta objects (and what reads them) stay behind; a rollback inside one environment has none."""
    commit = open_repo(repo).commit(source.source.commit or "HEAD")
    source_blobs = blob_ids(source)
    target_blobs = blob_ids(target)
    differs = {k for k in source.objects if source_blobs[k][1] != target_blobs.get(k, (None, None))[1]}
    differs -= environment_local(source)
    removed = set(target.objects) - set(source.objects) - environment_local(target)
    held = held_back(source, differs) if lifecycle else {}
    moves: dict[ObjectKey, Move] = {}

    def move(key: ObjectKey, reason: str, needed_by: tuple[str, ...] = ()) -> Move:
        if key in removed:
            return Move(key, "remove", None, target_blobs[key][0], reason, needed_by)
        action = "change" if key in target.objects else "add"
        return Move(key, action, source_blobs[key][0], target_blobs.get(key, (None,))[0], reason, needed_by)

    if selection is None:
        for key in sorted(differs - set(held)):
            moves[key] = move(key, f"{'changed' if key in target.objects else 'new'} in {source.name}")
        if include_removals:
            for key in sorted(removed):
                moves[key] = move(key, f"removed from {source.name}")
        _renames_move_whole(moves, source, removed, move)
        return Promotion(source.name, target.name, commit.hexsha, tuple(moves.values()),
                         tuple((str(k), why) for k, why in sorted(held.items())))
    for key in resolve_names(selection, set(source.objects) | removed):
        if key in removed:
            moves[key] = move(key, f"removed from {source.name}")
            continue
        if key in held:
            raise GuardRefused(f"cannot promote {key}: {held[key]}")
        if key not in differs:
            continue
        moves[key] = move(key, "selected")
        for needed, path in upstream(source, key):
            if needed in differs and needed not in moves:
                lacks = (f"{target.name} lacks it" if needed not in target.objects
                         else f"{target.name} holds another version")
                moves[needed] = move(needed, f"needed by {' -> '.join(map(str, path))}: {lacks}",
                                     (str(key),))
            elif needed in moves and moves[needed].needed_by:
                earlier = moves[needed]
                moves[needed] = Move(earlier.key, earlier.action, earlier.source_path, earlier.target_path,
                                       earlier.reason, tuple(dict.fromkeys((*earlier.needed_by, str(key)))))
    _renames_move_whole(moves, source, removed, move)
    return Promotion(source.name, target.name, commit.hexsha, tuple(moves.values()), ())


def _renames_move_whole(moves: dict[ObjectKey, Move], source: Landscape, removed: set[ObjectKey], move) -> None:
    """A table renamed in the source (`renamed_from:`) moves with the removal of its former name: the
    target must never hold both (validate refuses that) nor keep the old table beside a new one."""
    folded = {key.folded(): key for key in removed}
    for key, moved in list(moves.items()):
        obj = source.objects.get(key)
        former = getattr(obj, "renamed_from", None) if moved.action != "remove" else None
        old = folded.get(ObjectKey(key.schema, former).folded()) if former else None
        if old is not None and old not in moves:
            moves[old] = move(old, f"renamed to {key} in {source.name}: moves with it")


def blob_ids(landscape: Landscape) -> dict[ObjectKey, tuple[str, str]]:
    """(repository path, git blob id) of each object's file as it was read and validated: never read
    again, so what is compared or shown is what was validated, even where the file changed since."""
    return {key: (doc.path, doc.blob) for key, doc in landscape.documents.items()}


def tree_blobs(tree: git.Tree) -> dict[str, str]:
    """Path -> blob id of every file of a commit's tree, from one listing: looking a path up reads every
    tree on its way again (seconds for a 10,000-object landscape)."""
    blobs = {}
    for entry in tree.repo.git.ls_tree("-r", "-z", "--full-tree", tree.hexsha).split("\0"):
        if entry:
            meta, path = entry.split("\t", 1)
            _, kind, sha = meta.split()
            if kind == "blob":
                blobs[path] = sha
    return blobs


def environment_local(landscape: Landscape) -> set[ObjectKey]:
    """Connections an environment's rules swap in (Connection_ERP_TEST in qa): they belong to
    that environment, so they are never promoted out of it nor removed from it."""
    environment = landscape.environment
    names = set(environment.rules.connections.values())
    for tenant in environment.tenants:
        names |= set(environment.rules_for(tenant).connections.values())
    folded = {name.lower() for name in names}
    return {key for key, obj in landscape.objects.items()
            if obj.kind == "Connection" and (key.name.lower() in folded or str(key).lower() in folded)}


def held_back(source: Landscape, candidates: set[ObjectKey]) -> dict[ObjectKey, str]:
    """Objects that stay behind: draft or beta ones, and those that read one (chain shown)."""
    held = {}
    for key in candidates:
        obj = source.objects[key]
        if obj.status.value in UNPROMOTABLE:
            held[key] = f"status is {obj.status.value}; only active and deprecated objects are promoted"
            continue
        for needed, path in upstream(source, key):
            status = source.objects[needed].status.value
            if status in UNPROMOTABLE:
                chain = " -> ".join(map(str, path))
                held[key] = f"it depends on {needed}, whose status is {status} ({chain})"
                break
    return held


def upstream(landscape: Landscape, key: ObjectKey):
    """(ancestor, dependency path from `key` to it), nearest first."""
    seen, queue = {key}, deque([(key, (key,))])
    while queue:
        node, path = queue.popleft()
        for needed in sorted(landscape.dependencies.get(node, ())):
            if needed not in seen:
                seen.add(needed)
                queue.append((needed, (*path, needed)))
                yield needed, (*path, needed)


def resolve_names(selection: list[str], known: set[ObjectKey]) -> list[ObjectKey]:
    """Selected names as keys: `schema.name`, or a bare name that is unique."""
    by_text = {str(k).lower(): k for k in known}
    by_name: dict[str, list[ObjectKey]] = {}
    for key in known:
        by_name.setdefault(key.name.lower(), []).append(key)
    keys = []
    for name in selection:
        text = name.strip().lower()
        if text in by_text:
            keys.append(by_text[text])
        elif len(by_name.get(text, [])) == 1:
            keys.append(by_name[text][0])
        elif len(by_name.get(text, [])) > 1:
            options = ", ".join(sorted(map(str, by_name[text])))
            raise GuardRefused(f"'{name}' is ambiguous: {options}; name the schema")
        else:
            raise GuardRefused(f"no object '{name}' in either folder{did_you_mean(text, [*by_text, *by_name])}")
    return list(dict.fromkeys(keys))


# -- writing history ---------------------------------------------------------------------

def require_clean(repo: Path, environments: list[str]) -> None:
    """Refuse when environment folders hold uncommitted or untracked changes."""
    handle = open_repo(repo)
    folders = [f"{ENVIRONMENTS}/{name}" for name in environments]
    dirty = handle.git.status("--porcelain", "--untracked-files=all", "--", *folders)
    if dirty.strip():
        listing = "\n  ".join(dirty.splitlines()[:10])
        raise GuardRefused(f"uncommitted changes in {', '.join(folders)}; commit or stash them first:\n  "
                           f"{listing}")


def promotion_commit(repo: Path, promotion: Promotion, message: str) -> git.Commit:
    """A commit on top of HEAD copying the moved files byte for byte (environment.yaml stays)."""
    handle = open_repo(repo)
    source_commit = handle.commit(promotion.source_commit)
    writes, deletes = {}, []
    source_root = PurePosixPath(ENVIRONMENTS, promotion.source)
    target_root = PurePosixPath(ENVIRONMENTS, promotion.target)
    for move in promotion.moves:
        if move.target_path is not None:
            deletes.append(move.target_path)
        if move.source_path is not None:
            blob = source_commit.tree / move.source_path
            relative = PurePosixPath(move.source_path).relative_to(source_root)
            writes[str(target_root / relative)] = (blob.mode, blob.binsha)
    return write_commit(handle, handle.head.commit, writes, deletes, message)


def write_body(repo: Path, branch: str, body: str) -> Path:
    """A pull request's body, written where CI and people find it (`.reconciler/pull-requests/`)."""
    path = repo / PR_FOLDER / (re.sub(r"[^A-Za-z0-9._-]+", "_", branch) + ".md")
    files.write(path, body, root=repo)
    return path


def current_branch(repo: Path) -> str:
    handle = open_repo(repo)
    return "main" if handle.head.is_detached else handle.active_branch.name


def restore_commit(repo: Path, environment: str, ref: str, message: str) -> git.Commit:
    """A commit on top of HEAD whose `environments/ENV` is exactly REF's."""
    handle = open_repo(repo)
    target = resolve_commit(repo, ref)
    folder = f"{ENVIRONMENTS}/{environment}"
    head = handle.head.commit
    deletes = [item.path for item in _files(head, folder)]
    writes = {item.path: (item.mode, item.binsha) for item in _files(target, folder)}
    return write_commit(handle, head, writes, deletes, message)


def _files(commit: git.Commit, folder: str) -> list:
    try:
        tree = commit.tree / folder
    except KeyError:
        return []
    return [item for item in tree.traverse() if item.type == "blob"]


def store_blob(handle: git.Repo, data: bytes) -> bytes:
    """Write bytes into the object database; the blob's binary sha."""
    return handle.odb.store(IStream("blob", len(data), io.BytesIO(data))).binsha


def write_commit(handle: git.Repo, parent: git.Commit, writes: dict[str, tuple[int, bytes]],
                 deletes: list[str], message: str) -> git.Commit:
    """Commit `parent`'s tree with files replaced, through an index that lives only in memory."""
    index = git.IndexFile.from_tree(handle, parent)
    for path in deletes:
        index.entries.pop((path, 0), None)
    for path, (mode, binsha) in writes.items():
        index.entries[(path, 0)] = IndexEntry.from_base(BaseIndexEntry((mode, binsha, 0, path)))
    tree = index.write_tree()
    if tree.hexsha == parent.tree.hexsha:
        raise GuardRefused("nothing to commit: the folder already holds exactly that content")
    return git.Commit.create_from_tree(handle, tree, message, parent_commits=[parent], head=False)


def delete_merged_branches(repo: Path, prefix: str) -> list[str]:
    """Delete the local branches named `prefix*` whose tip the checked-out commit holds (merged ones):
    their commits stay reachable, and a later `promote` leaves one branch of that name to merge."""
    handle = open_repo(repo)
    if handle.head.is_detached:
        return []
    merged = [head for head in handle.heads if head.name.startswith(prefix) and head != handle.active_branch
              and handle.is_ancestor(head.commit, handle.head.commit)]
    for head in merged:
        handle.delete_head(head)
    return sorted(head.name for head in merged)


def create_branch(repo: Path, name: str, commit: git.Commit) -> str:
    handle = open_repo(repo)
    if name in handle.heads:
        raise GitError(f"branch {name} already exists; delete it or promote again after a new commit")
    handle.create_head(name, commit)
    return name


def advance_head(repo: Path, commit: git.Commit, environment: str) -> None:
    """Bring `environments/ENV` in the index and working tree to `commit`, then move the checked-out
    branch there; nothing outside that (clean) folder is touched. Safe to repeat after a kill at any
    point: what leaves is read from the index, not from the commit HEAD happens to be at."""
    handle = open_repo(repo)
    folder = f"{ENVIRONMENTS}/{environment}"
    indexed = {path for path, _ in handle.index.entries if path.startswith(f"{folder}/")}
    gone = indexed - {item.path for item in _files(commit, folder)}
    for path in gone:
        (Path(handle.working_tree_dir) / path).unlink(missing_ok=True)
    if gone:
        handle.git.rm("--cached", "-q", "--ignore-unmatch", "--", *sorted(gone))
    handle.git.checkout(commit.hexsha, "--", folder)
    if handle.head.is_detached:
        handle.head.set_commit(commit)
    elif handle.head.commit != commit:
        handle.head.reference.set_commit(commit, logmsg=f"reconciler: {commit.summary}")


def commits_between(repo: Path, ref: str, paths: Sequence[str]) -> list[git.Commit]:
    """Commits after REF up to HEAD that touched `paths` (what a rollback undoes)."""
    handle = open_repo(repo)
    return list(handle.iter_commits(f"{resolve_commit(repo, ref).hexsha}..HEAD", paths=list(paths)))


def tag(repo: Path, name: str, commit: git.Commit, message: str) -> str:
    open_repo(repo).create_tag(name, ref=commit, message=message)
    return name


def delete_tag(repo: Path, name: str, commit: str) -> bool:
    """Delete the tag `name` if it points at `commit` (a tag of that name elsewhere is someone else's)."""
    handle = open_repo(repo)
    found = [tag for tag in handle.tags if tag.name == name and tag.commit.hexsha == commit]
    if found:
        handle.delete_tag(*found)
    return bool(found)




def open_pull_request(repo: Path, branch: str, base: str, title: str, body_file: Path) -> str:
    """Open the pull request with `gh` when it is installed and logged in; else say how."""
    manual = (f"push the branch and open the pull request:\n  git push -u origin {branch}\n"
              f"  gh pr create --base {base} --head {branch} --title {shlex.quote(title)} "
              f"--body-file {shlex.quote(str(body_file))}")
    gh = shutil.which("gh")
    if gh is None or subprocess.run([gh, "auth", "status"], cwd=repo, capture_output=True).returncode != 0:
        return f"gh is not installed or not logged in; {manual}"
    if "origin" not in [remote.name for remote in open_repo(repo).remotes]:
        return f"the repository has no remote 'origin'; {manual}"
    push = subprocess.run(["git", "push", "-u", "origin", branch], cwd=repo, capture_output=True, text=True)
    created = push.returncode == 0 and subprocess.run(
        [gh, "pr", "create", "--base", base, "--head", branch, "--title", title, "--body-file", str(body_file)],
        cwd=repo, capture_output=True, text=True)
    if not created or created.returncode != 0:
        problem = (push.stderr if push.returncode else created.stderr).strip()
        return f"could not open the pull request ({problem}); {manual}"
    return f"opened {created.stdout.strip()}"


__all__ = ["Move", "PR_FOLDER", "write_body", "current_branch", "Promotion", "plan_promotion", "check_path", "landscape_order", "require_clean",
           "promotion_commit", "restore_commit", "write_commit", "create_branch", "advance_head",
           "commits_between", "tag", "open_pull_request", "store_blob", "held_back", "upstream", "resolve_names",
           "blob_ids", "tree_blobs", "environment_local"]
