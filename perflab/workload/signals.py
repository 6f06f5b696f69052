"""Trading signals in two forms that must agree exactly: a baseline (a Python loop over each
symbol's rows, as the seed's code did) and an optimised form (vectorised pandas/numpy).

Signals per row: 20/50-period simple moving averages and their crossover (+1 golden, -1 death,
0 none), 14-period RSI (simple averages), and 20-period Bollinger bands (2 standard deviations).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "baseline", "optimized"]

FAST, SLOW, RSI_N, BB_N, BB_K = 20, 50, 14, 20, 2.0
COLUMNS = ["symbol", "ts", "close", "sma_fast", "sma_slow", "cross", "rsi", "bb_upper", "bb_lower"]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def baseline(bars: pd.DataFrame) -> pd.DataFrame:
    """One symbol at a time, one row at a time."""
    out = []
    for symbol, group in bars.groupby("symbol", sort=True):
        closes = group["close"].tolist()
        times = group["ts"].tolist()
        prev_diff = math.nan
        for i, price in enumerate(closes):
            fast = _mean(closes[i - FAST + 1 : i + 1]) if i >= FAST - 1 else math.nan
            slow = _mean(closes[i - SLOW + 1 : i + 1]) if i >= SLOW - 1 else math.nan
            diff = fast - slow
            cross = 0
            if not math.isnan(prev_diff) and not math.isnan(diff):
                if prev_diff <= 0 < diff:
                    cross = 1
                elif prev_diff >= 0 > diff:
                    cross = -1
            prev_diff = diff
            if i >= RSI_N:
                changes = [closes[j] - closes[j - 1] for j in range(i - RSI_N + 1, i + 1)]
                gain = sum(c for c in changes if c > 0) / RSI_N
                loss = -sum(c for c in changes if c < 0) / RSI_N
                rsi = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
            else:
                rsi = math.nan
            if i >= BB_N - 1:
                window = closes[i - BB_N + 1 : i + 1]
                mean = _mean(window)
                std = math.sqrt(sum((x - mean) ** 2 for x in window) / (BB_N - 1))
                upper, lower = mean + BB_K * std, mean - BB_K * std
            else:
                upper = lower = math.nan
            out.append((symbol, times[i], price, fast, slow, cross, rsi, upper, lower))
    return pd.DataFrame(out, columns=COLUMNS)


def optimized(bars: pd.DataFrame) -> pd.DataFrame:
    """The same signals with grouped rolling windows."""
    frame = bars.sort_values(["symbol", "ts"], kind="stable").reset_index(drop=True)
    close = frame["close"]
    by = frame.groupby("symbol", sort=False)["close"]
    fast = by.rolling(FAST).mean().reset_index(level=0, drop=True)
    slow = by.rolling(SLOW).mean().reset_index(level=0, drop=True)
    diff = fast - slow
    prev = diff.groupby(frame["symbol"]).shift(1)
    cross = np.where((prev <= 0) & (diff > 0), 1, np.where((prev >= 0) & (diff < 0), -1, 0))
    change = close.groupby(frame["symbol"]).diff()
    gain = (
        change.clip(lower=0)
        .groupby(frame["symbol"])
        .rolling(RSI_N)
        .sum()
        .reset_index(level=0, drop=True)
        / RSI_N
    )
    loss = (-change.clip(upper=0)).groupby(frame["symbol"]).rolling(RSI_N).sum().reset_index(
        level=0, drop=True
    ) / RSI_N
    with np.errstate(divide="ignore", invalid="ignore"):
        rsi = np.where(loss == 0, 100.0, 100.0 - 100.0 / (1.0 + gain / loss))
    rsi = np.where(gain.isna() | loss.isna(), np.nan, rsi)
    mean = by.rolling(BB_N).mean().reset_index(level=0, drop=True)
    std = by.rolling(BB_N).std(ddof=1).reset_index(level=0, drop=True)
    return pd.DataFrame(
        {
            "symbol": frame["symbol"],
            "ts": frame["ts"],
            "close": close,
            "sma_fast": fast,
            "sma_slow": slow,
            "cross": cross.astype(np.int64),
            "rsi": rsi,
            "bb_upper": mean + BB_K * std,
            "bb_lower": mean - BB_K * std,
        }
    )
