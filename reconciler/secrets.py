"""Recognising credentials written into files, and reading the ones referenced.

Owns the rule that files hold references (`env:NAME`) and never values, and the lookup of
a referenced variable at apply time. Never prints a secret's value.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from .errors import TenantError

SECRET_KEY = re.compile(r"(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|credential|auth)",
                        re.IGNORECASE)
# Shapes of well-known credentials, checked on every string value of every file.
CREDENTIAL_SHAPES = (
    ("an AWS access key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    ("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b")),
    ("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
    ("a Slack token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b")),
)
ANY_CREDENTIAL_SHAPE = re.compile("|".join(f"(?:{shape.pattern})" for _, shape in CREDENTIAL_SHAPES))
REFERENCE = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$")


def literal_secrets(data: Any, loc: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(location, what it looks like) for every value in a document that looks like a secret."""
    if isinstance(data, dict):
        for key, value in data.items():
            here = (*loc, str(key))
            if _secret_key(str(key)) and isinstance(value, (str, int, float)) \
                    and not REFERENCE.match(str(value)) and str(value).strip():
                yield here, f"'{key}' holds a literal value; write a reference such as env:{_env_name(key)}"
            else:
                yield from literal_secrets(value, here)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from literal_secrets(value, (*loc, str(index)))
    elif isinstance(data, str):
        if "://" in data and _url_password(data):
            yield loc, "a connection string with an embedded password; use a password reference instead"
            return
        if not ANY_CREDENTIAL_SHAPE.search(data):
            return
        for label, shape in CREDENTIAL_SHAPES:
            if shape.search(data):
                yield loc, f"looks like {label}; store it in the environment and reference it as env:NAME"
                return


@functools.lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Whether a key names a credential; keys repeat across files, so the answer is memoised."""
    return bool(SECRET_KEY.search(key))


def _url_password(text: str) -> bool:
    try:
        return bool(urlsplit(text.strip()).password)
    except ValueError:
        return False


def _env_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", str(key)).upper()


def resolve(reference: str, what: str) -> str:
    """The value of `env:NAME`; a missing variable names the variable, never a value."""
    name = reference.removeprefix("env:")
    value = os.environ.get(name)
    if value is None:
        raise TenantError(f"{what}: environment variable {name} is not set")
    return value
