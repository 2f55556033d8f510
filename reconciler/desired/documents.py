"""One YAML file into a `Document`: its data, where each key and value stands in the file, and the text
written of every scalar that is not a string.

Owns safe YAML parsing: every scalar by the YAML 1.2 core schema and nothing else, duplicate keys and
other tags refused, aliases expanded within a budget of values and characters. Never reads a file or
git (`source` hands it the text) and never validates or interprets what a document says.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import yaml
from yaml.composer import Composer

from ..errors import Diagnostic

MAX_VALUES = 100_000      # items and scalars one YAML file may hold once its aliases are expanded
MAX_CHARACTERS = 10_000_000   # characters of its keys and scalars, then (or the file's own length, if more)
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
