"""Memory and CPU profiles of a piece of work."""

from __future__ import annotations

import contextlib
import cProfile
import dataclasses
import os
import pstats
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from perflab.errors import BenchmarkError

__all__ = [
    "CpuProfile",
    "MemoryTimeline",
    "MemoryUsage",
    "cpu_profile",
    "memory",
    "memory_timeline",
    "profile",
]


@dataclasses.dataclass
class MemoryUsage:
    """Filled in when the ``with bench.memory()`` block ends."""

    peak_rss_mib: float = 0.0  # highest resident set size seen (sampled), whole process
    start_rss_mib: float = 0.0
    tracemalloc_peak_mib: float = 0.0  # peak of Python allocations made inside the block

    @property
    def rss_growth_mib(self) -> float:
        return self.peak_rss_mib - self.start_rss_mib


@contextlib.contextmanager
def memory(interval: float = 0.005) -> Iterator[MemoryUsage]:
    """Peak RSS (memory-profiler's reading of this process, sampled every ``interval`` s in a
    thread) and the tracemalloc peak of the block."""
    from memory_profiler import memory_usage

    def rss() -> float:  # MiB, the highest reading over one interval
        return float(memory_usage(-1, interval=interval, timeout=interval, max_usage=True))

    usage = MemoryUsage(start_rss_mib=rss())
    usage.peak_rss_mib = usage.start_rss_mib
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            usage.peak_rss_mib = max(usage.peak_rss_mib, rss())

    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    sampler = threading.Thread(target=sample, name="perflab-memory", daemon=True)
    sampler.start()
    try:
        yield usage
    finally:
        stop.set()
        sampler.join()
        usage.peak_rss_mib = max(usage.peak_rss_mib, rss())
        usage.tracemalloc_peak_mib = tracemalloc.get_traced_memory()[1] / 2**20
        if not was_tracing:
            tracemalloc.stop()


def profile(fn: Callable[[], Any], *, top: int = 20, repeat: int = 1) -> pd.DataFrame:
    """cProfile ``fn`` (called ``repeat`` times); the ``top`` functions by cumulative time."""
    if not callable(fn):
        raise BenchmarkError(f"profile: {fn!r} is not callable")
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        for _ in range(repeat):
            fn()
    finally:
        profiler.disable()
    rows = []
    table = pstats.Stats(profiler).stats  # type: ignore[attr-defined]  # (not in typeshed)
    for (path, line, func), (cc, nc, tt, ct, _) in table.items():
        rows.append(
            {
                "function": func,
                "where": f"{os.path.basename(path)}:{line}",
                "calls": nc,
                "primitive_calls": cc,
                "total_s": tt,
                "cumulative_s": ct,
            }
        )
    frame = pd.DataFrame(rows).sort_values("cumulative_s", ascending=False)
    return frame.head(top).reset_index(drop=True)


# ------------------------------------------------------------------------ pictures of a profile


@dataclasses.dataclass(frozen=True)
class CpuProfile:
    """Sampled call stacks of a piece of work (py-spy): ``stacks`` maps a stack (outermost
    frame first, each ``"function (file:line)"``) to how many samples caught it."""

    stacks: dict[tuple[str, ...], int]
    rate: int  # samples per second asked of py-spy
    seconds: float  # wall time of the profiled work
    calls: int  # how many times the work ran

    @property
    def samples(self) -> int:
        return sum(self.stacks.values())

    def top(self, n: int = 10) -> pd.DataFrame:
        """Functions by the share of samples they were on the stack (``total``) and on top of
        it (``self``)."""
        total: dict[str, int] = {}
        own: dict[str, int] = {}
        for stack, count in self.stacks.items():
            for frame in set(stack):
                total[frame] = total.get(frame, 0) + count
            own[stack[-1]] = own.get(stack[-1], 0) + count
        n_all = max(1, self.samples)
        frame = pd.DataFrame(
            {
                "function": list(total),
                "total %": [100 * total[f] / n_all for f in total],
                "self %": [100 * own.get(f, 0) / n_all for f in total],
            }
        )
        return frame.sort_values("total %", ascending=False).head(n).reset_index(drop=True)


_MARK = "_perflab_profiled"


def _perflab_profiled(fn: Callable[[], Any], min_seconds: float) -> tuple[float, int]:
    """Call ``fn`` until ``min_seconds`` have passed; the frame profiles are trimmed at."""
    import time

    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return elapsed, calls


def _py_spy() -> str:
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise BenchmarkError(
            "cpu_profile needs py-spy (pip install py-spy): it samples this process from outside"
        )
    return found


ATTACH_SECONDS = 30.0  # how long cpu_profile waits for py-spy to start sampling


