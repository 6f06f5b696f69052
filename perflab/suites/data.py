"""Loop vs pandas vs numpy on a market-data shaped task: a 20-period moving average over a
seeded geometric Brownian motion price series. All three give the same numbers (checked)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from perflab import bench
from perflab.errors import BenchmarkError
from perflab.suites import register

WINDOW = 20


def prices(n: int, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0002, 0.01, n)
    return 100.0 * np.exp(np.cumsum(returns))


def sma_loop(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= WINDOW:
            total -= values[i - WINDOW]
        if i >= WINDOW - 1:
            out.append(total / WINDOW)
    return out


def sma_pandas(series: pd.Series) -> np.ndarray:
    return series.rolling(WINDOW).mean().to_numpy()[WINDOW - 1 :]


def sma_numpy(values: np.ndarray) -> np.ndarray:
    csum = np.cumsum(np.insert(values, 0, 0.0))
    return (csum[WINDOW:] - csum[:-WINDOW]) / WINDOW


def _check_signals(sample: pd.DataFrame) -> None:
    """Baseline and vectorised signals must agree before either is timed."""
    from perflab.workload import signals

    slow, fast = signals.baseline(sample), signals.optimized(sample)
    for column in ("sma_fast", "sma_slow", "rsi", "bb_upper", "bb_lower"):
        if not np.allclose(slow[column], fast[column], rtol=1e-9, atol=1e-9, equal_nan=True):
            raise BenchmarkError(f"data suite: baseline and vectorised {column} disagree")
    if not (slow["cross"].to_numpy() == fast["cross"].to_numpy()).all():
        raise BenchmarkError("data suite: baseline and vectorised crossovers disagree")


@register("data", "signals per-row vs vectorised; moving average loop vs pandas vs numpy")
def data(quick: bool) -> list[bench.Result]:
    from perflab.workload import bars, signals

    # Budget per benchmark and worker process: quick 0.3-1 s (0.3-0.5 s for the per-row loop,
    # ~0.17 s a call on 10k bars: three calls per process, 24 over the default 8 processes,
    # which are the replicates a comparison judges by), full 0.8-1 s on 200k bars (one loop
    # call ~3 s; 1M bars made `make demo` spend 2 min here for the same ratio).
    min_time = 0.3 if quick else 0.8
    loop_max = 0.5 if quick else 1.0
    market = bars("quick" if quick else "small")  # 10k bars, or 200k
    _check_signals(market[market["symbol"] < "S0005"])
    shape = {"rows": len(market), "symbols": int(market["symbol"].nunique())}
    results = [
        # one baseline call on 1M rows takes seconds: no warm-up, one or two samples
        bench.run(lambda: signals.baseline(market), name="data/signals-loop", warmup=0,
                  min_time=min_time, max_time=loop_max, params=shape),
        bench.run(lambda: signals.optimized(market), name="data/signals-vectorised",
                  min_time=min_time, params=shape),
    ]  # fmt: skip

    n = 20_000 if quick else 200_000
    values = prices(n)
    as_list, as_series = values.tolist(), pd.Series(values)
    reference = sma_numpy(values)
    for label, got in (("loop", sma_loop(as_list)), ("pandas", sma_pandas(as_series))):
        if not np.allclose(got, reference, rtol=1e-9):
            raise BenchmarkError(f"data suite: the {label} moving average disagrees with numpy")
    params = {"rows": n, "window": WINDOW}
    for name, fn in (
        ("data/sma-loop", lambda: sma_loop(as_list)),
        ("data/sma-pandas", lambda: sma_pandas(as_series)),
        ("data/sma-numpy", lambda: sma_numpy(values)),
    ):
        results.append(bench.run(fn, name=name, min_time=min_time, params=params))
    return results
