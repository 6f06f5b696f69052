"""The issue-23 notebook targets of ``bench.ab`` (in one process, as in a notebook cell): at its
default budget, how often identical code is called faster/slower/same, and how often true
slowdowns of 2, 5 and 10 % are called slower — the harness suite's own self-check
(``perflab.suites.harness.honesty``) with 20 comparisons each. ``--load [N]`` keeps N (default 1)
``python -c "while True: pass"`` beside it (3 on this 2-core VM: an overloaded machine).

Run: ``.venv/bin/python benchmarks/ab_notebook.py [--reps 20] [--load [N]]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from perflab.suites import harness  # the suite's self-check, reused as is

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--load", type=int, nargs="?", const=1, default=0, metavar="N")
    args = ap.parse_args()
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)
    ]
    try:
        t0 = time.monotonic()
        figures = harness.honesty(args.reps, (0.02, 0.05, 0.10))
        figures["seconds"] = time.monotonic() - t0
    finally:
        for spinner in spinners:
            spinner.kill()
    figures["load"] = args.load
    print(json.dumps(figures, indent=1))
    dest = ROOT / "outputs" / "benchmarks"
    dest.mkdir(parents=True, exist_ok=True)
    tag = f"-load{args.load}" if args.load else ""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (dest / f"ab-notebook{tag}-{stamp}.json").write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
