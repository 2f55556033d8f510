"""Reading an environment folder, from the working tree or from any git ref, into documents.

Owns file discovery (the working tree, or blobs read with GitPython without a checkout), each file's
document (`documents` parses the YAML; cached by the file's git blob id), and ref resolution. Never
validates or interprets what a document says.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import git

from ..errors import Diagnostic, GitError, UnknownEnvironment, did_you_mean
from .cache import NO_CACHE, Cache
from .documents import Document, YamlProblem, parse_yaml

ENVIRONMENTS = "environments"
ENVIRONMENT_FILE = "environment.yaml"
WORKTREE = "worktree"
_YAML_SUFFIXES = (".yaml", ".yml")
YAML_CACHE = "yaml-1.2-core"   # the cache namespace of parsed documents; a new name when parsing rules change
_SYMLINK_MODE = 0o120000


@dataclass(frozen=True)
class EnvironmentSource:
    """Everything read for one environment: its environment.yaml and its object files."""

    name: str
    ref: str
    commit: str | None
    environment: Document | None
    objects: tuple[Document, ...]
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[tuple[str, str | None], ...] = ()   # (path, git blob id; None: a link) of every file, in path order

    @property
    def identity(self) -> tuple:
        """What the files read were, by path and git blob id: equal identities validate alike."""
        documents = ((self.environment,) if self.environment else ()) + self.objects
        return (self.ref, self.commit, tuple((d.path, d.blob) for d in documents), self.diagnostics)


def blob_id(data: bytes) -> str:
    """git's blob id of these bytes, so the working tree and a commit share cache keys."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def read_document(path: str, data: bytes, cache: Cache = NO_CACHE) -> Document | None:
    """One file's document as `read_environment` reads it; None when it is not valid YAML."""
    return _load(path, data, cache, [])


def _load(path: str, data: bytes, cache: Cache, diagnostics: list[Diagnostic], key: str = "") -> Document | None:
    key = key or blob_id(data)
    cached = cache.get(YAML_CACHE, key)
    if cached is not None:
        return Document.from_cache(path, cached, key)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        diagnostics.append(Diagnostic(path, 1, error.start + 1, "yaml", "file is not UTF-8 text"))
        return None
    try:
        document = parse_yaml(path, text)
    except YamlProblem as problem:
        diagnostics.append(Diagnostic(path, problem.line, problem.column, "yaml", str(problem)))
        return None
    cache.put(YAML_CACHE, key, document.to_cache())
    return replace(document, blob=key)


def _environment_files(repo: Path, name: str, ref: str | None) -> tuple[str | None, Iterator]:
    """(commit, iterator of (repo-relative path, bytes | None for a refused link))."""
    if ref is None:
        return None, _worktree_files(repo, _worktree_root(repo, name))
    commit, tree = _environment_tree(repo, name, ref)
    return commit, _tree_files(tree)


def _worktree_root(repo: Path, name: str) -> Path:
    root = repo / ENVIRONMENTS / name
    if not root.is_dir():
        raise UnknownEnvironment(_unknown(name, available_environments(repo, None), "working tree"))
    return root


def _environment_tree(repo: Path, name: str, ref: str) -> tuple[str, Any]:
    folder = PurePosixPath(ENVIRONMENTS, name)
    commit = resolve_commit(repo, ref)
    try:
        tree = commit.tree / str(folder)
    except KeyError:
        raise UnknownEnvironment(_unknown(name, available_environments(repo, ref), f"ref {ref}")) from None
    if tree.type != "tree":
        raise UnknownEnvironment(f"{folder} is not a folder at ref {ref}")
    return commit.hexsha, tree


@dataclass(frozen=True)
class Blobs:
    """What `read_environment` would read, by git blob id, read without parsing anything (at a ref,
    without reading any file but environment.yaml)."""

    commit: str | None
    ids: dict[str, str]          # repo-relative path -> git blob id
    environment: bytes | None    # environment.yaml's bytes


def environment_blobs(repo: Path, name: str, ref: str | None = None) -> Blobs | None:
    """None when a file is a symbolic link: reading refuses it, and only reading says so."""
    env_path = f"{ENVIRONMENTS}/{name}/{ENVIRONMENT_FILE}"
    ids, environment = {}, None
    if ref is None:
        commit = None
        for path, data in _worktree_files(repo, _worktree_root(repo, name)):
            if data is None:
                return None
            ids[path] = blob_id(data)
            environment = data if path == env_path else environment
    else:
        commit, tree = _environment_tree(repo, name, ref)
        for path, item in _tree_blobs(tree):
            if item is None:
                return None
            ids[path] = item.hexsha
            environment = item.data_stream.read() if path == env_path else environment
    return Blobs(commit, ids, environment)


