"""Results are data: immutable, a versioned JSON format, tidy pandas views."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import subprocess
import time
from importlib import metadata as _metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perflab.bench import stats
from perflab.errors import BenchmarkError

if TYPE_CHECKING:  # pandas loads where a frame is built (~0.2 s a start-up saved)
    import pandas as pd

__all__ = ["FORMAT", "LEVELS", "Result", "environment"]

# 2: samples grouped into replicates; 3: the machine's reference speed per replicate.
# Files of formats 1 and 2 still load (without a reference; comparisons then judge unadjusted).
FORMAT = 3
READABLE = (1, 2, 3)
LEVELS = ("round", "process", "run", "pair")
_LIBRARIES = ("numpy", "pandas", "scipy", "redis", "sqlalchemy", "psycopg", "cachebox", "theine")


def _git_revision() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return None
    return done.stdout.strip() or None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Where and when a measurement was taken: versions, CPU, load, git revision, time."""
    import perflab

    libraries = {}
    for name in _LIBRARIES:
        try:
            libraries[name] = _metadata.version(name)
        except _metadata.PackageNotFoundError:
            continue
    return {
        "perflab": perflab.__version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "git": _git_revision(),
        "libraries": libraries,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class Result:
    """Samples of one benchmark: ``samples`` are ns per operation, one per timed sample.

    ``replicates`` splits the samples into consecutive groups that vary independently of each
    other: worker processes, rounds of one run, or whole runs (``replicate_level`` says which).
    Comparisons draw their uncertainty from the spread between replicates, never from the
    number of samples. An empty ``replicates`` means the samples are one replicate. ``rates``
    holds each replicate's throughput (operations/s) where one was measured. ``reference``
    holds the machine's reference speed beside each sample (ns per call of
    :func:`perflab.bench.reference.kernel`, timed right after it), empty where none was taken."""

    name: str
    samples: np.ndarray
    replicates: tuple[int, ...] = ()
    replicate_level: str = "run"  # round | process | run | pair (interleaved: bench.ab)
    rates: tuple[float, ...] = ()
    # (any sequence is taken; it is kept as an array, empty where no reference was timed)
    reference: np.ndarray = dataclasses.field(default_factory=lambda: np.empty(0))
    loops: int = 1
    unit: str = "ns"
    mode: str = "sync"  # sync | async | threads | tasks
    concurrency: int = 1
    throughput: float | None = None  # operations per second (concurrent runs)
    histogram: str | None = None  # every latency, as an encoded HdrHistogram (per-op runs)
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples, dtype=float)
        if samples.ndim != 1 or samples.size == 0:
            raise BenchmarkError(f"benchmark {self.name!r} has no samples")
        # one NaN made every statistic NaN and a 3x regression compare "inconclusive" (exit 0
        # at a CI gate); a negative duration is no measurement either: refused, never carried
        bad = ~np.isfinite(samples) | (samples < 0)
        if bad.any():
            i, n = int(np.flatnonzero(bad)[0]), int(bad.sum())
            raise BenchmarkError(
                f"benchmark {self.name!r}: sample {i} is {float(samples[i])!r} ({n} of "
                f"{samples.size} samples are not finite durations >= 0); re-run it"
            )
        samples.setflags(write=False)
        object.__setattr__(self, "samples", samples)
        sizes = tuple(int(n) for n in self.replicates)
        if sizes and (sum(sizes) != samples.size or min(sizes) < 1):
            raise BenchmarkError(
                f"benchmark {self.name!r}: replicate sizes {list(sizes)} do not split its "
                f"{samples.size} samples"
            )
        object.__setattr__(self, "replicates", sizes if len(sizes) > 1 else ())
        object.__setattr__(self, "rates", tuple(float(r) for r in self.rates))
        speeds = np.asarray(self.reference, dtype=float).ravel()
        if speeds.size and (speeds.size != samples.size or speeds.min() <= 0):
            raise BenchmarkError(
                f"benchmark {self.name!r}: {speeds.size} reference samples for "
                f"{samples.size} samples (one positive figure beside each sample)"
            )
        speeds.setflags(write=False)
        object.__setattr__(self, "reference", speeds)
        if self.replicate_level not in LEVELS:
            raise BenchmarkError(
                f"benchmark {self.name!r}: replicate_level must be one of {', '.join(LEVELS)}"
            )

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def replicate_medians(self) -> np.ndarray:
        """One median per replicate (a single value when the samples are one replicate)."""
        return stats.replicate_medians(self.samples, self.replicates)

    @property
    def n_replicates(self) -> int:
        return max(1, len(self.replicates))

    @property
    def center(self) -> float:
        """The geometric mean of the replicate medians: the typical figure shown to people."""
        return float(np.exp(np.mean(np.log(np.maximum(self.replicate_medians, 1e-300)))))

    @property
    def statistic(self) -> str:
        """What comparisons judge each replicate by: ``"floor"`` (its lower decile) for
        calibrated loops, ``"median"`` for per-operation latency distributions.

        Why a floor for loops: on a shared machine interference only ever adds time, and here
        it comes in spells that last whole processes (a process ran 1.7x slower for all of its
        0.3 s in about one of four; measured with ``benchmarks/verdicts.py``), so medians of
        separate runs differ by the luck of the draw. The lower decile is the code's own
        speed (timeit's docs advise the minimum for the same reason), still robust to a few
        odd samples. Latency distributions are the point of per-operation runs: their median
        is compared."""
        return "median" if self.histogram is not None or self.concurrency > 1 else "floor"

    @property
    def replicate_figures(self) -> np.ndarray:
        """One figure per replicate, by :attr:`statistic`."""
        if self.statistic == "median":
            return self.replicate_medians
        return stats.replicate_quantiles(self.samples, self.replicates, 10.0)

    @property
    def reference_figures(self) -> np.ndarray:
        """The machine's reference speed per replicate, by the same statistic and the same
        samples as :attr:`replicate_figures` (empty when no reference was timed)."""
        if not self.reference.size:
            return self.reference
        if self.statistic == "median":
            return stats.replicate_medians(self.reference, self.replicates)
        return stats.replicate_quantiles(self.reference, self.replicates, 10.0)

    @property
    def figure(self) -> float:
        """The geometric mean of :attr:`replicate_figures` (every replicate)."""
        return float(np.exp(np.mean(np.log(np.maximum(self.replicate_figures, 1e-300)))))

    @property
    def judged_figure(self) -> float:
        """The run's figure as ``compare`` judges it, computed here only: for calibrated loops
        the geometric mean of the replicate floors left after contended ones are set aside
        (``stats.set_aside_contended``: one slow-luck worker process must not move a whole
        run's figure), else :attr:`figure`. What the history stores and judges, what re-runs
        add to it and what the report's headlines show."""
        if self.statistic != "floor":
            return self.figure
        kept, _ = stats.set_aside_contended(self.replicate_figures, stray=stats.STRAY)
        return float(np.exp(np.mean(np.log(np.maximum(kept, 1e-300)))))

    @property
    def speed(self) -> float | None:
        """The machine's reference speed over the run (geometric mean of its replicates' ns per
        reference call), None where none was timed."""
        figures = self.reference_figures
        return float(np.exp(np.mean(np.log(figures)))) if figures.size else None

    def summary(self) -> pd.Series:
        """n, mean, median, p50…p99.9, min, max, stdev, IQR, 95 % CI of the median, outliers,
        loops per sample (and throughput when concurrent), in the result's unit."""
        import pandas as pd

        values = stats.summarize(self.samples)
        if self.histogram is not None:
            # every operation, not only the kept samples: HDR's 3 significant digits
            hist = self.hdr()
            values["n"] = hist.get_total_count()
            values["mean"] = hist.get_mean_value()
            values["stdev"] = hist.get_stddev()
            values["min"], values["max"] = hist.get_min_value(), hist.get_max_value()
            for p in stats.PERCENTILES:
                values[f"p{p:g}"] = hist.get_value_at_percentile(p)
            values["median"] = values["p50"]
        values["loops"] = self.loops
        values["replicates"] = self.n_replicates
        if self.throughput is not None:
            values["throughput"] = self.throughput
        return pd.Series(values, name=self.name)

    def hdr(self) -> Any:  # an hdrh.histogram.HdrHistogram
        """The HdrHistogram of every operation (per-operation runs only)."""
        if self.histogram is None:
            raise BenchmarkError(f"result {self.name!r} has no HDR histogram (not a per-op run)")
        from hdrh.histogram import HdrHistogram

        return HdrHistogram.decode(self.histogram.encode("ascii"))

    def to_frame(self) -> pd.DataFrame:
        """One row per sample: name, replicate, sample, value, unit, mode, concurrency."""
        import pandas as pd

        sizes = self.replicates or (self.samples.size,)
        return pd.DataFrame(
            {
                "name": self.name,
                "replicate": np.repeat(np.arange(len(sizes)), sizes),
                "sample": np.arange(self.samples.size),
                "value": self.samples,
                "unit": self.unit,
                "mode": self.mode,
                "concurrency": self.concurrency,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "unit": self.unit,
            "mode": self.mode,
            "concurrency": self.concurrency,
            "loops": self.loops,
            "throughput": self.throughput,
            "histogram": self.histogram,
            "params": self.params,
            "meta": self.meta,
            "replicates": list(self.replicates),
            "replicate_level": self.replicate_level,
            "rates": list(self.rates),
            "reference": self.reference.tolist(),
            "samples": self.samples.tolist(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        if not isinstance(data, dict):
            raise BenchmarkError(f"not a perflab result: a JSON {type(data).__name__}")
        if data.get("format") not in READABLE:
            raise BenchmarkError(
                f"result {data.get('name')!r} has format {data.get('format')!r}; "
                f"this perflab reads formats {', '.join(map(str, READABLE))}"
            )
        try:
            return cls(
                # format 1 kept no replicates: its samples are one replicate, one run
                replicates=tuple(data.get("replicates") or ()),
                replicate_level=data.get("replicate_level", "run"),
                rates=tuple(data.get("rates") or ()),
                reference=np.asarray(data.get("reference") or (), dtype=float),
                name=data["name"],
                samples=np.asarray(data["samples"], dtype=float),
                loops=int(data.get("loops", 1)),
                unit=data.get("unit", "ns"),
                mode=data.get("mode", "sync"),
                concurrency=int(data.get("concurrency", 1)),
                throughput=data.get("throughput"),
                histogram=data.get("histogram"),
                params=dict(data.get("params") or {}),
                meta=dict(data.get("meta") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise BenchmarkError(f"not a perflab result: {err}") from err

    @classmethod
    def from_json(cls, text: str) -> Result:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as err:
            raise BenchmarkError(f"not a perflab result (invalid JSON: {err})") from err
