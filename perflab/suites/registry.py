"""The registry: suites by name (like papermill's engines), built-in ones loaded on first use,
a user's file of ``bench_*`` functions as a suite of its own, and running one."""

from __future__ import annotations

import contextlib
import importlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from perflab.errors import BenchmarkError, ConfigurationError
from perflab.suites.runs import Suite, SuiteRun

__all__ = ["BENCH_TIMEOUT", "from_file", "get", "names", "register", "run_suite", "set_timeout"]

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


def set_timeout(seconds: float | None) -> None:
    """The time limit of each ``bench_*`` function of a file suite (``--timeout``)."""
    global BENCH_TIMEOUT
    BENCH_TIMEOUT = seconds


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


def run_suite(name: str, *, quick: bool = False) -> SuiteRun:
    from perflab.progress import note

    suite = get(name)
    note(f"suite {suite.name}")
    produced = suite.fn(quick)
    if isinstance(produced, SuiteRun):
        return produced
    return SuiteRun(suite=suite.name, results=list(produced))
