"""Before/after for anyone's benchmarks: two sides (results files, report folders or History
selections) compared benchmark by benchmark with ``bench.compare``, and one self-contained
page: a summary table, an ECDF overlay per benchmark (inline SVG), both runs' metadata side by
side, and a warning when the two sides came from different machines or versions.

The sides come from :mod:`perflab.report.sides` (``load_side``).
"""

from __future__ import annotations

import dataclasses
import html
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from perflab.bench import Result, compare
from perflab.errors import ConfigurationError
from perflab.numbers import DASH, interval, quantity, times
from perflab.report.html import STYLE
from perflab.report.sides import Side, load_ab, load_side
from perflab.report.sides import key as _key
from perflab.report.svg import VERDICT_COLOURS

__all__ = [
    "Side",
    "before_after",
    "before_after_table",
    "compare_page",
    "ecdf_svg",
    "environment_differences",
    "load_ab",
    "load_side",
    "metadata_table",
    "most_changed",
    "only_on_one_side",
    "shared_notes",
    "verdict_line",
]

_E = html.escape
_MACHINE = ("cpu", "cpus", "platform")
_VERSIONS = ("python", "implementation", "perflab")


def environment_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Sentences for each way the two sides' machines or versions differ (empty: alike)."""
    out = []
    machine = [k for k in _MACHINE if k in a and k in b and a[k] != b[k]]
    if machine:
        pairs = "; ".join(f"{k}: {a[k]} vs {b[k]}" for k in machine)
        out.append(f"The two runs came from different machines ({pairs}).")
    versions = [k for k in _VERSIONS if k in a and k in b and a[k] != b[k]]
    libs_a, libs_b = a.get("libraries") or {}, b.get("libraries") or {}
    versions += [f"{k}" for k in sorted(set(libs_a) & set(libs_b)) if libs_a[k] != libs_b[k]]
    if versions:

        def both(k: str) -> str:
            x = a.get(k, libs_a.get(k)) if k in a else libs_a.get(k)
            y = b.get(k, libs_b.get(k)) if k in b else libs_b.get(k)
            return f"{k}: {x} vs {y}"

        out.append(
            "The two runs used different versions (" + "; ".join(both(k) for k in versions) + ")."
        )
    return out


def before_after(
    baseline: Side,
    candidate: Side,
    *,
    threshold: float = 0.05,
    run_noise: Callable[[str], Any] | None = None,
) -> list[Any]:
    """``bench.compare`` for every benchmark on both sides (matched by name, a URL's
    host:port ignored), in the candidate's order. ``run_noise``: name → how much separate
    runs of it differ (``History.run_noise``), as ``perflab compare`` passes it."""
    base = {_key(r.name): r for r in baseline.results}
    out = []
    for r in candidate.results:
        b = base.get(_key(r.name))
        if b is not None and b.unit == r.unit:
            noise = run_noise(r.name) if run_noise else None
            out.append(
                compare(
                    dataclasses.replace(b, name=r.name), r, threshold=threshold, run_noise=noise
                )
            )
    return out


def only_on_one_side(baseline: Side, candidate: Side) -> tuple[list[str], list[str]]:
    a = {_key(r.name) for r in baseline.results}
    b = {_key(r.name) for r in candidate.results}
    return sorted(a - b), sorted(b - a)


def ecdf_svg(
    baseline: Result, candidate: Result, *, width: int = 520, height: int = 170, points: int = 200
) -> str:
    """Both sides' samples as empirical CDFs on a log time axis (inline SVG, ~4 kB)."""
    series = []
    for r in (baseline, candidate):
        v = np.sort(np.asarray(r.samples, dtype=float))
        v = v[v > 0]
        if v.size > points:
            v = v[np.linspace(0, v.size - 1, points).astype(int)]
        series.append(v)
    if any(s.size == 0 for s in series):
        return ""
    lo = math.log10(min(s[0] for s in series))
    hi = math.log10(max(s[-1] for s in series))
    if hi - lo < 0.05:
        lo, hi = lo - 0.05, hi + 0.05
    left, right, top, bottom = 8, 8, 8, 30
    pw, ph = width - left - right, height - top - bottom

    def x(v: float) -> float:
        return left + (math.log10(v) - lo) / (hi - lo) * pw

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" font-family="system-ui,sans-serif" '
        'font-size="11"><title>ECDF of both sides (log time axis)</title>'
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>'
    ]
    for q in (0.5, 0.9):
        y = top + ph * (1 - q)
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left + 2}" y="{y - 2:.1f}" fill="#999">p{int(q * 100)}</text>'
        )
    for v, colour in zip(series, ("#4c72b0", "#dd8452"), strict=True):
        n = v.size
        pts = []
        for i, value in enumerate(v):
            px = x(value)
            pts.append(f"{px:.1f},{top + ph * (1 - i / n):.1f}")
            pts.append(f"{px:.1f},{top + ph * (1 - (i + 1) / n):.1f}")
        parts.append(
            f'<polyline points="{" ".join(pts)}" fill="none" stroke="{colour}" stroke-width="1.8"/>'
        )
    unit = baseline.unit
    for k in range(5):
        value = 10 ** (lo + (hi - lo) * k / 4)
        tx = x(value)
        anchor = "start" if k == 0 else "end" if k == 4 else "middle"
        parts.append(
            f'<text x="{tx:.1f}" y="{height - 14}" text-anchor="{anchor}" fill="#555">'
            f"{_E(quantity(value, unit))}</text>"
        )
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 2}" text-anchor="middle" fill="#777">'
        "time per operation (log); y: fraction of samples at or below</text></svg>"
    )
    return "".join(parts)


