"""What a user waits for before a command answers (issue 25's start-up targets): `perflab
compare a.json b.json` (text output) and `import perflab.report`, each a fresh process, for one
or more source trees side by side, interleaved (tree A, tree B, A, B …) so the machine's drift
falls on both.

    .venv/bin/python benchmarks/cli_startup.py [--tree /tmp/old --tree .] [--repeats 5]

A tree is a checkout (or `git archive` of one) put first on PYTHONPATH; the default is this
checkout. Prints the median and min wall time of each; `python -X importtime -c "import
perflab.report"` shows where the rest goes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

BENCH = "def bench_sum():\n    sum(range(300))\n"


def timed(argv: list[str], env: dict[str, str], cwd: str) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode not in (0, 1):  # compare exits 1 on a slower verdict: still timed
        raise SystemExit(f"{argv} failed: {done.stderr.strip()[-300:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tree", action="append", default=[], help="source tree (repeatable)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    trees = [str(Path(t).resolve()) for t in (args.tree or [ROOT])]
    base = {k: v for k, v in os.environ.items() if not k.startswith("PERFLAB_")}
    with tempfile.TemporaryDirectory(prefix="perflab-startup-") as tmp:
        (Path(tmp) / "bench_startup.py").write_text(BENCH)
        env0 = {**base, "PYTHONPATH": trees[-1], "PERFLAB_OUTPUTS": tmp}
        for side in ("a", "b"):  # two results files, written once, read by every tree
            subprocess.run(
                [PY, "-m", "perflab", "bench", "bench_startup.py", "--quick", "--processes", "2",
                 "--out", f"{side}.json", "-q"],
                env=env0, cwd=tmp, check=True, capture_output=True,
            )  # fmt: skip
        commands = {
            "python -c pass": [PY, "-c", "pass"],
            "import perflab.report": [PY, "-c", "import perflab.report"],
            "perflab compare a.json b.json": [PY, "-m", "perflab", "compare", "a.json", "b.json"],
        }
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for what, argv in commands.items():
                for tree in trees:
                    env = {**base, "PYTHONPATH": tree, "PERFLAB_OUTPUTS": tmp}
                    times.setdefault((what, tree), []).append(timed(argv, env, tmp))
    width = max(len(w) for w in commands) + 2
    print(f"{'what':<{width}} {'tree':<40} {'median':>8} {'min':>8}")
    for (what, tree), values in times.items():
        print(f"{what:<{width}} {tree[-40:]:<40} {statistics.median(values):>7.3f}s "
              f"{min(values):>7.3f}s")  # fmt: skip


if __name__ == "__main__":
    main()
