"""Results other tools wrote, read as perflab results: pyperf JSON, pytest-benchmark JSON and
asv result files. Each reader keeps what the file knows about independence, and says what it
does not know, so a comparison never claims more certainty than the file holds:

* **pyperf** — each run is one worker process (pyperf's design): a *process* replicate, exactly
  as ``perflab bench`` makes them. Calibration runs (no values) and warm-ups are left out.
* **pytest-benchmark** — one process; with ``--benchmark-save-data`` the samples, cut into ten
  *rounds* of consecutive samples (as ``bench.run`` cuts its own); without it only a summary
  (its median), marked ``summary_only``: one figure per side, so a comparison says so and
  cannot be conclusive.
* **asv** — with ``--record-samples`` the samples (rounds as above), else the result (asv's
  median) as a summary. Only ``time_*`` benchmarks are durations; the others (``track_``,
  ``mem_``, ``peakmem_``) are left out and named in ``left_out``.

:func:`to_pyperf` writes perflab results in pyperf's format (each process replicate a run).
Values are seconds per operation in all three tools; perflab keeps nanoseconds."""

from __future__ import annotations

import datetime
import itertools
import math
import platform
from collections.abc import Mapping
from typing import Any

import numpy as np

from perflab.bench.result import Result
from perflab.errors import ConfigurationError

__all__ = ["FORMATS", "Foreign", "detect", "read", "runs_as_replicates", "to_pyperf"]

FORMATS = ("pyperf", "pytest-benchmark", "asv")
ROUNDS = 10  # consecutive groups a one-process sample list is cut into (as bench.run's rounds)


class Foreign(list[Result]):
    """The results read from another tool's file: a list of :class:`Result`, with the tool's
    name in ``tool`` and what was left out (name → why) in ``left_out``."""

    def __init__(self, tool: str, results: list[Result], left_out: dict[str, str]) -> None:
        super().__init__(results)
        self.tool = tool
        self.left_out = left_out


def detect(doc: Mapping[str, Any]) -> str | None:
    """The tool that wrote ``doc`` (a parsed JSON object), or None for anything else."""
    listed = doc.get("benchmarks")
    if (
        isinstance(listed, list)
        and str(doc.get("version", "")).startswith("1.")
        and all(isinstance(b, dict) and "runs" in b for b in listed)
    ):
        return "pyperf"
    if isinstance(listed, list) and "machine_info" in doc:
        return "pytest-benchmark"
    if isinstance(doc.get("results"), dict) and "commit_hash" in doc:
        return "asv"
    return None


def read(doc: Mapping[str, Any], label: str) -> Foreign:
    """Results from a pyperf, pytest-benchmark or asv document; ``label`` names the file in
    errors. Raises :class:`ConfigurationError` when the document is damaged or holds nothing."""
    tool = detect(doc)
    readers = {"pyperf": _pyperf, "pytest-benchmark": _pytest_benchmark, "asv": _asv}
    if tool is None:
        raise ConfigurationError(f"{label} is not a pyperf, pytest-benchmark or asv file")
    try:
        results, left_out = readers[tool](doc)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise ConfigurationError(
            f"{label} looks like a {tool} file but cannot be read ({type(err).__name__}: {err}); "
            f"give the file {tool} wrote, unedited",
            name=label,
        ) from err
    if not results:
        why = "; ".join(f"{k}: {v}" for k, v in list(left_out.items())[:3])
        raise ConfigurationError(
            f"{label} ({tool}) holds no timing perflab can compare" + (f" ({why})" if why else ""),
            name=label,
        )
    return Foreign(tool, results, left_out)


