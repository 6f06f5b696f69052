"""Notebook 09's replay at scale: a 1M-request Zipf 1.0 key trace written as a gzipped key file,
read back (streamed), and replayed at the default capacities through every policy and Belady,
each stage timed once (wall clock; the machine's other load is recorded beside it), the replay
in the kernel's own process and spread over two.

Run: ``.venv/bin/python benchmarks/trace_replay.py [--requests 1000000]``; figures go to
``outputs/benchmarks/trace-replay-*.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

from perflab import cache

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=100_000)
    args = parser.parse_args()
    ids = cache.zipf_trace(args.keys, args.requests, 1.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keys.txt.gz"
        with gzip.open(path, "wt") as out:
            out.write("\n".join(f"user:{k}" for k in ids.tolist()))
        t0 = time.perf_counter()
        trace = cache.load_trace(str(path))
        read = time.perf_counter() - t0
    capacities = cache.default_capacities(trace.distinct)
    replay = {}
    for workers in (1, 2):
        curve = cache.hit_ratio_curve(trace.ids, capacities, workers=workers)
        replay[f"{workers} process(es)"] = curve.attrs["seconds"]
    per_policy = {}
    for policy in (*cache.SIMULATED, "belady"):
        t0 = time.perf_counter()
        cache.replay_hit_ratio(trace.ids, capacities[-2], policy)
        per_policy[policy] = time.perf_counter() - t0
    figures = {
        "requests": len(trace),
        "distinct": trace.distinct,
        "capacities": capacities,
        "read_s": read,
        "replay_s": replay,
        "one_replay_s": per_policy,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(figures, indent=1))
    out = ROOT / "outputs" / "benchmarks" / f"trace-replay-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