def metadata_table(baseline: Side, candidate: Side) -> str:
    """Both sides' metadata side by side; rows that differ are marked."""
    keys = [
        "timestamp", "git", "perflab", "python", "implementation", "platform", "cpu", "cpus",
        "loadavg",
    ]  # fmt: skip
    libs = sorted(
        set(baseline.meta.get("libraries") or {}) | set(candidate.meta.get("libraries") or {})
    )
    rows = []

    def cell(meta: Mapping[str, Any], key: str) -> str:
        if key.startswith("lib:"):
            value = (meta.get("libraries") or {}).get(key[4:])
        else:
            value = meta.get(key)
        if isinstance(value, list):
            value = ", ".join(quantity(v) for v in value)
        return DASH if value is None else str(value)

    for key in keys + [f"lib:{k}" for k in libs]:
        a, b = cell(baseline.meta, key), cell(candidate.meta, key)
        if a == DASH and b == DASH:
            continue
        differs = a != b and key not in ("timestamp", "loadavg", "git")
        mark = ' class="differs"' if differs else ""
        rows.append(
            f"<tr{mark}><th>{_E(key.removeprefix('lib:'))}</th><td>{_E(a)}</td>"
            f"<td>{_E(b)}</td></tr>"
        )
    return (
        "<table class=meta><tr><th></th><th>baseline</th><th>candidate</th></tr>"
        f"{''.join(rows)}</table>"
    )


def _verdict(c: Any) -> str:
    colour = VERDICT_COLOURS.get(c.verdict, "#333")
    return f'<b style="color:{colour}">{_E(c.verdict)}</b>'


