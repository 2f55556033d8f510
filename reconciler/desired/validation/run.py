"""One validation run: what its passes have read so far, and every problem they found.

Owns `Run` (the documents by identity, the names of broken files, the dialect and the engines the
environment names) and how a problem is reported: at its file:line:column, a pydantic error in words,
a "did you mean" from the names at hand, a statement's refused effects and function calls. Never
decides what is a problem: each pass does.
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Iterable
from pathlib import PurePosixPath

from pydantic import BaseModel, ValidationError

from ... import errors, secrets
from ...errors import Diagnostic
from ...model import PLAIN_NAME, QUALIFIED_NAME, TENANT_NAME, Environment, ObjectKey
from .. import policy
from ..cache import Cache
from ..documents import Document
from ..source import EnvironmentSource

DEFAULT_DIALECT = Environment.model_fields["dialect"].default   # an environment.yaml that does not say
NAME_RULES = {
    PLAIN_NAME: "letters, digits and underscores, not starting with a digit",
    TENANT_NAME: "letters, digits, '_' and '-', starting with a letter or digit",
    QUALIFIED_NAME: "schema.name, each letters, digits and underscores, not starting with a digit",
}


class Run:
    """The state the passes share; each pass reads what the ones before it left here."""

    def __init__(self, source: EnvironmentSource, cache: Cache):
        self.source = source
        self.cache = cache
        self.diagnostics: list[Diagnostic] = list(source.diagnostics)
        self.documents: dict[ObjectKey, Document] = {}
        self.broken: set[str] = set()  # names of objects whose files are invalid: no cascades
        # the names of files that could not be read at all (not YAML): what each declares is unknown, and
        # its name is likely the object's
        self.unread = {PurePosixPath(d.path).stem.lower() for d in source.diagnostics}
        self.dialect = DEFAULT_DIALECT   # the environment's, once environment.yaml is read
        self.duplicated: set[ObjectKey] = set()
        self.callers: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
        # ^ the engines SQL runs on, and the functions of their own the environment allows (`policy`)

    def unknowable(self, name: str) -> bool:
        """Whether `name` (schema.name or name) may be what a broken or unread file declares: a
        reference to it is not reported (the file's problem is, once)."""
        return name.lower() in self.broken or name.lower().rpartition(".")[2] in self.unread

    def report(self, document: Document | None, code: str, message: str, *loc: str | int) -> None:
        if document is None:
            return
        self.diagnostics.append(document.diagnostic(code, message, *loc))

    def pydantic(self, document: Document, error: ValidationError, model: type[BaseModel]) -> None:
        """Each problem pydantic found validating `document` as `model`, in words."""
        problems = error.errors()
        for problem in problems:
            loc = tuple(str(p) for p in problem["loc"])
            if problem["type"] == "too_short" and any(
                    len(other["loc"]) > len(loc) and tuple(map(str, other["loc"][:len(loc)])) == loc
                    for other in problems):
                continue  # an item failed; the count of valid items says nothing more
            if problem["type"] == "string_pattern_mismatch" and \
                    problem.get("ctx", {}).get("pattern", "").startswith("^env:") and \
                    any(secrets.SECRET_KEY.search(part) for part in loc):
                continue  # reported once, as a literal secret
            self.report(document, "schema", explain(problem, loc, model), *loc)

    @contextlib.contextmanager
    def quiet(self):
        """A step run for what it leaves in the cache: the problems it finds are reported when it runs again."""
        reported = self.diagnostics
        self.diagnostics = []
        try:
            yield
        finally:
            self.diagnostics = reported

    def effects(self, document: Document, loc: tuple[str, ...], effects, what: str) -> bool:
        """Report each part of a statement that changes what its kind may not (`policy.effects`)."""
        for effect in effects:
            line, column = document.where_inside(loc, effect.line, effect.column)
            self.diagnostics.append(Diagnostic(document.path, line, column, "sql", what + effect.message))
        return bool(effects)

    def calls(self, document: Document, loc: tuple[str, ...], found: dict[str, tuple[policy.Call, ...]],
              flow: bool = False, what: str = "") -> None:
        """Report each function the SQL at `loc` may not call on one of the tenants' engines."""
        engines, allowed = self.callers
        seen: set[tuple] = set()
        for engine in sorted(engines):
            for refused in policy.refused_calls(found[engine], engine, flow, allowed):
                if (refused.message, refused.line, refused.column) not in seen:
                    seen.add((refused.message, refused.line, refused.column))
                    line, column = document.where_inside(loc, refused.line, refused.column)
                    self.diagnostics.append(Diagnostic(document.path, line, column, "function",
                                                       what + refused.message))


def explain(problem: dict, loc: tuple[str, ...], model: type[BaseModel]) -> str:
    field_name = loc[-1] if loc else "document"
    kind = problem["type"]
    if kind == "extra_forbidden":
        return f"unknown field '{field_name}'{did_you_mean(field_name, fields_at(model, loc[:-1]))}"
    if kind == "too_short":
        return f"'{field_name}' needs at least one item"
    if kind == "value_error":
        return str(problem["ctx"]["error"])
    if kind == "missing":
        return f"missing required field '{field_name}'"
    if kind == "string_too_long":
        return (f"'{problem['input']}' is {len(problem['input'])} characters; names are at most "
                f"{problem['ctx']['max_length']} (PostgreSQL would truncate a longer one without a word)")
    if kind == "string_pattern_mismatch":
        pattern = problem.get("ctx", {}).get("pattern", "")
        if pattern.startswith("^env:"):
            return f"'{field_name}' must be a reference such as env:NAME, never a literal value"
        return f"'{problem['input']}' is not a plain name: {NAME_RULES.get(pattern, 'see the schema')}"
    return f"{field_name}: {problem['msg']}"


def fields_at(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """The fields, as YAML spells them, of the mapping at `loc` in a document validated as `model` (a
    column's at `columns.2`); none where `loc` leads to no model (a mapping of free keys)."""
    models = [model]
    for part in loc:
        if part.isdigit():   # an item of a list: the list's model
            continue
        named = [m for m in models if m.__name__ == part]   # a union's member, as pydantic names it
        if named:
            models = named
            continue
        fields = [f for m in models for name, f in m.model_fields.items() if part in (name, f.alias)]
        models = [found for f in fields for found in _models_in(f.annotation)]
    return sorted({f.alias or name for m in models for name, f in m.model_fields.items()})


def _models_in(annotation) -> list[type[BaseModel]]:
    """The models an annotation holds: itself, or those inside a list, tuple, dict, union or Optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]


def did_you_mean(word: str, candidates: Iterable[str], objects=None) -> str:
    """`errors.did_you_mean`; with `objects`, an unqualified name is answered with the qualified object."""
    shown = None if objects is None else {key.name: key for key in reversed(list(objects))}
    return errors.did_you_mean(word, candidates, shown)
