"""Mean-variance portfolio optimisation in two forms that agree: a baseline that recomputes the
covariance with Python loops on every request, and an optimised one that uses numpy and caches
the covariance of a given price history.

Both return the tangency portfolio (maximum Sharpe ratio, fully invested, shorting allowed):
w ∝ Σ⁻¹ (μ − r_f), normalised to sum to 1, plus the global minimum-variance portfolio.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd

from perflab.errors import ConfigurationError

__all__ = ["Allocation", "baseline", "optimized", "returns_matrix"]


@dataclasses.dataclass(frozen=True)
class Allocation:
    symbols: tuple[str, ...]
    tangency: np.ndarray
    min_variance: np.ndarray
    expected_return: float
    volatility: float

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"tangency": self.tangency, "min_variance": self.min_variance}, index=list(self.symbols)
        )


def returns_matrix(
    bars: pd.DataFrame, symbols: list[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """(symbols, T-1 × N simple returns of close) for the chosen symbols."""
    wide = bars.pivot(index="ts", columns="symbol", values="close").sort_index()
    if symbols is not None:
        missing = sorted(set(symbols) - set(wide.columns))
        if missing:
            raise ConfigurationError(
                f"unknown symbol {missing[0]!r}: the bars hold {sorted(wide.columns)[:5]}…; "
                "pick symbols from bars['symbol']",
                name="symbols",
            )
        wide = wide[symbols]
    prices = wide.to_numpy(dtype=float)
    return list(wide.columns), prices[1:] / prices[:-1] - 1.0


def _solve(symbols: list[str], mu: np.ndarray, cov: np.ndarray, risk_free: float) -> Allocation:
    ones = np.ones(len(symbols))
    raw = np.linalg.solve(cov, mu - risk_free)
    tangency = raw / raw.sum()
    mv = np.linalg.solve(cov, ones)
    min_variance = mv / mv.sum()
    return Allocation(
        tuple(symbols),
        tangency,
        min_variance,
        float(tangency @ mu),
        float(np.sqrt(tangency @ cov @ tangency)),
    )


def baseline(returns: np.ndarray, symbols: list[str], risk_free: float = 0.0) -> Allocation:
    """Means and covariance with explicit loops, every call."""
    t, n = returns.shape
    mu = np.array([sum(returns[k, i] for k in range(t)) / t for i in range(n)])
    cov = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            value = sum((returns[k, i] - mu[i]) * (returns[k, j] - mu[j]) for k in range(t)) / (
                t - 1
            )
            cov[i, j] = cov[j, i] = value
    return _solve(symbols, mu, cov, risk_free)


@functools.lru_cache(maxsize=32)
def _moments(data: bytes, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    returns = np.frombuffer(data).reshape(shape)
    return returns.mean(axis=0), np.cov(returns, rowvar=False)


def optimized(returns: np.ndarray, symbols: list[str], risk_free: float = 0.0) -> Allocation:
    """Vectorised moments, cached per return history (the covariance is the expensive part)."""
    returns = np.ascontiguousarray(returns, dtype=float)
    mu, cov = _moments(returns.tobytes(), returns.shape)
    return _solve(symbols, mu, cov, risk_free)
