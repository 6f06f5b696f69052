"""Tiers from URLs: ``memory://?max_items=1000&policy=lru``, ``redis://…``/``unix://…``,
``postgresql://…``/``sqlite:///…``."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from perflab.cache.tier import Tier
from perflab.errors import CacheError

__all__ = ["tier_from_url"]


def tier_from_url(url: str) -> Tier:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        from perflab.cache.memory import MemoryTier

        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        unknown = set(query) - {"max_items", "policy", "max_bytes"}
        if unknown:
            raise CacheError(
                f"{url}: unknown option {sorted(unknown)[0]!r} (max_items, policy, max_bytes)"
            )
        try:
            max_items = int(query.get("max_items", 10_000))
            max_bytes = int(query["max_bytes"]) if "max_bytes" in query else None
        except ValueError as err:
            raise CacheError(f"{url}: max_items and max_bytes must be integers") from err
        return MemoryTier(max_items, query.get("policy", "lru"), max_bytes)
    if scheme in ("redis", "rediss", "unix"):
        from perflab.cache.redis_tier import RedisTier

        return RedisTier(url)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "sqlite"):
        from perflab.cache.database import DatabaseTier

        return DatabaseTier(url)
    raise CacheError(
        f"no cache tier for {url!r}: use memory://, redis://, unix://, postgresql:// or sqlite://"
    )
