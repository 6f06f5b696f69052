"""Tables over results: DataFrames shaped for reading."""

from __future__ import annotations

import pandas as pd

__all__ = ["latency_table"]


def latency_table(frame: pd.DataFrame, *, value: str = "ns", by: str | None = None) -> pd.DataFrame:
    """Count, mean, p50, p90, p99 and max of latencies in ``value`` (ns), shown in µs."""
    micro = frame.assign(**{value: frame[value] / 1e3})
    grouped = micro.groupby(by)[value] if by else micro[value]
    table = grouped.agg(
        n="count",
        mean="mean",
        p50="median",
        p90=lambda s: s.quantile(0.90),
        p99=lambda s: s.quantile(0.99),
        max="max",
    )
    if by is None:
        table = table.to_frame().T
    table.columns = ["n"] + [f"{c} (µs)" for c in table.columns[1:]]
    return table.round(1).astype({"n": int})
