"""Start-up costs of the foundation, measured side by side in one run on this machine.

    .venv/bin/python benchmarks/startup.py [--repeats 5] [--out outputs/benchmarks]

Each figure is the wall-clock time of a fresh process (what a user waits for), repeated; the
table shows median and min and is saved as JSON. Servers run in a throwaway state directory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def timed(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, env=env, cwd=ROOT, capture_output=True)
    return time.perf_counter() - t0


def stop(env: dict[str, str]) -> None:
    subprocess.run(
        [PY, "-m", "perflab", "servers", "stop"], env=env, check=True, capture_output=True
    )


def start_code(what: str) -> str:
    flags = {"redis": "database=False", "postgresql": "redis=False", "both": ""}[what]
    return f"from perflab import servers; servers.start({flags})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "outputs" / "benchmarks"))
    args = parser.parse_args()

    results: dict[str, list[float]] = {}

    def record(name: str, seconds: float) -> None:
        results.setdefault(name, []).append(seconds)

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("PERFLAB_")}
    with tempfile.TemporaryDirectory(prefix="perflab-bench-") as tmp:
        for i in range(args.repeats):
            # cold: a state directory never used (PostgreSQL runs initdb)
            for what in ("redis", "postgresql"):
                env = {**base_env, "PERFLAB_STATE_DIR": f"{tmp}/cold-{what}-{i}"}
                start = [PY, "-c", start_code(what)]
                record(f"{what} start, cold (new state dir)", timed(start, env))
                record(f"{what} start, warm (already running)", timed(start, env))
                stop(env)
                record(f"{what} start, stopped (state dir kept)", timed(start, env))
                stop(env)
            record("python -c pass (interpreter floor)", timed([PY, "-c", "pass"], base_env))
            record("import perflab.servers", timed([PY, "-c", "import perflab.servers"], base_env))
            record("import nbformat", timed([PY, "-c", "import nbformat"], base_env))
            record(
                "import nbformat, rfc3987_syntax blocked (as the CLI does)",
                timed(
                    [PY, "-c", "import sys; sys.modules['rfc3987_syntax'] = None; import nbformat"],
                    base_env,
                ),
            )
            record("perflab --version", timed([PY, "-m", "perflab", "--version"], base_env))

            env = {
                **base_env,
                "PERFLAB_STATE_DIR": f"{tmp}/run-{i}",
                "PERFLAB_OUTPUTS": f"{tmp}/out",
            }
            run = [
                PY,
                "-m",
                "perflab",
                "run",
                "notebooks/00-smoke.ipynb",
                "-p",
                "quick",
                "true",
                "--out",
                f"{tmp}/o{i}",
            ]
            record("perflab run 00-smoke (quick), cold servers", timed(run, env))
            record("perflab run 00-smoke (quick), warm servers", timed(run, env))
            stop(env)

    rows = [
        {
            "what": name,
            "n": len(v),
            "median_s": statistics.median(v),
            "min_s": min(v),
            "max_s": max(v),
        }
        for name, v in results.items()
    ]
    width = max(len(r["what"]) for r in rows)
    print(f"{'what':<{width}}  {'n':>2}  {'median':>8}  {'min':>8}  {'max':>8}")
    for r in rows:
        times = "  ".join(f"{r[k]:>7.3f}s" for k in ("median_s", "min_s", "max_s"))
        print(f"{r['what']:<{width}}  {r['n']:>2}  {times}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"startup-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}.json"
    meta = {"python": platform.python_version(), "host": platform.node(), "cpus": os.cpu_count()}
    path.write_text(
        json.dumps({"format": 1, "meta": meta, "rows": rows, "samples": results}, indent=2)
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
