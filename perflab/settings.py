"""Settings: one frozen object, resolved from ``PERFLAB_*`` variables by one function.

The CLI, a notebook and a test all call :func:`resolve`, so they agree on where the servers are.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path

from perflab.errors import ConfigurationError
from perflab.identifiers import is_identifier
from perflab.urls import DATABASE_SCHEMES, REDIS_SCHEMES, sqlalchemy_url
from perflab.urls import check_url as _check_url

__all__ = ["ENV_VARS", "Settings", "resolve", "sqlalchemy_url", "variable"]

_PREFIX_RE = re.compile(r"[A-Za-z0-9_.:\-]*")

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
    "PERFLAB_SERVICE_PRESET": ("service_preset", "workload preset the demo service loads"),
    "PERFLAB_SERVICE_DB": (
        "service_db",
        "the demo service's async database readers: engine (SQLAlchemy async) or thread",
    ),
    "PERFLAB_SERVICE_THREADS": (
        "service_threads",
        "threads computing the demo service's cold responses; unset: 2 per core",
    ),
    "PERFLAB_SERVICE_DEBUG": ("service_debug", "1: the demo service adds /debug/stall (tests)"),
    "PERFLAB_PROGRESS": (
        "progress_file",
        "set by perflab report for its kernels: the file they note what they measure in",
    ),
    "PERFLAB_PROGRESS_CONTEXT": (
        "progress_context",
        "set by perflab for its suite worker processes: which one (process 3/8)",
    ),
}


def _default_state_dir() -> Path:
    import platformdirs

    return platformdirs.user_state_path("perflab")


def _project_dir() -> Path:
    """The checkout this package runs from (an editable install), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


#: the lab notebooks the package carries (a wheel installed anywhere; `perflab init` copies them)
PACKAGED_NOTEBOOKS = Path(__file__).resolve().parent / "lab_notebooks"


def _notebooks_dir() -> Path:
    """``notebooks/`` of the checkout (or the working directory) when there is one, else the
    notebooks packaged with perflab."""
    local = _project_dir() / "notebooks"
    return local if local.is_dir() else PACKAGED_NOTEBOOKS


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Where the servers are and where files go. Build with :func:`resolve`."""

    redis_url: str | None = None
    database_url: str | None = None
    read_database_url: str | None = None
    state_dir: Path = dataclasses.field(default_factory=_default_state_dir)
    outputs_dir: Path = dataclasses.field(default_factory=lambda: _project_dir() / "outputs")
    notebooks_dir: Path = dataclasses.field(default_factory=lambda: _notebooks_dir())
    key_prefix: str = "perflab:"
    schema: str = "public"
    results_dir: Path | None = None  # None: <outputs>/results
    history_url: str | None = None  # None: <outputs>/history.sqlite
    service_preset: str = "quick"
    service_db: str | None = None  # None: the service's default (engine on PostgreSQL)
    service_threads: str | None = None  # None: 2 per core
    service_debug: str | None = None
    progress_file: str | None = None
    progress_context: str | None = None

    def __post_init__(self) -> None:
        if self.results_dir is None:
            object.__setattr__(self, "results_dir", self.outputs_dir / "results")
        _check_url("PERFLAB_REDIS_URL", self.redis_url, REDIS_SCHEMES)
        _check_url("PERFLAB_DATABASE_URL", self.database_url, DATABASE_SCHEMES)
        _check_url("PERFLAB_READ_DATABASE_URL", self.read_database_url, DATABASE_SCHEMES)
        if self.history_url and "://" in self.history_url:  # else a SQLite file path
            _check_url("PERFLAB_HISTORY_URL", self.history_url, DATABASE_SCHEMES)
        if self.service_db not in (None, "engine", "thread"):
            raise ConfigurationError(
                f"PERFLAB_SERVICE_DB={self.service_db!r}: use 'engine' or 'thread'",
                name="PERFLAB_SERVICE_DB",
            )
        if self.service_threads is not None and not (
            str(self.service_threads).isdigit() and int(self.service_threads) > 0
        ):
            raise ConfigurationError(
                f"PERFLAB_SERVICE_THREADS={self.service_threads!r}: give a whole number above 0",
                name="PERFLAB_SERVICE_THREADS",
            )
        if self.read_database_url and not self.database_url:
            raise ConfigurationError(
                "PERFLAB_READ_DATABASE_URL is set but PERFLAB_DATABASE_URL is not; "
                "set both, or neither to use the embedded PostgreSQL",
                name="PERFLAB_READ_DATABASE_URL",
            )
        if not _PREFIX_RE.fullmatch(self.key_prefix):
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


def variable(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """The value of one ``PERFLAB_*`` variable (None when unset or empty) without building
    :class:`Settings`: for the channels perflab's own processes read on every benchmark (the
    progress note). Only declared variables: every ``PERFLAB_*`` name lives in ``ENV_VARS``."""
    if name not in ENV_VARS:
        raise KeyError(f"{name} is not a perflab setting (ENV_VARS)")
    value = (os.environ if env is None else env).get(name, "").strip()
    return value or None
