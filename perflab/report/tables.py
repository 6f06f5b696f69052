"""Tables over results, shaped for reading: every cell a figure with its unit (through
:mod:`perflab.numbers`), labels on the left, and a plain sentence where the data cannot
support a figure (too few samples for a percentile)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from perflab.numbers import DASH, duration, interval, is_missing, percent, quantity, times

if TYPE_CHECKING:  # pandas loads when a table is built (~0.2 s off every command's start)
    import pandas as pd

__all__ = [
    "MIN_SAMPLES",
    "claims_styled",
    "claims_table",
    "comparisons_table",
    "figures_table",
    "hit_ratio_table",
    "latency_table",
    "readable",
    "styled",
]

# fewest samples for which a percentile means something: below these, the cell says so
MIN_SAMPLES = {"p50": 3, "p90": 10, "p99": 100}
_LEFT = [{"selector": "th, td", "props": [("text-align", "left")]}]


def styled(frame: pd.DataFrame, *, numeric: Sequence[str] = ()) -> Any:
    """A Styler: every cell HTML-escaped (a Styler does not escape unless asked), no index,
    text left-aligned, the ``numeric`` columns right-aligned."""
    style = frame.style.format(escape="html").hide(axis="index").set_table_styles(_LEFT)
    cols = [c for c in numeric if c in frame.columns]
    if cols:
        style = style.set_properties(
            subset=cols, **{"text-align": "right", "white-space": "nowrap"}
        )
    return style


def latency_table(frame: pd.DataFrame, *, value: str = "ns", by: str | None = None) -> pd.DataFrame:
    """n, mean, p50, p90, p99 and max of latencies in ``value`` (ns), each in the unit that
    reads best; a percentile with fewer samples than :data:`MIN_SAMPLES` says "n too small"."""
    import pandas as pd

    groups = frame.groupby(by, sort=False)[value] if by else [(value, frame[value])]
    rows = {}
    for label, series in groups:
        n = int(series.count())
        row: dict[str, str] = {"n": f"{n:,}", "mean": duration(series.mean())}
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            row[name] = (
                duration(series.quantile(q))
                if n >= MIN_SAMPLES[name]
                else f"n < {MIN_SAMPLES[name]}"
            )
        row["max"] = duration(series.max())
        rows[str(label)] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = by or "series"
    return table


def figures_table(
    rows: Sequence[Mapping[str, Any]] | pd.DataFrame, *, title: str = "measure"
) -> pd.DataFrame:
    """Labelled figures: one row per ``{label, value, ci_low, ci_high, unit, note}``, shown as
    ``measure | value | 95 % CI | note`` with units (a value that is not a number is shown as
    it is; no CI is a dash)."""
    import pandas as pd

    items = rows.to_dict(orient="records") if isinstance(rows, pd.DataFrame) else list(rows)
    out = []
    for r in items:
        unit = str(r.get("unit") or "")
        value = r.get("value")
        shown = str(value) if is_missing(value) and value is not None else quantity(value, unit)
        out.append(
            {
                title: str(r.get("label", "")),
                "value": shown,
                "95 % CI": interval(r.get("ci_low"), r.get("ci_high"), unit),
                "note": str(r.get("note") or ""),
            }
        )
    return pd.DataFrame(out, columns=[title, "value", "95 % CI", "note"])


def comparisons_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Headline comparisons (rows of ``report.headline_rows``): comparison, baseline →
    optimised, speedup with its 95 % CI, replicates, verdict."""
    import pandas as pd

    out = []
    for r in rows:
        reps = r.get("replicates") or ("?", "?")
        out.append(
            {
                "comparison": str(r["label"]),
                "baseline": str(r["baseline"]),
                "optimised": str(r["candidate"]),
                "speedup": times(r["speedup"]),
                "95 % CI": interval(r.get("ci_low"), r.get("ci_high"), "x"),
                "replicates": f"{reps[0]} vs {reps[1]}",
                "verdict": str(r.get("verdict", DASH)),
            }
        )
    return pd.DataFrame(out)


