"""Write-back: L1 at once, the lower tiers from a bounded queue by one writer thread.

The writer takes what is queued, writes it to the lower tiers (runs of plain sets as one
``set_many``), then publishes the keys for other processes' L1s. A tier that is down is waited
for (its ``retry_in``), never skipped, so the order of a key's writes holds; ``close()`` bounds
the wait (``close_timeout``) and counts what it gave up in ``failures``.

:class:`WriteBackQueue` is a part of TieredCache of its own (composition): the cache holds one
when ``write="back"`` and it has lower tiers; the cache's plans queue through
:meth:`~WriteBackQueue.enqueue_plan` (after L1's step) and wait on ``flush_plan``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from perflab.cache.drivers import TierPlan
from perflab.cache.entry import Entry
from perflab.cache.stats import TierStats
from perflab.cache.tier import Tier, TierUnavailable
from perflab.errors import CacheError

__all__ = ["WriteBackQueue", "check_timeouts"]

log = logging.getLogger("perflab.cache")
_ROOM_POLL = 0.01  # how often a write waiting for room in a full queue looks again


def check_timeouts(write_block: float, close_timeout: float) -> None:
    """Refuse what is not seconds >= 0 (NaN included), naming both values."""
    if not write_block >= 0 or not close_timeout >= 0:
        raise CacheError(
            f"write_block and close_timeout are seconds >= 0, got {write_block!r}, "
            f"{close_timeout!r}"
        )


class WriteBackQueue:
    """The bounded queue, its writer thread and their counters.

    ``tiers`` and ``stats`` are the cache's (the writer writes tiers 1.. and counts there);
    ``publish(kind, keys)`` tells other processes what the writer wrote; ``limits`` are the
    cache's ``write_queue`` (writes queued at most), ``write_block`` and ``close_timeout``.
    ``failures``: queued writes abandoned at close (the deadline passed); ``dropped``: writes
    never queued because the queue stayed full."""

    def __init__(
        self,
        tiers: list[Tier],
        stats: list[TierStats],
        publish: Callable[[str, list[str]], None],
        limits: tuple[int, float, float],
    ) -> None:
        maxsize, write_block, close_timeout = limits  # the cache's write_queue, write_block, …
        check_timeouts(write_block, close_timeout)
        self.tiers, self.stats, self.publish = tiers, stats, publish
        self.write_block, self.close_timeout = write_block, close_timeout
        self.failures = 0
        self.dropped = 0
        self.closed = False
        self._stalled = False  # the queue was full for write_block: drop without waiting
        self._stop = threading.Event()
        self.queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=maxsize)
        self.writer = threading.Thread(target=self._drain, name="perflab-write-back", daemon=True)
        self.writer.start()

    # --- the cache's side: queueing, flushing, stopping (plans, run by the cache's drivers) ---
    def enqueue_plan(self, item: tuple[Any, ...], staged: Any = None) -> TierPlan:
        """Queue a write-back (through ``staged(offer)``, the L1 step, when there is L1).

        A full queue (the writer stalled on an outage) is waited for at most ``write_block``
        seconds once, as a plan step: the async driver sleeps on the event loop instead of
        blocking it, and L1 changes only together with the queueing, so a later write of the
        key can't overtake this one meanwhile. Until the writer makes progress again, further
        writes are not queued at all: counted in ``dropped``, logged once per stall.
        """
        if self.closed or self._stop.is_set():
            raise CacheError("the cache is closed; create a new TieredCache to write")
        deadline = time.monotonic() + self.write_block
        while True:
            now = time.monotonic()
            final = self._stalled or now >= deadline

            if (yield ("enqueue", -1, (item, final, staged))):
                return
            yield ("wait", -1, (self.queue, min(deadline - now, _ROOM_POLL)))

    def enqueue(self, item: tuple[Any, ...], final: bool, staged: Any) -> bool:
        """A plan's ``enqueue`` step: offer ``item`` to the queue (through ``staged(offer)``, the
        L1 step under the stripe lock, when there is L1); True once it was taken or dropped."""

        def offer() -> bool:
            return self._offer(item, final)

        return bool(offer() if staged is None else staged(offer))

    def _offer(self, item: tuple[Any, ...], final: bool) -> bool:
        """Put ``item`` on the queue without waiting; False if it is full and the write may
        still wait (``final`` False). On the final try a full queue drops the write."""
        try:
            self.queue.put_nowait(item)
            return True
        except queue.Full:
            if not final:
                return False
        if not self._stalled:
            self._stalled = True
            log.error(
                "cache write-back queue full (%d writes) for %.2f s: the lower tiers are "
                "unavailable or too slow; further writes stay in L1 only (counted in "
                "write_back_dropped) until the writer catches up",
                self.queue.maxsize,
                self.write_block,
            )
        self.dropped += 1
        return True

    def flush_plan(self, timeout: float | None) -> TierPlan:
        """True once every queued write reached the lower tiers, False after ``timeout``
        (default ``close_timeout``)."""
        deadline = time.monotonic() + (self.close_timeout if timeout is None else timeout)
        while self.queue.unfinished_tasks:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.writer.is_alive():
                return False
            yield ("wait", -1, (self.queue, min(remaining, 0.1)))
        return True

    def stop_plan(self) -> TierPlan:
        """close()'s part: the sentinel after what is queued, then wait for the writer until
        ``close_timeout``; past it the writer stops waiting for the tier and counts the rest."""
        q, writer = self.queue, self.writer
        deadline = time.monotonic() + self.close_timeout
        while True:
            try:
                q.put_nowait(None)
                break
            except queue.Full:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._stop.set()
                    break
                yield ("wait", -1, (q, min(remaining, 0.05)))
        while writer.is_alive() and time.monotonic() < deadline:
            yield ("wait", -1, (writer, max(0.0, deadline - time.monotonic())))
        if writer.is_alive():
            self._stop.set()
            grace = max((getattr(t, "timeout", 0.0) for t in self.tiers), default=0.0)
            until = time.monotonic() + grace + 1.0  # at most one socket timeout in progress
            while writer.is_alive() and time.monotonic() < until:
                yield ("wait", -1, (writer, max(0.0, until - time.monotonic())))
        self.closed = True
        if self.failures or self.dropped:
            log.error(
                "cache closed with %d write-backs not written to the lower tiers "
                "(close_timeout=%s s) and %d never queued (queue full); those keys keep "
                "older values (or none) there until their TTL",
                self.failures + q.qsize(),
                self.close_timeout,
                self.dropped,
            )

    # --- the writer thread -------------------------------------------------------------------
    def _drain(self) -> None:
        """The writer: up to 512 queued items at a time, until the sentinel (None) or stop."""
        q = self.queue
        while True:
            batch = [q.get()]
            while len(batch) < 512:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            stop = None in batch
            items = [item for item in batch if item is not None]
            written = self._write_batch(items)
            if written:
                self.publish("del", written)
            for _ in batch:
                q.task_done()
            if stop or self._stop.is_set():
                self._abandon()
                return

    def _write_batch(self, items: list[tuple[Any, ...]]) -> list[str]:
        """Apply ``items`` in order; returns the keys written (for invalidation messages)."""
        written: list[str] = []
        run: dict[str, Entry] = {}
        for n, item in enumerate(items):
            if item[0] == "set" and not item[3]:
                run[item[1]] = item[2]  # a later set of the same key in the run wins, in order
                continue
            if run and not self._apply(("set_many", run)):
                self.failures += len(items) - n + len(run)
                return written
            written.extend(run)
            run = {}
            if not self._apply(item):
                self.failures += len(items) - n
                return written
            written.extend(item[1] if item[0] == "set_many" else [item[1]])
        if run:
            if not self._apply(("set_many", run)):
                self.failures += len(run)
                return written
            written.extend(run)
        return written

    def _apply(self, item: tuple[Any, ...]) -> bool:
        """Write one item to every lower tier, waiting out outages; False if close() gave up."""
        pending = list(reversed(range(1, len(self.tiers))))  # slowest first, like write-through
        while pending:
            i = pending[0]
            tier, stats = self.tiers[i], self.stats[i]
            try:
                if item[0] == "set":
                    tier.set(item[1], item[2], item[3])
                    stats.sets += 1
                elif item[0] == "set_many":
                    tier.set_many(item[1])
                    stats.sets += len(item[1])
                else:
                    tier.delete(item[1])
                    stats.deletes += 1
            except TierUnavailable:  # the tier's breaker logged the outage, once
                stats.errors += 1
                if self._stop.wait(max(0.01, tier.retry_in())):
                    return False
                continue
            except CacheError as err:  # refused for good (too big, bad data): not retried
                stats.errors += 1
                self.failures += 1
                log.error("write-back to %s refused %s %r: %s", tier.name, item[0], item[1], err)
            pending.pop(0)
        self._stalled = False
        return True

    def _abandon(self) -> None:
        """close() gave up: count what is still queued as lost."""
        lost = 0
        while True:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            lost += item is not None
            self.queue.task_done()
        self.failures += lost
