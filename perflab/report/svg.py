"""Small inline SVG figures for the index page: a forest plot of the claims audit and trend
sparklines. Plain data in, one escaped ``<svg>`` string out: no script, no external file, a few
kilobytes each, crisp at any zoom."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from perflab.numbers import interval, is_missing, quantity, times

__all__ = ["VERDICT_COLOURS", "forest_plot", "sparkline"]

VERDICT_COLOURS = {
    "confirmed": "#1b7f3b",
    "faster": "#1b7f3b",
    "not reproduced": "#b00020",
    "slower": "#b00020",
    "inconclusive": "#8a6d00",
    "same": "#555",
    "not measured": "#666",
    "not measurable here": "#666",
}
_E = html.escape


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def forest_plot(rows: Sequence[Mapping[str, Any]], *, width: int = 860) -> str:
    """Each measured claim as measured ÷ claimed with its 95 % CI, on a log axis: 1 is the
    claim; the side where a claim holds is shaded (right for "at least", left for "at most").

    ``rows``: mappings with ``claim``, ``claimed``, ``measured``, ``ci_low``, ``ci_high``,
    ``unit``, ``verdict`` and ``judge`` (``at_least`` / ``at_most``). Rows without a measured
    value or a claimed one are left out. Returns "" when none is left."""
    usable = [
        r
        for r in rows
        if not is_missing(r.get("measured"))
        and not is_missing(r.get("claimed"))
        and float(r["claimed"]) > 0
        and float(r["measured"]) > 0
    ]
    if not usable:
        return ""
    label_w, right_w, row_h, top = 330, 170, 26, 34
    plot_w = width - label_w - right_w
    points = []
    for r in usable:
        claimed = float(r["claimed"])
        m = float(r["measured"]) / claimed
        lo = float(r["ci_low"]) / claimed if not is_missing(r.get("ci_low")) else m
        hi = float(r["ci_high"]) / claimed if not is_missing(r.get("ci_high")) else m
        points.append((r, m, max(lo, 1e-12), max(hi, 1e-12)))
    logs = [math.log10(v) for _, m, lo, hi in points for v in (m, lo, hi)] + [0.0]
    lo_axis, hi_axis = math.floor(min(logs) - 0.15), math.ceil(max(logs) + 0.15)
    if hi_axis - lo_axis < 2:
        lo_axis, hi_axis = lo_axis - 1, hi_axis + 1

    def x(v: float) -> float:
        return label_w + (math.log10(v) - lo_axis) / (hi_axis - lo_axis) * plot_w

    height = top + row_h * len(points) + 40
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="system-ui,sans-serif" '
        'font-size="12"><title>Claims audit: measured ÷ claimed with 95 % CI, log axis</title>',
        f'<text x="{label_w}" y="14" fill="#333">measured ÷ claimed (log scale); '
        "1 = the claim; shaded: the side where the claim holds</text>",
    ]
    one = x(1.0)
    for i, (r, m, lo, hi) in enumerate(points):
        y = top + row_h * i + row_h / 2
        at_most = r.get("judge") == "at_most"
        good_x, good_w = (label_w, one - label_w) if at_most else (one, label_w + plot_w - one)
        parts.append(
            f'<rect x="{good_x:.1f}" y="{y - row_h / 2 + 2:.1f}" width="{good_w:.1f}" '
            f'height="{row_h - 4}" fill="#1b7f3b" opacity="0.07"/>'
        )
        colour = VERDICT_COLOURS.get(str(r.get("verdict")), "#333")
        unit = str(r.get("unit", ""))
        tip = (
            f"{r.get('claim')}: measured {quantity(r['measured'], unit)} "
            f"(95 % CI {interval(r.get('ci_low'), r.get('ci_high'), unit)}) vs claimed "
            f"{quantity(r['claimed'], unit)} — {r.get('verdict')}"
        )
        parts.append(f"<g><title>{_E(tip)}</title>")
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 4:.1f}" text-anchor="end" fill="#222">'
            f"{_E(_clip(str(r.get('claim', '')), 48))}</text>"
        )
        parts.append(
            f'<line x1="{x(lo):.1f}" x2="{x(hi):.1f}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="2.5"/>'
        )
        parts.append(f'<circle cx="{x(m):.1f}" cy="{y:.1f}" r="4.5" fill="{colour}"/>')
        parts.append(
            f'<text x="{label_w + plot_w + 8}" y="{y + 4:.1f}" fill="{colour}">'
            f"{_E(quantity(r['measured'], unit))} vs {_E(quantity(r['claimed'], unit))}</text></g>"
        )
    bottom = top + row_h * len(points)
    parts.append(
        f'<line x1="{one:.1f}" x2="{one:.1f}" y1="{top - 4}" y2="{bottom + 4}" stroke="#000" '
        'stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<line x1="{label_w}" x2="{label_w + plot_w}" y1="{bottom + 6}" y2="{bottom + 6}" '
        'stroke="#999"/>'
    )
    for k in range(lo_axis, hi_axis + 1):
        tx = x(10.0**k)
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{bottom + 6}" y2="{bottom + 11}" '
            'stroke="#999"/>'
            f'<text x="{tx:.1f}" y="{bottom + 25}" text-anchor="middle" fill="#555">'
            f"{_E(times(10.0**k))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(
    values: Sequence[float], *, width: int = 96, height: int = 22, unit: str = "x"
) -> str:
    """The last runs' values as a small line (log scale), the newest as a dot; "" for fewer
    than two values."""
    finite = [float(v) for v in values if not is_missing(v) and float(v) > 0]
    if len(finite) < 2:
        return ""
    logs = [math.log(v) for v in finite]
    low, high = min(logs), max(logs)
    span = high - low or 1.0
    pad = 3

    def xy(i: int, v: float) -> tuple[float, float]:
        px = pad + i * (width - 2 * pad) / (len(logs) - 1)
        py = height - pad - (v - low) / span * (height - 2 * pad)
        return px, py

    coords = [xy(i, v) for i, v in enumerate(logs)]
    path = " ".join(f"{px:.1f},{py:.1f}" for px, py in coords)
    tip = "last runs, oldest first: " + ", ".join(quantity(v, unit) for v in finite)
    lx, ly = coords[-1]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img"><title>{_E(tip)}</title>'
        f'<polyline points="{path}" fill="none" stroke="#4c72b0" stroke-width="1.5"/>'
        f'<circle cx="{lx:.1f}" cy="{ly:.1f}" r="2.5" fill="#dd8452"/></svg>'
    )
