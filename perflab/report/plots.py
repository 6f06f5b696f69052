"""Plots over results: each takes data and returns a matplotlib Figure (never shows it).

Latencies come in nanoseconds and are drawn in the unit that reads best (µs or ms). Baseline is
always grey-blue and optimised always orange; the maximum is never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from perflab.errors import ConfigurationError
from perflab.numbers import number, times

if TYPE_CHECKING:  # pandas and matplotlib (~0.7 s, the lab extra) load when a plot is drawn
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "BASELINE",
    "OPTIMIZED",
    "capacity_plot",
    "ecdf_plot",
    "latency_histogram",
    "memory_plot",
    "percentile_plot",
    "ratio_chart",
]

BASELINE, OPTIMIZED = "#4c72b0", "#dd8452"
_PALETTE = [BASELINE, OPTIMIZED, "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]


def _series(
    data: Mapping[str, np.ndarray] | pd.DataFrame, value: str, by: str | None
) -> dict[str, np.ndarray]:
    """{label: latencies in ns} from a mapping of arrays / Results, or a tidy frame."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        if by is None:
            return {value: data[value].to_numpy(dtype=float)}
        return {str(k): g[value].to_numpy(dtype=float) for k, g in data.groupby(by, sort=True)}
    out = {}
    for label, item in data.items():
        samples = getattr(item, "samples", item)
        out[str(label)] = np.asarray(samples, dtype=float)
    if not out or any(v.size == 0 for v in out.values()):
        raise ConfigurationError(
            "no latencies to plot: give results (or arrays) with at least one sample each",
            name="latencies",
        )
    return out


def _plain_log(axis: object, suffix: str = "") -> None:
    """Ticks at 1, 2, 5 × 10^k labelled as plain numbers (``0.5``, ``20``, ``1,000``), never
    as powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{number(v)}{suffix}"))
    axis.set_minor_formatter(NullFormatter())


def _unit(max_ns: float) -> tuple[str, float]:
    if max_ns >= 5e6:
        return "ms", 1e6
    return "µs", 1e3


def _colour(i: int, label: str) -> str:
    low = label.lower()
    if "baseline" in low or low.endswith("/raw"):
        return BASELINE
    if "optimi" in low or "perflab" in low:
        return OPTIMIZED
    return _PALETTE[i % len(_PALETTE)]


def latency_histogram(
    data: Mapping[str, np.ndarray] | pd.DataFrame,
    *,
    value: str = "ns",
    by: str | None = None,
    title: str = "Latency",
) -> Figure:
    """Log-binned histogram, one series per label; each series' maximum marked (dotted)."""
    series = _series(data, value, by)
    unit, scale = _unit(max(s.max() for s in series.values()))
    everything = np.concatenate(list(series.values())) / scale
    low, high = max(everything.min(), 1e-3), max(everything.max(), 1e-3)
    bins = np.logspace(np.log10(low), np.log10(high * 1.0001), 60)
    fig = _figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    for i, (label, values) in enumerate(series.items()):
        v = values / scale
        colour = _colour(i, label)
        p50, top = number(np.median(v)), number(v.max())
        name = f"{label} (n={v.size:,}, p50={p50} {unit}, max={top} {unit})"
        ax.hist(v, bins=bins, histtype="stepfilled", alpha=0.45, color=colour, label=name)
        ax.axvline(v.max(), linestyle=":", linewidth=1, color=colour)
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    ax.set_xlabel(f"latency per operation ({unit}, log scale)")
    ax.set_ylabel("operations")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def ecdf_plot(
    data: Mapping[str, np.ndarray] | pd.DataFrame,
    *,
    value: str = "ns",
    by: str | None = None,
    title: str = "Latency ECDF",
) -> Figure:
    """Empirical CDF of each series (every sample, so the max is the last step)."""
    series = _series(data, value, by)
    unit, scale = _unit(max(s.max() for s in series.values()))
    fig = _figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    for i, (label, values) in enumerate(series.items()):
        v = np.sort(values / scale)
        ax.step(
            v, np.arange(1, v.size + 1) / v.size, where="post", color=_colour(i, label), label=label
        )
    ax.set_xscale("log")
    _plain_log(ax.xaxis)
    ax.set_xlabel(f"latency ({unit}, log scale)")
    ax.set_ylabel("fraction of operations at or below")
    ax.set_ylim(0, 1.01)
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


_TICKS = [(0.5, "50%"), (0.9, "90%"), (0.99, "99%"), (0.999, "99.9%"), (0.9999, "99.99%")]


