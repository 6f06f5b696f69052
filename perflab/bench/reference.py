"""The machine's speed, timed beside every benchmark: a fixed reference loop of plain Python.

Why: on this kind of VM a process runs in one of two speeds, 1.6-1.8x apart, switching every
few seconds, quiet or not (measured: eight sequential processes timing ``sum(range(20000))``
read floors of 350 or 600 µs, nothing between). That dominates how much separate runs differ,
and no number of samples inside one run can tell a slow spell from slower code. A reference
loop timed in the same rounds is slowed by the same spell; a comparison that adjusts each
replicate's figure by its reference figure (:func:`perflab.bench.machine_speed.adjusted_ratio`) sees
the code's change and not the machine's. Measured on 6 runs x 8 processes here: the spread
between runs of ``sum(range(20000))`` fell from 18 % to 2 % (quiet) and from 9 % to 1.2 % (one
CPU-bound process beside); of a numpy convolution from 13 % to 0.7 %. Code that a spell slows
less than the reference (``np.sort`` 1.35x where the reference slowed 1.8x) is why the
adjustment estimates how strongly each benchmark follows the reference instead of dividing by
it. The same idea as duet benchmarking (Bulej et al., 2020: A and B run side by side so
interference hits both), with a fixed partner, so that separate runs can be compared.

The loop itself must never change between perflab versions that share a history: its figure
is only meaningful against itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

__all__ = ["SAMPLE_NS", "Reference", "kernel"]

SAMPLE_NS = 50_000  # one reference sample lasts about this long (5 % of a 1 ms target sample)
MAX_LOOPS = 1 << 10  # a clock that does not move (a test's) must not calibrate for ever
SHARE = 0.05  # after a long target sample, reference samples for up to this share of its time
MAX_REPEATS = 20  # ... but at most this many (1 ms) per target sample


def kernel() -> int:
    """The reference work: integer arithmetic, a small dict and a str conversion, the mix most
    Python code spends its time in. Do not change it (see the module docstring)."""
    counts: dict[int, int] = {}
    for i in range(100):
        counts[i & 63] = counts.get(i & 63, 0) + i
    return len(str(counts))


class Reference:
    """Times :func:`kernel` in short samples; :func:`perflab.bench.core.collect` takes one after
    every target sample, so sample i of each lies in the same spell of the machine."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.loops = self._calibrate()
        self.ns: list[float] = []  # ns per kernel call, one per target sample
        self._last = clock()  # when the previous reference sample ended

    def _time(self, loops: int) -> int:
        fn, now, it = kernel, self.clock, itertools.repeat(None, loops)
        t0 = now()
        for _ in it:
            fn()
        return now() - t0

    def _calibrate(self) -> int:
        self._time(1)  # warm
        loops = 1
        while loops < MAX_LOOPS:
            elapsed = self._time(loops)
            if elapsed >= SAMPLE_NS:
                return loops
            loops *= 2 if elapsed <= 0 else max(2, int(1.2 * SAMPLE_NS / elapsed))
        return loops

    def sample(self) -> None:
        """The reference speed beside the target sample that just ended (ns per kernel call).

        One reference sample after a short target sample; after a long one (a 170 ms call
        sampled three times per process) up to :data:`MAX_REPEATS`, the fastest of them kept:
        a single 50 µs sample per long sample left the speed of such a benchmark's processes
        so uncertain that a run whose reference read 1.05x slower ran every benchmark 1.11x
        slower, and an A/A pair was called slower."""
        since = self.clock() - self._last  # the target sample, and the loop around it
        repeats = max(1, min(MAX_REPEATS, int(since * SHARE / SAMPLE_NS)))
        self.ns.append(min(self._time(self.loops) for _ in range(repeats)) / self.loops)
        self._last = self.clock()