def compare_page(
    baseline: Side,
    candidate: Side,
    *,
    threshold: float = 0.05,
    title: str | None = None,
    run_noise: Callable[[str], Any] | None = None,
) -> str:
    """One self-contained HTML page: before/after of every benchmark on both sides."""
    comparisons = before_after(baseline, candidate, threshold=threshold, run_noise=run_noise)
    if not comparisons:
        raise ConfigurationError(
            f"{baseline.label} and {candidate.label} share no benchmark names; nothing to compare",
            name=candidate.label,
        )
    title = title or "Before / after"
    warn = "".join(
        f'<p class="warn">{_E(w)} Ratios across machines or versions measure the difference '
        "in both, not only in the code.</p>"
        for w in environment_differences(baseline.meta, candidate.meta)
    )
    counts: dict[str, int] = {}
    for c in comparisons:
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
    tally = ", ".join(f"{n} {_E(v)}" for v, n in counts.items())
    summary = "".join(
        f'<tr><td><a href="#b{i}">{_E(c.name)}</a></td>'
        f'<td class="num">{_E(quantity(c.baseline.figure, c.baseline.unit))}</td>'
        f'<td class="num">{_E(quantity(c.candidate.figure, c.candidate.unit))}</td>'
        f'<td class="num"><b>{_E(times(c.ratio))}</b><br><span class="ci">95 % CI '
        f"{_E(interval(c.ci_low, c.ci_high, 'x'))}</span></td>"
        f"<td>{_verdict(c)}</td>"
        f'<td class="num">{c.replicates[0]} vs {c.replicates[1]}</td></tr>'
        for i, c in enumerate(comparisons)
    )
    sections = []
    for i, c in enumerate(comparisons):
        params = {**c.baseline.params, **c.candidate.params}
        shown = (
            "<p class=muted>parameters: "
            + ", ".join(f"{_E(str(k))} = {_E(str(v))}" for k, v in params.items())
            + "</p>"
            if params
            else ""
        )
        sections.append(
            f'<section id="b{i}"><h3>{_E(c.name)}</h3>{shown}'
            f"<p>{_verdict(c)}: candidate ÷ baseline = <b>{_E(times(c.ratio))}</b> "
            f'<span class="ci">(95 % CI {_E(interval(c.ci_low, c.ci_high, "x"))})</span></p>'
            f'<p class=legend><span style="color:#4c72b0">━ baseline</span> '
            f"({_E(quantity(c.baseline.figure, c.baseline.unit))}, "
            f"{c.baseline.samples.size:,} samples) "
            f'<span style="color:#dd8452">━ candidate</span> '
            f"({_E(quantity(c.candidate.figure, c.candidate.unit))}, "
            f"{c.candidate.samples.size:,} samples)</p>"
            f"{ecdf_svg(c.baseline, c.candidate)}</section>"
        )
    said = shared_notes(comparisons)
    notes = (
        "<h2>Notes</h2><ul>" + "".join(f"<li>{_E(n)}</li>" for n in said) + "</ul>" if said else ""
    )
    gone, new = only_on_one_side(baseline, candidate)
    lonely = ""
    if gone or new:
        lonely = (
            "<h2>Only on one side</h2><ul>"
            + "".join(f"<li><code>{_E(n)}</code>: only in the baseline</li>" for n in gone)
            + "".join(f"<li><code>{_E(n)}</code>: only in the candidate</li>" for n in new)
            + "</ul>"
        )
    style = STYLE + "tr.differs td{background:#fff4e5}section{margin:1.2rem 0}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_E(title)}</title>'
        f"<style>{style}</style></head><body><h1>{_E(title)}</h1>"
        f"<p>baseline <code>{_E(baseline.label)}</code> → candidate "
        f"<code>{_E(candidate.label)}</code>: {len(comparisons)} benchmarks, {tally} "
        f"(threshold {_E(quantity(threshold * 100, '%'))}).</p>{warn}"
        "<table><tr><th>benchmark</th><th>baseline</th><th>candidate</th>"
        "<th>ratio (candidate ÷ baseline; below 1 faster)</th><th>verdict</th>"
        f"<th>replicates</th></tr>{summary}</table>"
        f"{notes}<h2>Per benchmark</h2>{''.join(sections)}{lonely}"
        f"<h2>The two runs</h2>{metadata_table(baseline, candidate)}</body></html>"
    )


def before_after_table(comparisons: Sequence[Any]) -> Any:
    """The comparisons for reading: benchmark, baseline, candidate, ratio (candidate ÷
    baseline) with its 95 % CI, verdict, replicates per side."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "benchmark": c.name,
                "baseline": quantity(c.baseline.figure, c.baseline.unit),
                "candidate": quantity(c.candidate.figure, c.candidate.unit),
                "ratio": times(c.ratio),
                "95 % CI": interval(c.ci_low, c.ci_high, "x"),
                "verdict": c.verdict,
                "replicates": f"{c.replicates[0]} vs {c.replicates[1]}",
            }
            for c in comparisons
        ],
        columns=["benchmark", "baseline", "candidate", "ratio", "95 % CI", "verdict", "replicates"],
    )


def most_changed(comparisons: Sequence[Any], n: int) -> list[Any]:
    """The ``n`` comparisons whose ratio moved furthest from 1 (either way)."""
    return sorted(comparisons, key=lambda c: -abs(math.log(c.ratio)) if c.ratio > 0 else 0)[:n]


def verdict_line(c: Any) -> str:
    """``faster: 0.502x (95 % CI 0.496–0.508x)`` — the verdict and ratio, without the notes."""
    return f"{c.verdict}: {times(c.ratio)} (95 % CI {interval(c.ci_low, c.ci_high, 'x')})"


def shared_notes(comparisons: Sequence[Any]) -> list[str]:
    """Every distinct note and reason a verdict was inconclusive, once each, in the order first
    met (said once above the plots, not per plot); busy-machine notes become one count per
    side."""
    seen: list[str] = []
    busy = {"baseline": [], "candidate": []}
    for c in comparisons:
        text = c.explanation
        if c.notes:  # the explanation is the verdict's sentence, then the notes
            text = text[: -len("; ".join(c.notes)) - 2]
        reason = [text] if c.verdict == "inconclusive" else []
        for text in reason + list(c.notes):
            side = re.match(
                r"the (baseline|candidate) ran on a busy machine: .*?([\d.]+) CPU", text
            )
            if side:
                busy[side.group(1)].append(float(side.group(2)))
            elif text not in seen:
                seen.append(text)
    for label, cores in busy.items():
        if cores:
            seen.append(
                f"the {label} ran on a busy machine in {len(cores)} of {len(comparisons)} "
                f"benchmarks (other processes used up to {max(cores):.1f} CPU cores meanwhile); "
                "rerun both on a quiet machine before trusting a small change"
            )
    return seen