def claims_table(rows: Sequence[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """The claims audit for reading: claim, claimed, measured, 95 % CI (each with its unit),
    verdict, conditions."""
    import pandas as pd

    items = rows.to_dict(orient="records") if isinstance(rows, pd.DataFrame) else list(rows)
    out = []
    for r in items:
        unit = str(r.get("unit") or "")
        out.append(
            {
                "claim": str(r.get("claim", "")),
                "claimed": quantity(r.get("claimed"), unit),
                "measured": quantity(r.get("measured"), unit),
                "95 % CI": interval(r.get("ci_low"), r.get("ci_high"), unit),
                "verdict": str(r.get("verdict", "")),
                "conditions": str(r.get("conditions", "")),
            }
        )
    return pd.DataFrame(out)


# a column's unit read from its name, for frames that do not say (first match wins)
_NAMED_UNITS = (
    ((" ms", "_ms"), "ms"),
    ((" ns", "_ns"), "ns"),
    ((" us", "_us", " µs"), "µs"),
    (("seconds", " s"), "s"),
    (("req/s", "throughput", "_req_s"), "req/s"),
    (("speedup", "ratio", " x", "improvement"), "x"),
    (("failed", "fraction"), "fraction"),
    ((" mb", "_mb", "rss"), "MB"),
)


def readable(frame: pd.DataFrame, units: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``frame`` with every cell as text for reading, through :mod:`perflab.numbers`: each
    column in its unit (``units`` maps a column to one of ``ns µs ms s x % fraction`` or any
    label; otherwise the unit is read from the column's name: ``p99 ms``, ``throughput``,
    ``speedup``, ``failed``), whole numbers grouped, booleans as ``yes``/``no``, a missing
    value as a dash. Text stays as it is. What notebooks display instead of raw floats."""
    given = dict(units or {})
    out = frame.copy()
    for column in out.columns:
        unit = given.get(str(column), _unit_of(str(column)))
        out[column] = [_cell(value, unit) for value in out[column]]
    return out


def _unit_of(name: str) -> str:
    lowered = f" {name.lower()}"
    for endings, unit in _NAMED_UNITS:
        if any(lowered.endswith(e) or f"{e} " in lowered or (e[0] != " " and e in lowered)
               for e in endings):  # fmt: skip
            return unit
    return ""


def _cell(value: Any, unit: str) -> str:
    import numbers

    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "yes" if value else "no"
    if isinstance(value, str) or not isinstance(value, numbers.Number):
        return DASH if value is None else str(value)
    if is_missing(value):
        return DASH
    if unit == "fraction":
        return percent(value)
    if unit == "" and float(value).is_integer():
        return f"{int(value):,}"
    return quantity(value, unit)


def claims_styled(audit: pd.DataFrame) -> Any:
    """The claims audit as notebook 05 shows it: :func:`claims_table`, each verdict in the
    colour the forest plot and the index give it."""
    from perflab.report.svg import VERDICT_COLOURS

    return styled(claims_table(audit), numeric=["claimed", "measured", "95 % CI"]).map(
        lambda v: f"color: {VERDICT_COLOURS.get(v, 'inherit')}; font-weight: bold",
        subset=["verdict"],
    )


POLICIES = ("lru", "lfu", "fifo", "tinylfu", "belady")


def hit_ratio_table(checks: Mapping[str, Any]) -> pd.DataFrame:
    """The cache suite's ``hit/<trace>/<capacity>/<policy>`` checks as one row per trace and
    capacity, a column per policy (Belady's optimum last), each a percentage."""
    import pandas as pd

    rows = []
    for key, value in checks.items():
        parts = str(key).split("/")
        if len(parts) == 4 and parts[0] == "hit" and isinstance(value, int | float):
            rows.append({"trace": parts[1], "capacity": parts[2], "policy": parts[3], "v": value})
    if not rows:
        return pd.DataFrame(columns=["trace", "capacity", *POLICIES])
    table = pd.DataFrame(rows).pivot_table(
        index=["trace", "capacity"], columns="policy", values="v", sort=False
    )
    shown = [p for p in POLICIES if p in table.columns]
    return readable(table[shown].reset_index(), units=dict.fromkeys(shown, "fraction"))
