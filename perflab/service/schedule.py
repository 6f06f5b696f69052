"""Decisions of the load generator, free of I/O: how an open-loop schedule is split between
generator processes, which round a request falls in, how connections are shared out, and
when a generator has to say that it (the client), not the server, was the limit."""

from __future__ import annotations

import numpy as np

__all__ = [
    "CPU_SATURATED",
    "LAG_LIMIT_NS",
    "LATE_LIMIT_NS",
    "intended_ns",
    "round_index",
    "scheduled_count",
    "split",
    "verdict",
]

CPU_SATURATED = 0.9  # a generator process busy ≥ 90 % of one core has no headroom left
# its event loop woke > 5 ms late (p99): a thread holding the GIL makes it wait for the
# interpreter's 5 ms switch interval; on a full 2-core machine a lean loop waits 1-4 ms for a
# core (reported as loop_lag_p99_ms either way)
LAG_LIMIT_NS = 5_000_000
LATE_LIMIT_NS = 1_000_000  # open loop: p99 of its own send lateness > 1 ms (wrk2's accuracy)


def split(total: int, parts: int) -> list[int]:
    """``total`` connections shared out between ``parts`` processes, as evenly as possible."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def scheduled_count(seconds: float, rate: float, parts: int = 1, part: int = 0) -> int:
    """How many of the ``int(seconds * rate)`` calls of a global schedule fall to ``part``:
    process ``p`` of ``P`` takes the calls ``p, p + P, p + 2P …``."""
    total = int(seconds * rate)
    return max(0, (total - part + parts - 1) // parts)


def intended_ns(j: int, rate: float, parts: int = 1, part: int = 0) -> int:
    """When the ``j``-th call of ``part`` is due, in ns after the common start: the global
    call ``part + j * parts`` of a schedule of ``rate`` calls per second."""
    return int((part + j * parts) * 1e9 / rate)


def round_index(t_ns: np.ndarray, start_ns: int, seconds: float, rounds: int) -> np.ndarray:
    """The round (0 … rounds-1) each time falls in, of ``rounds`` equal slices of the window
    from ``start_ns``; -1 outside the window (warm-up, or after its end)."""
    rel = (np.asarray(t_ns, dtype=np.int64) - start_ns) * rounds // int(seconds * 1e9)
    return np.where((rel >= 0) & (rel < rounds), rel, -1)


def verdict(
    *, cpu_fraction: float, lag_p99_ns: float, own_late_p99_ns: float | None
) -> tuple[bool, str]:
    """(saturated, reason): whether the generator's own limits shaped the figures. Its CPU
    use of one core, its event loop's lag, and (open loop) how late it sent the requests
    for which it had a free connection."""
    reasons = []
    if cpu_fraction >= CPU_SATURATED:
        reasons.append(f"a generator process was busy {cpu_fraction:.0%} of a core")
    if lag_p99_ns > LAG_LIMIT_NS:
        reasons.append(f"its event loop woke {lag_p99_ns / 1e6:.1f} ms late (p99)")
    if own_late_p99_ns is not None and own_late_p99_ns > LATE_LIMIT_NS:
        reasons.append(f"it sent requests {own_late_p99_ns / 1e6:.1f} ms late (p99)")
    return bool(reasons), "; ".join(reasons)
