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
from collections.abc import Iterable

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from .secrets import SECRET_KEY

HIDDEN = "..."
SHORTEST_SECRET = 6   # a secret shorter than this would hide common words, and is no secret
# engine messages, not SQL: quoted segments the way engines quote (values, names, types), and numbers
_TYPE_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9_ ]*(?:\([0-9, ]*\))?")   # INT32, character varying(2)
_QUOTE_START = re.compile(r"['\"`]")
_NUMBER = re.compile(r"(?<![\w.])(?<!SQLSTATE: )[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")

_revealed = False   # set by the CLI's --show-engine-values, for a person at a terminal
_sensitive: set[str] = set()   # names of sensitive columns and of the objects holding them (`sensitive`)


def reveal(whole: bool) -> None:
    """Show engine messages whole (a person's explicit local choice), or as they may be shown."""
    global _revealed
    _revealed = whole


def forget() -> None:
    """A command's choices end with it: messages as they may be shown, no sensitive names (tests and
    anything else that runs several commands in one process)."""
    global _revealed
    _revealed = False
    _sensitive.clear()


def sensitive(names: Iterable[str]) -> None:
    """Names of sensitive columns (declared, and every view column computed from one) and of the objects
    that hold them: an engine's message about a statement that spells one shows its class only."""
    _sensitive.update(name.lower() for name in names)


def shown(message: str, statement: str, sqlstate: str | None = None) -> str:
    """The message as it may be shown: its class (a SQLSTATE where the engine gave one) first, then its
    words with what the data or the environment put in them hidden (unless `reveal`ed); only its class
    where the statement reads something sensitive."""
    if _revealed:
        text = message
    elif _spelled(statement) & _sensitive:
        text = f"{_class_of(message)} (the rest is withheld: the statement reads a sensitive column)"
    else:
        text = _hidden(message, statement)
    return f"[{sqlstate}] {text}" if sqlstate and not text.startswith("[") else text


def statement_shown(statement: str, engine: str) -> str:
    """A statement as a plan may show it to people (a pull request, a CI log): as sent, but every string
    literal hidden, since a statement can carry what the tenant holds and the folder never spelled (a
    policy's expression, a property a DBA set, carried over by a rebuild), and every secret the process
    holds. Unless `reveal`ed; the JSON plan keeps statements whole. One the engine's tokenizer cannot
    read is hidden whole."""
    if _revealed:
        return statement
    try:
        tokens = Dialect.get_or_raise(engine).tokenize(statement)
    except SqlglotError:
        return f"{HIDDEN} (a statement this plan cannot show safely; the JSON plan holds it)"
    pieces, position = [], 0
    for token in tokens:
        if token.token_type in (TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.RAW_STRING,
                                TokenType.HEREDOC_STRING, TokenType.BYTE_STRING, TokenType.UNICODE_STRING):
            pieces += [statement[position:token.start], f"'{HIDDEN}'"]
            position = token.end + 1
    pieces.append(statement[position:])
    return _without_secrets("".join(pieces))


def _class_of(message: str) -> str:
    """An engine message's class, from its opening words: `[CAST_INVALID_INPUT]`, `Conversion Error`,
    `invalid input syntax for type integer`: what comes before any colon, quote or digit."""
    if message.startswith("["):
        return message[:message.find("]") + 1] if "]" in message else HIDDEN
    end = min((at for at in (message.find(mark) for mark in ":'\"`0123456789") if at >= 0), default=len(message))
    return _without_secrets(message[:end].strip()) or HIDDEN


def _hidden(message: str, statement: str) -> str:
    """Quoted segments are read widest first: from a quote to the last of the same quote in the message, so
    a value that carries quotes of its own (`'x" ' || email || ' "y'`) stays inside what is hidden."""
    spelled = _spelled(statement)
    pieces = []
    position = 0
    while True:
        found = _QUOTE_START.search(message, position)
        if found is None:
            break
        mark = found.group(0)
        end = message.rfind(mark)
        if end <= found.start():   # an unmatched quote: everything after it is hidden
            pieces += [_NUMBER.sub(HIDDEN, message[position:found.start()]), f"{mark}{HIDDEN}"]
            return _without_secrets("".join(pieces))
        inner = message[found.start() + 1:end]
        kept = inner.lower() in spelled or _is_type(inner)
        pieces += [_NUMBER.sub(HIDDEN, message[position:found.start()]),
                   f"{mark}{inner if kept else HIDDEN}{mark}"]
        position = end + 1
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
    if not _TYPE_TEXT.fullmatch(text):
        return False
    try:   # the whole text one type (DataType.build would read a type at its start and drop the rest)
        return sqlglot.parse_one(text, into=exp.DataType).this != exp.DataType.Type.USERDEFINED
    except (SqlglotError, ValueError):
        return False


def _without_secrets(text: str) -> str:
    """Every value of a variable whose name says it holds a credential, wherever it appears."""
    for name, value in os.environ.items():
        if len(value) >= SHORTEST_SECRET and SECRET_KEY.search(name) and value in text:
            text = text.replace(value, HIDDEN)
    return text
