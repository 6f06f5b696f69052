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


@register("data", "moving average: Python loop vs pandas vs numpy (identical results)")
def data(quick: bool) -> list[bench.Result]:
    n = 20_000 if quick else 200_000
    values = prices(n)
    as_list, as_series = values.tolist(), pd.Series(values)
    reference = sma_numpy(values)
    for label, got in (("loop", sma_loop(as_list)), ("pandas", sma_pandas(as_series))):
        if not np.allclose(got, reference, rtol=1e-9):
            raise BenchmarkError(f"data suite: the {label} moving average disagrees with numpy")
    min_time = 0.3 if quick else 0.8
    params = {"rows": n, "window": WINDOW}
    return [
        bench.run(
            lambda: sma_loop(as_list), name="data/sma-loop", min_time=min_time, params=params
        ),
        bench.run(
            lambda: sma_pandas(as_series), name="data/sma-pandas", min_time=min_time, params=params
        ),
        bench.run(
            lambda: sma_numpy(values), name="data/sma-numpy", min_time=min_time, params=params
        ),
    ]
