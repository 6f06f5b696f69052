"""Pool sizes and timeouts (``PoolConfig``) and the counters kept per pool."""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

__all__ = ["PoolConfig", "PoolStats"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PoolConfig:
    """Size and timeouts of one pool."""

    size: int = 5
    max_overflow: int = 10
    timeout: float = 30.0  # seconds to wait for a free connection
    recycle: float = 1800.0
    connect_timeout: float = 5.0
    statement_timeout_ms: int | None = None  # PostgreSQL only


class PoolStats:
    """Counters of one pool, for ``QueryRunner.stats``."""

    __slots__ = ("checkouts", "lost", "made", "queries", "retries", "slow", "wait_s", "waits")

    def __init__(self) -> None:
        self.checkouts = self.waits = self.queries = self.slow = self.retries = 0
        self.made = self.lost = 0
        self.wait_s = 0.0

    def watch(self, engine: sa.Engine) -> None:
        """Count connections the pool opens and the ones it throws away as broken."""

        def made(*_: Any) -> None:
            self.made += 1

        def lost(*_: Any) -> None:
            self.lost += 1

        sa.event.listen(engine, "connect", made)
        sa.event.listen(engine, "invalidate", lost)
