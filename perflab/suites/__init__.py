"""Benchmark suites, registered by name (like papermill's engines). A suite is a function
``(quick: bool) -> list[bench.Result]``; built-in ones load on first use."""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perflab.bench import Result, environment
from perflab.errors import BenchmarkError, ConfigurationError

__all__ = [
    "Suite",
    "SuiteRun",
    "get",
    "load_results",
    "names",
    "register",
    "run_suite",
    "save_results",
]

_BUILTIN = {
    "harness": "perflab.suites.harness",
    "data": "perflab.suites.data",
    "concurrency": "perflab.suites.concurrency",
}
_REGISTRY: dict[str, Suite] = {}


@dataclasses.dataclass(frozen=True)
class SuiteRun:
    """What a suite produced: its results, and named figures that are not latencies (counts,
    ratios of self-checks) under ``checks``."""

    suite: str
    results: list[Result]
    checks: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    help: str
    fn: Callable[[bool], list[Result] | SuiteRun]


def register(name: str, help: str) -> Callable[[Callable], Callable]:
    """Decorator: make ``fn(quick) -> list[Result] | SuiteRun`` available as
    ``perflab bench NAME``."""

    def decorate(fn: Callable) -> Callable:
        _REGISTRY[name] = Suite(name, help, fn)
        return fn

    return decorate


def names() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def get(name: str) -> Suite:
    if name not in _REGISTRY and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _REGISTRY:
        raise ConfigurationError(
            f"unknown suite {name!r}; known suites: {', '.join(names())}", name="SUITE"
        )
    return _REGISTRY[name]


def run_suite(name: str, *, quick: bool = False) -> SuiteRun:
    suite = get(name)
    produced = suite.fn(quick)
    if isinstance(produced, SuiteRun):
        return produced
    return SuiteRun(suite=suite.name, results=list(produced))


def save_results(path: str | Path, run: SuiteRun) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "format": 1,
        "suite": run.suite,
        "meta": environment(),
        "checks": run.checks,
        "results": [r.to_dict() for r in run.results],
    }
    path.write_text(json.dumps(doc, default=str))
    return path


def load_results(path: str | Path) -> list[Result]:
    """Results from a suite file written by ``perflab bench --out`` (or one result's JSON)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise ConfigurationError(f"no such results file: {path}", name=str(path)) from err
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigurationError(f"cannot read results file {path}: {err}", name=str(path)) from err
    try:
        items = doc.get("results", [doc])
        return [Result.from_dict(item) for item in items]
    except (BenchmarkError, TypeError, KeyError) as err:
        raise ConfigurationError(f"{path} is not a perflab results file: {err}") from err
