"""How long ``History.regressions()`` takes as a history grows: R saved runs x 20 benchmarks x
1,000 samples each (samples kept, as ``perflab report`` keeps them), in SQLite.

Run: ``.venv/bin/python benchmarks/history_scale.py [--runs 50 200 365]``; figures go to
``outputs/benchmarks/history-scale-*.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from perflab.bench import History, Result

ROOT = Path(__file__).resolve().parent.parent


def build(path: Path, runs: int, benchmarks: int = 20, samples: int = 1000) -> History:
    store = History(path)
    rng = np.random.default_rng(0)
    for _ in range(runs):
        for b in range(benchmarks):
            level = 1000.0 * (b + 1) * rng.lognormal(0, 0.03)
            values = rng.normal(level, level * 0.02, samples)
            result = Result(name=f"bench/{b}", samples=values, replicates=(samples // 10,) * 10)
            store.save(result, tags=["report", "quick"])

    return store


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, nargs="+", default=[50, 200, 365])
    args = p.parse_args()
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for runs in args.runs:
            store = build(Path(tmp) / f"h{runs}.sqlite", runs)
            timings = []
            for _ in range(3):
                t0 = time.perf_counter()
                found = store.regressions(tag="quick")
                timings.append(time.perf_counter() - t0)
            figures.append(
                {
                    "runs": runs,
                    "benchmarks": 20,
                    "samples_per_result": 1000,
                    "regressions_seconds_median_of_3": sorted(timings)[1],
                    "regressions_found": len(found),
                }
            )
            print(json.dumps(figures[-1]), flush=True)
            store.close()
    out = ROOT / "outputs" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"history-scale-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    path.write_text(json.dumps(figures, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
