"""Instructions per call, counted by valgrind: a figure a busy machine cannot move.

Why: time between separate runs drifts with the machine (under one CPU-bound neighbour this
2-core VM's speed wandered 15 % over minutes, so cross-run A/A verdicts on times stayed above
1 in 20 even with the history's run noise). The number of instructions a CPU-bound function
executes does not depend on what else runs: valgrind's count for the same binary, inputs and
environment is the same whether or not the other core is busy, and so is how many calls are
counted: that number comes from valgrind's count of one call, never from a clock. CodSpeed
judges benchmarks this way. Its limits: it sees no waiting (I/O, locks, sleeps) and no cache
or branch behaviour, so it is the right figure for pure-Python and numeric code and the wrong
one for anything that talks to a server.

How: each count is the difference of two whole processes under ``valgrind --tool=cachegrind
--cache-sim=no`` (instruction counting only, the cheapest tool) that import the file, call the
function once (lazy imports, caches), and then call it ``n`` or 0 more times:
``(I(n) - I(0)) / n``. Start-up and import cost cancel, and no client request or C extension
is needed. Each replicate runs with its own ``PYTHONHASHSEED`` (dict and set layouts differ),
so the spread between replicates is real, if small. Counting runs ~50x slower than the code,
so ``n`` is sized to about ``target`` instructions (10^8, ~0.05 s of native calls here) from
the count of one call, ``I(1) - I(0)`` of the first seed: the same ``n`` on any machine and
under any load (it was sized by a clock once, and a loaded runner counting fewer calls read
0.8 % more per call: the interpreter's warm-up was spread over fewer of them).
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

__all__ = ["SEEDS", "TARGET", "UNIT", "available", "count_calls", "count_file"]

UNIT = "instructions"
#: One replicate per hash seed.
SEEDS = (0, 1, 2)
#: Instructions of calls counted per process (beyond start-up and the first call).
TARGET = 100_000_000
_MAX_CALLS = 100_000
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")

# The child: import the file, call once, then ``calls`` more times; valgrind counts it all.
_CHILD = """
import importlib.util, sys
path, name, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
spec = importlib.util.spec_from_file_location("perflab_counted", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
fn = getattr(module, name)
fn()
for _ in range(calls):
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


def _child(path: Path, name: str, calls: int, seed: int, valgrind: str) -> str:
    """valgrind's report (stderr) of a child that calls ``name`` 1 + ``calls`` times."""
    argv = [
        valgrind,
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        *[sys.executable, "-c", _CHILD, str(path), name, str(calls)],
    ]
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if not ln.startswith("==")]
        raise BenchmarkError(
            f"{path}: {name}() failed while counting instructions: {(lines or ['(no output)'])[-1]}"
        )
    return done.stderr


def _instructions(path: Path, name: str, calls: int, seed: int, valgrind: str) -> int:
    found = _REFS.search(_child(path, name, calls, seed, valgrind))
    if found is None:
        raise BenchmarkError(f"valgrind printed no instruction count for {path}:{name}")
    return int(found.group(1).replace(",", ""))


def count_calls(
    path: str | Path,
    name: str,
    *,
    label: str | None = None,
    seeds: Sequence[int] = SEEDS,
    target: int = TARGET,
    calls: int | None = None,
    workers: int | None = None,
) -> Result:
    """Instructions per call of the function ``name`` (no arguments) in the file ``path``:
    one replicate per hash seed in ``seeds``. Each process counts ``calls`` calls (default:
    as many as make about ``target`` instructions, from the count of one call). Counting
    processes run ``workers`` at a time (default: one per core; the counts do not depend on
    the load)."""
    file = Path(path).expanduser().absolute()
    valgrind = _valgrind()
    if not seeds:
        raise BenchmarkError("count_calls needs at least one seed")
    if calls is not None and calls < 1:
        raise BenchmarkError(f"calls must be at least 1, got {calls}")
    if not target >= 1:
        raise BenchmarkError(f"target must be at least 1 instruction, got {target!r}")
    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:

        def count(jobs: list[tuple[int, int]]) -> list[int]:
            return list(
                pool.map(lambda job: _instructions(file, name, job[0], job[1], valgrind), jobs)
            )

        # every seed's start-up, and one call of the first seed's to size the rest by
        first = count([(0, s) for s in seeds] + ([(1, seeds[0])] if calls is None else []))
        bases = dict(zip(seeds, first, strict=False))
        if calls is None:
            calls = _calls_for(bases[seeds[0]], first[-1], target)
        counted = count([(calls, s) for s in seeds])
    per_call = [(n - bases[s]) / calls for n, s in zip(counted, seeds, strict=True)]
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


def _calls_for(base: int, once: int, target: int) -> int:
    """Calls that make about ``target`` instructions, from ``I(0)`` and ``I(1)``: at least 3
    (a count of one call is all warm-up), at most 100,000."""
    per_call = max(once - base, 1)
    return int(min(max(math.ceil(target / per_call), 3), _MAX_CALLS))


def count_file(path: str | Path, names: Sequence[str], **options: Any) -> list[Result]:
    """:func:`count_calls` for each function in ``names`` of the file ``path``, named as
    ``perflab bench FILE.py`` names its timings, with `` [instructions]`` added (a history
    follows a benchmark by name, and a count is not a time)."""
    file = Path(path).expanduser().absolute()
    return [
        count_calls(file, n, label=f"{file.stem}/{n.removeprefix('bench_')} [{UNIT}]", **options)
        for n in names
    ]