def percentile_plot(
    data: Mapping[str, np.ndarray] | pd.DataFrame,
    *,
    value: str = "ns",
    by: str | None = None,
    title: str = "Latency by percentile",
) -> Figure:
    """The HdrHistogram view: latency against percentile on a 1/(1−p) axis, so the tail gets
    room; ticks at 50 % … 99.99 % and each series' max marked at its right end."""
    series = _series(data, value, by)
    unit, scale = _unit(max(s.max() for s in series.values()))
    fig = _figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    longest = 1.0
    for i, (label, values) in enumerate(series.items()):
        v = np.sort(values / scale)
        n = v.size
        p = (np.arange(1, n + 1) - 0.5) / n  # plotting positions: never exactly 1
        x = 1.0 / (1.0 - p)
        colour = _colour(i, label)
        ax.plot(x, v, color=colour, label=f"{label} (max {number(v[-1])} {unit})")
        ax.plot([x[-1]], [v[-1]], marker="o", color=colour)
        longest = max(longest, x[-1])
    ax.set_xscale("log")
    ticks = [(q, t) for q, t in _TICKS if 1 / (1 - q) <= longest * 1.01]
    ax.set_xticks([1 / (1 - q) for q, _ in ticks], [t for _, t in ticks])
    ax.set_xlabel("percentile (1 / (1 − p) scale)")
    ax.set_ylabel(f"latency ({unit})")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def ratio_chart(
    comparisons: Sequence[object] | pd.DataFrame,
    *,
    title: str = "Speedup of the optimised path (median ratio, 95 % CI)",
) -> Figure:
    """Horizontal bars of speedup (baseline / candidate) with their 95 % CIs, log scale.
    Takes ``bench.Comparison`` objects or a frame with name, speedup, ci_low, ci_high."""
    import pandas as pd

    if isinstance(comparisons, pd.DataFrame):
        frame = comparisons
    else:
        frame = pd.DataFrame(
            {
                "name": [c.name for c in comparisons],
                "speedup": [c.speedup for c in comparisons],
                "ci_low": [c.speedup_ci[0] for c in comparisons],
                "ci_high": [c.speedup_ci[1] for c in comparisons],
            }
        )
    frame = frame.reset_index(drop=True)
    fig = _figure(figsize=(8, 0.6 * len(frame) + 1.5), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(frame))
    errors = np.vstack([frame["speedup"] - frame["ci_low"], frame["ci_high"] - frame["speedup"]])
    errors = np.where(np.isfinite(errors), errors, 0.0)  # an unbounded CI: no bar, not a crash
    colours = [OPTIMIZED if s >= 1 else BASELINE for s in frame["speedup"]]
    ax.barh(y, frame["speedup"], xerr=np.abs(errors), color=colours, capsize=4)
    for yi, s in zip(y, frame["speedup"], strict=True):
        ax.text(s, yi, f"  {times(s)}", va="center")
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(y, frame["name"])
    ax.set_ylabel("benchmark")
    ax.set_xscale("log")
    _plain_log(ax.xaxis, suffix="x")
    ax.set_xlabel("speedup (× faster; 1 = no change, log scale)")
    ax.set_title(title)
    return fig


def capacity_plot(curves: Mapping[str, pd.DataFrame], *, title: str = "Capacity") -> Figure:
    """Throughput (req/s) against p99 latency as concurrency rises, one line per variant,
    each point labelled with its concurrency."""
    fig = _figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    for i, (label, curve) in enumerate(curves.items()):
        colour = _colour(i, label)
        ax.plot(curve["throughput"], curve["p99_ms"], marker="o", color=colour, label=label)
        for row in curve.itertuples():
            ax.annotate(f"c={row.concurrency}", (row.throughput, row.p99_ms), fontsize="x-small",
                        textcoords="offset points", xytext=(4, 4))  # fmt: skip
    ax.set_yscale("log")
    _plain_log(ax.yaxis)
    ax.set_xlabel("throughput (requests/s)")
    ax.set_ylabel("p99 latency (ms, log scale)")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return fig


def memory_plot(timeline: object, *, title: str = "Resident memory over time") -> Figure:
    """RSS (MiB) against time of a ``bench.MemoryTimeline``, the peak marked and labelled."""
    seconds = np.asarray(getattr(timeline, "seconds", ()), dtype=float)
    mib = np.asarray(getattr(timeline, "mib", ()), dtype=float)
    if seconds.size == 0 or seconds.size != mib.size:
        raise ConfigurationError(
            "memory_plot needs a bench.MemoryTimeline with readings", name="timeline"
        )
    fig = _figure(figsize=(8, 3), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(seconds, mib, color=BASELINE, marker="." if seconds.size < 40 else None)
    k = int(np.argmax(mib))
    ax.plot([seconds[k]], [mib[k]], marker="o", color=OPTIMIZED)
    ax.annotate(
        f"peak {mib[k]:,.1f} MiB (+{mib[k] - mib[0]:,.1f} MiB) at {seconds[k]:.2f} s",
        (seconds[k], mib[k]), textcoords="offset points", xytext=(6, -14), fontsize="small",
    )  # fmt: skip
    ax.axhline(mib[0], color="#999", linewidth=1, linestyle=":")
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")
    low, high = float(mib.min()), float(mib.max())
    if high - low < 4:  # a flat line: show it as flat, not as noise blown up
        ax.set_ylim(low - 2, high + 2)
    ax.set_xlabel("time since the work started (s)")
    ax.set_ylabel("resident memory (MiB)")
    ax.set_title(title)
    return fig


def _figure(**kwargs: object) -> Figure:
    from matplotlib.figure import Figure

    return Figure(**kwargs)  # type: ignore[arg-type]
