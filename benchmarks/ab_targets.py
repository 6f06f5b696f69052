"""The issue-23 targets of ``perflab ab``, measured on this machine.

A scratch git repository holds two benchmarks that do real work (JSON decoding, a regex scan
and a sum over rows of market-like records; a word count with ``collections.Counter`` and a
sort). Its commits differ by: only a comment (A/A); 5 % more rows (+5 % work); 2 % more rows
(+2 %). Each case runs ``perflab ab`` (the CLI, worktrees included) ``--reps`` times at its
default budget and tallies the verdicts of the JSON each run writes; ``--load`` keeps one
``python -c "while True: pass"`` beside every run. ``--duet`` runs duet mode instead.

Run: ``.venv/bin/python benchmarks/ab_targets.py [--reps 20] [--load] [--duet]
[--cases aa,plus5,plus2]``. Figures go to ``outputs/benchmarks/ab-targets-*.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORK = """import collections
import json
import re

ROWS = {rows}
WORDS = "bid ask last open close high low volume vwap spread".split()
# {comment}
DOC = {{"rows": [{{"id": i, "name": f"item-{{i}}", "tags": ["a", str(i % 7)], "price": i * 1.25}}
                 for i in range(ROWS)]}}
TEXT = json.dumps(DOC)
ITEM = re.compile(r"item-(\\d+)")
LINES = [" ".join(WORDS[(i * k) % len(WORDS)] for k in range(12)) for i in range(ROWS)]


def parse_rows():
    data = json.loads(TEXT)
    total = sum(r["price"] for r in data["rows"])
    return total + sum(int(m.group(1)) for m in ITEM.finditer(TEXT))


def count_words():
    counts = collections.Counter(w for line in LINES for w in line.split())
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
"""
BENCH = """import work


def bench_parse_rows():
    work.parse_rows()


def bench_count_words():
    work.count_words()
"""
CASES = {  # name: (rows of the candidate, comment, threshold)
    "aa": (400, "only this comment differs", "5%"),
    "plus5": (420, "5 % more rows", "5%"),
    "plus2": (408, "2 % more rows", "1%"),
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout.strip()


def _commit(repo: Path, rows: int, comment: str) -> str:
    (repo / "work.py").write_text(WORK.format(rows=rows, comment=comment))
    (repo / "bench_work.py").write_text(BENCH)
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.email=lab@example.com", "-c", "user.name=lab", "commit", "-qm", comment)
    return _git(repo, "rev-parse", "HEAD")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--load", action="store_true")
    ap.add_argument("--duet", action="store_true")
    ap.add_argument("--cases", default="aa,plus5,plus2")
    args = ap.parse_args()
    spinner = None
    if args.load:
        spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    figures: dict = {"load": args.load, "duet": args.duet, "cases": {}}
    compared: list = []  # every comparison: case, rep, benchmark, verdict, ratio, CI, pairs
    try:
        with tempfile.TemporaryDirectory(prefix="ab-targets-") as tmp:
            repo = Path(tmp)
            _git(repo, "init", "-q")
            base = _commit(repo, 400, "baseline")
            for case in args.cases.split(","):
                rows, comment, threshold = CASES[case]
                _git(repo, "checkout", "-q", base)
                cand = _commit(repo, rows, comment)
                tally: collections.Counter = collections.Counter()
                walls, pairs = [], []
                for rep in range(args.reps):
                    out = repo.parent / f"{repo.name}-{case}-{rep}.json"
                    argv = [sys.executable, "-m", "perflab", "ab", base, cand, "bench_work.py"]
                    argv += ["--threshold", threshold, "--out", str(out)]
                    argv += ["--duet"] if args.duet else ["--no-duet"]
                    t0 = time.monotonic()
                    done = subprocess.run(argv, cwd=repo, capture_output=True, text=True)
                    walls.append(time.monotonic() - t0)
                    if done.returncode not in (0, 1):
                        print(done.stderr, file=sys.stderr)
                        return 1
                    doc = json.loads(out.read_text())
                    for c in doc["comparisons"]:
                        tally[c["verdict"]] += 1
                        compared.append([case, rep, c["name"], c["verdict"], round(c["ratio"], 4),
                                     [round(x, 4) for x in c["ci"]], doc["pairs"]])  # fmt: skip
                    pairs.append(doc["pairs"])
                    out.unlink()
                    print(f"{case} {rep}: {dict(tally)} {walls[-1]:.1f} s", flush=True)
                figures["cases"][case] = {
                    "verdicts": dict(tally),
                    "benchmarks": 2 * args.reps,
                    "wall_s": {"median": sorted(walls)[len(walls) // 2], "max": max(walls)},
                    "pairs": {"median": sorted(pairs)[len(pairs) // 2], "max": max(pairs)},
                }
    finally:
        if spinner is not None:
            spinner.kill()
    print(json.dumps(figures, indent=1))
    figures["comparisons"] = compared
    dest = ROOT / "outputs" / "benchmarks"
    dest.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tag = ("duet" if args.duet else "alternate") + ("-load" if args.load else "")
    (dest / f"ab-targets-{tag}-{stamp}.json").write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