def _worktree_files(repo: Path, root: Path) -> Iterator[tuple[str, bytes | None]]:
    """YAML files under `root` in path order; a symbolic link is reported, never followed. Paths stay
    strings: pathlib objects for 10,000 files cost half a second."""
    if root.is_symlink():
        yield root.relative_to(repo).as_posix(), None
        return
    prefix = len(os.path.join(str(repo), ""))

    def walk(directory: str) -> Iterator[tuple[str, bytes | None]]:
        with os.scandir(directory) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            relative = entry.path[prefix:].replace(os.sep, "/")
            if entry.is_symlink():
                yield relative, None
            elif entry.is_dir(follow_symlinks=False):
                yield from walk(entry.path)
            elif entry.name.endswith(_YAML_SUFFIXES) and entry.is_file(follow_symlinks=False):
                with open(entry.path, "rb") as handle:
                    yield relative, handle.read()

    yield from walk(str(root))


def _tree_files(tree) -> Iterator[tuple[str, bytes | None]]:
    for path, item in _tree_blobs(tree):
        yield path, None if item is None else item.data_stream.read()


def _tree_blobs(tree) -> Iterator[tuple[str, Any]]:
    """The YAML blobs under a commit's tree (None for a symbolic link)."""
    for item in tree.traverse():
        if item.type != "blob":
            continue
        if item.mode == _SYMLINK_MODE:
            yield item.path, None
        elif item.path.endswith(_YAML_SUFFIXES):
            yield item.path, item


def read_environment(repo: Path, name: str, ref: str | None = None,
                     cache: Cache = NO_CACHE) -> EnvironmentSource:
    """Read `environments/<name>` from the working tree (ref None) or from a git ref."""
    commit, files = _environment_files(repo, name, ref)
    diagnostics: list[Diagnostic] = []
    environment: Document | None = None
    objects: list[Document] = []
    env_path = f"{ENVIRONMENTS}/{name}/{ENVIRONMENT_FILE}"
    found_env = False
    read: list[tuple[str, str | None]] = []
    for path, data in files:
        if data is None:
            diagnostics.append(Diagnostic(path, 1, 1, "symlink",
                                          "symbolic links and paths outside the environment folder are refused"))
            read.append((path, None))
            continue
        read.append((path, blob_id(data)))
        document = _load(path, data, cache, diagnostics, read[-1][1])
        if path == env_path:
            found_env = True
            environment = document
        elif document is not None:
            objects.append(document)
    if not found_env:
        diagnostics.append(Diagnostic(env_path, 1, 1, "environment", "environment.yaml is missing"))
    return EnvironmentSource(name, ref or WORKTREE, commit, environment, tuple(objects), tuple(diagnostics),
                             tuple(read))


def available_environments(repo: Path, ref: str | None) -> list[str]:
    if ref is None:
        root = repo / ENVIRONMENTS
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    try:
        tree = resolve_commit(repo, ref).tree / ENVIRONMENTS
    except KeyError:
        return []
    return sorted(item.name for item in tree if item.type == "tree")


def _unknown(name: str, available: list[str], where: str) -> str:
    known = ", ".join(available) or "none"
    return f"environment '{name}' does not exist in the {where} (environments: {known}){did_you_mean(name, available)}"


def open_repo(repo: Path) -> git.Repo:
    try:
        return git.Repo(repo)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{repo} is not a git repository; --ref needs one") from None


def resolve_commit(repo: Path, ref: str) -> git.Commit:
    """Resolve a user-given ref to a commit; refuse option-like and unknown refs."""
    if not ref or ref.startswith("-"):
        raise GitError(f"invalid ref '{ref}': a ref cannot start with '-'")
    if ":" in ref:   # REF:path names a tree or a file inside a commit, never a commit
        raise GitError(f"invalid ref '{ref}': name a commit, branch or tag (REF:path is a path inside one)")
    try:
        commit = open_repo(repo).commit(ref)
        commit.tree   # a full hash is taken on trust until the commit is read: read it here
        return commit
    except (git.BadName, git.BadObject, ValueError, KeyError, IndexError, git.GitCommandError):
        raise GitError(f"ref '{ref}' does not resolve to a commit") from None


def head_commit(repo: Path) -> str | None:
    """The checked-out commit, recorded with worktree plans; None outside git."""
    try:
        return git.Repo(repo).head.commit.hexsha
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return None
