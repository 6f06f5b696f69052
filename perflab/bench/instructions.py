"""Instructions per call, counted by valgrind: a figure a busy machine cannot move.

Why: time between separate runs drifts with the machine (under one CPU-bound neighbour this
2-core VM's speed wandered 15 % over minutes, so cross-run A/A verdicts on times stayed above
1 in 20 even with the history's run noise). The number of instructions a CPU-bound function
executes does not depend on what else runs: valgrind's count for the same binary, inputs and
environment is the same whether or not the other core is busy. CodSpeed judges benchmarks this
way. Its limits: it sees no waiting (I/O, locks, sleeps) and no cache or branch behaviour, so it
is the right figure for pure-Python and numeric code and the wrong one for anything that talks
to a server.

How: each count is the difference of two whole processes under ``valgrind --tool=cachegrind
--cache-sim=no`` (instruction counting only, the cheapest tool) that import the file, call the
function once (lazy imports, caches), and then call it ``n`` or 0 more times:
``(I(n) - I(0)) / n``. Start-up and import cost cancel, and no client request or C extension
is needed. Each replicate runs with its own ``PYTHONHASHSEED`` (dict and set layouts differ),
so the spread between replicates is real, if small. Counting runs ~50x slower than the code,
so ``n`` is sized to about ``budget`` seconds of native calls.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perflab.bench.result import Result
from perflab.errors import BenchmarkError, ConfigurationError

__all__ = ["SEEDS", "UNIT", "available", "count_calls", "count_file"]

UNIT = "instructions"
#: One replicate per hash seed.
SEEDS = (0, 1, 2)
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")

# The child: import the file, call once, then ``calls`` more times; valgrind counts it all.
_CHILD = """
import importlib.util, sys, time
path, name, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = importlib.util.spec_from_file_location("perflab_counted", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
fn = getattr(module, name)
fn()
if calls < 0:  # sizing: native seconds of one call, printed
    t0 = time.perf_counter(); fn(); print(time.perf_counter() - t0)
for _ in range(max(calls, 0)):
    fn()
"""


def available() -> str | None:
    """The valgrind executable, or None when it is not installed."""
    return shutil.which("valgrind")


def _valgrind() -> str:
    found = available()
    if found is None:
        raise ConfigurationError(
            "counting instructions needs valgrind: apt-get install valgrind (Debian/Ubuntu) "
            "or brew install valgrind",
            name="valgrind",
        )
    return found


def _child(path: Path, name: str, calls: int, seed: int, valgrind: str | None) -> str:
    argv = [sys.executable, "-c", _CHILD, str(path), name, str(calls)]
    if valgrind:
        argv = [
            valgrind,
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            *argv,
        ]
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("==")]
        raise BenchmarkError(
            f"{path}: {name}() failed while counting instructions: {(lines or ['(no output)'])[-1]}"
        )
    return done.stdout if not valgrind else done.stderr


def _instructions(path: Path, name: str, calls: int, seed: int, valgrind: str) -> int:
    found = _REFS.search(_child(path, name, calls, seed, valgrind))
    if found is None:
        raise BenchmarkError(f"valgrind printed no instruction count for {path}:{name}")
    return int(found.group(1).replace(",", ""))


def _calls_for(path: Path, name: str, budget: float) -> int:
    seconds = float(_child(path, name, -1, 0, None).split()[-1])
    return int(min(max(math.ceil(budget / max(seconds, 1e-9)), 3), 100_000))


def count_calls(
    path: str | Path,
    name: str,
    *,
    label: str | None = None,
    seeds: Sequence[int] = SEEDS,
    budget: float = 0.05,
    workers: int | None = None,
) -> Result:
    """Instructions per call of the function ``name`` (no arguments) in the file ``path``:
    one replicate per hash seed in ``seeds``. ``budget``: native seconds of calls counted per
    process. Counting processes run ``workers`` at a time (default: one per core; the counts do
    not depend on the load)."""
    file = Path(path).expanduser().absolute()
    valgrind = _valgrind()
    if not seeds:
        raise BenchmarkError("count_calls needs at least one seed")
    calls = _calls_for(file, name, budget)
    jobs = [(c, s) for s in seeds for c in (0, calls)]
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        counted = list(
            pool.map(lambda job: _instructions(file, name, job[0], job[1], valgrind), jobs)
        )
    per_call = [(counted[2 * i + 1] - counted[2 * i]) / calls for i in range(len(seeds))]
    if min(per_call) <= 0:
        raise BenchmarkError(
            f"{file}:{name}: {calls} calls added no instructions; is it a function that does "
            "its work when called?"
        )
    return Result(
        name=label or f"{file.stem}/{name.removeprefix('bench_')}",
        samples=np.asarray(per_call, dtype=float),
        replicates=(1,) * len(per_call),
        replicate_level="process",
        unit=UNIT,
        params={"calls": calls, "seeds": list(seeds), "tool": "valgrind cachegrind"},
        meta={"counting seconds": round(time.perf_counter() - t0, 1)},
    )


def count_file(path: str | Path, names: Sequence[str], **options: Any) -> list[Result]:
    """:func:`count_calls` for each function in ``names`` of the file ``path``, named as
    ``perflab bench FILE.py`` names its timings, with `` [instructions]`` added (a history
    follows a benchmark by name, and a count is not a time)."""
    file = Path(path).expanduser().absolute()
    return [
        count_calls(file, n, label=f"{file.stem}/{n.removeprefix('bench_')} [{UNIT}]", **options)
        for n in names
    ]
