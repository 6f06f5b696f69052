"""Synthetic market data: seeded geometric Brownian motion per symbol, as OHLCV bars.

The same preset and seed give the same bytes on every machine (checked by ``data_hash``).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd

from perflab.errors import ConfigurationError

__all__ = ["PRESETS", "Preset", "bars", "data_hash"]


@dataclasses.dataclass(frozen=True)
class Preset:
    symbols: int
    periods: int

    @property
    def rows(self) -> int:
        return self.symbols * self.periods


PRESETS = {
    "quick": Preset(20, 500),  # 10k rows: tests and --quick runs
    "small": Preset(100, 2_000),  # 200k rows
    "medium": Preset(500, 2_000),  # 1M rows
    "large": Preset(1_000, 5_000),  # 5M rows
}


def bars(
    preset: str | Preset = "quick", *, seed: int = 42, start: str = "2024-01-02"
) -> pd.DataFrame:
    """OHLCV bars, one row per (symbol, period), sorted by symbol then time.

    Each symbol's close follows a GBM with its own drift and volatility; open/high/low are
    drawn around it consistently (low ≤ open, close ≤ high); volume is log-normal.
    """
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise ConfigurationError(
                f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}", name="preset"
            )
        preset = PRESETS[preset]
    n, t = preset.symbols, preset.periods
    rng = np.random.default_rng(seed)
    drift = rng.normal(0.0002, 0.0004, n)[:, None]
    vol = rng.uniform(0.005, 0.03, n)[:, None]
    shocks = rng.standard_normal((n, t))
    log_returns = (drift - vol**2 / 2) + vol * shocks
    start_price = rng.uniform(20, 500, n)[:, None]
    close = start_price * np.exp(np.cumsum(log_returns, axis=1))
    open_ = np.concatenate([start_price, close[:, :-1]], axis=1)
    spread = np.abs(rng.normal(0, vol, (n, t))) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread * rng.uniform(0, 1, (n, t))
    volume = rng.lognormal(12, 0.5, (n, t)).astype(np.int64)
    times = pd.date_range(start, periods=t, freq="min")  # naive, meaning UTC
    symbols = np.array([f"S{i:04d}" for i in range(n)])
    return pd.DataFrame(
        {
            "symbol": np.repeat(symbols, t),
            "ts": np.tile(times.to_numpy(), n),
            "open": open_.ravel().round(4),
            "high": high.ravel().round(4),
            "low": np.maximum(low, 0.01).ravel().round(4),
            "close": close.ravel().round(4),
            "volume": volume.ravel(),
        }
    )


def data_hash(frame: pd.DataFrame) -> str:
    """A stable SHA-256 of a frame's values and column names."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    return digest.hexdigest()
