"""perflab's pytest plugin (entry point ``pytest11``): the ``perflab_bench`` fixture times a
callable with the harness, and options save the session's timings, compare them with a saved
run and fail the session only on a *conclusive* slowdown.

    def test_parse(perflab_bench):
        rows = perflab_bench(parse, TEXT)  # timed; returns parse(TEXT)
        assert len(rows) == 120

Each timed call runs in ``--perflab-processes`` forked processes (default 5), one after another;
each is one replicate (calibrated loops, ten rounds, the machine's reference speed beside each
sample: :func:`perflab.bench.run`), so a comparison with another session judges by the spread
between processes — the rounds of one process cannot stand for a run (a process here runs at
one of two speeds for its whole life). Forked children vary in what the machine does to them;
unlike fresh interpreters they share the parent's memory layout and hash seed.

Options (all off by default; without them the fixture times and reports, nothing more):

* ``--perflab-save FILE`` — a perflab results file (``perflab compare``, ``perflab history
  --add`` and notebook 06 read it);
* ``--perflab-history`` — also into the History (tagged ``pytest`` and ``run:pytest-<time>``, so
  ``history:latest:pytest`` names the newest session);
* ``--perflab-compare SIDE`` — compare with a results file, folder or ``history:latest:pytest``;
* ``--perflab-fail-slower`` — with ``--perflab-compare``: exit 1 when a benchmark is slower and
  the interval says so (never on "inconclusive"), naming it with its ratio and interval.

This module imports nothing heavy until a test asks for the fixture: every pytest session in an
environment with perflab installed loads it."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Bench", "perflab_bench"]

PROCESSES = 5
KEY = pytest.StashKey[dict[str, Any]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perflab", "perflab: timing with replicates and honest verdicts")
    group.addoption("--perflab-save", metavar="FILE", help="save the session's timings (JSON)")
    group.addoption(
        "--perflab-history", action="store_true", help="also add them to the perflab History"
    )
    group.addoption(
        "--perflab-compare",
        metavar="SIDE",
        help="compare with a results file, folder, or history:latest:pytest",
    )
    group.addoption(
        "--perflab-fail-slower",
        action="store_true",
        help="with --perflab-compare: fail when a benchmark is conclusively slower",
    )
    group.addoption(
        "--perflab-threshold", default="5%", metavar="PCT", help="smallest change (5%%)"
    )
    group.addoption(
        "--perflab-processes",
        type=int,
        default=PROCESSES,
        metavar="N",
        help=f"forked processes per timed call, each a replicate (default {PROCESSES})",
    )
    group.addoption(
        "--perflab-min-time",
        type=float,
        default=0.3,
        metavar="S",
        help="sampling seconds per process (default 0.3)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[KEY] = {"results": [], "lines": [], "failed": []}
    if config.getoption("perflab_processes") < 1:
        raise pytest.UsageError("--perflab-processes must be at least 1")
    if config.getoption("perflab_fail_slower") and not config.getoption("perflab_compare"):
        raise pytest.UsageError("--perflab-fail-slower needs --perflab-compare SIDE")
    _threshold(config)  # a bad value fails here, before any test runs
    save = config.getoption("perflab_save")
    if save and Path(save).is_dir():
        raise pytest.UsageError(f"--perflab-save {save} is a folder; give a .json file")
    side = config.getoption("perflab_compare")
    if side:  # read now: a bad side fails before any test runs, and history:latest is the last
        from perflab.errors import ConfigurationError  # session, never this one
        from perflab.report import load_side

        try:
            loaded = load_side(side)
        except ConfigurationError as err:
            raise pytest.UsageError(f"--perflab-compare: {err}") from None
        config.stash[KEY]["baseline"] = {r.name: r for r in loaded.results}


class Bench:
    """What ``perflab_bench`` hands a test: call it with a function and its arguments."""

    def __init__(self, name: str, config: pytest.Config) -> None:
        self.name = name
        self.config = config
        self.result: Any = None  # the perflab Result, once timed

    def __call__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Time ``fn(*args, **kwargs)`` and return what one call returns (the call made first,
        outside the timing, so a failing function fails the test with its own error)."""
        if self.result is not None:
            raise RuntimeError(f"perflab_bench times one callable per test ({self.name})")
        value = fn(*args, **kwargs)
        processes = self.config.getoption("perflab_processes")
        min_time = self.config.getoption("perflab_min_time")
        parts = [_forked(self.name, fn, args, kwargs, min_time) for _ in range(processes)]
        if len(parts) == 1:
            self.result = parts[0]
        else:
            from perflab import suites

            one = suites.merge_runs([suites.SuiteRun("pytest", [p]) for p in parts])
            self.result = one.results[0]
        self.config.stash[KEY]["results"].append(self.result)
        return value


