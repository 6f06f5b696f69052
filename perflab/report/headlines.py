"""The headline comparisons of each suite (baseline → optimised), judged with
``bench.compare``, and their trend over the last report runs of the same mode.

Which pairs are headlines is data (:data:`HEADLINES`): both arms of a pair must do the same
work per call, so a per-call ratio means what it says. Pairs measured side by side in one run
(``bench.ab``) carry their rounds as replicates, so each ratio has a CI."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from perflab.bench import Result, compare
from perflab.numbers import quantity

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HEADLINES", "RUN_TAG", "headline_pairs", "headline_rows", "with_trends"]

RUN_TAG = "run:"  # History tag prefix naming the report run a result came from

# suite -> (label, baseline result, candidate result); each pair does the same work per call
HEADLINES: dict[str, list[tuple[str, str, str]]] = {
    "cache": [
        ("L1 hit: cachetools LRU → perflab", "cache/cachetools-lru-get", "cache/l1-get"),
        ("L2 hit: raw redis-py GET + json.loads → perflab", "cache/l2-get/raw",
         "cache/l2-get/perflab"),
        ("L2 100 keys: raw MGET + json.loads → perflab get_many", "cache/l2-get-many-100/raw",
         "cache/l2-get-many-100/perflab"),
        ("L3 hit: raw prepared select + json.loads → perflab", "cache/l3-get/raw",
         "cache/l3-get/perflab"),
    ],
    "db": [
        ("PK fetch: raw psycopg (prepared) → QueryRunner.fetch", "db/pk-fetch/raw-psycopg",
         "db/pk-fetch/runner"),
        ("Connect per query → pooled fetch", "db/connect-per-query", "db/pooled-fetch"),
        ("Aggregate → query cache hit", "db/aggregate-uncached", "db/aggregate-cached"),
        ("Aggregate → materialized view read", "db/aggregate-query", "db/matview-read"),
        ("Bulk insert: raw psycopg COPY → QueryRunner.batch_insert", "db/batch-insert/raw-copy",
         "db/batch-insert/runner"),
    ],
    "data": [
        ("Signals: row-by-row loop → vectorised", "data/signals-loop", "data/signals-vectorised"),
        ("Moving average: loop → pandas rolling", "data/sma-loop", "data/sma-pandas"),
        ("Moving average: loop → numpy", "data/sma-loop", "data/sma-numpy"),
    ],
    "concurrency": [
        ("Waiting jobs: serial → threads", "concurrency/io-serial", "concurrency/io-threads"),
        ("Waiting jobs: serial → asyncio", "concurrency/io-serial/beside-asyncio",
         "concurrency/io-asyncio"),
        ("Arithmetic jobs: serial → processes", "concurrency/cpu-serial",
         "concurrency/cpu-processes"),
    ],
}  # fmt: skip
_BASELINE_PATH = re.compile(r"/baseline/")
_URL_HOST = re.compile(r"https?://[^/\s]+")


def headline_pairs(
    suite: str, names: Iterable[str], *, limit: int = 5
) -> list[tuple[str, str, str]]:
    """The headline pairs of ``suite`` among ``names``: the listed ones that were measured,
    else every ``…/baseline/…`` result beside its ``…/optimized/…`` twin."""
    have = list(names)
    listed = [p for p in HEADLINES.get(suite, []) if p[1] in have and p[2] in have]
    if listed:
        return listed[:limit]
    pairs = []
    for name in have:
        twin = _BASELINE_PATH.sub("/optimized/", name)
        if twin != name and twin in have:
            label = re.sub(r"^\w+ https?://[^/]+/baseline", "", name)
            method = name.split(" ", 1)[0] if " " in name else ""
            pairs.append((f"{method} {label}: baseline → optimised".strip(), name, twin))
    return pairs[:limit]


def _judged(result: Result, other: Result) -> float:
    """The figure ``compare`` judged: :attr:`Result.judged_figure` when both are calibrated
    loops (compare judges floors only then), else the result's figure."""
    if result.statistic == other.statistic == "floor":
        return result.judged_figure
    return result.figure


def headline_rows(suite: str, results: Sequence[Result]) -> list[dict[str, Any]]:
    """One row per headline pair of ``suite``: label, the two names and figures, speedup
    (baseline ÷ candidate) with its 95 % CI, the verdict and notes of ``bench.compare``."""
    by_name = {r.name: r for r in results}
    rows = []
    for label, base, cand in headline_pairs(suite, by_name):
        c = compare(by_name[base], by_name[cand], match_names=False)
        low, high = c.speedup_ci
        rows.append(
            {
                "suite": suite,
                "label": label,
                "baseline_name": base,
                "candidate_name": cand,
                "baseline": quantity(_judged(by_name[base], by_name[cand]), by_name[base].unit),
                "candidate": quantity(_judged(by_name[cand], by_name[base]), by_name[cand].unit),
                "speedup": c.speedup,
                "ci_low": low if math.isfinite(low) else math.nan,
                "ci_high": high if math.isfinite(high) else math.nan,
                "verdict": c.verdict,
                "replicates": c.replicates,
                "notes": list(c.notes),
            }
        )
    return rows


def with_trends(
    rows: Sequence[Mapping[str, Any]], history: pd.DataFrame, *, run: str, last: int = 8
) -> list[dict[str, Any]]:
    """``rows`` with ``trend`` (the speedup in the last ``last`` report runs that measured both
    arms, oldest first, this one last), ``current`` (this run's) and ``previous`` (the run
    before's, or None). ``history``: ``History.frame()`` rows of one mode's reports (tags carry
    ``run:<name>``). Speedups over runs use each result's centre (geometric mean of replicate
    medians), the same figure for every run."""
    runs = _centres_by_run(history)
    order = [r for r in runs if r != run] + ([run] if run in runs else [])  # this run last
    out = []
    for row in rows:
        base, cand = _stable(row["baseline_name"]), _stable(row["candidate_name"])
        series = [
            runs[r][base] / runs[r][cand]
            for r in order
            if base in runs[r] and cand in runs[r] and runs[r][cand] > 0
        ]
        here = run in runs and base in runs[run] and cand in runs[run]
        previous = series[-2] if here and len(series) > 1 else None
        current = series[-1] if here else None
        out.append({**row, "trend": series[-last:], "previous": previous, "current": current})
    return out


def _stable(name: str) -> str:
    """A benchmark name without a URL's host:port (a service's port changes every run)."""
    return _URL_HOST.sub("", name)


def _centres_by_run(history: pd.DataFrame) -> dict[str, dict[str, float]]:
    """{run name: {benchmark: centre}} in the order the runs were saved."""
    runs: dict[str, dict[str, float]] = {}
    if history is None or history.empty:
        return runs
    for item in history.sort_values("id").itertuples():
        tag = next((t for t in item.tags if str(t).startswith(RUN_TAG)), None)
        if tag is None:
            continue
        runs.setdefault(tag[len(RUN_TAG) :], {})[_stable(item.name)] = float(item.center)
    return runs
