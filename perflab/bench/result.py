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
from typing import Any

import numpy as np
import pandas as pd

from perflab.bench import stats
from perflab.errors import BenchmarkError

__all__ = ["FORMAT", "Result", "environment"]

FORMAT = 1
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
    """Samples of one benchmark: ``samples`` are ns per operation, one per timed sample."""

    name: str
    samples: np.ndarray
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
        samples.setflags(write=False)
        object.__setattr__(self, "samples", samples)

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    def summary(self) -> pd.Series:
        """n, mean, median, p50…p99.9, min, max, stdev, IQR, 95 % CI of the median, outliers,
        loops per sample (and throughput when concurrent), in the result's unit."""
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
        if self.throughput is not None:
            values["throughput"] = self.throughput
        return pd.Series(values, name=self.name)

    def hdr(self):  # -> hdrh.histogram.HdrHistogram
        """The HdrHistogram of every operation (per-operation runs only)."""
        if self.histogram is None:
            raise BenchmarkError(f"result {self.name!r} has no HDR histogram (not a per-op run)")
        from hdrh.histogram import HdrHistogram

        return HdrHistogram.decode(self.histogram.encode("ascii"))

    def to_frame(self) -> pd.DataFrame:
        """One row per sample: name, sample, value, unit, mode, concurrency."""
        return pd.DataFrame(
            {
                "name": self.name,
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
            "samples": self.samples.tolist(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        if data.get("format") != FORMAT:
            raise BenchmarkError(
                f"result {data.get('name')!r} has format {data.get('format')!r}; "
                f"this perflab reads format {FORMAT}"
            )
        try:
            return cls(
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