def cpu_profile(fn: Callable[[], Any], *, min_seconds: float = 0.5, rate: int = 250) -> CpuProfile:
    """Profile ``fn`` with py-spy attached to this process (``--nonblocking``: the process is
    never paused, so the work runs at ~its own speed): ``fn`` is called until ``min_seconds``
    have passed, and only stacks under that call are kept.

    Why py-spy: it samples from outside, so it costs the profiled code ~5 % at 200–250 Hz,
    where pyinstrument's in-process hooks doubled a per-row Python loop (0.19 → 0.40 s here);
    its collapsed stacks draw as a flame graph of a few kilobytes (``report.flame_graph``)."""
    import signal
    import subprocess
    import tempfile
    from pathlib import Path

    if not callable(fn):
        raise BenchmarkError(f"cpu_profile: {fn!r} is not callable")
    with tempfile.TemporaryDirectory(prefix="perflab-pyspy-") as tmp:
        out = Path(tmp) / "stacks.txt"
        spy = subprocess.Popen(
            [_py_spy(), "record", "--pid", str(os.getpid()), "--rate", str(int(rate)),
             "--format", "raw", "--function", "--nonblocking", "--output", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        said = _attached(spy, ATTACH_SECONDS)  # the work starts once py-spy samples
        if spy.poll() is not None:
            raise BenchmarkError(
                "py-spy could not attach to this process: "
                f"{(said + (spy.stderr.read() if spy.stderr else '')).strip()[:300]} (it needs "
                "ptrace: run as root, or set kernel.yama.ptrace_scope to 0)"
            )
        try:
            seconds, calls = _perflab_profiled(fn, min_seconds)
        finally:
            spy.send_signal(signal.SIGINT)
            try:
                printed, err = spy.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                printed, err = spy.communicate()
        if not out.exists():
            said = " ".join((said + printed + err).split())
            raise BenchmarkError(f"py-spy wrote no profile: {said[:300]}")
        stacks = _trimmed(out.read_text())
    return CpuProfile(stacks=stacks, rate=int(rate), seconds=seconds, calls=calls)


def _attached(spy: Any, timeout: float) -> str:
    """What py-spy printed (stdout and stderr) until it said it is sampling, exited, or
    ``timeout`` passed.

    A fixed pause was not enough: on a loaded CI runner py-spy was still attaching after 0.3 s,
    the work and the SIGINT came first, and it wrote no profile at all. (py-spy says
    "Sampling process …" on stdout, within ~20 ms here.)"""
    import select
    import time

    said = ""
    deadline = time.monotonic() + timeout
    while spy.poll() is None and "Sampling process" not in said:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        ready, _, _ = select.select([spy.stdout, spy.stderr], [], [], min(remaining, 0.1))
        for stream in ready:
            said += stream.readline()
    return said


def _trimmed(raw: str) -> dict[tuple[str, ...], int]:
    """Collapsed stacks (``a;b;c 12``) cut below the profiled call; others dropped."""
    stacks: dict[tuple[str, ...], int] = {}
    for line in raw.splitlines():
        text, _, count = line.rpartition(" ")
        if not text or not count.isdigit():
            continue
        frames = text.split(";")
        marks = [i for i, f in enumerate(frames) if f.startswith(_MARK + " ")]
        if not marks or marks[-1] + 1 >= len(frames):
            continue
        kept = tuple(_short(f) for f in frames[marks[-1] + 1 :])
        stacks[kept] = stacks.get(kept, 0) + int(count)
    return stacks


def _short(frame: str) -> str:
    """``func (/long/path/pkg/mod.py:12)`` → ``func (pkg/mod.py:12)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    parts = where.replace("\\", "/").split("/")
    return f"{name} ({'/'.join(parts[-2:])})" if where else name


@dataclasses.dataclass(frozen=True)
class MemoryTimeline:
    """Resident memory of this process while a piece of work ran (memory-profiler)."""

    seconds: tuple[float, ...]  # since the work started
    mib: tuple[float, ...]

    @property
    def peak_mib(self) -> float:
        return max(self.mib)

    @property
    def peak_at(self) -> float:
        return self.seconds[self.mib.index(self.peak_mib)]

    @property
    def start_mib(self) -> float:
        return self.mib[0]


def memory_timeline(fn: Callable[[], Any], *, interval: float = 0.01) -> MemoryTimeline:
    """Sample this process's RSS every ``interval`` s while ``fn`` runs (memory-profiler's
    ``memory_usage`` with timestamps)."""
    from memory_profiler import memory_usage

    if not callable(fn):
        raise BenchmarkError(f"memory_timeline: {fn!r} is not callable")
    readings = memory_usage(
        (fn, (), {}), interval=interval, timestamps=True, include_children=False
    )
    if not readings:
        raise BenchmarkError("memory_timeline: memory-profiler took no reading")
    t0 = readings[0][1]
    return MemoryTimeline(
        seconds=tuple(float(t - t0) for _, t in readings),
        mib=tuple(float(m) for m, _ in readings),
    )