@pytest.fixture
def perflab_bench(request: pytest.FixtureRequest) -> Bench:
    """Times a callable with perflab's harness: ``perflab_bench(fn, *args, **kwargs)``."""
    return Bench(request.node.nodeid, request.config)


def _forked(name: str, fn: Callable[..., Any], args: tuple, kwargs: dict, min_time: float) -> Any:
    """One replicate: ``bench.run`` in a forked child, its Result back through a pipe."""
    from perflab.bench import Result, run

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: time, send, leave without running pytest's exit handlers
        code = 0
        try:
            os.close(read_end)
            done = run(lambda: fn(*args, **kwargs), name=name, min_time=min_time, progress=False)
            data = done.to_json().encode()
        except BaseException as err:  # noqa: BLE001 - reported to the parent, never raised on:
            # a forked child that went on would run the rest of the pytest session twice
            data = json.dumps({"error": f"{type(err).__name__}: {err}"}).encode()
            code = 1
        with os.fdopen(write_end, "wb") as out:
            out.write(data)
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    doc = json.loads(data or b'{"error": "the timing process died"}')
    if "error" in doc:
        raise RuntimeError(f"perflab_bench {name}: {doc['error']}")
    return Result.from_dict(doc)


def _threshold(config: pytest.Config) -> float:
    text = str(config.getoption("perflab_threshold")).strip()
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise pytest.UsageError(f"--perflab-threshold {text!r} is not a number like 5%") from None
    if not 0 < value < 10:
        raise pytest.UsageError(f"--perflab-threshold {text!r} must be above 0 and below 1000%")
    return value


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(KEY, None)
    if not state or not state["results"]:
        return
    config = session.config
    results = state["results"]
    side = config.getoption("perflab_compare")
    if side:
        _compare(config, side, results, state)
    save = config.getoption("perflab_save")
    if save:
        from perflab import suites

        path = suites.save_results(save, suites.SuiteRun("pytest", list(results)))
        state["lines"].append(f"perflab: saved {len(results)} timings to {path}")
    if config.getoption("perflab_history"):
        from perflab.bench import History

        run_tag = "run:pytest-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        store = History()
        try:
            for r in results:
                store.save(r, tags=["pytest", run_tag])
        finally:
            store.close()
        state["lines"].append(f"perflab: added to the history at {store.location} ({run_tag})")
    if state["failed"] and session.exitstatus == 0:
        session.exitstatus = 1


def _compare(config: pytest.Config, side: str, results: list, state: dict) -> None:
    from perflab.bench import compare

    before = state["baseline"]
    limit = _threshold(config)
    lines = state["lines"]
    lines.append(f"perflab: compared with {side} (threshold {limit:.0%})")
    for r in results:
        if r.name not in before:
            lines.append(f"  {r.name}: not in {side}")
            continue
        c = compare(before[r.name], r, threshold=limit)
        lines.append(
            f"  {r.name}: {c.ratio:.3f}x [{c.ci_low:.3f}, {c.ci_high:.3f}] {c.verdict}"
            + (f" ({'; '.join(c.notes)})" if c.notes else "")
        )
        if c.verdict == "slower" and config.getoption("perflab_fail_slower"):
            state["failed"].append(
                f"{r.name} is slower: {c.ratio:.3f}x the baseline, 95% CI "
                f"[{c.ci_low:.3f}, {c.ci_high:.3f}]"
            )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(KEY, None)
    if not state or not state["results"]:
        return
    from perflab.numbers import duration

    terminalreporter.section("perflab")
    for r in state["results"]:
        terminalreporter.write_line(
            f"{r.name}: {duration(r.center)} per call, "
            f"{r.n_replicates} {r.replicate_level} replicates"
        )
    for line in state["lines"]:
        terminalreporter.write_line(line)
    for line in state["failed"]:
        terminalreporter.write_line(f"perflab: FAILED: {line}", red=True)
