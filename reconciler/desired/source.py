"""Reading an environment folder, from the working tree or from any git ref, into documents.

Owns file discovery (the working tree, or blobs read with GitPython without a checkout),
safe YAML parsing (every scalar by the YAML 1.2 core schema) with the position of every key and
value and the text written of every scalar that is not a string, and ref resolution. Never
validates or interprets what a document says.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

import git
import yaml
from yaml.composer import Composer

from ..errors import Diagnostic, GitError, UnknownEnvironment
from .cache import NO_CACHE, Cache

ENVIRONMENTS = "environments"
ENVIRONMENT_FILE = "environment.yaml"
WORKTREE = "worktree"
_YAML_SUFFIXES = (".yaml", ".yml")
MAX_VALUES = 100_000      # items and scalars one YAML file may hold once its aliases are expanded
MAX_CHARACTERS = 10_000_000   # characters of its keys and scalars, then (or the file's own length, if more)
YAML_CACHE = "yaml-1.2-core"   # the cache namespace of parsed documents; a new name when parsing rules change
_SYMLINK_MODE = 0o120000
_TAG = "tag:yaml.org,2002:"
# YAML 1.2.2, 10.3.2 (the core schema): the plain scalars that are not strings, in the order they are
# tried, with the characters they can start with; every other plain scalar, and every quoted one, is a string
CORE_SCHEMA = {
    "null": (r"null|Null|NULL|~|", ["n", "N", "~", ""]),
    "bool": (r"true|True|TRUE|false|False|FALSE", list("tTfF")),
    "int": (r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+", list("-+0123456789")),
    "float": (r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?(?:\.inf|\.Inf|\.INF)"
              r"|\.nan|\.NaN|\.NAN", list("-+.0123456789")),
}
_CORE_PATTERNS = {kind: re.compile(f"(?:{pattern})\\Z") for kind, (pattern, _) in CORE_SCHEMA.items()}


def _core_resolvers() -> dict[str | None, list[tuple[str, re.Pattern]]]:
    """PyYAML's table of implicit tags (by a plain scalar's first character) for the core schema."""
    resolvers: dict[str | None, list[tuple[str, re.Pattern]]] = {}
    for kind, (_, first) in CORE_SCHEMA.items():
        for character in first:
            resolvers.setdefault(character, []).append((_TAG + kind, _CORE_PATTERNS[kind]))
    return resolvers


class _Alias(NamedTuple):
    """An alias where it stands in the file, and the node it names (a composer hands back the node alone)."""

    node: yaml.Node
    mark: yaml.Mark


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader), Composer):   # type: ignore[misc]
    """Safe parsing, every plain scalar resolved by YAML 1.2's core schema and nothing else: under
    YAML 1.1 `NO` was false, `1:30` was 90 and `1_000` was 1000, and a view compared a region with them.
    The parser's events are composed by PyYAML's Python composer, which says where each alias stands
    (libyaml's forgets it), so a file that expands too far is refused at the alias that does it."""

    yaml_implicit_resolvers = _core_resolvers()

    def __init__(self, stream: str):
        super().__init__(stream)
        Composer.__init__(self)

    def get_single_node(self) -> yaml.Node | None:
        return Composer.get_single_node(self)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | _Alias:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            return _Alias(Composer.compose_node(self, parent, index), mark)
        return Composer.compose_node(self, parent, index)


@dataclass(frozen=True)
class Document:
    """One YAML file: its data and where each key and value stands in the file."""

    path: str
    data: Any
    marks: dict[str, tuple[int, int]] = field(repr=False)
    blocks: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    blob: str = ""   # git's blob id of the file's bytes: what caches of anything derived from it are keyed by
    texts: dict[str, str] = field(default_factory=dict, repr=False)
    # ^ the text written of each scalar read as a number, a boolean or null (`1.50`, `010`, `~`)

    def where(self, *loc: str | int) -> tuple[int, int]:
        """Line and column (1-based) of the value at `loc`, or of its nearest parent."""
        parts = [str(p) for p in loc]
        while parts:
            mark = self.marks.get("/".join(parts))
            if mark:
                return tuple(mark)
            parts.pop()
        return tuple(self.marks.get("", (1, 1)))

    def where_inside(self, loc: tuple[str, ...], line: int, column: int) -> tuple[int, int]:
        """Map a position inside a string value (e.g. a SQL parse error) to the file."""
        block = self.blocks.get("/".join(loc))
        if block:
            first_line, indent = block
            return first_line + line - 1, indent + column
        value_line, value_column = self.where(*loc)
        return value_line + line - 1, (value_column + column - 1 if line == 1 else column)

    def written(self, *places: tuple[str, ...]) -> Any:
        """The data with every scalar under each of `places` (a path, "*" for every item of a list) as
        the text written, None where nothing is written: what a value that is text whatever it looks
        like (a parameter) is read from."""
        def under(value: Any, loc: tuple[str, ...], place: tuple[str, ...]) -> Any:
            if not place:
                return self._as_written(value, loc)
            if place[0] == "*" and isinstance(value, list):
                return [under(item, (*loc, str(i)), place[1:]) for i, item in enumerate(value)]
            if isinstance(value, dict) and place[0] in value:
                return {**value, place[0]: under(value[place[0]], (*loc, place[0]), place[1:])}
            return value

        data = self.data
        for place in places:
            data = under(data, (), place)
        return data

    def _as_written(self, value: Any, loc: tuple[str, ...]) -> Any:
        if isinstance(value, dict):
            return {key: self._as_written(item, (*loc, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [self._as_written(item, (*loc, str(i))) for i, item in enumerate(value)]
        text = self.texts.get("/".join(loc))
        return value if text is None else text or None

    def diagnostic(self, code: str, message: str, *loc: str | int) -> Diagnostic:
        line, column = self.where(*loc)
        return Diagnostic(self.path, line, column, code, message)

    def to_cache(self) -> dict:
        return {"data": self.data, "marks": self.marks, "blocks": self.blocks, "texts": self.texts}

    @classmethod
    def from_cache(cls, path: str, cached: dict, blob: str = "") -> Document:
        return cls(path, cached["data"], cached["marks"], cached["blocks"], blob,   # pairs stay JSON lists
                   cached["texts"])


@dataclass(frozen=True)
class EnvironmentSource:
    """Everything read for one environment: its environment.yaml and its object files."""

    name: str
    ref: str
    commit: str | None
    environment: Document | None
    objects: tuple[Document, ...]
    diagnostics: tuple[Diagnostic, ...]

    @property
    def identity(self) -> tuple:
        """What the files read were, by path and git blob id: equal identities validate alike."""
        documents = ((self.environment,) if self.environment else ()) + self.objects
        return (self.ref, self.commit, tuple((d.path, d.blob) for d in documents), self.diagnostics)


class YamlProblem(Exception):
    def __init__(self, message: str, mark: yaml.Mark | None):
        super().__init__(message)
        self.line = mark.line + 1 if mark else 1
        self.column = mark.column + 1 if mark else 1


def parse_yaml(path: str, text: str) -> Document:
    """Parse one YAML document with safe constructors only; duplicate keys are an error."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise YamlProblem("the file is empty", None)
            reading = _Reading(text)
            data = reading.value(node, ())
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        message = f"{error.problem or error.context}"
        if mark is not None and text[mark.index:mark.index + 1] == "\t":
            message += " (a tab is used for indentation; YAML allows spaces only)"
        raise YamlProblem(message, mark) from None
    except yaml.YAMLError as error:
        raise YamlProblem(str(error), None) from None
    return Document(path, data, reading.marks, reading.blocks, texts=reading.texts)


class _Reading:
    """One file's nodes made into plain data (dicts, lists, scalars by the core schema), and what a
    Document keeps of where each stands and of what was written. Aliases may repeat what the file
    holds, within a budget of values and of characters (of keys and scalars, as often as they are
    repeated): one 1 MB string named 100,000 times is 100 GB, and a few hundred bytes of nested
    aliases are billions of values. The budget is spent before each value is made, so a file that
    would exceed it is refused at the alias that does, having made no more than the budget."""

    def __init__(self, text: str):
        self.text = text
        self.values = MAX_VALUES
        self.budget = max(MAX_CHARACTERS, len(text))   # a file that big by itself needs no alias to be read
        self.characters = self.budget
        self.alias: yaml.Mark | None = None   # the outermost alias being expanded
        self.expanding: set[int] = set()      # the collections being read: an alias to one never ends
        self.marks: dict[str, tuple[int, int]] = {}
        self.blocks: dict[str, tuple[int, int]] = {}
        self.texts: dict[str, str] = {}

    def value(self, node: yaml.Node | _Alias, loc: tuple[str, ...]) -> Any:
        if isinstance(node, _Alias):
            return self._aliased(node, loc)
        self.values -= 1
        if self.values < 0:
            raise YamlProblem(f"the file expands to more than {MAX_VALUES:,} values (YAML aliases?); an object "
                              "file is far smaller", self.alias or node.start_mark)
        pointer = "/".join(loc)
        self.marks[pointer] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            self._spend(node)
            if node.style in ("|", ">"):
                self.blocks[pointer] = _block_start(self.text, node.start_mark.line + 1)
            value = _scalar(node)
            if not isinstance(value, str):
                self.texts[pointer] = node.value
            return value
        self.expanding.add(id(node))
        try:
            return self._mapping(node, loc) if isinstance(node, yaml.MappingNode) else self._sequence(node, loc)
        finally:
            self.expanding.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, loc: tuple[str, ...]) -> dict[str, Any]:
        if node.tag != _TAG + "map":
            raise _unsupported(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_node = key_node.node if isinstance(key_node, _Alias) else key_node
            if not isinstance(key_node, yaml.ScalarNode):
                raise YamlProblem("mapping keys must be plain strings", key_node.start_mark)
            self._spend(key_node)
            _scalar(key_node)   # a key is the text written (`010:` is "010"), of a tag a scalar may have
            key = key_node.value
            if key == "<<":
                raise YamlProblem("merge keys (<<) are not supported", key_node.start_mark)
            if key in result:
                raise YamlProblem(f"duplicate key '{key}'", key_node.start_mark)
            result[key] = self.value(value_node, (*loc, key))
        return result

    def _sequence(self, node: yaml.SequenceNode, loc: tuple[str, ...]) -> list[Any]:
        if node.tag != _TAG + "seq":
            raise _unsupported(node)
        return [self.value(item, (*loc, str(i))) for i, item in enumerate(node.value)]

    def _aliased(self, alias: _Alias, loc: tuple[str, ...]) -> Any:
        if id(alias.node) in self.expanding:
            raise YamlProblem("this alias names a value that holds it: it would repeat it without end", alias.mark)
        outermost = self.alias is None
        if outermost:
            self.alias = alias.mark
        try:
            return self.value(alias.node, loc)
        finally:
            if outermost:
                self.alias = None

    def _spend(self, node: yaml.ScalarNode) -> None:
        self.characters -= len(node.value)
        if self.characters < 0:
            raise YamlProblem(f"the file expands to more than {self.budget:,} characters (YAML aliases?); an "
                              "object file is far smaller", self.alias or node.start_mark)


def _unsupported(node: yaml.Node) -> YamlProblem:
    return YamlProblem(f"the tag {node.tag} is not supported: YAML 1.2's core schema only (!!map, !!seq, !!str, "
                       "!!int, !!float, !!bool, !!null)", node.start_mark)


def _scalar(node: yaml.ScalarNode) -> Any:
    """The value of a scalar by its tag (implicit or written) under the core schema; text that is not
    of its tag (`!!int 1_000`), and any other tag (`!!python/...`, `!!timestamp`), is refused."""
    kind, text = node.tag.removeprefix(_TAG), node.value
    if kind == "str":
        return text
    pattern = _CORE_PATTERNS.get(kind) if node.tag.startswith(_TAG) else None
    if pattern is None:
        raise _unsupported(node)
    if not pattern.match(text):
        raise YamlProblem(f"'{text}' is not a YAML 1.2 {kind}", node.start_mark)
    if kind == "null":
        return None
    if kind == "bool":
        return text[0] in "tT"
    if kind == "float":
        special = text.lstrip("+-").lower()
        if special in (".inf", ".nan"):
            return float(text.replace(".", ""))   # float("-inf"), float("nan")
        return float(text)
    digits, base = (text[2:], 8) if text.startswith("0o") else (text[2:], 16) if text.startswith("0x") else (text, 10)
    try:
        return int(digits, base)
    except ValueError:   # beyond Python's 4,300 digits
        raise YamlProblem("the integer is too long", node.start_mark) from None


def _block_start(text: str, line_index: int) -> tuple[int, int]:
    """First content line (1-based) of a block scalar and its indentation."""
    lines = text.splitlines()
    while line_index < len(lines) and not lines[line_index].strip():
        line_index += 1
    content = lines[line_index] if line_index < len(lines) else ""
    return line_index + 1, len(content) - len(content.lstrip(" "))


def blob_id(data: bytes) -> str:
    """git's blob id of these bytes, so the working tree and a commit share cache keys."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data).hexdigest()


def read_document(path: str, data: bytes, cache: Cache = NO_CACHE) -> Document | None:
    """One file's document as `read_environment` reads it; None when it is not valid YAML."""
    return _load(path, data, cache, [])


def _load(path: str, data: bytes, cache: Cache, diagnostics: list[Diagnostic]) -> Document | None:
    key = blob_id(data)
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
    for path, data in files:
        if data is None:
            diagnostics.append(Diagnostic(path, 1, 1, "symlink",
                                          "symbolic links and paths outside the environment folder are refused"))
            continue
        document = _load(path, data, cache, diagnostics)
        if path == env_path:
            found_env = True
            environment = document
        elif document is not None:
            objects.append(document)
    if not found_env:
        diagnostics.append(Diagnostic(env_path, 1, 1, "environment", "environment.yaml is missing"))
    return EnvironmentSource(name, ref or WORKTREE, commit, environment, tuple(objects), tuple(diagnostics))


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
    return f"environment '{name}' does not exist in the {where} (environments: {known})"


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
