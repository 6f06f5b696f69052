"""Numbers for people: one place that turns figures into text, used by every table and page.

Three significant figures, thousands grouped, never scientific notation (``1,000x``, ``281x``,
``0.667 µs``, ``961,000 rows/s``); durations in the unit that reads best; a missing value is a
dash. Plain functions over plain numbers (no perflab imports): the bottom layer."""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "DASH",
    "duration",
    "interval",
    "is_missing",
    "number",
    "percent",
    "quantity",
    "times",
]

DASH = "—"
_DURATIONS = (("s", 1e9), ("ms", 1e6), ("µs", 1e3), ("ns", 1.0))
_TO_NS = {"ns": 1.0, "us": 1e3, "µs": 1e3, "ms": 1e6, "s": 1e9}


def is_missing(value: Any) -> bool:
    """None, NaN, or not a number at all."""
    if value is None or isinstance(value, bool):
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def number(value: Any, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, grouped by thousands, no exponent.

    >>> number(1000.0), number(0.000667), number(961234), number(2.5)
    ('1,000', '0.000667', '961,000', '2.5')
    """
    if is_missing(value):
        return DASH
    x = float(value)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - magnitude)
    rounded = round(x, decimals) if decimals else _round_to(x, digits)
    text = f"{rounded:,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text.replace("-", "−")


def _round_to(x: float, digits: int) -> float:
    magnitude = math.floor(math.log10(abs(x)))
    factor = 10 ** (magnitude - digits + 1)
    return round(x / factor) * factor


def times(value: Any) -> str:
    """A ratio or speedup: ``1,000x``, ``281x``, ``0.61x``."""
    text = number(value)
    return text if text == DASH else f"{text}x"


def percent(value: Any, digits: int = 3) -> str:
    """A fraction as a percentage: 0.853 → ``85.3 %``."""
    if is_missing(value):
        return DASH
    return f"{number(float(value) * 100, digits)} %"


def duration(value: Any, unit: str = "ns") -> str:
    """A duration given in ``unit`` (ns, µs/us, ms, s), in the unit that reads best."""
    if is_missing(value):
        return DASH
    if unit not in _TO_NS:
        return quantity(value, unit)
    ns = float(value) * _TO_NS[unit]
    for name, scale in _DURATIONS:
        if abs(ns) >= scale or name == "ns":
            return f"{number(ns / scale)} {name}"
    raise AssertionError("unreachable")  # pragma: no cover


def quantity(value: Any, unit: str = "") -> str:
    """Any figure with its unit: a duration unit picks the best scale, ``x`` reads as a
    ratio, ``%`` as a percentage already scaled, anything else is number + unit."""
    if unit in _TO_NS:
        return duration(value, unit)
    if unit == "x":
        return times(value)
    text = number(value)
    if text == DASH or not unit:
        return text
    return f"{text} {unit}" if unit != "%" else f"{text} %"


def interval(low: Any, high: Any, unit: str = "") -> str:
    """A confidence interval, ``0.61–0.67x``; a dash when either end is missing or
    unbounded."""
    if is_missing(low) or is_missing(high) or math.isinf(float(low)) or math.isinf(float(high)):
        return DASH  # unbounded: the data gave no interval
    if unit in _TO_NS:
        return f"{duration(low, unit)} – {duration(high, unit)}"
    suffix = {"x": "x", "": "", "%": " %"}.get(unit, f" {unit}")
    return f"{number(low)}–{number(high)}{suffix}"
