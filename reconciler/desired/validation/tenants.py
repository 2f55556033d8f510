"""The tenants an environment names: whether each url names an installed engine adapter, in the form
that adapter reads, and an engine sqlglot has a dialect for; the function allowlist an adapter of
another package gives.

Owns these checks of a tenant's url alone. Never connects to a tenant: an adapter is loaded, never
opened.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from ... import secrets
from ...engine_registry import engines
from ...model import Tenant
from .. import policy
from .run import did_you_mean


def dialect_exists(name: str) -> bool:
    from sqlglot.dialects.dialect import Dialect
    try:
        Dialect.get_or_raise(name)
        return True
    except ValueError:
        return False


def adapters_allowlist(tenant: Tenant) -> None:
    """The function allowlist an adapter of another package gives (`function_allowlist`, the format of
    reconciler/allowlists/*.txt); without one, SQL that calls a function is refused on its engine."""
    try:
        given = getattr(engines()[urlsplit(tenant.url).scheme].load(), "function_allowlist", None)
    except Exception:   # noqa: BLE001 - an adapter that cannot be loaded gives no list; its tenants fail later, named
        return
    if isinstance(given, str):
        policy.register(tenant.engine, given)


def url_problem(url: str) -> str | None:
    parts = urlsplit(url)
    installed = engines()
    if parts.scheme not in installed:
        return (f"tenant url scheme '{parts.scheme}' has no engine adapter installed"
                f"{did_you_mean(parts.scheme, installed)} (installed: {', '.join(sorted(installed))})")
    if parts.scheme == "duckdb" and (not url.startswith("duckdb:///") or len(url) <= len("duckdb:///")):
        return "a DuckDB tenant url is duckdb:///relative/path.duckdb or duckdb:////absolute/path.duckdb"
    if parts.scheme == "sc" and not (parts.hostname and parts.port):
        return "a Spark Connect tenant url is sc://host:port"
    if parts.scheme == "postgresql" and not parts.path.strip("/"):
        return "a PostgreSQL tenant url names its database: postgresql://user@host:5432/database"
    if parts.scheme == "snowflake":
        return _snowflake_problem(url)
    if not dialect_exists(Tenant(name="t", url=url).engine):
        return f"the engine of '{parts.scheme}' names no SQL dialect sqlglot knows"
    return None


# A Snowflake url's query parameters: what the connector is given (`host`, `port` and `protocol` reach an
# account somewhere other than ACCOUNT.snowflakecomputing.com: a private link, or the test double), and
# the reference to a key pair's private key.
SNOWFLAKE_PARAMETERS = ("warehouse", "role", "host", "port", "protocol", "private_key")


def _snowflake_problem(url: str) -> str | None:
    """A Snowflake url names its user, account and database, and its query only the parameters the
    adapter reads, a private key only as a reference (env:NAME)."""
    parts = urlsplit(url)
    form = "a Snowflake tenant url is snowflake://USER@ACCOUNT/DATABASE?warehouse=W&role=R"
    database = parts.path.strip("/")
    if not parts.hostname or not parts.username or not database or "/" in database:
        return form
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in SNOWFLAKE_PARAMETERS:
            return f"{form}; '{name}' is none of its parameters ({', '.join(SNOWFLAKE_PARAMETERS)})"
        if name == "private_key" and not secrets.REFERENCE.match(value):
            return "private_key= in a Snowflake tenant url is a reference (env:NAME), never the key itself"
    return None
