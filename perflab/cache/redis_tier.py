"""L2: Redis. Values serialised (JSON by default) in a perflab envelope, expiry both in the
envelope (decided by the cache's timer) and as the key's PX (so Redis reclaims memory). Every key
lives under a prefix; tags are Redis sets beside them. Short socket timeouts and a breaker make an
outage cost one timeout, after which reads fall through to the other tiers."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import redis
import redis.asyncio

from perflab.cache.breaker import Breaker, GuardedTier, guarded
from perflab.cache.entry import Entry, pack, unpack, unpack_many
from perflab.cache.serializers import serializer as make_serializer
from perflab.cache.tier import TierUnavailable

__all__ = ["RedisSubscription", "RedisTier"]

log = logging.getLogger("perflab.cache")
_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class RedisSubscription:
    """A pub/sub connection of its own (closing the tier must not cut it), subscribed to one
    channel; Redis errors come out as TierUnavailable naming the channel."""

    def __init__(self, url: str, channel: str, timeout: float) -> None:
        self.channel, self.timeout = channel, timeout
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        self._pubsub = client.pubsub()  # type: ignore[no-untyped-call]  # (redis-py's stubs)
        try:
            self._pubsub.subscribe(channel)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = self._pubsub.get_message(timeout=timeout)
                if message is not None and message["type"] == "subscribe":
                    return
            raise redis.exceptions.TimeoutError(f"no SUBSCRIBE confirmation on {channel}")
        except (redis.exceptions.RedisError, OSError) as err:
            self.close()
            client.close()
            raise self._lost(err) from err
        except BaseException:
            self.close()
            client.close()
            raise

    def _lost(self, err: BaseException) -> TierUnavailable:
        return TierUnavailable(f"redis pub/sub on {self.channel}: {err}", tier="redis")

    def receive(self, timeout: float) -> tuple[str, Any] | None:
        try:
            message = self._pubsub.get_message(timeout=timeout)
        except (redis.exceptions.RedisError, OSError) as err:
            raise self._lost(err) from err
        return None if message is None else (message["type"], message["data"])

    def ping(self) -> None:
        try:
            self._pubsub.ping()
        except (redis.exceptions.RedisError, OSError) as err:
            raise self._lost(err) from err

    def close(self) -> None:
        try:
            self._pubsub.close()
        except (redis.exceptions.RedisError, OSError) as err:  # already broken: nothing to free
            log.debug("closing a broken pub/sub connection: %s", err)


class RedisTier(GuardedTier):
    """L2 on a Redis URL (default: the lab's Redis, embedded or ``PERFLAB_REDIS_URL``). It
    declares locks and pub/sub (the cache's cross-process loads and L1 invalidation)."""

    shared = True
    supports_locks = True
    supports_pubsub = True
    _errors = _ERRORS

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str | None = None,
        serializer: str = "json",
        secret: bytes | str | None = None,
        timeout: float = 0.5,
        timer: Callable[[], float] | None = None,
    ) -> None:
        from perflab import servers
        from perflab.settings import resolve

        settings = resolve()
        self.url = url or servers.start(settings, database=False).redis_url
        self.prefix = settings.key_prefix + "cache:" if prefix is None else prefix
        self.serializer = make_serializer(serializer, secret=secret)
        self.timeout = timeout
        self.name = "redis"
        self.timer = timer  # None: the tiered cache's (expiry is decided there)
        options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        # Any: redis-py's stubs type every reply bytes | str; without decode_responses it is bytes
        self.client: Any = redis.Redis.from_url(self.url, **options)
        # one asyncio client per event loop (connections are bound to the loop that opened
        # them); loops in several threads each get their own, and a closed loop's is forgotten
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis]
        self._aclients = weakref.WeakKeyDictionary()
        self._aclients_lock = threading.Lock()
        self._options: dict[str, Any] = options
        self._breaker = Breaker(f"redis ({self.url})", tier=self.name)

    @property
    def aclient(self) -> Any:  # a redis.asyncio.Redis (replies typed as the sync client's)
        """The asyncio client of the running event loop (one per loop: connections are bound
        to the loop that opened them)."""
        loop = asyncio.get_running_loop()
        client = self._aclients.get(loop)
        if client is None:
            with self._aclients_lock:
                client = self._aclients.get(loop)
                if client is None:
                    client = redis.asyncio.Redis.from_url(self.url, **self._options)
                    self._aclients[loop] = client
        return client

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _tag(self, tag: str) -> str:
        return f"{self.prefix}__tag__:{tag}"

    def _px(self, entry: Entry) -> int | None:
        remaining = entry.remaining((self.timer or time.time)())
        return None if remaining is None else max(1, int(remaining * 1000))

    def _decode(self, key: str, data: bytes | None) -> Entry | None:
        return None if data is None else unpack(self.serializer, key, data)

    @guarded
    def get(self, key: str) -> Entry | None:
        data = self.client.get(self.prefix + key)
        return None if data is None else unpack(self.serializer, key, data)

    def prepare(self, key: str, entry: Entry) -> bytes:
        return pack(self.serializer, key, entry)

    @guarded
    def set(
        self, key: str, entry: Entry, tags: Iterable[str] = (), data: bytes | None = None
    ) -> None:
        data = data if data is not None else pack(self.serializer, key, entry)
        tags = tuple(tags)
        if not tags:
            self.client.set(self._k(key), data, px=self._px(entry))
            return
        with self.client.pipeline(transaction=False) as pipe:
            pipe.set(self._k(key), data, px=self._px(entry))
            for tag in tags:
                pipe.sadd(self._tag(tag), key)
            pipe.execute()

    @guarded
    def delete(self, key: str) -> bool:
        return bool(self.client.delete(self._k(key)))

    @guarded
    def get_many(self, keys: list[str]) -> dict[str, Entry]:
        if not keys:
            return {}
        prefix = self.prefix
        values = self.client.mget([prefix + k for k in keys])
        found = [(k, v) for k, v in zip(keys, values, strict=True) if v is not None]
        return unpack_many(self.serializer, found)

    @guarded
    def set_many(self, entries: dict[str, Entry]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for key, entry in entries.items():
                pipe.set(self._k(key), pack(self.serializer, key, entry), px=self._px(entry))
            pipe.execute()

    @guarded
    def delete_pattern(self, pattern: str) -> int:
        deleted = 0
        batch: list[bytes] = []
        for name in self.client.scan_iter(match=self._k(pattern), count=1000):
            batch.append(name)
            if len(batch) >= 1000:
                deleted += self.client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += self.client.unlink(*batch)
        return deleted

    @guarded
    def delete_tags(self, tags: Iterable[str]) -> list[str]:
        keys: set[str] = set()
        for tag in tags:
            keys.update(m.decode() for m in self.client.smembers(self._tag(tag)))
            self.client.unlink(self._tag(tag))
        ordered = sorted(keys)
        with self.client.pipeline(transaction=False) as pipe:
            for key in ordered:
                pipe.unlink(self._k(key))
            removed = pipe.execute()
        return [k for k, n in zip(ordered, removed, strict=True) if n]  # those that still existed

    # --- capabilities: locks and pub/sub -------------------------------------------------------
    def lock(self, name: str, *, timeout: float = 10, blocking_timeout: float | None = None) -> Any:
        """redis-py's Lock under this tier's prefix."""
        return self.client.lock(
            f"{self.prefix}__lock__:{name}", timeout=timeout, blocking_timeout=blocking_timeout
        )

    def alock(
        self, name: str, *, timeout: float = 10, blocking_timeout: float | None = None
    ) -> Any:
        """redis.asyncio's Lock (same name, so sync and async holders exclude each other)."""
        return self.aclient.lock(
            f"{self.prefix}__lock__:{name}", timeout=timeout, blocking_timeout=blocking_timeout
        )

    def channel(self, name: str) -> str:
        return f"{self.prefix}__{name}__"

    def subscribe(self, channel: str) -> RedisSubscription:
        return RedisSubscription(self.url, channel, self.timeout)

    @guarded
    def publish(self, channel: str, message: str) -> None:
        """PUBLISH behind the breaker: while Redis is down this raises TierUnavailable at once."""
        self.client.publish(channel, message)

    @guarded
    def publish_many(self, channel: str, messages: list[str]) -> None:
        with self.client.pipeline(transaction=False) as pipe:
            for message in messages:
                pipe.publish(channel, message)
            pipe.execute()

    def clear(self) -> None:
        self.delete_pattern("*")

    def size(self) -> tuple[int | None, int | None]:
        return None, None

    def close(self) -> None:
        self.client.close()

    # async: redis.asyncio, the same commands
    @guarded
    async def aget(self, key: str) -> Entry | None:
        return self._decode(key, await self.aclient.get(self._k(key)))

    @guarded
    async def aset(
        self, key: str, entry: Entry, tags: Iterable[str] = (), data: bytes | None = None
    ) -> None:
        data = data if data is not None else pack(self.serializer, key, entry)
        async with self.aclient.pipeline(transaction=False) as pipe:
            pipe.set(self._k(key), data, px=self._px(entry))
            for tag in tags:
                pipe.sadd(self._tag(tag), key)
            await pipe.execute()

    @guarded
    async def apublish(self, channel: str, message: str) -> None:
        """PUBLISH on redis.asyncio, behind the same breaker as ``publish``."""
        await self.aclient.publish(channel, message)

    @guarded
    async def adelete(self, key: str) -> bool:
        return bool(await self.aclient.delete(self._k(key)))

    @guarded
    async def aget_many(self, keys: list[str]) -> dict[str, Entry]:
        if not keys:
            return {}
        values = await self.aclient.mget([self._k(k) for k in keys])
        found = [(k, v) for k, v in zip(keys, values, strict=True) if v is not None]
        return unpack_many(self.serializer, found)
