"""Verdicts that survive a rerun: uncertainty from replicates, four verdicts, format-1 files,
history that learns its own noise (SQLite and PostgreSQL), user benchmark files, and the
claims audit judged by confidence intervals. Synthetic replicate data, no timing asserts."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import uuid

import numpy as np
import pytest

from perflab import bench, claims, suites
from perflab.bench import noise, stats
from perflab.errors import BenchmarkError, ConfigurationError

from .conftest import perflab_cli


def _runs(scale: float, seed: int, *, reps: int = 6, per: int = 200, between: float = 0.08):
    """A result whose replicates (processes) each sit at their own level: tight within a
    replicate, spread ``between`` (lognormal sd) from one replicate to the next."""
    rng = np.random.default_rng(seed)
    levels = 1000 * scale * rng.lognormal(0, between, reps)
    samples = np.concatenate([rng.normal(level, level * 0.002, per) for level in levels])
    return bench.Result(
        name="b", samples=samples, replicates=(per,) * reps, replicate_level="process"
    )


# --- replicates, not samples ----------


def test_pooled_samples_claim_certainty_that_replicates_do_not_have():
    a, b = _runs(1.0, 1), _runs(1.0, 2)
    # the old way: a bootstrap over pooled samples sees thousands of "independent" samples
    pooled_low, pooled_high = stats.bootstrap_ratio_ci(a.samples, b.samples)
    c = bench.compare(a, b)
    assert (pooled_high - pooled_low) * 5 < c.ci_high - c.ci_low
    assert c.ci_low <= 1.0 <= c.ci_high  # the truth (identical code) stays inside
    assert c.verdict in ("same", "inconclusive")


def _levels(levels: list[float]) -> bench.Result:
    samples = np.repeat(np.asarray(levels) * 1000, 20)
    return bench.Result(name="b", samples=samples, replicates=(20,) * len(levels))


@pytest.mark.parametrize(
    ("baseline", "candidate", "expected"),
    [
        ([1.0, 1.01, 0.99, 1.0], [1.0, 0.99, 1.01, 1.005], "same"),
        ([1.0, 1.01, 0.99, 1.0], [1.3, 1.31, 1.29, 1.3], "slower"),
        ([1.0, 1.01, 0.99, 1.0], [0.7, 0.71, 0.69, 0.7], "faster"),
        ([0.8, 1.0, 1.25], [1.25, 0.8, 1.0], "inconclusive"),  # spread far beyond 5 %
        ([1.0, 1.01, 0.99, 1.0], [1.03, 1.04, 1.02, 1.03], "same"),  # real, but below 5 %
    ],
)
def test_four_verdicts(baseline, candidate, expected):
    c = bench.compare(_levels(baseline), _levels(candidate))
    assert c.verdict == expected
    assert set(bench.VERDICTS) == {"faster", "slower", "same", "inconclusive"}


def test_one_replicate_per_side_is_inconclusive_and_says_why():
    a = bench.Result(name="x", samples=np.full(50, 1000.0))
    b = bench.Result(name="x", samples=np.full(50, 2000.0))
    c = bench.compare(a, b)
    assert c.verdict == "inconclusive" and c.replicates == (1, 1)
    assert "single run" in c.explanation


def test_replicate_ratio_borrows_spread_for_a_single_new_run():
    r = stats.replicate_ratio(np.array([100.0, 102, 98, 101, 99]), np.array([130.0]))
    assert r.ci_low > 1.2 and r.replicates == (5, 1)


def test_a_busy_machine_is_noted():
    a = _runs(1.0, 1)
    busy = bench.Result(
        name="b",
        samples=a.samples,
        replicates=a.replicates,
        meta={"noise": {"other_cores": 1.0}},
    )
    c = bench.compare(a, busy)
    assert any("busy machine" in note for note in c.notes)


def test_noise_probe_sees_this_process_working():
    with noise.probe() as signs:
        sum(i * i for i in range(300_000))
    assert signs["cpu_per_wall"] > 0 and signs["seconds"] > 0
    assert "other_cores" in signs and "loadavg" in signs


def test_run_splits_into_rounds_and_records_noise():
    r = bench.run(lambda: sum(range(100)), name="rounds", min_time=0.05, warmup=0)
    assert r.n_replicates == 10 and r.replicate_level == "round"
    assert sum(r.replicates) == r.samples.size and "noise" in r.meta
    threads = bench.run(lambda: None, name="t", concurrency=2, min_time=0.05, warmup=0, rounds=3)
    assert threads.n_replicates == 3 and len(threads.rates) == 3


def test_format_1_files_still_load(tmp_path):
    old = {
        "format": 1,
        "name": "old/op",
        "unit": "ns",
        "mode": "sync",
        "concurrency": 1,
        "loops": 10,
        "throughput": None,
        "histogram": None,
        "params": {},
        "meta": {},
        "samples": [1.0, 2.0, 3.0],
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": 1, "suite": "x", "results": [old]}))
    [r] = suites.load_results(path)
    assert r.name == "old/op" and r.n_replicates == 1 and r.replicate_level == "run"
    assert bench.Result.from_dict(r.to_dict()).replicates == ()


def test_merge_runs_makes_processes_replicates_and_checks_figures():
    runs = [
        suites.SuiteRun("s", [_runs(1.0, i, reps=1)], checks={"speedup": 2.0 + i / 10, "s": "x"})
        for i in range(4)
    ]
    merged = suites.merge_runs(runs)
    [r] = merged.results
    assert r.n_replicates == 4 and r.replicate_level == "process"
    value, low, high = suites.figure_parts(merged.checks["speedup"])
    assert low < value < high and merged.checks["s"] == "x"


# --- history ----------


def _series(store: bench.History, name: str, levels: list[float], seed: int = 0) -> list[int]:
    rng = np.random.default_rng(seed)
    ids = []
    for level in levels:
        samples = rng.normal(level, level * 0.003, 100)
        ids += store.save(bench.Result(name=name, samples=samples), keep_samples=False)
    return ids


def _noisy(n: int, level: float, seed: int, sd: float = 0.03) -> list[float]:
    return list(level * np.random.default_rng(seed).lognormal(0, sd, n))


def test_history_of_unchanged_code_reports_nothing(tmp_path):
    store = bench.History(tmp_path / "h.sqlite")
    for i in range(8):
        _series(store, f"bench{i}", _noisy(30, 1000, seed=i), seed=i)
    assert store.regressions().empty


def test_history_names_the_step_its_size_and_first_run(tmp_path):
    store = bench.History(tmp_path / "h.sqlite")
    ids = _series(store, "step", _noisy(10, 1000, 1) + _noisy(5, 1200, 2))
    _series(store, "flat", _noisy(15, 500, 3))
    found = store.regressions()
    assert list(found["name"]) == ["step"]
    row = found.iloc[0]
    assert int(row["at"]) == ids[10] and row["ratio"] == pytest.approx(1.2, rel=0.05)
    assert row["ci_low"] > 1.0 and row["runs_before"] == 10 and row["noise"] > 0


def test_one_slow_newest_run_is_caught_against_the_noise_floor(tmp_path):
    store = bench.History(tmp_path / "h.sqlite")
    ids = _series(store, "late", [*_noisy(5, 1000, 4, sd=0.01), 1200])
    found = store.regressions()
    assert list(found["name"]) == ["late"] and int(found["at"].iloc[0]) == ids[-1]


def test_accept_makes_a_change_the_new_baseline(tmp_path):
    store = bench.History(tmp_path / "h.sqlite")
    ids = _series(store, "wanted", _noisy(6, 1000, 5) + _noisy(4, 1500, 6))
    assert not store.regressions().empty
    assert store.accept("wanted") == ids[6]
    assert store.regressions().empty
    with pytest.raises(ConfigurationError, match="no saved results named 'nope'"):
        store.accept("nope")
    cli = perflab_cli("history", "--path", str(tmp_path / "h.sqlite"), "--accept", "nope")
    assert cli.returncode == 2 and "nope" in cli.stderr


def test_history_reads_no_samples_to_judge(tmp_path):
    """Run-level figures are columns: a history saved without samples is judged the same."""
    store = bench.History(tmp_path / "h.sqlite")
    _series(store, "x", _noisy(6, 1000, 7) + _noisy(3, 2000, 8))
    assert store.results("x") == []  # nothing kept but the figures
    assert list(store.regressions()["name"]) == ["x"]


def test_history_path_that_is_a_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigurationError, match="is a directory"):
        bench.History(tmp_path)


@pytest.mark.servers
def test_history_in_postgresql_is_shared(settings):
    from perflab import servers

    url = servers.start(settings, redis=False).database_url
    schema = f"{settings.schema}_hist_{uuid.uuid4().hex[:6]}"
    first, second = bench.History(url, schema=schema), bench.History(url, schema=schema)
    try:
        ids = _series(first, "shared", _noisy(6, 1000, 9) + _noisy(3, 1400, 10))
        found = second.regressions()  # another "machine" reading the same history
        assert list(found["name"]) == ["shared"] and int(found["at"].iloc[0]) == ids[6]
        assert len(second.frame("shared")) == 9
    finally:
        with first.engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        first.close()
        second.close()


# --- users' own benchmarks ----------


def test_bench_file_runs_in_worker_processes(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(
        textwrap.dedent(
            """
            def helper():
                return 1

            def bench_sum():
                return sum(range(200))
            """
        )
    )
    out = tmp_path / "mine.json"
    done = perflab_cli("bench", str(path), "--quick", "--processes", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    [result] = suites.load_results(out)
    assert result.name == "mine/sum" and result.n_replicates == 2
    same = perflab_cli("compare", str(out), str(out))
    assert same.returncode == 0 and "mine/sum" in same.stdout


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def bench_x(:\n    pass\n", "syntax error at line 1"),
        ("def helper():\n    return 1\n", "defines no bench_* function"),
        ("raise RuntimeError('boom')\n", "importing it raised RuntimeError: boom"),
    ],
)
def test_a_bad_bench_file_exits_2_naming_the_file(tmp_path, source, message):
    path = tmp_path / "bad_bench.py"
    path.write_text(source)
    done = perflab_cli("bench", str(path), "--quick")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert str(path) in done.stderr and message in done.stderr
    missing = perflab_cli("bench", str(tmp_path / "missing.py"))
    assert missing.returncode == 2 and "no such benchmark file" in missing.stderr


def test_bench_refuses_an_output_path_before_running(tmp_path):
    done = perflab_cli("bench", "data", "--quick", "--out", str(tmp_path))
    assert done.returncode == 2 and "is a directory" in done.stderr


# --- the claims audit ----------


@pytest.mark.parametrize(
    ("figure", "verdict"),
    [
        (suites.figure(3.0, 2.5, 3.5), "confirmed"),  # the whole CI clears 2x
        (suites.figure(1.5, 1.2, 1.8), "not reproduced"),  # the whole CI falls short
        (suites.figure(2.1, 1.6, 2.6), "inconclusive"),  # straddles the claim
        (2.5, "inconclusive"),  # a figure without an interval
    ],
)
def test_audit_judges_by_the_confidence_interval(figure, verdict):
    frame = claims.audit({"db": {"prepared_speedup": figure}})
    row = frame[frame["claim"].str.startswith("Prepared statements")].iloc[0]
    assert row["verdict"] == verdict


def test_audit_at_most_claims_and_exact_figures():
    frame = claims.audit(
        {"cache": {"l1_get_ns": suites.figure(80.0, 70.0, 90.0), "hit/zipf1/cap10%/tinylfu": 0.9}}
    )
    l1 = frame[frame["claim"].str.startswith("L1")].iloc[0]
    hit = frame[frame["claim"].str.startswith("Cache hit rate")].iloc[0]
    assert l1["verdict"] == "confirmed" and l1["ci_high"] == pytest.approx(9e-5)
    assert hit["verdict"] == "confirmed" and hit["ci_low"] == hit["measured"] == pytest.approx(90)


def test_audit_widens_an_interval_by_the_figures_run_noise():
    """Materialized views read 14.9x (CI 14.1-15.7) in one report and 7.1x in another: with the
    run-to-run noise the history learnt, a figure near its claim is inconclusive, not both."""
    text = "Materialized views: 10–100x for aggregations"
    tight = {"db": {"matview_read_speedup": suites.figure(14.9, 14.1, 15.7)}}
    alone = claims.audit(tight)
    noisy = claims.audit(tight, run_noise={text: 0.3})
    assert alone[alone["claim"] == text].iloc[0]["verdict"] == "confirmed"
    row = noisy[noisy["claim"] == text].iloc[0]
    assert row["verdict"] == "inconclusive" and row["ci_low"] < 10 < row["ci_high"]
    assert row["measured"] == pytest.approx(14.9)
    # far from the claim, the verdict stands
    clear = claims.audit({"db": {"matview_read_speedup": suites.figure(60, 55, 65)}},
                         run_noise={text: 0.3})  # fmt: skip
    assert clear[clear["claim"] == text].iloc[0]["verdict"] == "confirmed"
    low, high = claims.with_run_noise(2.0, None, None, 0.1)  # noise alone makes an interval
    assert low == pytest.approx(2.0 * np.exp(-0.196)) and high == pytest.approx(2.0 * np.exp(0.196))


def test_claim_figures_in_the_history_give_noise_but_never_regressions(tmp_path):
    store = bench.History(tmp_path / "h.sqlite")
    for value in (14.9, 7.1, 10.5, 13.0, 7.2, 40.0):  # a speedup that grew is no regression
        r = bench.Result(name="claim/db/matview_read_speedup", samples=[value], unit="x")
        store.save(r, tags=["report", "quick", "claim"])
    assert store.regressions(tag="quick").empty and store.changes(tag="quick").empty
    sd, runs = store.run_noise("claim/db/matview_read_speedup", tag="quick")
    assert runs == 6 and sd > 0.2


def test_contended_replicates_are_set_aside_and_said():
    # eight processes per run; in each run two ran on a contended core (1.7x slower throughout)
    base = _levels([1.0, 1.02, 0.99, 1.01, 1.7, 1.0, 1.72, 0.98])
    same = _levels([1.01, 1.0, 1.69, 0.99, 1.0, 1.02, 1.0, 1.71])
    c = bench.compare(base, same)
    assert c.verdict == "same" and any("set aside as contended" in n for n in c.notes)
    slower = _levels([1.1, 1.12, 1.09, 1.11, 1.87, 1.1, 1.11, 1.08])
    assert bench.compare(base, slower).verdict == "slower"
    kept, aside = stats.set_aside_contended(np.array([1.0, 1.0, 1.01, 1.7]))
    assert aside == 1 and kept.max() < 1.1
    # per-operation latency distributions are compared by their medians, nothing set aside
    assert bench.Result(name="x", samples=[1.0, 2.0], histogram="h").statistic == "median"


def test_separate_runs_in_one_process_are_one_replicate_each_but_ab_rounds_count():
    def rounds_of(level: float, seed: int, together: str | None = None) -> bench.Result:
        rng = np.random.default_rng(seed)
        samples = np.repeat(level * rng.lognormal(0, 0.002, 10), 20)
        meta = {"interleaved": together} if together else {}
        return bench.Result(
            name="r", samples=samples, replicates=(20,) * 10, replicate_level="round", meta=meta
        )

    # two sequential bench.run calls: their rounds agree with each other, but a whole run can
    # sit in a slow spell, so no verdict either way
    separate = bench.compare(rounds_of(1000, 1), rounds_of(1300, 2))
    assert separate.verdict == "inconclusive" and separate.replicates == (1, 1)
    # the same rounds from one interleaved run (bench.ab) are replicates
    paired = bench.compare(rounds_of(1000, 1, "x"), rounds_of(1300, 2, "x"))
    assert paired.verdict == "slower" and paired.replicates == (10, 10)


def test_a_mild_stray_replicate_is_set_aside_with_enough_replicates():
    # one process at 1.27x (under the 1.3x lower-quartile cut) widened the interval so far that
    # a true 10 % slowdown went unseen; over 1.15x the median it is set aside
    base = _levels([1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.27])
    slower = _levels([1.1, 1.11, 1.09, 1.1, 1.12, 1.08, 1.1, 1.1])
    c = bench.compare(base, slower)
    assert c.verdict == "slower" and any("1.15x the median" in n for n in c.notes)
    kept, aside = stats.set_aside_contended(np.array([1.0, 1.01, 0.99, 1.0, 1.27]))
    assert aside == 1 and kept.max() < 1.1
    # fewer than five replicates: no median to trust, only the quartile cut applies
    assert stats.set_aside_contended(np.array([1.0, 1.01, 1.27]))[1] == 0
    # a real slowdown moves a whole side and keeps every replicate
    assert stats.set_aside_contended(np.array([1.1, 1.11, 1.09, 1.1, 1.12]))[1] == 0


def test_run_noise_from_history_widens_separate_runs_but_not_interleaved_ones(tmp_path):
    # two separate runs, tight inside each, 6 % apart as wholes (the machine drifted)
    base = _levels([1.0, 1.01, 0.99, 1.0, 1.0, 1.01])
    drift = _levels([1.06, 1.07, 1.05, 1.06, 1.06, 1.07])
    assert bench.compare(base, drift).verdict == "slower"  # replicates alone: a false verdict
    # the history of this benchmark says whole runs differ by ~4 %
    store = bench.History(tmp_path / "h.sqlite")
    _series(store, "b", _noisy(12, 1000, 11, sd=0.04))
    noise = store.run_noise("b")
    assert noise is not None and noise[1] == 12 and 0.01 < noise[0] < 0.1
    judged = bench.compare(base, drift, run_noise=noise)
    assert judged.verdict == "inconclusive" and judged.ci_low < 1.0
    assert any("its history, 12 runs" in n for n in judged.notes)
    # and it says more replicates would not help: whole runs differ this much
    assert "no number of replicates in one run sees less than" in judged.explanation
    assert "replicates per side would see" not in judged.explanation
    assert (
        "no number of replicates" not in bench.compare(base, _levels([0.8, 1.0, 1.25])).explanation
    )
    # a large change still shows through the run-to-run spread
    assert bench.compare(base, _levels([1.5] * 6), run_noise=noise).verdict == "slower"
    # one interleaved run shares every spell: no run term
    pair = [dataclasses.replace(r, meta={"interleaved": "x"}) for r in (base, drift)]
    assert bench.compare(*pair, run_noise=noise).verdict == "slower"
    # too short a history knows nothing yet
    assert store.run_noise("unknown") is None


def test_compare_cli_learns_run_noise_from_a_history_and_checks_the_path(tmp_path):
    base, drift = tmp_path / "a.json", tmp_path / "b.json"
    suites.save_results(base, suites.SuiteRun("s", [_levels([1.0, 1.01, 0.99, 1.0, 1.0, 1.01])]))
    suites.save_results(
        drift, suites.SuiteRun("s", [_levels([1.06, 1.07, 1.05, 1.06, 1.06, 1.07])])
    )
    store = bench.History(tmp_path / "h.sqlite")
    _series(store, "b", _noisy(12, 1000, 11, sd=0.04))
    alone = perflab_cli("compare", str(base), str(drift), "--history", "none")
    assert alone.returncode == 1 and "slower" in alone.stdout
    learnt = perflab_cli("compare", str(base), str(drift), "--history", str(tmp_path / "h.sqlite"))
    assert learnt.returncode == 0 and "inconclusive" in learnt.stdout
    assert "its history, 12 runs" in learnt.stdout
    missing = perflab_cli("compare", str(base), str(drift), "--history", str(tmp_path / "no.db"))
    assert missing.returncode == 2 and "no.db" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_compare_cli_names_the_benchmarks_a_note_is_about(tmp_path):
    base, drift = tmp_path / "a.json", tmp_path / "b.json"
    other = dataclasses.replace(_levels([1.0, 1.01, 0.99, 1.0]), name="c")
    suites.save_results(base, suites.SuiteRun("s", [_levels([1.0, 1.01, 0.99, 1.0]), other]))
    suites.save_results(drift, suites.SuiteRun("s", [_levels([1.06, 1.07, 1.05, 1.06]), other]))
    store = bench.History(tmp_path / "h.sqlite")
    _series(store, "b", _noisy(12, 1000, 11, sd=0.04))  # only b has a history
    done = perflab_cli("compare", str(base), str(drift), "--history", str(tmp_path / "h.sqlite"))
    notes = [line for line in done.stdout.splitlines() if line.startswith("note")]
    assert len(notes) == 1 and notes[0].startswith("note (b): separate runs"), done.stdout


def _paired_runs(store: bench.History, levels: list[tuple[float, float]], seed: int) -> None:
    """Runs of one interleaved pair (the raw driver, perflab's wrapper), saved as a report does."""
    rng = np.random.default_rng(seed)
    for raw, ours in levels:
        meta = {"interleaved": uuid.uuid4().hex}
        common = rng.lognormal(0, 0.03)  # the machine's luck in this run: both arms share it
        for name, level in (("l2-get raw", raw), ("l2-get perflab", ours)):
            samples = rng.normal(level * common, level * 0.002, 50)
            store.save(bench.Result(name=name, samples=samples, meta=meta), keep_samples=False)


def test_a_step_shared_with_the_interleaved_peer_is_the_environment_not_the_code(tmp_path):
    store = bench.History(tmp_path / "h.sqlite")
    # the Redis server got 2.3x slower: the raw driver and the wrapper moved together
    _paired_runs(store, [(100, 120)] * 8 + [(230, 276)] * 3, seed=1)
    assert store.regressions().empty
    moved = store.changes(only="slower").set_index("name")
    assert set(moved.index) == {"l2-get raw", "l2-get perflab"}
    assert moved.loc["l2-get perflab", "cause"] == "environment"
    assert moved.loc["l2-get perflab", "peer"] == "l2-get raw"
    cli = perflab_cli("history", "--check", "--path", str(tmp_path / "h.sqlite"))
    assert cli.returncode == 0 and "moved with its peer" in cli.stdout
    # the wrapper alone got 30 % slower: its ratio to the raw driver stepped, a regression
    other = bench.History(tmp_path / "h2.sqlite")
    _paired_runs(other, [(100, 120)] * 8 + [(100, 156)] * 3, seed=2)
    found = other.regressions()
    assert list(found["name"]) == ["l2-get perflab"] and found["cause"].iloc[0] == "code"


# --- re-running what looks slower ----------

# five earlier report runs ~4 % apart, as whole quick reports differ here
_REPORTS = [1000.0, 960.0, 1030.0, 1050.0, 975.0]


def test_pooled_ratio_matches_students_t_interval():
    from scipy import stats as sps

    before, after = np.array(_REPORTS), np.array([1210.0, 1190.0, 1225.0])
    r = stats.replicate_ratio(before, after, confidence=0.99, pooled=True)
    a, b = np.log(before), np.log(after)
    t = sps.ttest_ind(b, a, equal_var=True)
    low, high = t.confidence_interval(0.99)
    assert r.ci_low == pytest.approx(np.exp(low)) and r.ci_high == pytest.approx(np.exp(high))
    assert r.p_value == pytest.approx(t.pvalue)
    welch = stats.replicate_ratio(before, after, confidence=0.99)
    # three re-runs close together: their small spread must not narrow the interval
    assert r.ci_high - r.ci_low > welch.ci_high - welch.ci_low


def test_a_slow_report_is_a_suspect_and_its_reruns_decide(tmp_path):
    store = bench.History(tmp_path / "h.sqlite")
    _series(store, "step", [*_REPORTS, 1300.0])
    _series(store, "flat", [*_REPORTS, 1005.0])
    _series(store, "quicker", [*_REPORTS, 800.0])
    assert store.suspects() == ["step"]
    # the re-runs are back at the old level: the newest run was a slow spell
    assert store.regressions(reruns={"step": [1010.0, 985.0]}).empty
    # the re-runs see it too: the newest run and its re-runs count as one run, the one of them
    # nearest the old level (all three must show the step)
    confirmed = store.regressions(reruns={"step": [1290.0, 1320.0]})
    assert list(confirmed["name"]) == ["step"]
    row = confirmed.iloc[0]
    assert row["reruns"] == 2 and row["runs_after"] == 1 and row["ci_low"] > 1.0
    assert row["after"] == pytest.approx(1290.0)
    # one of the three back at the old level outvotes two slow ones (as a median would not)
    assert store.regressions(reruns={"step": [1010.0, 1320.0]}).empty
    # and re-runs slower than the report do not make a regression of a report at the old level
    _series(store, "pooled", [*_REPORTS, 1060.0])
    assert store.regressions("pooled", reruns={"pooled": [1340.0, 1700.0]}).empty
    # re-runs are judged, never saved
    assert len(store.frame("step")) == 6


def test_a_benchmark_whose_few_runs_agree_borrows_its_neighbours_noise(tmp_path):
    """Four runs within 0.3 % of each other, neighbours that differ by ~10 %: a 9 % higher
    fifth run is not called slower (it was, on unchanged code, before the prior joined)."""
    store = bench.History(tmp_path / "h.sqlite")
    _series(store, "tight", [1000.0, 1003.0, 998.0, 1001.0, 1090.0])
    for i in range(5):
        _series(store, f"neighbour{i}", _noisy(5, 1000, seed=40 + i, sd=0.10), seed=i)
    assert "tight" not in set(store.regressions()["name"])
    alone = bench.History(tmp_path / "alone.sqlite")  # no neighbours: its own noise only
    _series(alone, "tight", [1000.0, 1003.0, 998.0, 1001.0, 1090.0])
    assert list(alone.regressions()["name"]) == ["tight"]


def test_the_noise_borrowed_is_of_benchmarks_measured_alike(tmp_path):
    """As measured in a quick-report sequence: the data suite's loops spread 2-7 % between
    runs, the API latencies 9-44 %. A real +24 % step of a loop whose five runs agreed to 2 %
    is reported when its prior is its own suite's noise; borrowed from noisy neighbours of
    its own kind, the same series would be inconclusive."""
    steady = [1000.0, 1028.0, 1028.0, 1004.0, 995.0, 1239.0]

    def history(path, noisy_kind: str):
        store = bench.History(path)
        _series(store, "data/sma-loop", steady)
        for i in range(4):
            _series(store, f"data/loop{i}", _noisy(6, 1000, seed=60 + i, sd=0.03), seed=i)
        for i in range(10):
            name = f"{noisy_kind}{i}"
            _series(store, name, _noisy(6, 1000, seed=70 + i, sd=0.35), seed=10 + i)
        return store

    apart = history(tmp_path / "apart.sqlite", "GET /endpoint")
    assert list(apart.regressions()["name"]) == ["data/sma-loop"]
    together = history(tmp_path / "together.sqlite", "data/endpoint")
    judged = together.changes("data/sma-loop")
    assert judged.iloc[0]["verdict"] == "inconclusive"


def test_rerun_figures_must_be_positive_and_name_the_benchmark(tmp_path):
    store = bench.History(tmp_path / "h.sqlite")
    _series(store, "step", [*_REPORTS, 1200.0])
    with pytest.raises(BenchmarkError, match="'step'"):
        store.regressions(reruns={"step": [0.0]})


def test_recheck_finds_the_notebooks_that_measured_the_suspects():
    from perflab import recheck

    produced = {
        "data": suites.SuiteRun("data", [bench.Result(name="data/sma-loop", samples=[1.0, 2])]),
        "cache": suites.SuiteRun("cache", [bench.Result(name="cache/l1", samples=[1.0, 2])]),
    }
    published_by = {"01-cache": ["cache"], "03-data": ["data"], "05-claims": []}
    assert recheck.owners(["data/sma-loop"], produced, published_by) == ["03-data"]
    assert recheck.owners(["cache/l1", "data/sma-loop"], produced, published_by) == [
        "01-cache",
        "03-data",
    ]
    assert recheck.owners(["gone/name"], produced, published_by) == []


def test_a_small_drift_just_before_a_step_does_not_hide_the_step(tmp_path):
    # as measured: five unchanged reports drifting +3 % after the third, then a +20 % step
    store = bench.History(tmp_path / "h.sqlite")
    _series(store, "drifted", [1539.0, 1560.0, 1566.0, 1616.0, 1630.0, 1876.0])
    found = store.regressions()
    assert list(found["name"]) == ["drifted"]
    assert found.iloc[0]["runs_before"] >= 3 and found.iloc[0]["ratio"] > 1.1


def test_audit_says_how_to_measure_a_claim_the_run_left_out():
    """The capacity claims take minutes, so a report runs them only when asked: where they were
    not run, the audit says so and names the command, never a silent gap."""
    frame = claims.audit({"api": {"signals/speedup_p50": suites.figure(40.0, 35.0, 45.0)}})
    users = frame[frame["claim"].str.startswith("Concurrent users")].iloc[0]
    assert users["verdict"] == "not measured"
    assert users["conditions"].startswith("not measured in this run: run perflab report --capacity")
    measured = claims.audit({"capacity": {"users_served_ratio": 10.0}})
    row = measured[measured["claim"].str.startswith("Concurrent users")].iloc[0]
    assert row["verdict"] == "confirmed" and "not measured" not in row["conditions"]
    db = frame[frame["claim"].str.startswith("Prepared statements")].iloc[0]
    assert "run perflab bench db" in db["conditions"]
