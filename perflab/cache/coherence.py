"""Coherence between processes: every write publishes the keys it changed on a channel of the
first tier that ``supports_pubsub``; a listener thread in each process drops them from its L1.

The listener survives the server: when its subscription breaks, or a PING gets no answer within
``heartbeat`` + the subscription's timeout (a hung server), it resubscribes with jittered
backoff (``backoff`` seconds, doubling to ``max_backoff``) and, once subscribed again, drops the
whole L1: invalidations sent while it was away are gone. Publishing goes through the tier's
breaker: while the tier is down (or backing off) a message is kept, not waited for, and the
listener sends what was kept once the tier answers again (merged; past ``max_pending`` keys,
one "drop everything" message instead).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from perflab.cache.entry import Entry
from perflab.cache.memory import MemoryTier
from perflab.cache.tier import Subscription, Tier, TierUnavailable

__all__ = ["Coherence", "Coherent"]

log = logging.getLogger("perflab.cache")


class Coherent:
    """Mixin of TieredCache: what it publishes, and what it drops when others publish."""

    _l1: MemoryTier | None
    _coherence: Coherence | None
    _settle: Callable[[str, Entry | None, tuple[Any, ...], int], None]
    _bump_all: Callable[[], None]

    def _publish(self, kind: str, items: list[str]) -> None:
        if self._coherence is not None:
            self._coherence.publish(kind, items)

    async def _apublish(self, kind: str, items: list[str]) -> None:
        """``_publish`` for the async driver: awaited, never blocking the event loop."""
        if self._coherence is not None:
            await self._coherence.apublish(kind, items)

    def _drop_local(self, kind: str, items: list[str]) -> None:
        """Another process changed these: drop our L1 copies (and make back-fills in flight
        re-read). ``kind="all"``: the invalidation stream had a gap, every copy is suspect."""
        if self._l1 is None:
            return
        if kind == "del":
            for k in items:
                self._settle(k, None, (), 0)
            return
        if kind == "pattern":
            for pattern in items:
                self._l1.delete_pattern(pattern)
        elif kind == "tags":
            self._l1.delete_tags(items)
        elif kind == "all":
            self._l1.clear()
        self._bump_all()


class Coherence:
    backoff = 0.05
    max_backoff = 2.0
    heartbeat = 1.0
    max_pending = 10_000

    def __init__(self, cache: Coherent, tier: Tier, origin: str) -> None:
        self.channel = tier.channel("invalidate")
        self.tier = tier
        self.origin = origin
        self.ref = weakref.ref(cache)
        self.connected = threading.Event()
        self.resubscribed = 0  # reconnections after a gap (each dropped the L1)
        self._stop = threading.Event()
        self._pending: dict[str, dict[str, None]] = {}  # kind -> items (ordered set)
        self._pending_lock = threading.Lock()
        self._subscription: Subscription | None = None
        try:
            self._subscription = self._subscribe()
        except TierUnavailable as err:  # keep trying in the thread
            log.warning("cache coherence: cannot subscribe on %s yet (%s); retrying", tier, err)
        self.thread = threading.Thread(target=self._run, name="perflab-coherence", daemon=True)
        self.thread.start()

    @classmethod
    def start(cls, cache: Coherent, tiers: list[Tier], origin: str) -> Coherence | None:
        """On the first tier with pub/sub; None without one."""
        for tier in tiers:
            if tier.supports_pubsub:
                return cls(cache, tier, origin)
        return None

    # --- publishing ---------------------------------------------------------------------------
    def _message(self, kind: str, items: list[str]) -> str:
        return json.dumps({"origin": self.origin, "kind": kind, "items": items})

    def publish(self, kind: str, items: list[str]) -> None:
        """Send now if the tier is up (one round trip, behind its breaker); otherwise keep the
        message for the listener to send after recovery. Never waits out an outage."""
        if not items:
            return
        try:
            self.tier.publish(self.channel, self._message(kind, items))
        except TierUnavailable:
            self._keep(kind, items)

    async def apublish(self, kind: str, items: list[str]) -> None:
        """``publish`` through the tier's async client: a slow or hung server delays the task
        that wrote (up to the tier's timeout), never the event loop."""
        if not items:
            return
        try:
            await self.tier.apublish(self.channel, self._message(kind, items))
        except TierUnavailable:
            self._keep(kind, items)

    def _keep(self, kind: str, items: list[str]) -> None:
        with self._pending_lock:
            self._pending.setdefault(kind, {}).update(dict.fromkeys(items))
            if sum(len(v) for v in self._pending.values()) > self.max_pending:
                self._pending = {"all": {"*": None}}

    def _send_pending(self) -> None:
        with self._pending_lock:
            if not self._pending or not self.tier.available():
                return
            pending, self._pending = self._pending, {}
        messages = [self._message(kind, list(items)) for kind, items in pending.items()]
        try:
            self.tier.publish_many(self.channel, messages)
        except TierUnavailable:
            for kind, items in pending.items():
                self._keep(kind, list(items))

    # --- listening ----------------------------------------------------------------------------
    def _subscribe(self) -> Subscription:
        subscription = self.tier.subscribe(self.channel)
        self.connected.set()
        return subscription

    def _run(self) -> None:
        delay = self.backoff
        while not self._stop.is_set():
            if self._subscription is None:
                try:
                    self._subscription = self._subscribe()
                except TierUnavailable:
                    self._stop.wait(delay * random.uniform(0.5, 1.0))
                    delay = min(self.max_backoff, delay * 2)
                    continue
                delay = self.backoff
                target = self.ref()
                if target is not None:  # subscribed first, then dropped: nothing falls between
                    target._drop_local("all", [])
                self.resubscribed += 1  # counted once L1 is dropped: a reader may rely on it
                log.warning(
                    "cache coherence resumed on %s; L1 dropped (it may have missed invalidations)",
                    self.channel,
                )
            try:
                self._listen(self._subscription)
            except TierUnavailable as err:
                log.warning("cache coherence lost (%s); resubscribing with backoff", err)
                self.connected.clear()
                self._subscription.close()
                self._subscription = None

    def _listen(self, subscription: Subscription) -> None:
        """Until stopped, or raises when the connection breaks or a PING goes unanswered."""
        heard = time.monotonic()
        pinged: float | None = None
        while not self._stop.is_set():
            self._send_pending()
            message = subscription.receive(timeout=0.05)
            now = time.monotonic()
            if message is not None:
                heard, pinged = now, None
                if message[0] == "message":
                    self._handle(message[1])
                continue
            if pinged is None and now - heard > self.heartbeat:
                subscription.ping()
                pinged = now
            elif pinged is not None and now - pinged > subscription.timeout:
                raise TierUnavailable(
                    f"{self.tier.name} did not answer PING on {self.channel} within "
                    f"{subscription.timeout} s",
                    tier=self.tier.name,
                )

    def _handle(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            origin, kind, items = message["origin"], message["kind"], message["items"]
        except (ValueError, KeyError, TypeError) as err:
            log.warning(
                "cache coherence: ignoring a malformed message on %s (%s)", self.channel, err
            )
            return
        target = self.ref()
        if target is not None and origin != self.origin:
            target._drop_local(kind, items)

    def signal_stop(self) -> None:
        self._stop.set()

    def finish(self) -> None:
        """After the listener thread ended (or the wait for it did): send what is kept."""
        self._send_pending()
        if self._subscription is not None:
            self._subscription.close()

    def stop(self) -> None:
        self.signal_stop()
        self.thread.join(timeout=2)
        self.finish()
