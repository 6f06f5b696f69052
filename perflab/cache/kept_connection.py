"""One pooled connection kept out of the pool for the hottest path.

A pool checkout costs about as much as a primary-key lookup on this machine, so the hot path
keeps one DBAPI connection and uses it whenever it is free (a non-blocking lock); callers that
find it busy take a connection from the pool as usual. A broken kept connection is invalidated
and replaced on next use.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

__all__ = ["KeptConnection"]


def _broken(conn: Any) -> bool:
    driver = conn.driver_connection
    return bool(getattr(driver, "closed", False) or getattr(driver, "broken", False))


class KeptConnection:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._conn: Any = None
        self._lock = threading.Lock()

    def acquire(self) -> Any:
        """The kept connection if it is free, else None; give it back with ``release``. The
        hottest paths use this pair: no generator, no context manager (~1 µs a call)."""
        if not self._lock.acquire(blocking=False):
            return None
        if self._conn is None:
            try:
                self._conn = self.engine.raw_connection()
            except BaseException:
                self._lock.release()
                raise
        return self._conn

    def release(self, failed: bool = False) -> None:
        """Give the kept connection back; after a failure a broken one is replaced next time."""
        try:
            if failed and self._conn is not None and _broken(self._conn):
                self._conn.invalidate()
                self._conn = None
        finally:
            self._lock.release()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """The kept connection if free, else one from the pool (returned afterwards)."""
        kept = self.acquire()
        if kept is not None:
            failed = False
            try:
                yield kept
            except BaseException:
                failed = True
                raise
            finally:
                self.release(failed)
            return
        conn = self.engine.raw_connection()
        try:
            yield conn
        except BaseException:
            if _broken(conn):
                conn.invalidate()  # a dead connection must not go back to the pool
            raise
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