# pyperf -------------------------------------------------------------------------------------
def _pyperf(doc: Mapping[str, Any]) -> tuple[list[Result], dict[str, str]]:
    common = dict(doc.get("metadata") or {})
    results, left_out = [], {}
    for bench in doc["benchmarks"]:
        meta = {**common, **(bench.get("metadata") or {})}
        name = str(meta.get("name") or "pyperf")
        if meta.get("unit", "second") != "second":
            left_out[name] = f"unit {meta.get('unit')!r}, not a duration"
            continue
        runs = [run for run in bench["runs"] if run.get("values")]  # calibration runs: none
        if not runs:
            left_out[name] = "no run with values (calibration only)"
            continue
        values = [float(v) for run in runs for v in run["values"]]
        first = runs[0].get("metadata") or {}
        results.append(
            Result(
                name=name,
                samples=np.array(values) * 1e9,
                replicates=tuple(len(run["values"]) for run in runs) if len(runs) > 1 else (),
                replicate_level="process",
                loops=int({**meta, **first}.get("loops", 1)),
                meta={
                    "tool": "pyperf",
                    "python": meta.get("python_version"),
                    "cpu": meta.get("cpu_model_name"),
                    "date": _iso(first.get("date") or meta.get("date")),
                    "tool_version": meta.get("perf_version") or meta.get("pyperf_version"),
                },
            )
        )
    return results, left_out


def to_pyperf(results: list[Result]) -> dict[str, Any]:
    """perflab results as a pyperf JSON document (version 1.0): one benchmark per result, one
    run per replicate (its samples the run's values, in seconds). ``pyperf show`` and
    ``pyperf compare_to`` read it."""
    benchmarks = []
    for r in results:
        sizes = r.replicates or (r.samples.size,)
        bounds = list(itertools.accumulate(sizes))
        runs = []
        for start, end in zip([0, *bounds[:-1]], bounds, strict=True):
            values = [float(v) / 1e9 for v in r.samples[start:end]]
            runs.append({"metadata": {"loops": int(r.loops)}, "values": values})
        meta = {"name": r.name, "unit": "second", "loops": int(r.loops)}
        if r.meta.get("python"):
            meta["python_version"] = str(r.meta["python"])
        benchmarks.append({"metadata": meta, "runs": runs})
    common = {"hostname": platform.node(), "platform": platform.platform()}
    return {"version": "1.0", "metadata": common, "benchmarks": benchmarks}


# pytest-benchmark ---------------------------------------------------------------------------
def _pytest_benchmark(doc: Mapping[str, Any]) -> tuple[list[Result], dict[str, str]]:
    machine = doc.get("machine_info") or {}
    commit = doc.get("commit_info") or {}
    meta = {
        "tool": "pytest-benchmark",
        "python": machine.get("python_version"),
        "cpu": (machine.get("cpu") or {}).get("brand_raw"),
        "git": commit.get("id"),
        "date": _iso(doc.get("datetime")),
        "tool_version": doc.get("version"),
    }
    results = []
    for bench in doc["benchmarks"]:
        stats = bench["stats"]
        name = str(bench.get("fullname") or bench["name"])
        data = stats.get("data")
        if data:
            loops = int(stats.get("iterations") or 1)
            params = dict(bench.get("params") or {})
            results.append(_in_rounds(name, data, meta, loops=loops, params=params))
        else:
            results.append(_summary(name, float(stats["median"]) * 1e9, meta, "pytest-benchmark"))
    return results, {}


