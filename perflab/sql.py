"""One way to make a SQLAlchemy engine that keeps psycopg's prepared statements.

The design's headline trap: a default pool rolls back on return, psycopg's rollback clears its
prepared-statement cache, and statements never reach psycopg's 5-use threshold (a PK lookup
measured 2.7x a plain psycopg connection). AUTOCOMMIT with ``skip_autocommit_rollback=True``
keeps them (1.25–1.33x). Every engine perflab opens on a database goes through
:func:`make_engine` (or :func:`make_async_engine`), so those options are written once: the query
runner's pools, L3, the history (with transactions), ``servers.database_engine()`` and the demo
service's async readers.

Bottom layer: imports nothing of perflab but ``urls``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from perflab.urls import sqlalchemy_url

__all__ = ["make_async_engine", "make_engine", "postgres_options"]


def postgres_options(*settings: str) -> str | None:
    """libpq ``options`` from ``-c name=value`` settings (None when there are none)."""
    return " ".join(settings) if settings else None


def make_engine(
    url: str,
    *,
    connect_timeout: float | None = None,
    options: str | None = None,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    pool_timeout: float | None = None,
    pool_recycle: float | None = None,
    autocommit: bool = True,
    **extra: Any,
) -> sa.Engine:
    """An AUTOCOMMIT engine for a libpq or SQLite ``url``.

    PostgreSQL (psycopg 3): no rollback on return, so prepared statements survive checkouts;
    ``connect_timeout`` (seconds, at least 1) and libpq ``options`` (e.g. ``-c search_path=…``)
    go to the driver. SQLite: a file database gets a real pool of ``pool_size``; ``:memory:``
    keeps SQLAlchemy's per-thread default. ``extra`` goes to ``sqlalchemy.create_engine``.
    ``autocommit=False``: SQLAlchemy's transactions (the history writes and creates its tables
    atomically, under a transaction-scoped lock), with the rollback on return that costs the
    prepared statements."""
    sa_url = sqlalchemy_url(url)
    kwargs: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    pool = {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout": pool_timeout,
    }
    if sa_url.startswith("postgresql"):
        args: dict[str, Any] = dict(extra.pop("connect_args", {}))
        if connect_timeout is not None:
            args["connect_timeout"] = max(1, int(connect_timeout))
        if options:
            args["options"] = options
        kwargs.update({k: v for k, v in pool.items() if v is not None})
        if pool_recycle is not None:
            kwargs["pool_recycle"] = pool_recycle
        kwargs["connect_args"] = args
        if autocommit:
            kwargs["skip_autocommit_rollback"] = True
    elif sa.engine.make_url(sa_url).database not in (None, "", ":memory:"):
        kwargs.update({k: v for k, v in pool.items() if v is not None})
    kwargs.update(extra)
    return sa.create_engine(sa_url, **kwargs)


def make_async_engine(
    url: str,
    *,
    connect_timeout: float | None = None,
    options: str | None = None,
    pool_size: int | None = None,
    max_overflow: int | None = None,
) -> Any:
    """:func:`make_engine`'s AUTOCOMMIT PostgreSQL engine for asyncio (SQLAlchemy's async
    engine on psycopg 3): the same options, so prepared statements survive there too."""
    from sqlalchemy.ext.asyncio import create_async_engine

    args: dict[str, Any] = {}
    if connect_timeout is not None:
        args["connect_timeout"] = max(1, int(connect_timeout))
    if options:
        args["options"] = options
    pool = {"pool_size": pool_size, "max_overflow": max_overflow}
    return create_async_engine(
        sqlalchemy_url(url),
        isolation_level="AUTOCOMMIT",
        skip_autocommit_rollback=True,
        connect_args=args,
        **{k: v for k, v in pool.items() if v is not None},
    )
