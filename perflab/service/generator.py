"""One load-generator process: ``LoadPlan`` in, plain data out (picklable, so it travels from a
child process or a Dask worker). The request loop is lean on purpose (a pre-encoded request,
the httptools client, three integers appended per request); everything else (histograms,
rounds, reservoirs) is computed after the timed window.

The engine takes its ``clock`` (ns) and ``sleep`` (a coroutine function, seconds) so tests
drive it on a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import selectors
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import numpy as np

from perflab.errors import ConfigurationError
from perflab.service import hdr, schedule
from perflab.service.httpclient import Connection, RequestFailed, split_url, tls_context
from perflab.service.limits import raise_file_limit

__all__ = ["LoadPlan", "Sender", "loop_factory", "run_part", "run_plan"]

LAG_TICK = 0.01  # s between the loop-lag probe's wake-ups
# s after the window's end (at least; the request timeout if longer) before requests still in
# flight are cut: a slow endpoint's last responses still count, a hung one stops the run
DEADLINE_GRACE = 1.0
# epoll sleeps in whole milliseconds (rounded up): a timer fires up to 1 ms late. select()
# takes microseconds, so parts with up to this many connections run on a select() loop
SELECT_MAX = 500


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadPlan:
    """What one generator process does. ``rate`` is the whole run's (all parts); ``start_at``
    is the common start as ``time.time()`` (None: as soon as it is ready)."""

    url: str
    request: bytes
    connections: int
    rate: float | None
    duration: float
    warmup: float
    rounds: int
    timeout: float
    part: int = 0
    parts: int = 1
    start_at: float | None = None
    max_samples: int = 100_000
    preconnect: bool = False  # open every connection before the start (held users)
    loop: str = "auto"  # the event loop: see loop_factory
    # seconds after the window that requests still in flight may take before they are cut
    # (None: the request timeout, so a slow endpoint's last responses still count)
    drain: float | None = None
    # https: TLS with the system's CAs, or ca_file's; verify=False for a self-signed test host
    # (the context is built in the part's own process: an SSLContext does not pickle)
    ca_file: str | None = None
    verify: bool = True


class Sender(Protocol):
    async def request(self, data: bytes) -> int: ...


@dataclasses.dataclass
class _Log:
    """Per request: due (open loop) or send time, send time, completion time, status
    (negative: index into ``kinds`` of a failure)."""

    due: list[int] = dataclasses.field(default_factory=list)
    sent: list[int] = dataclasses.field(default_factory=list)
    free: list[int] = dataclasses.field(default_factory=list)
    done: list[int] = dataclasses.field(default_factory=list)
    status: list[int] = dataclasses.field(default_factory=list)
    kinds: list[str] = dataclasses.field(default_factory=list)
    lag: list[int] = dataclasses.field(default_factory=list)

    def fail(self, kind: str) -> int:
        if kind not in self.kinds:
            self.kinds.append(kind)
        return -1 - self.kinds.index(kind)


async def _closed(
    conn: Sender, data: bytes, clock: Callable[[], int], measure: int, end: int, log: _Log
) -> None:
    due, sent, done, status = log.due.append, log.sent.append, log.done.append, log.status.append
    # every connection sends at least once in the window, even when a warm-up request (or a
    # late start of the loop) ran past its end
    measured = False
    while (t0 := clock()) < end or not measured:
        measured = t0 >= measure
        try:
            code = await conn.request(data)
        except RequestFailed as err:
            code = log.fail(err.kind)
            if err.kind.startswith("Connect"):
                await asyncio.sleep(0.01)  # a closed port would otherwise spin the loop
        due(min(t0, end - 1))  # a late first send counts in the last round
        sent(t0)
        done(clock())
        status(code)


async def _open(
    conn: Sender,
    data: bytes,
    clock: Callable[[], int],
    sleep: Callable[[float], Awaitable[Any]],
    start: int,
    plan: LoadPlan,
    counter: itertools.count,
    total: int,
    log: _Log,
) -> None:
    rate, parts, part = plan.rate, plan.parts, plan.part
    while (j := next(counter)) < total:
        free = clock()  # this connection is free from here
        due = start + schedule.intended_ns(j, rate, parts, part)
        if (wait := due - free) > 0:
            await sleep(wait / 1e9)
        sent = clock()
        try:
            code = await conn.request(data)
        except RequestFailed as err:
            code = log.fail(err.kind)
        log.due.append(due)
        log.sent.append(sent)
        log.free.append(free)
        log.done.append(clock())
        log.status.append(code)


async def _probe(
    clock: Callable[[], int], sleep: Callable[[float], Awaitable[Any]], end: int, log: _Log
) -> None:
    """How late the event loop wakes: a timer every LAG_TICK s, its lateness recorded."""
    while (now := clock()) < end:
        await sleep(LAG_TICK)
        log.lag.append(max(0, clock() - now - int(LAG_TICK * 1e9)))


class _Sweeper:
    """Fails requests that wait longer than the timeout, a few times a second."""

    def __init__(self, conns: list[Connection], timeout: float) -> None:
        self.conns, self.timeout = conns, timeout

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        # a scan of every connection costs ~1 µs each: fewer scans when there are thousands
        tick = min(0.1 if len(self.conns) <= 1_000 else 0.5, self.timeout / 4)
        while not stop.is_set():
            with_timeout = asyncio.create_task(stop.wait())
            await asyncio.wait([with_timeout], timeout=tick)
            with_timeout.cancel()
            now = loop.time()
            for c in self.conns:
                c.expire(now)


async def run_plan(
    plan: LoadPlan,
    senders: list[Sender],
    *,
    clock: Callable[[], int] = time.perf_counter_ns,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    start: int | None = None,
) -> dict[str, Any]:
    """Drive ``senders`` (one per connection) through ``plan`` from ``start`` (ns on
    ``clock``; default now) and return the part's figures (see :func:`summarise`)."""
    start = clock() if start is None else start
    if (wait := start - clock()) > 0:
        await sleep(wait / 1e9)
    measure = start + int(plan.warmup * 1e9)
    end = measure + int(plan.duration * 1e9)
    log = _Log()
    cpu0, pcpu0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
    probe = asyncio.ensure_future(_probe(clock, sleep, end, log))
    if plan.rate is None:
        jobs = [_closed(s, plan.request, clock, measure, end, log) for s in senders]
    else:
        seconds = plan.warmup + plan.duration
        total = schedule.scheduled_count(seconds, plan.rate, plan.parts, plan.part)
        counter = itertools.count()
        jobs = [
            _open(s, plan.request, clock, sleep, start, plan, counter, total, log) for s in senders
        ]
    tasks = [asyncio.ensure_future(job) for job in jobs]
    drain = plan.drain if plan.drain is not None else max(DEADLINE_GRACE, plan.timeout)
    grace = int(drain * 1e9)
    watchdog = asyncio.ensure_future(_deadline(clock, sleep, end + grace, tasks))
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    watchdog.cancel()
    cut = watchdog.result() if watchdog.done() and not watchdog.cancelled() else 0
    for outcome in outcomes:  # a sender's own error still surfaces; a cut one does not
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            raise outcome
    await probe
    cpu = time.thread_time() - cpu0, time.process_time() - pcpu0
    out = summarise(plan, log, measure, cpu=cpu, wall=time.perf_counter() - wall0)
    out["cut_at_deadline"] = cut
    return out


