"""Judging a benchmark's history: pure functions over a series frame (one row per saved run,
oldest first), no storage. The newest change point in a benchmark's run centres splits its
runs; the runs after it are judged against the runs before with the replicate statistics
``compare`` uses (each run one replicate, pooled, moderated by the typical spread of its
suite), and an interleaved peer that moved with it blames the environment, not the code.
:class:`perflab.bench.history.History` reads the frames and hands them here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from perflab.bench import changepoint, machine_speed, stats
from perflab.bench.comparison import THRESHOLD, verdict
from perflab.errors import BenchmarkError

__all__ = ["COLUMNS", "CONFIDENCE", "MIN_RUNS", "PRIOR_DF", "judge_changes", "run_noise"]

CONFIDENCE = 0.99  # per benchmark: a nightly check over dozens of benchmarks must not cry wolf
MIN_RUNS = 3  # earlier runs needed before a benchmark's noise is known well enough to judge
#: Degrees of freedom the typical run-to-run spread of a benchmark's suite counts for in each
#: benchmark's judgement (moderated t): four runs' worth. Quick reports here differ by 3-40 % sd per
#: benchmark (median 12 %), and one benchmark's four runs agreeing to 3 % said little about its
#: fifth: it read 1.09x "slower" on unchanged code, re-runs and all, before the prior joined.
PRIOR_DF = 4.0
COLUMNS = [
    "name",
    "at",
    "git",
    "saved",
    "before",
    "after",
    "unit",
    "ratio",
    "ci_low",
    "ci_high",
    "runs_before",
    "runs_after",
    "reruns",
    "noise",
    "git_before",  # the commit of the last run before the change
    "git_newest",  # the commit of the newest run
]


def judge_changes(
    everything: pd.DataFrame,
    name: str | None = None,
    *,
    threshold: float = THRESHOLD,
    confidence: float = CONFIDENCE,
    only: str | None = None,
    reruns: Mapping[str, Sequence[float]] | None = None,
) -> pd.DataFrame:
    """Every benchmark's newest change in ``everything`` (a series frame: one row per run with
    id, name, saved, git, center, pair, speed, unit, oldest first), judged; ``name``: only that
    one; ``only``: only that verdict. ``peer`` names the interleaved peer and ``cause`` says
    "environment" when the two moved together (their ratio held within the threshold), "code"
    when the ratio stepped too, "unclear" when the ratio cannot tell, None without a peer."""
    rows = []
    selected = everything if name is None else everything[everything["name"] == name]
    extra = {k: _positive(k, v) for k, v in (reruns or {}).items()}
    priors = _typical_spreads(everything)
    for bench_name, series in selected.groupby("name", sort=True):
        row = _judge(
            series,
            threshold=threshold,
            confidence=confidence,
            reruns=extra.get(str(bench_name), ()),
            prior=priors.get(_kind(str(bench_name)), priors.get(None)),
        )
        if row is not None and (only is None or row["verdict"] == only):
            peer, cause = _cause(series, everything, row, threshold, confidence)
            rows.append({"name": bench_name, **row, "peer": peer, "cause": cause})
    return pd.DataFrame(rows, columns=[*COLUMNS, "verdict", "peer", "cause"])


def run_noise(series: pd.DataFrame) -> tuple[Any, ...] | None:
    """How much separate runs of one benchmark differ as a whole, from its series frame (see
    :meth:`History.run_noise`); None until it holds ``MIN_RUNS + 1`` runs."""
    centres = series["center"].to_numpy(dtype=float)
    if centres.size < MIN_RUNS + 1:
        return None
    speeds = pd.to_numeric(series["speed"], errors="coerce").to_numpy(dtype=float)
    if np.all(np.isfinite(speeds) & (speeds > 0)):
        fit = machine_speed.speed_slope(centres, speeds)
        if fit is not None:
            adjusted = machine_speed.speed_adjusted(centres, speeds)
            return changepoint.run_spread(adjusted), int(centres.size), fit
    return changepoint.run_spread(centres), int(centres.size)


def _kind(name: str) -> str:
    """The group of benchmarks measured alike: the suite of a ``suite/benchmark`` name, "" for
    the rest (the API suite's ``GET /path (variant)`` figures, users' own names)."""
    head, slash, _ = name.partition("/")
    return head if slash and head and " " not in head else ""


def _typical_spreads(everything: pd.DataFrame) -> dict[str | None, tuple[float, float]]:
    """Per kind of benchmark (:func:`_kind`), and for all of them under ``None``: (median
    run-to-run spread, PRIOR_DF) over those with runs enough to tell, when at least three have.

    Why per kind: the suites measure differently (calibrated loops in eight worker processes,
    a load generator against a live service, queries on a server), and their run noise differs
    with it: five unchanged quick reports here spread 2-7 % for the data suite's loops and
    9-44 % for API latencies. A prior over all of them (median 24 %) hid a real +24 % step of
    ``data/sma-loop``, whose own five runs had agreed to 2 % (99 % CI 0.64-2.32)."""
    spreads: dict[str | None, list[float]] = {}
    for name, group in everything.groupby("name"):
        if len(group) >= MIN_RUNS + 1:
            spread = changepoint.run_spread(group["center"].to_numpy(dtype=float))
            spreads.setdefault(_kind(str(name)), []).append(spread)
            spreads.setdefault(None, []).append(spread)
    return {
        kind: (float(np.median(values)), PRIOR_DF)
        for kind, values in spreads.items()
        if len(values) >= 3
    }


def _positive(name: str, figures: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(v) for v in figures)
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise BenchmarkError(
            f"re-run figures for {name!r} must be positive finite numbers, got {list(figures)}"
        )
    return values


def _cause(
    series: pd.DataFrame,
    everything: pd.DataFrame,
    row: dict[str, Any],
    threshold: float,
    confidence: float,
) -> tuple[str | None, str | None]:
    """(peer name, cause) of a judged change: judge the ratio to the interleaved peer too."""
    if row["verdict"] not in ("slower", "faster"):
        return None, None
    paired = series.dropna(subset=["pair"])
    if paired.empty:
        return None, None
    others = everything[
        everything["pair"].isin(paired["pair"]) & (everything["name"] != series["name"].iloc[0])
    ]
    if others.empty:
        return None, None
    peer = str(others["name"].value_counts().index[0])
    mine = paired.set_index("pair")
    theirs = others[others["name"] == peer].set_index("pair")["center"]
    both = mine.join(theirs.rename("peer_center"), how="inner").sort_values("id")
    ratio = both.assign(center=both["center"] / both["peer_center"]).reset_index()
    judged = _judge(ratio, threshold=threshold, confidence=confidence, prior=None)
    if judged is None:
        return peer, None
    # "environment" only when the ratio provably held: an inconclusive ratio hides nothing
    causes = {row["verdict"]: "code", "same": "environment"}
    return peer, causes.get(judged["verdict"], "unclear")


def _judge(
    series: pd.DataFrame,
    *,
    threshold: float,
    confidence: float,
    reruns: Sequence[float] = (),
    prior: tuple[float, float] | None = None,
) -> dict[str, Any] | None:
    """The newest change of one benchmark's series, judged; None when too short to judge.

    ``reruns`` are further runs of the newest code taken just after the newest run. They are
    not runs of their own: taken minutes apart they share the newest run's spell of the machine,
    so the newest run and its re-runs count as one run: the one of them nearest the earlier
    runs' level, so a change must be in all three (a real step is; a slow spell rarely is).
    Their median was used until re-runs here read 1.3-1.7x slower than the report itself
    (`db/pooled-fetch` 38 µs in the report, 48 and 62 µs in its re-runs, against 34-37 µs
    before), which turned one unlucky pair of re-runs into a regression. ``prior``: the typical
    run-to-run spread (sd, df) of the benchmarks judged together, moderating this one's own."""
    saved = series["center"].to_numpy(dtype=float)
    if saved.size < MIN_RUNS + 1:
        return None
    newest = saved.size - 1
    centres = saved.copy()
    if len(reruns):
        level = float(np.median(np.log(saved[:newest])))
        tonight = np.array([saved[newest], *reruns], dtype=float)
        centres[newest] = float(tonight[np.argmin(np.abs(np.log(tonight) - level))])
    values = np.log(centres)
    points = changepoint.change_points(centres)
    k = points[-1] if points else newest  # no change found: judge the newest run
    # the level before the step: from the latest earlier change point that leaves MIN_RUNS runs
    # (a small drift found just before the step must not leave too few runs to judge by: here a
    # +3 % drift split the five unchanged reports 3 + 2 and a real +20 % step went unjudged)
    earlier = [p for p in points[:-1] if k - p >= MIN_RUNS]
    start = earlier[-1] if earlier else 0
    before, after = values[start:k], values[k:]
    if before.size < MIN_RUNS:
        return None
    # runs on both sides share the benchmark's run-to-run noise: one pooled variance
    r = stats.replicate_ratio(
        np.exp(before), np.exp(after), confidence=confidence, pooled=True, prior=prior
    )
    first = series.iloc[k]
    return {
        "at": int(first["id"]),
        "git": first["git"],
        "saved": pd.to_datetime(first["saved"], unit="s", utc=True),
        "before": float(np.exp(before.mean())),
        "after": float(np.exp(after.mean())),
        "unit": first["unit"] or "ns",
        "ratio": r.ratio,
        "ci_low": r.ci_low,
        "ci_high": r.ci_high,
        "runs_before": int(before.size),
        "runs_after": int(after.size),
        "reruns": len(reruns),
        "noise": changepoint.noise_floor(saved),
        "git_before": series.iloc[k - 1]["git"],
        "git_newest": series.iloc[newest]["git"],
        "verdict": verdict(r.ratio, r.ci_low, r.ci_high, threshold=threshold),
    }
