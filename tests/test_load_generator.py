"""The load generator's own machinery, without a server: histograms merged losslessly, the
open-loop schedule split between processes, late-send accounting on a fake clock, and the
verdict that the client, not the server, was the limit."""

from __future__ import annotations

import asyncio
import heapq

import numpy as np
import pytest

from perflab.service import merge_parts
from perflab.service.generator import LoadPlan, run_plan
from perflab.service.hdr import encode, merge, new, record
from perflab.service.schedule import intended_ns, round_index, scheduled_count, split, verdict

MS = 1_000_000


def test_vectorised_recording_equals_hdrs_own_one_by_one():
    values = np.random.default_rng(3).lognormal(13, 2, 20_000).astype(np.int64) + 1
    ours, theirs = record(new(), values), new()
    for v in values:
        theirs.record_value(int(v))
    assert ours.get_total_count() == theirs.get_total_count() == values.size
    assert list(ours.counts) == list(theirs.counts)
    assert (ours.get_min_value(), ours.get_max_value()) == (
        theirs.get_min_value(),
        theirs.get_max_value(),
    )


def test_merged_histograms_equal_the_sum_of_the_parts():
    rng = np.random.default_rng(7)
    parts = [rng.lognormal(12 + i, 1, 5_000 * (i + 1)).astype(np.int64) + 1 for i in range(3)]
    merged = merge(encode(p) for p in parts)
    whole = record(new(), np.concatenate(parts))
    assert merged.get_total_count() == sum(p.size for p in parts)
    assert list(merged.counts) == list(whole.counts)  # bucket by bucket: nothing lost
    for q in (50, 99, 99.9, 100):
        assert merged.get_value_at_percentile(q) == whole.get_value_at_percentile(q)


def test_schedule_split_between_processes_is_the_whole_schedule_once():
    rate, seconds, parts = 1000.0, 0.0997, 3
    due = sorted(
        intended_ns(j, rate, parts, p)
        for p in range(parts)
        for j in range(scheduled_count(seconds, rate, parts, p))
    )
    assert due == [intended_ns(k, rate) for k in range(int(seconds * rate))]
    assert split(10, 3) == [4, 3, 3] and sum(split(10_000, 7)) == 10_000
    assert list(round_index(np.array([-1, 0, 4 * MS, 5 * MS, 9 * MS, 10 * MS]), 0, 0.01, 2)) == [
        -1, 0, 0, 1, 1, -1,
    ]  # fmt: skip


class FakeClock:
    """A discrete-event clock: ``sleep`` waits until the fake time reaches its wake-up; the
    driver moves time to the next wake-up once every coroutine is waiting. ``oversleep``
    makes every wake-up that much late (a generator whose loop is starved)."""

    def __init__(self, oversleep_ns: int = 0) -> None:
        self.now, self.seq, self.heap, self.oversleep = 0, 0, [], oversleep_ns

    def clock(self) -> int:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self.seq += 1
        heapq.heappush(self.heap, (self.now + int(seconds * 1e9) + self.oversleep, self.seq, fut))
        await fut

    def run(self, coro):
        async def drive():
            task = asyncio.ensure_future(coro)
            while not task.done():
                for _ in range(50):
                    await asyncio.sleep(0)
                if self.heap and not task.done():
                    when, _, fut = heapq.heappop(self.heap)
                    self.now = max(self.now, when)
                    fut.set_result(None)
            return task.result()

        return asyncio.run(drive())


class Server:
    """A sender whose every response takes ``service_ns`` of fake time."""

    def __init__(self, clock: FakeClock, service_ns: int) -> None:
        self.clock, self.service = clock, service_ns

    async def request(self, data: bytes) -> int:
        await self.clock.sleep(self.service / 1e9 - self.clock.oversleep / 1e9)
        return 200


def plan(**kw) -> LoadPlan:
    base = dict(url="http://fake/", request=b"", connections=1, rate=1000.0, duration=0.02,
                warmup=0.0, rounds=2, timeout=5.0)  # fmt: skip
    return LoadPlan(**{**base, **kw})


def hist_values(text: str) -> tuple[int, int, int]:
    h = merge([text])
    return h.get_total_count(), h.get_min_value(), h.get_max_value()