async def _deadline(
    clock: Callable[[], int], sleep: Callable[[float], Awaitable[Any]], until: int, tasks: list
) -> int:
    """At ``until`` (the window's end plus the request timeout), cancel the senders still
    waiting for a response: a server that dribbles its bodies once stretched a 3 s run to 22 s
    (a second request per connection after the window, each up to the 10 s timeout; now at
    most one). Returns how many it cut."""
    while (left := until - clock()) > 0:
        await sleep(left / 1e9)
    cut = [t for t in tasks if not t.done()]
    for t in cut:
        t.cancel()
    return len(cut)


def summarise(
    plan: LoadPlan, log: _Log, measure: int, *, cpu: tuple[float, float], wall: float
) -> dict[str, Any]:
    """The part's figures from its log: per round (requests that were due, or sent in a
    closed loop, in that slice of the window) the latencies kept and counted; histograms of
    corrected latency (from the due time), uncorrected (from the send), send lateness against
    the schedule and the generator's own lateness (from when it had a free connection)."""
    due = np.asarray(log.due, dtype=np.int64)
    sent = np.asarray(log.sent, dtype=np.int64)
    done = np.asarray(log.done, dtype=np.int64)
    status = np.asarray(log.status, dtype=np.int64)
    rounds = schedule.round_index(due, measure, plan.duration, plan.rounds)
    inside = rounds >= 0
    ok = inside & (status >= 0)
    corrected = done - np.minimum(due, sent)  # a request sent early counts from its send
    uncorrected = done - sent
    late = np.maximum(0, sent - due)
    out_rounds = []
    cap = max(1, plan.max_samples // (plan.rounds * plan.parts))
    rng = np.random.default_rng(plan.part)
    for r in range(plan.rounds):
        values = corrected[ok & (rounds == r)]
        if values.size > cap:
            values = values[np.sort(rng.choice(values.size, cap, replace=False))]
        out_rounds.append({"n": int(np.count_nonzero(ok & (rounds == r))), "samples": values})
    statuses = Counter(status[ok].tolist())
    errors = Counter(log.kinds[-1 - s] for s in status[inside & (status < 0)].tolist())
    out = {
        "part": plan.part,
        "rounds": out_rounds,
        "corrected": hdr.encode(corrected[ok]),
        "uncorrected": hdr.encode(uncorrected[ok]),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors),
        "requests": int(np.count_nonzero(inside)),
        "cpu_s": cpu[0],
        "process_cpu_s": cpu[1],
        "wall_s": wall,
        "lag": hdr.encode(np.asarray(log.lag, dtype=np.int64)),
    }
    if plan.rate is not None:
        free = np.asarray(log.free, dtype=np.int64)
        own = np.maximum(0, sent - np.maximum(due, free))
        out["lateness"] = hdr.encode(late[inside])
        out["own_lateness"] = hdr.encode(own[inside])
        out["early"] = int(np.count_nonzero(inside & (sent < due)))
    return out


