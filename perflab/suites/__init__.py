"""Benchmark suites, registered by name (like papermill's engines). A suite is a function
``(quick: bool) -> list[bench.Result]`` (or a :class:`SuiteRun`); built-in ones load on first
use, and a user's file of ``bench_*`` functions is a suite too (:func:`from_file`).

A suite's named figures (``checks``) are plain values, or :func:`figure` dicts that carry a
confidence interval built from replicates — what the claims audit judges by."""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import math
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from perflab.bench import Result, environment
from perflab.errors import BenchmarkError, ConfigurationError

__all__ = [
    "AB_QUICK",
    "DEFAULT_PROCESSES",
    "Suite",
    "SuiteRun",
    "centre_figure",
    "figure",
    "figure_parts",
    "from_file",
    "get",
    "load_results",
    "load_run",
    "merge_runs",
    "names",
    "pair",
    "publish",
    "published",
    "ratio_figure",
    "register",
    "run_in_processes",
    "run_suite",
    "save_results",
]

FORMAT = 2
#: seconds a headline ``bench.ab`` may take in quick runs (full runs: its default); most answer
#: in well under a second, a pair whose two arms differ by about the threshold takes it all
AB_QUICK = 2.0

_BUILTIN = {
    "harness": "perflab.suites.harness",
    "data": "perflab.suites.data",
    "concurrency": "perflab.suites.concurrency",
    "cache": "perflab.suites.cache",
    "db": "perflab.suites.db",
    "api": "perflab.suites.api",
    "capacity": "perflab.suites.capacity",
}
_REGISTRY: dict[str, Suite] = {}


@dataclasses.dataclass(frozen=True)
class SuiteRun:
    """What a suite produced: its results, and named figures that are not latencies (counts,
    ratios of self-checks) under ``checks``."""

    suite: str
    results: list[Result]
    checks: dict[str, Any] = dataclasses.field(default_factory=dict)
    tables: dict[str, Any] = dataclasses.field(default_factory=dict)  # name -> DataFrame
    # benchmarks that raised (or exited) instead of finishing: name -> why; the others' results
    # are kept (one failing bench_ function once lost the whole file's results)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    help: str
    fn: Callable[[bool], list[Result] | SuiteRun]
    processes: int | None = None  # worker processes `perflab bench` uses (None: its default)
    path: Path | None = None  # a user's benchmark file (``perflab bench FILE.py``)
    functions: tuple[str, ...] = ()  # its bench_* functions, in file order


def register(
    name: str, help: str, *, processes: int | None = None
) -> Callable[[Callable], Callable]:
    """Decorator: make ``fn(quick) -> list[Result] | SuiteRun`` available as
    ``perflab bench NAME``. ``processes=1`` for a suite that already spreads its own work over
    processes or interleaved rounds (its figures would gain nothing from more copies)."""

    def decorate(fn: Callable) -> Callable:
        _REGISTRY[name] = Suite(name, help, fn, processes)
        return fn

    return decorate


def figure(value: float, low: float | None = None, high: float | None = None) -> dict[str, Any]:
    """A named figure with its 95 % confidence interval (``None`` bounds: not known)."""
    ci = None if low is None or high is None else [float(low), float(high)]
    return {"value": float(value), "ci": ci}


def ratio_figure(comparison: Any, *, speedup: bool = True) -> dict[str, Any]:
    """A comparison's speedup (baseline / candidate; ``speedup=False``: its ratio) as a figure."""
    c = comparison
    low, high = c.speedup_ci if speedup else (c.ci_low, c.ci_high)
    finite = math.isfinite(low) and math.isfinite(high) and low > 0
    return figure(c.speedup if speedup else c.ratio, *((low, high) if finite else (None, None)))


def centre_figure(result: Result, scale: float = 1.0) -> dict[str, Any]:
    """A result's centre (geometric mean of replicate medians) × ``scale``, with the CI that
    the spread between its replicates gives."""
    from perflab.bench import stats

    centre, low, high = stats.geometric_interval(result.replicate_medians)
    if low != low:  # one replicate: no interval
        return figure(centre * scale)
    return figure(centre * scale, low * scale, high * scale)


def figure_parts(value: Any) -> tuple[float | None, float | None, float | None]:
    """(value, CI low, CI high) of a check that is a number or a :func:`figure`; (None, …) for
    anything else (a string, a list)."""
    if isinstance(value, dict) and isinstance(value.get("value"), int | float):
        ci = value.get("ci") or [None, None]
        return float(value["value"]), ci[0], ci[1]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), None, None
    return None, None, None


def pair(comparison: Any, baseline_name: str, candidate_name: str) -> list[Result]:
    """Both sides of a ``bench.ab`` comparison as results with names of their own."""
    return [
        dataclasses.replace(comparison.baseline, name=baseline_name),
        dataclasses.replace(comparison.candidate, name=candidate_name),
    ]


