"""The machine's reference speed, timed beside every replicate, and comparisons adjusted for it.

Synthetic replicates model this VM's two speeds (a process runs 1x or 1.7x slow, whole); the
timing tests check only that references are recorded and carried, never how long anything took.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from perflab import bench, suites
from perflab.bench import machine_speed, stats
from perflab.bench.reference import kernel
from perflab.errors import BenchmarkError

SLOW = 1.7  # this VM's slow mode, as measured (sum(range(20000)): 350 vs 600 µs floors)


def _side(
    work: float,
    modes: list[float],
    *,
    seed: int,
    follow: float = 1.0,
    per: int = 30,
    own: float = 0.01,
):
    """Replicates (processes) of ``work`` µs, each in one machine mode; the target slows by
    ``mode ** follow``, the reference loop by ``mode``; 1 % noise on the target, ``own`` on the
    reference (noise of its own, that the target does not share)."""
    rng = np.random.default_rng(seed)
    modes_ = np.asarray(modes)
    levels = work * 1000 * modes_**follow * rng.lognormal(0, 0.01, modes_.size)
    samples = np.concatenate([rng.normal(level, level * 0.002, per) for level in levels])
    speeds = 20_000 * modes_ * rng.lognormal(0, own, modes_.size)
    reference = np.concatenate([rng.normal(speed, speed * 0.002, per) for speed in speeds])
    return bench.Result(
        name="b",
        samples=samples,
        replicates=(per,) * modes_.size,
        replicate_level="process",
        reference=reference,
    )


FAST_RUN = [1, 1, 1, SLOW, 1, 1, SLOW, 1]
SLOW_RUN = [SLOW, SLOW, 1, SLOW, SLOW, SLOW, 1, SLOW]


def _unadjusted(a: bench.Result, b: bench.Result) -> bench.Comparison:
    return bench.compare(a, b, adjust=False)


def test_a_slow_spell_of_the_machine_is_not_a_slowdown_of_the_code():
    a, b = _side(350, FAST_RUN, seed=1), _side(350, SLOW_RUN, seed=2)
    raw = _unadjusted(a, b)
    assert raw.verdict == "slower"  # what judging the figures alone says
    c = bench.compare(a, b)
    assert c.verdict == "same", c.explanation
    assert c.ci_low <= 1.0 <= c.ci_high
    assert any("machine itself ran" in note for note in c.notes)


def test_a_real_ten_percent_slowdown_is_seen_through_the_spell():
    a, b = _side(350, FAST_RUN, seed=3), _side(385, SLOW_RUN, seed=4)
    c = bench.compare(a, b)
    assert c.verdict == "slower", c.explanation
    assert c.ci_low <= 1.10 <= c.ci_high
    faster = bench.compare(b, a)
    assert faster.verdict == "faster"


def test_a_benchmark_that_follows_the_machine_only_half_way_gets_its_own_slope():
    a = _side(1000, FAST_RUN, seed=5, follow=0.5)
    b = _side(1000, SLOW_RUN, seed=6, follow=0.5)
    r = machine_speed.adjusted_ratio(
        a.replicate_figures, b.replicate_figures, a.reference_figures, b.reference_figures
    )
    assert r.slope == pytest.approx(0.5, abs=0.1)
    assert r.ci_low <= 1.0 <= r.ci_high
    # dividing by the reference would have called it much faster
    assert bench.compare(a, b).verdict in ("same", "inconclusive")


def test_when_the_sides_never_share_a_speed_the_slope_is_unknown_and_the_verdict_honest():
    # every baseline process fast, every candidate process slow, references tight within each
    # side: nothing shows how this benchmark follows the machine
    a = _side(1000, [1.0] * 6, seed=7, follow=0.5)
    b = _side(1000, [SLOW] * 6, seed=8, follow=0.5)
    c = bench.compare(a, b)
    assert c.verdict == "inconclusive", c.explanation
    assert c.ci_low <= 1.0 <= c.ci_high


def test_a_whole_run_slower_with_a_reference_noisy_on_its_own_is_not_called_slower():
    # as measured on a quiet run here: between processes the reference varies +-5 % for
    # reasons the benchmark does not share (so the slope fitted within the runs is ~0), and
    # one whole run the machine ran 1.12x slower, which the benchmark followed fully
    a = _side(1000, [1.0] * 8, seed=21, own=0.04)
    b = _side(1000, [1.12] * 8, seed=22, own=0.04)
    r = machine_speed.adjusted_ratio(
        a.replicate_figures, b.replicate_figures, a.reference_figures, b.reference_figures
    )
    assert abs(r.slope) < 0.5  # the fitted slope alone would have left the whole 1.12x
    c = bench.compare(a, b)
    assert c.verdict in ("same", "inconclusive"), c.explanation
    assert c.ci_low <= 1.0 <= c.ci_high
    # the same slowdown when the machine did not change speed is seen, range or not
    same_speed = _side(1120, [1.0] * 8, seed=23, own=0.04)
    assert bench.compare(a, same_speed).verdict == "slower"


def test_a_known_slope_is_used_as_it_is():
    a = _side(1000, [1.0] * 8, seed=24, own=0.04)
    b = _side(1000, [1.12] * 8, seed=25, own=0.04)
    args = (a.replicate_figures, b.replicate_figures, a.reference_figures, b.reference_figures)
    told = machine_speed.adjusted_ratio(*args, known_slope=(1.0, 0.05))
    assert told.slope == 1.0
    assert told.ci_low <= 1.0 <= told.ci_high
    assert (
        told.ci_high - told.ci_low
        < machine_speed.adjusted_ratio(*args).ci_high - machine_speed.adjusted_ratio(*args).ci_low
    )
    # told it does not follow the machine at all: the whole 1.12x is the code's
    assert machine_speed.adjusted_ratio(*args, known_slope=(0.0, 0.05)).ci_low > 1.05


def test_adjusted_ratio_needs_two_replicates_per_side_and_one_reference_each():
    one = machine_speed.adjusted_ratio(
        np.array([1.0, 1.1]), np.array([1.2]), np.ones(2), np.ones(1)
    )
    assert one.slope is None  # fell back to the unadjusted ratio
    with pytest.raises(ValueError, match="one reference figure per replicate"):
        machine_speed.adjusted_ratio(np.ones(3), np.ones(3), np.ones(2), np.ones(3))


def test_interleaved_and_reference_free_results_are_judged_as_before():
    a, b = _side(350, FAST_RUN, seed=9), _side(350, SLOW_RUN, seed=10)
    bare_a = bench.Result(name="b", samples=a.samples, replicates=a.replicates)
    assert bench.compare(bare_a, b).verdict == _unadjusted(bare_a, b).verdict
    meta = {"interleaved": "x"}
    ia = bench.Result(name="b", samples=a.samples, replicates=a.replicates,
                      reference=a.reference, meta=meta)  # fmt: skip
    ib = bench.Result(name="b", samples=b.samples, replicates=b.replicates,
                      reference=b.reference, meta=meta)  # fmt: skip
    assert not any("machine itself" in n for n in bench.compare(ia, ib).notes)


def test_reference_samples_must_match_the_samples():
    with pytest.raises(BenchmarkError, match=r"'odd'.*3 reference samples for 2 samples"):
        bench.Result(name="odd", samples=[1.0, 2.0], replicates=(1, 1), reference=(1, 2, 3))
    with pytest.raises(BenchmarkError, match="positive"):
        bench.Result(name="odd", samples=[1.0, 2.0], replicates=(1, 1), reference=(1, 0))


def test_format_2_results_load_without_a_reference_and_format_3_round_trips():
    a = _side(350, FAST_RUN, seed=11)
    doc = a.to_dict()
    assert doc["format"] == 3
    back = bench.Result.from_json(json.dumps(doc))
    assert back.reference == pytest.approx(a.reference)
    assert back.reference_figures == pytest.approx(a.reference_figures)
    old = {k: v for k, v in doc.items() if k != "reference"} | {"format": 2}
    loaded = bench.Result.from_dict(old)
    assert loaded.reference.size == 0 and loaded.reference_figures.size == 0
    assert bench.compare(loaded, a).verdict == _unadjusted(loaded, a).verdict


def test_each_replicates_reference_figure_takes_the_targets_statistic_and_samples():
    # two replicates; the reference's lower decile is taken over the same samples as the
    # target's, so a replicate that was fast for a tenth of its time reads fast in both
    ref = np.r_[np.full(9, 30.0), [18.0], np.full(10, 19.0)]
    r = bench.Result(name="b", samples=np.arange(1.0, 21.0), replicates=(10, 10), reference=ref)
    assert r.statistic == "floor"
    assert r.reference_figures == pytest.approx(stats.replicate_quantiles(ref, (10, 10), 10.0))
    assert r.reference_figures[1] == pytest.approx(19.0)


def test_run_times_the_reference_in_every_round_and_merge_keeps_one_per_process():
    assert kernel() == kernel()  # fixed work
    runs = []
    for _ in range(2):
        r = bench.run(lambda: sum(range(200)), name="s", min_time=0.05, rounds=4)
        assert r.reference.size == r.samples.size and r.n_replicates == 4
        assert np.all(r.reference > 0) and np.all(np.isfinite(r.reference))
        runs.append(suites.SuiteRun(suite="t", results=[r]))
    merged = suites.merge_runs(runs).results[0]
    assert merged.replicate_level == "process"
    assert merged.reference == pytest.approx(np.concatenate([p.results[0].reference for p in runs]))
    assert merged.reference_figures.size == 2
    # a fake clock cannot time a reference: none is recorded, and merging drops it for all
    now = [0]

    def tick() -> None:
        now[0] += 250

    fake = bench.run(tick, name="s", min_time=0.01, clock=lambda: now[0])
    assert fake.reference.size == 0
    mixed = suites.merge_runs([runs[0], suites.SuiteRun(suite="t", results=[fake])])
    assert mixed.results[0].reference.size == 0


def test_history_keeps_each_runs_reference_speed_and_upgrades_old_files(tmp_path):
    import sqlalchemy as sa

    path = tmp_path / "history.sqlite"
    h = bench.History(path)
    with h.engine.begin() as conn:  # a history written before the column existed
        conn.execute(sa.text("ALTER TABLE results DROP COLUMN speed"))
    h.close()
    h = bench.History(path)
    a = _side(350, FAST_RUN, seed=12)
    h.save(a)
    h.save(bench.Result(name="b", samples=a.samples, replicates=a.replicates))
    speeds = h.frame("b")["speed"].tolist()
    h.close()
    assert speeds[0] == pytest.approx(float(np.exp(np.mean(np.log(a.reference_figures)))))
    assert speeds[1] is None or np.isnan(speeds[1])


def test_the_history_learns_how_a_benchmark_follows_the_machine_across_runs(tmp_path):
    # six saved runs at different machine speeds, each run's reference noisy on its own
    # between processes (so no single run can show the slope), the benchmark following fully
    store = bench.History(tmp_path / "history.sqlite")
    for i, mode in enumerate([1.0, 1.1, 0.95, 1.2, 1.05, 1.15]):
        store.save(_side(1000, [mode] * 8, seed=40 + i, own=0.04))
    noise = store.run_noise("b")
    store.close()
    sd, runs, (slope, slope_se) = noise
    assert 0 < sd < 0.05  # what runs differ by beyond the machine
    assert runs == 6 and slope == pytest.approx(1.0, abs=0.15) and slope_se < 0.2
    a = _side(1000, [1.0] * 8, seed=50, own=0.04)
    b = _side(1000, [1.12] * 8, seed=51, own=0.04)
    told = bench.compare(a, b, run_noise=noise)
    assert told.verdict in ("same", "inconclusive") and told.ci_low <= 1.0 <= told.ci_high
    assert told.ratio == pytest.approx(1.0, abs=0.03), told.explanation  # the machine's, out
    assert any("its history says" in note for note in told.notes)
    # alone, two runs cannot tell the machine's 1.12x from the code's (slope fitted ~0)
    alone = bench.compare(a, b)
    assert alone.verdict == "inconclusive" and alone.ratio > 1.08
    assert any("two runs cannot tell" in note for note in alone.notes)
    assert "machine's own change of speed" in alone.explanation
    assert "replicates per side would see" not in alone.explanation
    # and a real 15 % slowdown on a machine that ran 1.12x slower is still seen
    worse = _side(1150, [1.12] * 8, seed=52, own=0.04)
    assert bench.compare(a, worse, run_noise=noise).verdict == "slower"
