"""The workload: deterministic data, and baseline and optimised computations that agree."""

from __future__ import annotations

import numpy as np
import pytest

from perflab.db import QueryRunner
from perflab.errors import ConfigurationError
from perflab.workload import PRESETS, bars, data_hash, load, portfolio, signals


def test_same_seed_same_data_different_seed_different_data():
    assert data_hash(bars("quick")) == data_hash(bars("quick"))
    assert data_hash(bars("quick", seed=1)) != data_hash(bars("quick"))


def test_bars_are_well_formed():
    frame = bars("quick")
    preset = PRESETS["quick"]
    assert len(frame) == preset.rows and frame["symbol"].nunique() == preset.symbols
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["volume"] > 0).all() and not frame.duplicated(["symbol", "ts"]).any()
    with pytest.raises(ConfigurationError, match="unknown preset") as info:
        bars("huge")
    assert info.value.name == "preset"


def test_baseline_and_optimised_signals_agree():
    frame = bars("quick")
    slow, fast = signals.baseline(frame), signals.optimized(frame)
    assert list(slow.columns) == list(fast.columns) == signals.COLUMNS
    assert (slow["symbol"].to_numpy() == fast["symbol"].to_numpy()).all()
    for column in ("close", "sma_fast", "sma_slow", "rsi", "bb_upper", "bb_lower"):
        np.testing.assert_allclose(slow[column], fast[column], rtol=1e-9, atol=1e-9)
    assert (slow["cross"].to_numpy() == fast["cross"].to_numpy()).all()
    assert slow["cross"].abs().sum() > 0  # crossovers do happen


def test_baseline_and_optimised_portfolios_agree():
    symbols, returns = portfolio.returns_matrix(bars("quick"))
    slow = portfolio.baseline(returns, symbols)
    fast = portfolio.optimized(returns, symbols)
    np.testing.assert_allclose(slow.tangency, fast.tangency, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(slow.min_variance, fast.min_variance, rtol=1e-8, atol=1e-10)
    assert fast.tangency.sum() == pytest.approx(1.0) and fast.volatility > 0
    assert list(fast.to_frame().index) == symbols
    with pytest.raises(ConfigurationError, match="unknown symbol 'NOPE'") as info:
        portfolio.returns_matrix(bars("quick"), ["NOPE"])
    assert info.value.name == "symbols"


@pytest.mark.parametrize(
    "dialect", [pytest.param("postgresql", marks=pytest.mark.servers), "sqlite"]
)
def test_load_into_the_database(dialect, tmp_path):
    db = QueryRunner(None if dialect == "postgresql" else f"sqlite:///{tmp_path / 'w.db'}")
    try:
        frame = bars("quick")
        assert load(db, frame, table="wl_bars") == len(frame)
        rows = db.fetch("SELECT count(*), count(DISTINCT symbol), min(ts) FROM wl_bars")
        assert rows[0][:2] == (len(frame), 20)
        assert rows[0][2] == 1704153600000  # 2024-01-02 00:00 UTC in ms
    finally:
        db.execute("DROP TABLE IF EXISTS wl_bars")
        db.close()
