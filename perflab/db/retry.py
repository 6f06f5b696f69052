"""Which driver errors are worth another attempt, which mean the connection is gone, and the one
QueryError a driver error becomes. Decisions over exception objects, no I/O."""

from __future__ import annotations

import random
import sqlite3

import psycopg
import sqlalchemy as sa

from perflab.errors import QueryError

__all__ = ["backoff", "lost", "query_error", "sqlstate", "transient"]

_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "08000", "08003", "08006"}


def backoff(attempt: int, jitter: float | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: 50 ms doubling, capped at 1 s, with up to
    100 % jitter (``jitter`` in [0, 1) fixes it, for tests)."""
    spread = random.random() if jitter is None else jitter
    return min(1.0, 0.05 * 2**attempt) * (1 + spread)


def sqlstate(err: BaseException) -> str | None:
    while err is not None:
        state = getattr(err, "sqlstate", None) or getattr(
            getattr(err, "orig", None), "sqlstate", None
        )
        if state:
            return state
        err = err.__cause__ or err.__context__
    return None


def _driver_error(err: BaseException) -> BaseException | None:
    """The driver's own error behind a QueryError or SQLAlchemy wrapper; None when SQLAlchemy
    already saw the connection invalidated (lost, and worth another attempt)."""
    if isinstance(err, QueryError) and err.__cause__ is not None:
        err = err.__cause__
    if isinstance(err, sa.exc.DBAPIError):
        if err.connection_invalidated:
            return None
        err = err.orig or err
    return err


def transient(err: BaseException) -> bool:
    """Lost connections, serialization failures and deadlocks: worth another attempt."""
    if (err := _driver_error(err)) is None:
        return True
    if sqlstate(err) in _TRANSIENT_SQLSTATES:
        return True
    if isinstance(err, sqlite3.OperationalError):
        return "locked" in str(err) or "busy" in str(err)
    # psycopg: a lost or refused connection (errors with an SQLSTATE were judged above)
    return isinstance(err, psycopg.OperationalError) and sqlstate(err) is None


def lost(err: BaseException) -> bool:
    """The server dropped the connection: backend terminated (57P01-57P03), connection
    failure (class 08), or a psycopg OperationalError without an SQLSTATE (socket gone)."""
    if (err := _driver_error(err)) is None:
        return True
    state = sqlstate(err)
    if state is not None:
        return state in ("57P01", "57P02", "57P03") or state.startswith("08")
    return isinstance(err, psycopg.OperationalError)


def query_error(err: BaseException, sql: str) -> QueryError:
    """The one QueryError for a driver error: its first line (psycopg's are multi-line), what
    to do when the connection was lost, and the statement."""
    if isinstance(err, QueryError):
        return err
    lines = str(getattr(err, "orig", None) or err).strip().splitlines()
    text = lines[0] if lines else type(err).__name__
    if lost(err):
        text += " (connection lost; the runner reconnects on the next call)"
    return QueryError(f"{text} — in: {sql}", sql=sql)
