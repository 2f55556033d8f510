"""Recognising credentials written into files, and reading the ones referenced.

Owns the rule that files hold references (`env:NAME`) and never values, and the lookup of
a referenced variable at apply time. Credential shapes (cloud keys, tokens, private keys,
URLs with a user and password) are recognised by Yelp's detect-secrets plugins; key names
(`password:`, `pwd:`, and `Pwd=`, `password=`, `sig=` inside connection strings and URLs)
by the rules here. Never prints a secret's value.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .errors import TenantError

SECRET_KEY = re.compile(r"(pass(word|wd)?|pwd|secret|token|api[_-]?key|private[_-]?key|account[_-]?key|"
                        r"shared[_-]?access[_-]?key|credential|auth)", re.IGNORECASE)
SIGNATURES = frozenset({"sig", "signature", "x-amz-signature", "x-goog-signature"})   # signed URLs (SAS, S3, GCS)
REFERENCE = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$")
SHORTEST_SHAPE = 16   # no credential shape the plugins know is shorter; shorter text is not scanned


def literal_secrets(data: Any, loc: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(location, what it looks like) for every value in a document that looks like a secret."""
    if isinstance(data, dict):
        for key, value in data.items():
            here = (*loc, str(key))
            if isinstance(value, (str, int, float)) and not isinstance(value, bool) and _secret_key(str(key)) \
                    and str(value).strip() and not REFERENCE.match(str(value)):
                yield here, f"'{key}' holds a literal value; write a reference such as env:{_env_name(key)}"
            else:
                yield from literal_secrets(value, here)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from literal_secrets(value, (*loc, str(index)))
    elif isinstance(data, str):
        found = _in_text(data)
        if found:
            yield loc, found


def _in_text(text: str) -> str | None:
    """What in one string value is a credential, or None."""
    if "://" in text and _url_password(text):
        return "a connection string with an embedded password; use a password reference instead"
    for key in _pair_keys(text):
        return (f"'{key}=' inside a connection string or URL holds a literal value; keep the value in the "
                "environment and reference it (env:NAME)")
    if len(text) >= SHORTEST_SHAPE:
        for plugin in _plugins():
            if any(True for _ in plugin.analyze_string(text)):
                return (f"looks like a credential ({plugin.secret_type}); store it in the environment and "
                        "reference it as env:NAME")
    return None


def _pair_keys(text: str) -> Iterator[str]:
    """Keys of `key=value` pairs holding a literal secret: a URL's query (JDBC, SAS, presigned URLs) and
    `;`-separated connection strings (ODBC `Pwd=`, ADO.NET `Password=`, Azure `AccountKey=`)."""
    if "=" not in text:
        return
    pairs: list[tuple[str, str]] = []
    if "?" in text and "://" in text:
        pairs += parse_qsl(text.split("?", 1)[1].split("#", 1)[0], keep_blank_values=False)
    if ";" in text:
        pairs += [(key.strip(), value.strip()) for key, _, value in
                  (part.partition("=") for part in text.split(";")) if _]
    for key, value in pairs:
        if value and not REFERENCE.match(value) and (key.lower() in SIGNATURES or _secret_key(key)):
            yield key


@functools.cache
def _plugins() -> tuple:
    """detect-secrets' credential shapes (its regex plugins), without the noisy ones for our files:
    high-entropy strings (every content hash), keywords (the key rules here do that) and IP addresses."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    return tuple(plugin() for name, plugin in sorted(get_mapping_from_secret_type_to_class().items())
                 if issubclass(plugin, RegexBasedDetector) and name != "Public IP (ipv4)")


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


def references(data: Any) -> Iterator[str]:
    """The variable names of every `env:NAME` reference in a document's values."""
    if isinstance(data, dict):
        for value in data.values():
            yield from references(value)
    elif isinstance(data, list):
        for value in data:
            yield from references(value)
    elif isinstance(data, str) and REFERENCE.match(data):
        yield data.removeprefix("env:")


def missing(names: Iterator[str] | list[str]) -> list[str]:
    """The referenced variables that are not set, sorted."""
    return sorted({name for name in names if os.environ.get(name) is None})


def resolve(reference: str, what: str) -> str:
    """The value of `env:NAME`; a missing variable names the variable, never a value."""
    name = reference.removeprefix("env:")
    value = os.environ.get(name)
    if value is None:
        raise TenantError(f"{what}: environment variable {name} is not set")
    return value