def test_open_loop_counts_lateness_from_the_schedule_when_the_server_is_slow():
    # one connection, a call due every 1 ms, each answered in 3 ms: call j leaves 2j ms late
    fc = FakeClock()
    out = fc.run(run_plan(plan(), [Server(fc, 3 * MS)], clock=fc.clock, sleep=fc.sleep, start=0))
    assert out["requests"] == 20 and out["statuses"] == {"200": 20}
    assert [r["n"] for r in out["rounds"]] == [10, 10]  # cut by due time
    n, lo, hi = hist_values(out["lateness"])
    assert n == 20 and lo <= 1 and hi == pytest.approx(38 * MS, rel=1e-3)
    n, lo, hi = hist_values(out["uncorrected"])  # from the send: always the 3 ms
    assert lo == pytest.approx(3 * MS, rel=1e-3) and hi == pytest.approx(3 * MS, rel=1e-3)
    n, lo, hi = hist_values(out["corrected"])  # from the due time: 3 ms + the wait
    assert lo == pytest.approx(3 * MS, rel=1e-3) and hi == pytest.approx(41 * MS, rel=1e-3)
    # the connection was never free before its call was due: none of it is the generator's
    assert hist_values(out["own_lateness"])[2] <= 1
    samples = np.concatenate([r["samples"] for r in out["rounds"]])
    assert sorted(samples.tolist()) == [(2 * j + 3) * MS for j in range(20)]


@pytest.mark.parametrize(("timeout", "drain", "deadline_s"), [(10.0, None, 10), (120.0, 1.0, 1)])
def test_requests_still_in_flight_after_the_window_are_cut_and_counted(timeout, drain, deadline_s):
    # a closed loop of two connections on a server that takes 60 s (of fake time) per response:
    # the first requests run past the 20 ms window; without a deadline each would finish, then
    # send once more "to be measured": the run would last two responses. The deadline is the
    # request timeout after the window, or ``drain`` when given (perflab load's --drain)
    fc = FakeClock()
    senders = [Server(fc, 60_000 * MS) for _ in range(2)]
    closed = plan(rate=None, connections=2, timeout=timeout, drain=drain)
    out = fc.run(run_plan(closed, senders, clock=fc.clock, sleep=fc.sleep, start=0))
    assert out["cut_at_deadline"] == 2  # both in flight at the deadline, counted as such
    assert out["requests"] == 0 and out["statuses"] == {} and out["errors"] == {}
    assert fc.now == 20 * MS + deadline_s * 1000 * MS  # (fake time) ended at the deadline


def test_a_generator_that_wakes_late_is_flagged_as_the_limit():
    # four connections, quick answers, but every timer of the generator fires 3 ms late
    fc = FakeClock(oversleep_ns=3 * MS)
    senders = [Server(fc, 4 * MS) for _ in range(4)]
    out = fc.run(run_plan(plan(connections=4), senders, clock=fc.clock, sleep=fc.sleep, start=0))
    n, _, hi = hist_values(out["own_lateness"])
    assert n == 20 and hi == pytest.approx(3 * MS, rel=1e-3)
    result = merge_parts(
        [out], name="fake", params={"url": "http://fake/"}, duration=0.02, open_loop=True,
        concurrency=4,
    )  # fmt: skip
    gen = result.params["generator"]
    assert gen["saturated"] and "sent requests 3.0 ms late" in gen["reason"]
    assert gen["own_lateness_p99_ms"] == pytest.approx(3.0, rel=1e-2)
    assert "uncorrected_histogram" in result.params and result.n_replicates == 2


def test_verdict_names_each_limit_and_clears_a_lean_generator():
    assert verdict(cpu_fraction=0.2, lag_p99_ns=0.3 * MS, own_late_p99_ns=0.1 * MS) == (False, "")
    saturated, reason = verdict(cpu_fraction=0.97, lag_p99_ns=6 * MS, own_late_p99_ns=None)
    assert saturated and "97% of a core" in reason and "6.0 ms late" in reason


def test_the_event_loop_fits_the_run():
    import selectors

    from perflab.errors import ConfigurationError
    from perflab.service.generator import loop_factory

    forced = loop_factory(16, open_loop=True, loop="select")()
    try:  # microsecond timers for a schedule: select(), not epoll's whole milliseconds
        assert isinstance(forced._selector, selectors.SelectSelector)
    finally:
        forced.close()
    try:
        import uvloop
    except ImportError:
        uvloop = None
    chosen = loop_factory(16, open_loop=True)()
    try:
        if uvloop is not None:
            assert isinstance(chosen, uvloop.Loop)
        else:
            assert isinstance(chosen._selector, selectors.SelectSelector)
    finally:
        chosen.close()
    with pytest.raises(ConfigurationError, match="loop must be"):
        loop_factory(1, open_loop=False, loop="trio")
