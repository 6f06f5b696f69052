"""One side's worker process for ``perflab ab``: times the ``bench_*`` functions of one source
tree when its parent asks, so the parent can interleave two trees in short blocks.

It is run as a script (``python abworker.py TREE FILE``), never imported, and uses the
standard library only: the side's code must see its *own* packages first on ``sys.path`` —
perflab's own revisions included — so nothing of the installed perflab may be loaded before
it. That is why the few lines of calibration here do not reuse :mod:`perflab.bench.core`.

Protocol: one JSON object per line on stdin, one answer per line on stdout.

* ``{"op": "calibrate", "target_ns": N}`` → ``{"loops": {name: loops}}``: loops per sample so
  that a sample lasts about N ns (the same rule as ``core.calibrate``), functions warmed;
* ``{"op": "sample", "name": NAME, "loops": L, "samples": K}`` → ``{"ns": [...]}``: K samples,
  each the mean ns per call of L calls, with the garbage collector off (as timeit);
* end of input: exit 0. Any failure: ``{"error": "..."}`` and exit 1.
"""

import gc
import importlib.util
import itertools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any


def _load(tree: str, path: str) -> dict[str, Callable[[], Any]]:
    # the side's tree first, and not this script's folder (Python put it at sys.path[0])
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [tree] + [p for p in sys.path if os.path.abspath(p or ".") != here]
    os.chdir(tree)
    spec = importlib.util.spec_from_file_location("perflab_ab_target", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules["perflab_ab_target"] = module
    spec.loader.exec_module(module)
    return {
        name: fn
        for name, fn in vars(module).items()
        if name.startswith("bench_") and callable(fn) and fn.__module__ == "perflab_ab_target"
    }


def _time(fn: Callable[[], Any], loops: int) -> int:
    now, it = time.perf_counter_ns, itertools.repeat(None, loops)
    t0 = now()
    for _ in it:
        fn()
    return now() - t0


def _calibrate(fn: Callable[[], Any], target_ns: int) -> int:
    loops = 1
    while loops < 1 << 32:
        elapsed = _time(fn, loops)
        if elapsed >= target_ns:
            return loops
        grow = 10 if elapsed <= 0 else min(10.0, max(2.0, 1.2 * target_ns / elapsed))
        loops = int(loops * grow)
    return loops


def main() -> None:
    tree, path = sys.argv[1], sys.argv[2]
    out = sys.stdout
    sys.stdout = sys.stderr  # what the user's code prints must not break the protocol
    try:
        functions = _load(tree, path)
        for line in sys.stdin:
            ask = json.loads(line)
            answer: dict[str, Any]
            if ask["op"] == "calibrate":
                loops = {name: _calibrate(fn, ask["target_ns"]) for name, fn in functions.items()}
                answer = {"loops": loops}
            else:
                fn, loops = functions[ask["name"]], ask["loops"]
                gc.disable()
                try:
                    answer = {"ns": [_time(fn, loops) / loops for _ in range(ask["samples"])]}
                finally:
                    gc.enable()
            out.write(json.dumps(answer) + "\n")
            out.flush()
    except Exception as err:  # noqa: BLE001 (the user's code failed: tell the parent what, then stop)
        out.write(json.dumps({"error": f"{type(err).__name__}: {err}"}) + "\n")
        out.flush()
        sys.exit(1)


if __name__ == "__main__":
    main()
