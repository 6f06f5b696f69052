"""The harness: statistics against numbers checkable by hand, the timing core under a fake
clock, real sync/async/threaded targets, compare verdicts, JSON and history round trips."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest

from perflab import bench
from perflab.bench import core, stats
from perflab.errors import BenchmarkError

from .conftest import perflab_cli


class FakeClock:
    """A clock that only moves when the target says so."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now

    def advance(self, ns: int) -> None:
        self.now += ns


# --- statistics ----------


def test_summary_of_1_to_100():
    s = stats.summarize(np.arange(1, 101))
    assert s["n"] == 100 and s["median"] == 50.5 and s["mean"] == 50.5
    assert s["p90"] == pytest.approx(90.1) and s["p99"] == pytest.approx(99.01)
    assert s["min"] == 1 and s["max"] == 100
    assert s["iqr"] == pytest.approx(49.5) and s["outliers"] == 0
    assert s["median_ci_low"] < 50.5 < s["median_ci_high"]


def test_median_ci_of_ten_is_second_and_ninth():
    assert stats.median_ci(np.arange(1, 11)) == (2.0, 9.0)


def test_outliers_use_tukey_fences():
    assert stats.outliers(np.r_[np.arange(1, 101), 1000]) == 1


def test_rank_test_and_bootstrap():
    rng = np.random.default_rng(3)
    a = rng.normal(100, 5, 400)
    assert stats.mann_whitney_p(a, a + 50) < 1e-50
    assert stats.mann_whitney_p(np.full(5, 3.0), np.full(5, 3.0)) == 1.0
    low, high = stats.bootstrap_ratio_ci(a, a * 2)
    assert low <= 2.0 <= high and high - low < 0.1


def test_empty_samples_are_rejected():
    with pytest.raises(ValueError):
        stats.summarize(np.array([]))


# --- the core, under a fake clock ----------


def test_calibration_reaches_the_sample_time():
    loops = core.calibrate(lambda n: n * 37, target_ns=1_000_000)
    assert loops * 37 >= 1_000_000
    assert loops * 37 < 10 * 1_000_000  # not wildly over


def test_collect_stops_on_min_time_after_min_samples():
    clock = FakeClock()

    def measure(loops: int) -> int:
        clock.advance(loops * 1000)
        return loops * 1000

    budget = core.Budget(min_time=0.01, max_time=1.0, min_samples=5)
    samples = core.collect(measure, 1000, budget=budget, clock=clock)
    # each sample 1 ms of fake time: 10 samples reach min_time = 10 ms
    assert samples.size == 10 and set(samples) == {1_000_000}


def test_run_with_a_fake_clock_measures_exactly():
    clock = FakeClock()
    result = bench.run(lambda: clock.advance(250), name="fake", clock=clock, min_time=0.05)
    assert set(result.samples) == {250.0}
    assert result.loops * 250 >= 1_000_000  # calibrated to the 1 ms sample
    assert result.mode == "sync" and result.summary()["median"] == 250


def test_open_loop_counts_time_queued_behind_a_stall():
    clock = FakeClock()
    calls = []

    def target() -> None:
        calls.append(clock.now)
        clock.advance(10_000_000 if len(calls) == 1 else 1_000_000)  # first call stalls 10 ms

    latencies, ops, _ = core.open_loop(
        target,
        rate=1000,
        workers=1,
        seconds=0.02,
        clock=clock,
        sleep=lambda s: clock.advance(int(s * 1e9)),
    )
    # scheduled every 1 ms; each call takes 1 ms, so after the stall every call stays 10 ms late
    assert ops == 20
    assert set(latencies) == {10_000_000}
    # a closed loop would have recorded the stall once and 1 ms for the rest
    closed = np.diff(np.r_[calls, clock.now])
    assert sorted(set(closed)) == [1_000_000, 10_000_000]


