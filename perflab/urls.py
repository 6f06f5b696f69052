"""URL schemes and spellings, in one place: which schemes name a Redis, a database or an L1
memory tier, how a URL is checked before a client library chokes on it, how it is spelled for
SQLAlchemy (psycopg 3) and for psycopg itself, and how a password is kept out of messages.

Bottom layer (imports nothing of perflab but ``errors``): settings, servers, the cache tiers and
the query runner all read their schemes from here.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from perflab.errors import ConfigurationError

__all__ = [
    "DATABASE_SCHEMES",
    "MEMORY_SCHEMES",
    "POSTGRES_SCHEMES",
    "REDIS_SCHEMES",
    "check_url",
    "is_postgres",
    "libpq_url",
    "redact",
    "redact_value",
    "sqlalchemy_url",
    "sqlite_path",
]

REDIS_SCHEMES = ("redis", "rediss", "unix")
POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg")
DATABASE_SCHEMES = (*POSTGRES_SCHEMES, "sqlite")
MEMORY_SCHEMES = ("memory",)


def check_url(variable: str, url: str | None, schemes: tuple[str, ...]) -> None:
    """Reject a URL the client libraries would choke on later (with a traceback): a wrong
    scheme, a malformed host or IPv6 literal, a port that is not a number in 1-65535, no host,
    or (Redis) a database that is not a number. ``variable`` names the setting or argument in
    the ConfigurationError."""
    if url is None:
        return

    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(f"{variable}={_redact_safe(url)!r} {why}", name=variable)

    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is no number or out of range
    except ValueError as err:
        raise bad(f"is not a valid URL ({err}); write it as scheme://host:port/...") from err
    if parts.scheme not in schemes:
        raise bad(
            f"has scheme {parts.scheme or '(none)'!r}; "
            f"use one of {', '.join(s + '://' for s in schemes)}"
        )
    if port == 0:
        raise bad("has port 0; give the port the server listens on (1-65535)")
    query = parse_qs(parts.query)
    if parts.scheme == "unix":
        if not parts.path:
            raise bad("names no socket; write unix:///path/to/redis.sock?db=0")
        db = query.get("db", ["0"])[0]
    elif parts.scheme in ("redis", "rediss"):
        if not parts.hostname:
            raise bad("names no host; write redis://host:6379/0")
        db = parts.path.strip("/") or query.get("db", ["0"])[0]
    else:  # libpq and SQLite: no host means a local socket or a file, both fine
        db = "0"
    if not db.isdigit():
        raise bad(f"selects database {db!r}; a Redis database is a number, e.g. /0")


def _redact_safe(url: str) -> str:
    try:
        return redact(url)
    except ValueError:  # unparseable: keep nothing after the scheme that might be a password
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}{rest.rpartition('@')[2]}" if "@" in rest else url


def redact(url: str) -> str:
    """The URL with any password replaced, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def redact_value(value: object) -> object:
    """``value`` with any password in it replaced when it is a URL string (a notebook parameter,
    a table cell); anything else as it is."""
    if isinstance(value, str) and "://" in value:
        return _redact_safe(value)
    return value


def is_postgres(url: str) -> bool:
    return url.partition("://")[0] in POSTGRES_SCHEMES


def sqlalchemy_url(url: str) -> str:
    """A libpq/SQLite URL spelled for SQLAlchemy with psycopg 3 (``postgresql+psycopg://``)."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def libpq_url(url: str) -> str:
    """``postgresql+psycopg://`` → ``postgresql://`` for psycopg."""
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL; None for ``:memory:`` or another scheme."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :].split("?", 1)[0]
        return Path(path) if path and path != ":memory:" else None
    return None