def names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def get(name: str) -> Suite:
    """A suite by name, or the suite of a user's benchmark file when ``name`` ends in ``.py``."""
    if name.endswith(".py"):
        return from_file(name)
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _REGISTRY:
        raise ConfigurationError(
            f"unknown suite {name!r}; known suites: {', '.join(names())}", name="SUITE"
        )
    return _REGISTRY[name]


BENCH_TIMEOUT: float | None = None  # `perflab bench FILE.py --timeout`: per bench_* function


@contextlib.contextmanager
def time_limit(seconds: float | None, name: str) -> Iterator[None]:
    """Stop the block with a BenchmarkError after ``seconds`` (a SIGALRM timer: in the main
    thread, and where the code returns to Python or a system call; elsewhere no limit)."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise BenchmarkError(f"benchmark {name!r} timed out after {seconds:g} s (--timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def from_file(path: str | Path) -> Suite:
    """The benchmarks of a user's Python file as one suite named after the file: every
    module-level function named ``bench_*`` (no arguments) is timed with :func:`bench.run`, and
    every suite the file registers runs too. Raises :class:`ConfigurationError` (exit 2) naming
    the file when it is missing, does not import, or holds no benchmark."""
    import importlib.util

    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise ConfigurationError(
            f"no such benchmark file: {path} (give a .py file with bench_* functions)",
            name=str(path),
        )
    module_name = f"perflab_user_{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load {path} as Python", name=str(path))
    module = importlib.util.module_from_spec(spec)
    before = set(_REGISTRY)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise ConfigurationError(
            f"{path}: syntax error at line {err.lineno}: {err.msg}", name=str(path)
        ) from err
    except Exception as err:  # any import-time error of the user's file: named, re-raised
        raise ConfigurationError(
            f"{path}: importing it raised {type(err).__name__}: {err}", name=str(path)
        ) from err
    functions = {
        name: fn
        for name, fn in vars(module).items()
        if name.startswith("bench_")
        and callable(fn)
        and getattr(fn, "__module__", None) == module_name
    }
    registered = [_REGISTRY.pop(name) for name in sorted(set(_REGISTRY) - before)]
    if not functions and not registered:
        raise ConfigurationError(
            f"{path} defines no bench_* function and registers no suite; "
            "name the functions to time bench_something()",
            name=str(path),
        )
    label = path.stem

    def run(quick: bool) -> SuiteRun:
        from perflab import bench

        results, failed = [], {}
        for name, fn in functions.items():
            full = f"{label}/{name.removeprefix('bench_')}"
            try:
                with time_limit(BENCH_TIMEOUT, full):
                    results.append(bench.run(fn, name=full, min_time=0.3 if quick else None))
            except BenchmarkError as err:  # named by the harness; the rest still run
                failed[full] = str(err)
        checks: dict[str, Any] = {}
        for suite in registered:
            produced = suite.fn(quick)
            inner = (
                produced if isinstance(produced, SuiteRun) else SuiteRun(suite.name, list(produced))
            )
            results += inner.results
            checks.update({f"{suite.name}/{k}": v for k, v in inner.checks.items()})
        return SuiteRun(suite=label, results=results, checks=checks, failed=failed)

    return Suite(label, f"benchmarks in {path}", run, path=path, functions=tuple(functions))


def publish(run: SuiteRun, results_dir: str | Path | None = None) -> Path:
    """Save a suite run where this session's report looks for it: ``<results>/<suite>.json``
    (``PERFLAB_RESULTS``; ``perflab report`` gives each report a folder of its own)."""
    if results_dir is None:
        from perflab.settings import resolve

        results_dir = resolve().results_dir
    return save_results(Path(results_dir) / f"{run.suite}.json", run)


def published(results_dir: str | Path) -> dict[str, SuiteRun]:
    """Every suite run saved by :func:`publish` in ``results_dir``, by suite name."""
    return {path.stem: load_run(path) for path in sorted(Path(results_dir).glob("*.json"))}


def run_suite(name: str, *, quick: bool = False) -> SuiteRun:
    from perflab.progress import note

    suite = get(name)
    note(f"suite {suite.name}")
    produced = suite.fn(quick)
    if isinstance(produced, SuiteRun):
        return produced
    return SuiteRun(suite=suite.name, results=list(produced))


def save_results(path: str | Path, run: SuiteRun) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": FORMAT,
        "suite": run.suite,
        "meta": environment(),
        "checks": run.checks,
        "tables": {k: v.to_dict(orient="split") for k, v in run.tables.items()},
        "results": [r.to_dict() for r in run.results],
        "failed": run.failed,
    }
    path.write_text(json.dumps(doc, default=str))
    return path


def merge_runs(runs: list[SuiteRun]) -> SuiteRun:
    """One run from several (one per worker process): each process's samples become one
    replicate of the merged result, so comparisons judge by the spread *between* processes
    (memory layout, hash seeds, frequency), and each numeric check becomes a figure whose
    interval comes from the per-process values."""
    import numpy as np

    from perflab.bench import stats

    if not runs:
        raise BenchmarkError("nothing to merge")
    merged: list[Result] = []
    for first in runs[0].results:
        parts = [r for run in runs for r in run.results if r.name == first.name]
        histogram = None
        if all(p.histogram for p in parts):
            hist = parts[0].hdr()
            for p in parts[1:]:
                hist.add(p.hdr())
            histogram = hist.encode().decode("ascii")
        throughputs = [p.throughput for p in parts if p.throughput is not None]
        merged.append(
            dataclasses.replace(
                first,
                samples=np.concatenate([p.samples for p in parts]),
                replicates=tuple(p.samples.size for p in parts),
                replicate_level="process",
                rates=tuple(throughputs) if len(throughputs) == len(parts) else (),
                reference=_process_references(parts),
                loops=max(p.loops for p in parts),
                throughput=sum(throughputs) / len(throughputs) if throughputs else None,
                histogram=histogram,
                params={**first.params, "processes": len(parts)},
                meta={**first.meta, "noise": _worst_noise(parts)},
            )
        )
    checks: dict[str, Any] = {}
    for key in runs[0].checks:
        values = [figure_parts(run.checks[key])[0] for run in runs if key in run.checks]
        if values and all(v is not None for v in values) and len(values) > 1:
            checks[key] = figure(*stats.geometric_interval(values))
        else:
            checks[key] = runs[0].checks[key]
    tables = runs[0].tables  # tables describe one process's run; the first stands for all
    failed = {name: why for run in runs for name, why in run.failed.items()}
    merged = [r for r in merged if r.name not in failed]  # failed in some process: not judged
    return SuiteRun(runs[0].suite, merged, checks, tables, failed)


def _process_references(parts: list[Result]) -> Any:
    """The reference samples of every process, when every process timed them: a comparison
    can only adjust replicates that all carry them."""
    import numpy as np

    if not all(p.reference.size for p in parts):
        return ()
    return np.concatenate([p.reference for p in parts])


def _worst_noise(parts: list[Result]) -> dict[str, Any]:
    """The noisiest process's signs stand for the merged result (a busy spell in any process
    is a busy spell of the run)."""
    signs = [p.meta.get("noise") for p in parts if isinstance(p.meta.get("noise"), dict)]
    if not signs:
        return {}
    return max(signs, key=lambda s: s.get("other_cores") or 0.0)


def load_run(path: str | Path) -> SuiteRun:
    """A whole suite file (results and checks) written by ``save_results``."""
    doc = _read(path)
    import pandas as pd

    tables = {
        name: pd.DataFrame(t["data"], index=t["index"], columns=t["columns"])
        for name, t in (doc.get("tables") or {}).items()
    }
    return SuiteRun(
        suite=doc.get("suite", "?"),
        results=load_results(path),
        checks=doc.get("checks", {}),
        tables=tables,
        failed=dict(doc.get("failed") or {}),
    )


def _read(path: str | Path) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigurationError(f"no such results file: {path}", name=str(path)) from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigurationError(f"cannot read results file {path}: {err}", name=str(path)) from err
    if not isinstance(doc, dict):
        raise ConfigurationError(
            f"{path} is not a perflab results file: it holds a JSON {type(doc).__name__}, "
            "not an object (give a file written by perflab bench --out)",
            name=str(path),
        )
    return doc


def load_results(path: str | Path) -> list[Result]:
    """Results from a suite file written by ``perflab bench --out`` (or one result's JSON), or
    from a file pyperf, pytest-benchmark or asv wrote (:mod:`perflab.bench.foreign`)."""
    from perflab.bench import foreign

    doc = _read(path)
    if foreign.detect(doc):
        return list(foreign.read(doc, str(path)))
    items = doc.get("results", [doc])
    if not isinstance(items, list):
        raise ConfigurationError(
            f"{path} is not a perflab results file: 'results' is a {type(items).__name__}, "
            "not a list",
            name=str(path),
        )
    try:
        return [Result.from_dict(item) for item in items]
    except (BenchmarkError, TypeError, KeyError) as err:
        raise ConfigurationError(
            f"{path} is not a perflab results file: {err}", name=str(path)
        ) from err


# last: workers builds on SuiteRun, load_run and merge_runs above
from perflab.suites.workers import DEFAULT_PROCESSES, run_in_processes  # noqa: E402