def test_open_loop_and_hdr_histogram():
    result = bench.run(lambda: None, name="ol", rate=2000, concurrency=2, min_time=0.1, warmup=0)
    assert result.mode == "open-loop threads" and result.params["rate"] == 2000
    summary = result.summary()
    assert summary["n"] == 200 == result.hdr().get_total_count()
    assert summary["p50"] <= summary["p99"] <= summary["max"]
    back = bench.Result.from_json(result.to_json())
    assert back.hdr().get_total_count() == 200
    with pytest.raises(BenchmarkError, match="rate"):
        bench.run(lambda: None, name="bad-rate", rate=0)
    with pytest.raises(BenchmarkError, match="no HDR"):
        bench.Result(name="x", samples=[1.0]).hdr()


def test_samples_are_capped_but_the_histogram_keeps_every_operation():
    result = bench.run(
        lambda: None, name="cap", concurrency=2, min_time=0.1, warmup=0, max_samples=50
    )
    assert result.samples.size == 50
    assert result.summary()["n"] > 50


# --- real targets ----------


def test_sync_async_threads_and_tasks():
    async def coro() -> None:
        await asyncio.sleep(0)

    sync = bench.run(lambda: sum(range(10)), name="sync", min_time=0.05, warmup=0)
    assert sync.mode == "sync" and sync.samples.size >= 20 and sync.median > 0
    aresult = bench.run(coro, name="async", min_time=0.05, warmup=0)
    assert aresult.mode == "async" and aresult.median > 0
    threads = bench.run(lambda: time.sleep(0.001), name="t", concurrency=4, min_time=0.1, warmup=0)
    assert threads.mode == "threads" and threads.concurrency == 4
    assert threads.median >= 1e6 and threads.throughput > 0  # each op slept >= 1 ms
    tasks = bench.run(coro, name="k", concurrency=8, min_time=0.05, warmup=0)
    assert tasks.mode == "tasks" and tasks.throughput > 0


def test_async_runs_beside_a_running_event_loop():
    async def inner() -> float:
        async def noop() -> None:
            return None

        # as in a Jupyter cell: a loop is running in this thread, and bench.run is sync
        return bench.run(noop, name="nested", min_time=0.05, warmup=0).median

    assert asyncio.run(inner()) > 0