def run_part(plan: LoadPlan) -> dict[str, Any]:
    """Run one part on a private event loop (in a thread of its own when the calling thread
    already runs a loop, as a Jupyter kernel's does) and return its figures."""
    raise_file_limit(plan.connections)
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            factory = loop_factory(
                plan.connections, open_loop=plan.rate is not None, loop=plan.loop
            )
            with asyncio.Runner(loop_factory=factory) as runner:
                box["out"] = runner.run(_live(plan))
        except BaseException as err:  # noqa: BLE001 (raised again in the caller's thread)
            box["err"] = err

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        main()
    else:
        t = threading.Thread(target=main, name="perflab-load", daemon=True)
        t.start()
        t.join()
    if "err" in box:
        raise box["err"]
    return box["out"]


async def _connect_all(conns: list[Connection], at_once: int = 256) -> None:
    """Open every connection, ``at_once`` at a time (a listen backlog overflows otherwise);
    one that fails is retried by its first request, which counts the failure."""
    gate = asyncio.Semaphore(at_once)

    async def one(c: Connection) -> None:
        async with gate:
            with contextlib.suppress(RequestFailed):
                await c.connect()

    await asyncio.gather(*(one(c) for c in conns))


def loop_factory(
    connections: int, *, open_loop: bool, loop: str = "auto"
) -> Callable[[], asyncio.AbstractEventLoop]:
    """The event loop a part runs on. ``auto``: uvloop when installed (measured at 1,000 req/s
    open loop, 32 connections: 89 µs of client CPU per request and p99 send lateness 4–5 ms
    on a loaded machine, where a select() loop took 135–165 µs and 5–7 ms); without it, a
    select() loop for an open loop with few connections (asyncio's epoll timers round up to
    whole milliseconds; select() takes microseconds but stops at 1,024 descriptors), asyncio's
    epoll loop otherwise. ``uvloop``, ``select``, ``asyncio`` force one."""
    if loop not in ("auto", "uvloop", "select", "asyncio"):
        raise ConfigurationError(f"loop must be auto, uvloop, select or asyncio, got {loop!r}")
    if loop in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise ConfigurationError(
                    "loop='uvloop' but uvloop is not installed: pip install uvloop"
                ) from None
        else:
            return uvloop.new_event_loop
    if loop == "select" or (open_loop and connections <= SELECT_MAX):
        return lambda: asyncio.SelectorEventLoop(selectors.SelectSelector())
    return asyncio.new_event_loop


async def _live(plan: LoadPlan) -> dict[str, Any]:
    host, port, _ = split_url(plan.url)
    tls = (
        tls_context(ca_file=plan.ca_file, verify=plan.verify)
        if plan.url.startswith("https://")
        else None
    )
    conns = [Connection(host, port, plan.timeout, tls) for _ in range(plan.connections)]
    stop = asyncio.Event()
    sweeper = asyncio.ensure_future(_Sweeper(conns, plan.timeout).run(stop))
    try:
        if plan.preconnect:
            await _connect_all(conns)
        start = None
        if plan.start_at is not None:
            start = time.perf_counter_ns() + int((plan.start_at - time.time()) * 1e9)
            start = max(start, time.perf_counter_ns())  # a long preconnect: from now
        return await run_plan(plan, conns, start=start)
    finally:
        stop.set()
        await sweeper
        for c in conns:
            c.close()
