"""What an engine's message may show.

An engine's error is data, not text to print: it can quote a row's value (`Could not convert string
'ada@example.com'`), a file it was made to read, or a secret. This module owns turning one into what
the reconciler prints, records in the audit and posts in a pull request: the engine's class of error
and its words, with every quoted value that the failing statement does not itself spell, every
number, and every secret the process holds replaced by `...`. The full message only with an
explicit local flag (`reveal`), never in CI or a pull request's plan. Never decides what runs.
"""

from __future__ import annotations

import functools
import os
import re

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from .secrets import SECRET_KEY

HIDDEN = "..."
SHORTEST_SECRET = 6   # a secret shorter than this would hide common words, and is no secret
# engine messages, not SQL: quoted segments the way engines quote (values, names, types), and numbers
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`")
_NUMBER = re.compile(r"(?<![\w.])(?<!SQLSTATE: )[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")

_revealed = False   # set by the CLI's --show-engine-values, for a person at a terminal


def reveal(whole: bool) -> None:
    """Show engine messages whole (a person's explicit local choice), or as they may be shown."""
    global _revealed
    _revealed = whole


def shown(message: str, statement: str, sqlstate: str | None = None) -> str:
    """The message as it may be shown: its class (a SQLSTATE where the engine gave one) first, then its
    words with what the data or the environment put in them hidden (unless `reveal`ed)."""
    text = message if _revealed else _hidden(message, statement)
    return f"[{sqlstate}] {text}" if sqlstate and not text.startswith("[") else text


def _hidden(message: str, statement: str) -> str:
    spelled = _spelled(statement)

    def quoted(match: re.Match) -> str:
        text = match.group(0)
        inner = text[1:-1]
        return text if inner.lower() in spelled or _is_type(inner) else f"{text[0]}{HIDDEN}{text[-1]}"

    pieces = []
    position = 0
    for match in _QUOTED.finditer(message):   # numbers are hidden outside the quotes kept as names only
        pieces.append(_NUMBER.sub(HIDDEN, message[position:match.start()]))
        pieces.append(quoted(match))
        position = match.end()
    pieces.append(_NUMBER.sub(HIDDEN, message[position:]))
    return _without_secrets("".join(pieces))


@functools.lru_cache(maxsize=256)
def _spelled(statement: str) -> frozenset[str]:
    """Every word the statement itself spells (names, keywords, its own literals): what a message may
    quote back without telling anything the repository does not."""
    try:
        tokens = Dialect.get_or_raise("").tokenize(statement)
    except SqlglotError:
        return frozenset()
    return frozenset(token.text.lower() for token in tokens
                     if token.token_type not in (TokenType.NUMBER,) and token.text)


@functools.lru_cache(maxsize=256)
def _is_type(text: str) -> bool:
    """`INT32`, `character varying`, `STRING`: a type's name is no value."""
    try:
        return exp.DataType.build(text, udt=False).this != exp.DataType.Type.USERDEFINED
    except (SqlglotError, ValueError):
        return False


def _without_secrets(text: str) -> str:
    """Every value of a variable whose name says it holds a credential, wherever it appears."""
    for name, value in os.environ.items():
        if len(value) >= SHORTEST_SECRET and SECRET_KEY.search(name) and value in text:
            text = text.replace(value, HIDDEN)
    return text