def test_gc_is_restored():
    import gc

    assert gc.isenabled()
    bench.run(lambda: None, min_time=0.02, warmup=0)
    assert gc.isenabled()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fn": 42}, "not callable"),
        ({"fn": lambda: None, "min_time": 0}, "min_time"),
        ({"fn": lambda: None, "warmup": -1}, "warmup"),
        ({"fn": lambda: None, "concurrency": 0}, "concurrency"),
        ({"fn": lambda: None, "gc": "sometimes"}, "gc"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    with pytest.raises(BenchmarkError, match=match):
        bench.run(name="bad", **kwargs)


def test_a_raising_target_names_the_benchmark_and_the_error():
    def broken() -> None:
        raise KeyError("missing-thing")

    with pytest.raises(BenchmarkError, match=r"'explodes'.*KeyError.*missing-thing"):
        bench.run(broken, name="explodes")
    with pytest.raises(BenchmarkError, match=r"'explodes-threads'.*KeyError"):
        bench.run(broken, name="explodes-threads", concurrency=2, min_time=0.05)


# --- compare ----------


def _result(
    name: str, scale: float, seed: int, n: int = 300, reps: int = 10, between: float = 0.01
) -> bench.Result:
    """``reps`` replicates of ``n // reps`` samples; each replicate shifted by its own
    lognormal factor (sd ``between``), as separate rounds or processes are."""
    rng = np.random.default_rng(seed)
    shifts = np.repeat(rng.lognormal(0, between, reps), n // reps)
    samples = rng.lognormal(np.log(1000 * scale), 0.05, shifts.size) * shifts
    return bench.Result(name=name, samples=samples, replicates=(n // reps,) * reps)


@pytest.mark.parametrize(("scale", "verdict"), [(1.0, "same"), (1.10, "slower"), (0.5, "faster")])
def test_compare_verdicts(scale, verdict):
    c = bench.compare(_result("x", 1.0, 1), _result("x", scale, 2))
    assert c.verdict == verdict
    assert c.ci_low <= c.ratio <= c.ci_high
    assert c.ratio == pytest.approx(scale, rel=0.03)


def test_compare_is_inconclusive_when_replicates_disagree():
    noisy = dict(reps=4, between=0.15)
    c = bench.compare(_result("x", 1.0, 1, **noisy), _result("x", 1.0, 2, **noisy))
    assert c.verdict == "inconclusive"
    assert c.detectable > c.threshold
    assert "cannot see changes below" in c.explanation and "replicates per side" in c.explanation


def test_compare_refuses_mismatched_results():
    with pytest.raises(BenchmarkError, match="different benchmarks"):
        bench.compare(_result("a", 1, 1), _result("b", 1, 2))
    other_unit = bench.Result(name="a", samples=[1.0, 2.0], unit="bytes")
    with pytest.raises(BenchmarkError, match="units differ"):
        bench.compare(_result("a", 1, 1), other_unit)


def test_ab_interleaves_and_judges():
    data = list(range(300))[::-1]
    # the default budget: "same" needs the interval inside ±5 %, which a busy CI worker may
    # take seconds to reach (0.3 s once ended inconclusive); it stops as soon as it is known
    same = bench.ab(lambda: sorted(data), lambda: sorted(data), name="aa", budget=10)
    # one replicate per interleaved pair on each side, paired in the comparison
    assert same.baseline.n_replicates == same.candidate.n_replicates >= 5
    assert same.baseline.replicate_level == "pair" and same.verdict != "inconclusive"
    faster = bench.ab(lambda: sorted(data * 4), lambda: sorted(data), name="ab", min_time=0.3)
    assert faster.verdict == "faster" and faster.speedup > 2
    # both arms of an A/A are timed alike: one loop count, and each pair six side-by-side
    # rounds of equal blocks (unequal ones turned A/A "faster" on an overloaded machine)
    assert same.baseline.loops == same.candidate.loops
    for c in (same, faster):
        assert c.candidate.meta["ab"]["rounds"] == 6
        assert (
            set(c.baseline.replicates) == set(c.candidate.replicates) == {c.baseline.replicates[0]}
        )
        assert c.baseline.replicates[0] % 6 == 0


# --- results are data ----------


def test_result_json_round_trip():
    r = bench.run(lambda: None, name="rt", min_time=0.02, warmup=0, params={"k": 1})
    back = bench.Result.from_json(r.to_json())
    assert back.name == "rt" and back.params == {"k": 1} and back.loops == r.loops
    np.testing.assert_array_equal(back.samples, r.samples)
    assert {"perflab", "python", "cpu", "git", "loadavg", "timestamp"} <= set(back.meta)
    assert back.replicates == r.replicates and back.n_replicates == 10
    frame = r.to_frame()
    assert list(frame.columns[:4]) == ["name", "replicate", "sample", "value"]
    assert len(frame) == r.samples.size and frame["replicate"].nunique() == 10
    with pytest.raises(BenchmarkError, match="format"):
        bench.Result.from_json(json.dumps({**r.to_dict(), "format": 99}))
    with pytest.raises(BenchmarkError, match="invalid JSON"):
        bench.Result.from_json("{nope")


def test_samples_are_read_only():
    r = bench.Result(name="ro", samples=[1.0, 2.0])
    with pytest.raises(ValueError):
        r.samples[0] = 5


# --- history ----------


def test_history_finds_the_step_that_made_it_slower(tmp_path):
    store = bench.History(tmp_path / "h.sqlite")
    ids = []
    for i in range(12):
        scale = 1.0 if i < 7 else 1.3
        ids += store.save(_result("series", scale, seed=i, n=50), tags=["nightly"])
    store.save(_result("flat", 1.0, seed=99, n=50))
    store.save(_result("flat", 1.0, seed=98, n=50))
    found = store.regressions()
    assert list(found["name"]) == ["series"]
    assert int(found["at"].iloc[0]) == ids[7]
    assert found["ratio"].iloc[0] == pytest.approx(1.3, rel=0.05)
    assert found["ci_low"].iloc[0] > 1.05 and list(
        found[["runs_before", "runs_after"]].iloc[0]
    ) == [7, 5]
    frame = store.frame("series")
    assert len(frame) == 12 and frame["tags"].iloc[0] == ["nightly"]
    assert len(store.results("series")) == 12


def test_history_saves_both_sides_of_a_comparison(tmp_path):
    store = bench.History(tmp_path / "h.sqlite")
    assert len(store.save(bench.compare(_result("c", 1, 1), _result("c", 1, 2)))) == 2
    with pytest.raises(BenchmarkError):
        store.save("not a result")  # type: ignore[arg-type]


# --- profiles ----------


def test_memory_sees_an_allocation():
    with bench.memory() as m:
        block = bytearray(20 * 2**20)
        block[::4096] = b"x" * len(block[::4096])
    assert m.tracemalloc_peak_mib >= 19
    assert m.peak_rss_mib >= m.start_rss_mib > 0


def test_profile_lists_the_hot_function():
    def hot() -> int:
        return sum(i * i for i in range(20000))

    frame = bench.profile(hot, repeat=3)
    assert {"function", "calls", "cumulative_s"} <= set(frame.columns)
    assert "hot" in set(frame["function"])


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_bench_and_compare(tmp_path):
    out = tmp_path / "h.json"
    done = perflab_cli("bench", "harness", "--quick", "--out", str(out))  # in-process: its own
    assert done.returncode == 0, done.stderr
    assert "harness/empty-call" in done.stdout and out.exists()
    same = perflab_cli("compare", str(out), str(out))
    assert same.returncode == 0 and "slower" not in same.stdout

    doc = json.loads(out.read_text())
    slow = dict(doc)
    slow["results"] = [{**r, "samples": [v * 3 for v in r["samples"]]} for r in doc["results"]]
    slow_file = tmp_path / "slow.json"
    slow_file.write_text(json.dumps(slow))
    # rounds of two separate in-process runs cannot see run-to-run spread: no verdict
    separate = perflab_cli("compare", str(out), str(slow_file), "--threshold", "10%")
    assert separate.returncode == 0 and "harness/empty-call" in separate.stdout
    assert "slower" not in separate.stdout and "inconclusive" in separate.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["bench", "nope"],
        ["compare", "missing-a.json", "missing-b.json"],
        ["compare", "pyproject.toml", "pyproject.toml"],
    ],
)
def test_cli_bench_errors_are_one_line(args):
    done = perflab_cli(*args)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_cli_bad_threshold(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(bench.Result(name="x", samples=[1.0, 2.0]).to_json())
    done = perflab_cli("compare", str(path), str(path), "--threshold", "lots")
    assert done.returncode == 2 and "--threshold" in done.stderr


@pytest.mark.parametrize("suite", ["data", "concurrency"])
def test_other_suites_run(suite):
    from perflab.suites import run_suite

    results = run_suite(suite, quick=True).results
    assert results and all(r.name.startswith(f"{suite}/") and r.median > 0 for r in results)


def test_cli_processes_are_replicates_and_history_check(tmp_path):
    out = tmp_path / "d.json"
    done = perflab_cli("bench", "data", "--quick", "--processes", "2", "--out", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("saved ")  # --quiet: no table
    doc = json.loads(out.read_text())
    assert doc["format"] == 2
    assert {r["params"]["processes"] for r in doc["results"]} == {2}
    assert {len(r["replicates"]) for r in doc["results"]} == {2}
    assert {r["replicate_level"] for r in doc["results"]} == {"process"}
    slow = {
        **doc,
        "results": [{**r, "samples": [v * 3 for v in r["samples"]]} for r in doc["results"]],
    }
    slow_file = tmp_path / "slow.json"
    slow_file.write_text(json.dumps(slow))
    regressed = perflab_cli("compare", str(out), str(slow_file), "--threshold", "10%")
    assert regressed.returncode == 1 and "slower" in regressed.stdout
    assert "data/sma-numpy" in regressed.stdout

    history = tmp_path / "h.sqlite"
    store = bench.History(history)
    for i in range(8):
        store.save(_result("nightly", 1.0 if i < 4 else 1.5, seed=i, n=60))
    listed = perflab_cli("history", "--path", str(history))
    assert listed.returncode == 0 and listed.stdout.count("nightly") == 8
    check = perflab_cli("history", "--path", str(history), "--check")
    assert check.returncode == 1 and "REGRESSION nightly" in check.stdout
    flat = tmp_path / "flat.sqlite"
    for i in range(6):
        bench.History(flat).save(_result("f", 1.0, seed=i))
    assert perflab_cli("history", "--path", str(flat), "--check").returncode == 0
    # counts are printed as counts, not as durations
    counted = tmp_path / "counted.sqlite"
    store = bench.History(counted)
    for i in range(8):
        calls = np.full(4, 500_000.0 if i < 4 else 750_000.0) + i
        store.save(bench.Result(name="f [instructions]", samples=calls, unit="instructions"))
    store.close()
    check = perflab_cli("history", "--path", str(counted), "--check")
    assert check.returncode == 1 and "REGRESSION f [instructions]" in check.stdout
    assert "500,001 instructions -> 750,005 instructions" in check.stdout
    assert " ms " not in check.stdout and " µs " not in check.stdout


@pytest.mark.servers
def test_cache_suite_runs_against_the_servers_in_use():
    from perflab.suites import run_suite

    run = run_suite("cache", quick=True)
    names = {r.name for r in run.results}
    assert {
        "cache/l1-get",
        "cache/cachetools-lru-get",
        "cache/l2-get/raw",
        "cache/l3-get/perflab",
    } <= names
    checks = run.checks
    for label in ("zipf1/cap5%", "shift/cap5%"):
        belady = checks[f"hit/{label}/belady"]
        assert all(
            checks[f"hit/{label}/{p}"] <= belady + 1e-9 for p in ("lru", "lfu", "fifo", "tinylfu")
        )
    assert (
        checks["hit/shift/cap5%/lfu"] < checks["hit/shift/cap5%/lru"]
    )  # LFU without ageing collapses


def test_ab_keeps_to_its_budget_when_the_arms_differ_a_lot():
    clock = FakeClock()

    def slow() -> None:
        clock.advance(10_000_000)  # 10 ms a call

    def fast() -> None:
        clock.advance(10_000)  # 10 µs a call

    c = bench.ab(slow, fast, name="skew", rounds=10, min_time=1.0, clock=clock)
    # 1000x apart: each arm its own loop count, so the fast arm's samples stay long
    assert c.baseline.loops == 1 and c.candidate.loops >= 100
    assert clock.now < 3e9  # about the 1 s budget of fake time (plus calibration), not minutes
    assert c.speedup == pytest.approx(1000)


def test_failed_calls_are_not_latencies():
    clock = FakeClock()
    calls = []

    def target() -> object:
        calls.append(1)
        clock.advance(1_000_000)
        return core.FAILED if len(calls) % 2 else None  # every other call fails

    latencies, ops, _ = core.hammer(target, 1, 0.01, clock)
    assert len(calls) == 10 and ops == 5 and latencies.size == 5
