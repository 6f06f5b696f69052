"""Named figures of a suite (``checks``): plain values, or dicts that carry a confidence
interval built from replicates — what the claims audit judges by."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from perflab.bench import Result

__all__ = ["centre_figure", "figure", "figure_parts", "pair", "ratio_figure"]


def figure(value: float, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    """A named figure with its 95 % confidence interval (``None`` bounds: not known)."""
    ci = None if low is None or high is None else [float(low), float(high)]
    return {"value": float(value), "ci": ci}


def ratio_figure(comparison: Any, *, speedup: bool = True) -> dict[str, Any]:
    """A comparison's speedup (baseline / candidate; ``speedup=False``: its ratio) as a figure."""
    c = comparison
    low, high = c.speedup_ci if speedup else (c.ci_low, c.ci_high)
    finite = math.isfinite(low) and math.isfinite(high) and low > 0
    return figure(c.speedup if speedup else c.ratio, *((low, high) if finite else (None, None)))


def centre_figure(result: Result, scale: float = 1.0) -> dict[str, Any]:
    """A result's centre (geometric mean of replicate medians) × ``scale``, with the CI that
    the spread between its replicates gives."""
    from perflab.bench import stats

    centre, low, high = stats.geometric_interval(result.replicate_medians)
    if low != low:  # one replicate: no interval
        return figure(centre * scale)
    return figure(centre * scale, low * scale, high * scale)


def figure_parts(value: Any) -> tuple[float | None, float | None, float | None]:
    """(value, CI low, CI high) of a check that is a number or a :func:`figure`; (None, …) for
    anything else (a string, a list)."""
    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
        ci = value.get("ci") or [None, None]
        return float(value["value"]), ci[0], ci[1]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None, None
    return None, None, None


def pair(comparison: Any, baseline_name: str, candidate_name: str) -> list[Result]:
    """Both sides of a ``bench.ab`` comparison as results with names of their own."""
    return [
        dataclasses.replace(comparison.baseline, name=baseline_name),
        dataclasses.replace(comparison.candidate, name=candidate_name),
    ]
