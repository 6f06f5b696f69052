"""Suites in fresh worker processes, one after another, merged into one run whose replicates
are the processes (pyperf's model: a new interpreter has its own memory layout, hash seed and
luck with the scheduler, and that spread is what a separate run will see too)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from perflab import progress
from perflab.errors import BenchmarkError
from perflab.progress import CONTEXT_ENV
from perflab.suites.files import load_run
from perflab.suites.merging import merge_runs
from perflab.suites.runs import SuiteRun

__all__ = ["DEFAULT_PROCESSES", "run_in_processes"]

# Eight processes: with four, one slow-luck process widened the interval so far that a true 10 %
# slowdown between separate `perflab bench FILE.py` runs was called slower 5 times in 20; with
# eight, 20 in 20 and no A/A false verdict in 45 pairs (benchmarks/verdicts.py, quiet machine).
# Workers import no scipy.stats (~1.5 s each), so `perflab bench data --quick` stays near 30 s.
DEFAULT_PROCESSES = 8


def run_in_processes(
    name: str,
    *,
    quick: bool = False,
    processes: int = DEFAULT_PROCESSES,
    on_done: Callable[[int], None] | None = None,
    timeout: float | None = None,
) -> SuiteRun:
    """Run suite ``name`` (or a ``.py`` benchmark file) in ``processes`` fresh interpreters,
    sequentially (two at once on a small machine would measure each other), and merge them."""
    if processes < 1:
        raise BenchmarkError(f"processes must be at least 1, got {processes}")
    runs = []
    for i in range(processes):
        runs.append(_one(name, quick, timeout, context=f"process {i + 1}/{processes}"))
        if on_done is not None:
            on_done(i + 1)
    return runs[0] if processes == 1 else merge_runs(runs)


def _one(name: str, quick: bool, timeout: float | None = None, *, context: str = "") -> SuiteRun:
    with tempfile.TemporaryDirectory(prefix="perflab-bench-") as tmp:
        out = Path(tmp) / "run.json"
        argv = [sys.executable, "-m", "perflab", "bench", name, "--quiet", "--processes", "1"]
        argv += ["--out", str(out)] + (["--quick"] if quick else [])
        argv += ["--timeout", repr(timeout)] if timeout is not None else []
        env = {**os.environ, CONTEXT_ENV: context}  # its progress notes say which process
        progress.note(f"suite {name} ({context})")
        done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
        if done.returncode == 1 and out.is_file():  # some benchmarks failed: keep the rest
            return load_run(out)
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
            raise BenchmarkError(f"suite {name!r} failed in a worker process: {lines[-1]}")
        return load_run(out)