# asv ----------------------------------------------------------------------------------------
def _asv(doc: Mapping[str, Any]) -> tuple[list[Result], dict[str, str]]:
    columns = list(doc.get("result_columns") or ["result", "params"])
    machine = doc.get("params") or {}
    meta = {
        "tool": "asv",
        "python": doc.get("python"),
        "cpu": machine.get("cpu"),
        "git": doc.get("commit_hash"),
        "date": _iso(doc.get("date")),
        "tool_version": f"results format {doc.get('version')}",
    }
    results, left_out = [], {}
    for name, row in doc["results"].items():
        short = name.rsplit(".", 1)[-1]
        if not short.startswith("time_"):
            left_out[name] = "not a time_ benchmark (asv tracks other units there)"
            continue
        if not isinstance(row, list):
            raise TypeError(f"result of {name} is a {type(row).__name__}, not a list")
        cells = dict(zip(columns, row, strict=False))
        values = cells.get("result")
        if values is None:  # asv records a failed benchmark as null
            left_out[name] = "asv recorded no result (it failed or was skipped)"
            continue
        params = cells.get("params") or []
        combos = list(itertools.product(*params)) if params else [()]
        samples = cells.get("samples") or [None] * len(combos)
        for i, combo in enumerate(combos):
            label = name + (f"({', '.join(map(str, combo))})" if combo else "")
            value = values[i] if isinstance(values, list) else values
            if value is None or (isinstance(value, float) and math.isnan(value)):
                left_out[label] = "no result for this parameter set"
                continue
            raw = samples[i] if i < len(samples) else None
            if raw:
                params = {"asv_params": list(map(str, combo))} if combo else {}
                results.append(_in_rounds(label, raw, meta, params=params))
            else:
                results.append(_summary(label, float(value) * 1e9, meta, "asv"))
    return results, left_out


# shared -------------------------------------------------------------------------------------
def _summary(name: str, median_ns: float, meta: Mapping[str, Any], tool: str) -> Result:
    """A file without samples: its median alone, marked so comparisons say what it is."""
    hint = {
        "pytest-benchmark": "pytest --benchmark-save-data",
        "asv": "asv run --record-samples",
    }[tool]
    return Result(
        name=name,
        samples=np.array([median_ns]),
        replicate_level="run",
        meta={
            **meta,
            "summary_only": f"{tool} saved a summary, no samples (save them with {hint})",
        },
    )


def _in_rounds(
    name: str,
    seconds: list[Any],
    meta: Mapping[str, Any],
    *,
    loops: int = 1,
    params: dict[str, Any] | None = None,
) -> Result:
    """One process's samples (seconds each): ten rounds of consecutive samples."""
    samples = np.array([float(v) for v in seconds]) * 1e9
    return Result(
        name=name,
        samples=samples,
        replicates=_rounds(samples.size),
        replicate_level="round",
        loops=loops,
        params=params or {},
        meta=dict(meta),
    )


def _rounds(n: int) -> tuple[int, ...]:
    """``n`` consecutive samples in ``ROUNDS`` groups (fewer when there are fewer samples)."""
    groups = min(ROUNDS, n)
    if groups < 2:
        return ()
    base, extra = divmod(n, groups)
    return tuple(base + (1 if i < extra else 0) for i in range(groups))


def _iso(value: Any) -> str | None:
    """A date as ISO text: pyperf and pytest-benchmark write ISO, asv milliseconds since 1970."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value / 1000, datetime.UTC).isoformat()
    return str(value)


def runs_as_replicates(files: list[list[Result]]) -> list[Result]:
    """Several files of one tool's runs (a folder of pytest-benchmark or pyperf files): a
    benchmark found in more than one becomes one result whose replicates are the runs, so a
    comparison judges by the spread between runs. Names found once pass through unchanged."""
    by_name: dict[str, list[Result]] = {}
    for results in files:
        for r in results:
            by_name.setdefault(r.name, []).append(r)
    merged = []
    for name, parts in by_name.items():
        if len(parts) == 1:
            merged.append(parts[0])
            continue
        meta = dict(parts[0].meta)
        if any(p.meta.get("summary_only") for p in parts):
            meta["summary_only"] = (
                f"{len(parts)} runs, each a summary (its median, no samples): judged by those"
            )
        merged.append(
            Result(
                name=name,
                samples=np.concatenate([p.samples for p in parts]),
                replicates=tuple(p.samples.size for p in parts),
                replicate_level="run",
                loops=max(p.loops for p in parts),
                params=dict(parts[0].params),
                meta={**meta, "runs": len(parts)},
            )
        )
    return merged
