"""The query cache: results of reads kept in a ``TieredCache``, tagged by the tables they read,
dropped when a statement writes one of those tables."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

__all__ = ["QueryCache", "tables_read", "tables_written"]

_WRITES = re.compile(
    r"\b(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|ALTER\s+TABLE|DROP\s+TABLE"
    r"(?:\s+IF\s+EXISTS)?|REFRESH\s+MATERIALIZED\s+VIEW(?:\s+CONCURRENTLY)?)\s+\"?(\w+)\"?",
    re.IGNORECASE,
)
_READS = re.compile(r"\b(?:FROM|JOIN)\s+\"?(\w+)\"?", re.IGNORECASE)


def tables_read(sql: str) -> list[str]:
    return [t.lower() for t in _READS.findall(sql)]


def tables_written(sql: str) -> list[str]:
    return [t.lower() for t in _WRITES.findall(sql)]


def cache_key(role: str, sql: str, params: dict | None) -> str:
    spelled = json.dumps([sql, params or {}], sort_keys=True, default=str)
    return f"q:{role}:{hashlib.sha256(spelled.encode()).hexdigest()}"


class QueryCache:
    """Rows and column names of reads, by statement and parameters, in ``cache`` (a
    ``TieredCache``); counts its hits and misses."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.hits = self.misses = 0

    def get(self, key: str) -> tuple[list, list] | None:
        hit = self.cache.get(key)
        if hit is None:
            self.misses += 1
            return None
        self.hits += 1
        return [tuple(r) for r in hit[0]], hit[1]

    def put(self, key: str, sql: str, rows: list, columns: list, ttl: float) -> None:
        tags = [f"table:{t}" for t in tables_read(sql)]
        self.cache.set(key, ([list(r) for r in rows], columns), ttl=ttl, tags=tags)

    def invalidate(self, table: str) -> int:
        """Drop cached queries that read ``table``."""
        return self.cache.invalidate_tags(f"table:{table.lower()}")

    def close(self) -> None:
        if hasattr(self.cache, "close"):
            self.cache.close()
