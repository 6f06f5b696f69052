"""Settings: one frozen object, resolved from ``PERFLAB_*`` variables by one function.

The CLI, a notebook and a test all call :func:`resolve`, so they agree on where the servers are.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from perflab.errors import ConfigurationError
from perflab.identifiers import is_identifier

__all__ = ["ENV_VARS", "Settings", "resolve", "sqlalchemy_url"]

REDIS_SCHEMES = ("redis", "rediss", "unix")
DATABASE_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "sqlite")
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:\-]*$")

# variable -> (field, what it means); the README's configuration table is generated from the same
# words, and `perflab servers status` names them.
ENV_VARS: dict[str, tuple[str, str]] = {
    "PERFLAB_REDIS_URL": (
        "redis_url",
        "external Redis (redis://, rediss://, unix://); unset: embedded",
    ),
    "PERFLAB_DATABASE_URL": (
        "database_url",
        "external database (postgresql://… or sqlite:///path); unset: embedded PostgreSQL",
    ),
    "PERFLAB_READ_DATABASE_URL": (
        "read_database_url",
        "read replica for the read pool; unset: same as the database URL",
    ),
    "PERFLAB_STATE_DIR": ("state_dir", "where embedded servers keep data, sockets and pid files"),
    "PERFLAB_OUTPUTS": ("outputs_dir", "where `perflab run` and `perflab report` write"),
    "PERFLAB_RESULTS": (
        "results_dir",
        "where suites run by notebooks save their results (`perflab report` sets one per report)",
    ),
    "PERFLAB_HISTORY_URL": (
        "history_url",
        "result history: a SQLite path or postgresql://… to share one between machines; "
        "unset: outputs/history.sqlite",
    ),
    "PERFLAB_NOTEBOOKS": ("notebooks_dir", "the lab notebooks `perflab report` runs"),
    "PERFLAB_KEY_PREFIX": ("key_prefix", "prefix of every Redis key perflab writes"),
    "PERFLAB_SCHEMA": ("schema", "PostgreSQL schema perflab's tables live in"),
}


def _default_state_dir() -> Path:
    import platformdirs

    return platformdirs.user_state_path("perflab")


def _project_dir() -> Path:
    """The checkout this package runs from (an editable install), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Where the servers are and where files go. Build with :func:`resolve`."""

    redis_url: str | None = None
    database_url: str | None = None
    read_database_url: str | None = None
    state_dir: Path = dataclasses.field(default_factory=_default_state_dir)
    outputs_dir: Path = dataclasses.field(default_factory=lambda: _project_dir() / "outputs")
    notebooks_dir: Path = dataclasses.field(default_factory=lambda: _project_dir() / "notebooks")
    key_prefix: str = "perflab:"
    schema: str = "public"
    results_dir: Path | None = None  # None: <outputs>/results
    history_url: str | None = None  # None: <outputs>/history.sqlite

    def __post_init__(self) -> None:
        if self.results_dir is None:
            object.__setattr__(self, "results_dir", self.outputs_dir / "results")
        _check_url("PERFLAB_REDIS_URL", self.redis_url, REDIS_SCHEMES)
        _check_url("PERFLAB_DATABASE_URL", self.database_url, DATABASE_SCHEMES)
        _check_url("PERFLAB_READ_DATABASE_URL", self.read_database_url, DATABASE_SCHEMES)
        if self.history_url and "://" in self.history_url:  # else a SQLite file path
            _check_url("PERFLAB_HISTORY_URL", self.history_url, DATABASE_SCHEMES)
        if self.read_database_url and not self.database_url:
            raise ConfigurationError(
                "PERFLAB_READ_DATABASE_URL is set but PERFLAB_DATABASE_URL is not; "
                "set both, or neither to use the embedded PostgreSQL",
                name="PERFLAB_READ_DATABASE_URL",
            )
        if not _PREFIX_RE.match(self.key_prefix):
            raise ConfigurationError(
                f"PERFLAB_KEY_PREFIX={self.key_prefix!r} may hold only letters, digits and _.:-",
                name="PERFLAB_KEY_PREFIX",
            )
        if not is_identifier(self.schema, lower=True):
            raise ConfigurationError(
                f"PERFLAB_SCHEMA={self.schema!r} is not a plain lower-case SQL identifier "
                "(letters, digits, _; at most 63 characters)",
                name="PERFLAB_SCHEMA",
            )

    @property
    def redis_embedded(self) -> bool:
        return self.redis_url is None

    @property
    def database_embedded(self) -> bool:
        return self.database_url is None


def _check_url(variable: str, url: str | None, schemes: tuple[str, ...]) -> None:
    """Reject a URL the client libraries would choke on later (with a traceback): a wrong
    scheme, a malformed host or IPv6 literal, a port that is not a number in 1-65535, no host,
    or (Redis) a database that is not a number."""
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
        return _redact(url)
    except ValueError:  # unparseable: keep nothing after the scheme that might be a password
        scheme, sep, rest = url.partition("://")
        return f"{scheme}{sep}{rest.rpartition('@')[2]}" if "@" in rest else url


def _redact(url: str) -> str:
    """The URL with any password replaced, for messages."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def resolve(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from ``PERFLAB_*`` variables in ``env`` (default ``os.environ``), then overrides.

    Empty variables count as unset. Paths are made absolute, so a kernel started in another
    directory resolves the same state directory.
    """
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    for variable, (field, _) in ENV_VARS.items():
        raw = env.get(variable, "").strip()
        if raw:
            values[field] = raw
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigurationError(f"unknown setting {unknown[0]!r}; known: {sorted(known)}")
    for field in ("state_dir", "outputs_dir", "notebooks_dir", "results_dir"):
        if field in values:
            values[field] = Path(str(values[field])).expanduser().absolute()
    return Settings(**values)  # type: ignore[arg-type]


def sqlalchemy_url(url: str) -> str:
    """A libpq/SQLite URL spelled for SQLAlchemy with psycopg 3 (``postgresql+psycopg://``)."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url
