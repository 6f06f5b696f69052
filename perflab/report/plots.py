"""Plots over results: each takes data and returns a matplotlib Figure (never shows it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = ["latency_histogram"]


def latency_histogram(
    frame: pd.DataFrame, *, value: str = "ns", by: str | None = None, title: str = "Latency"
) -> Figure:
    """A log-binned histogram of latencies (``value`` in ns, drawn in µs), one series per ``by``.

    The maximum is never dropped: bins span min..max, and each series' max is marked.
    """
    groups = [(None, frame)] if by is None else list(frame.groupby(by, sort=True))
    micro = frame[value].to_numpy(dtype=float) / 1e3
    if micro.size == 0:
        raise ValueError(f"no latencies to plot in column {value!r}")
    low, high = max(micro.min(), 1e-3), max(micro.max(), 1e-3)
    bins = np.logspace(np.log10(low), np.log10(high * 1.0001), 60)
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    for name, group in groups:
        data = group[value].to_numpy(dtype=float) / 1e3
        label = f"{name} (n={data.size}, p50={np.median(data):.1f} µs, max={data.max():.1f} µs)"
        _, _, patches = ax.hist(data, bins=bins, histtype="stepfilled", alpha=0.5, label=label)
        ax.axvline(data.max(), linestyle=":", linewidth=1, color=patches[0].get_facecolor()[:3])
    ax.set_xscale("log")
    ax.set_xlabel("latency per operation (µs, log scale)")
    ax.set_ylabel("operations")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig
