"""Does a nightly ``perflab report --check-history`` cry wolf, and does it catch a real step?

Runs ``--unchanged`` quick reports of this tree into a fresh history, each with
``--check-history``, then one more from a copy of the tree in which ``data/sma-loop`` does 20 %
more work. Records each report's exit code, wall time and the regressions it named.
Target (issue 10): no regression on the unchanged runs; the slowed one names
``data/sma-loop`` and nothing else.

Run: ``.venv/bin/python benchmarks/report_history.py [--unchanged 5] [--load]``;
``--rejudge outputs/benchmarks/report-history-*-runs`` judges a kept sequence again with the
current rules (the history as it stood after each report, and its re-run figures). Figures go to
``outputs/benchmarks/report-history-*.json``, the reports and their history beside it
(``report-history-*-runs/``), with every benchmark's judged change after each report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLOWER = """
def _sma_pass(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= WINDOW:
            total -= values[i - WINDOW]
        if i >= WINDOW - 1:
            out.append(total / WINDOW)
    return out


def sma_loop(values: list[float]) -> list[float]:
    _sma_pass(values[: len(values) // 5])  # the injected slowdown: the same work on 20 % more rows
    return _sma_pass(values)
"""


def _slowed_tree(tmp: Path) -> Path:
    tree = tmp / "slowed"
    shutil.copytree(ROOT / "perflab", tree / "perflab")
    shutil.copytree(ROOT / "notebooks", tree / "notebooks")
    data = tree / "perflab" / "suites" / "data.py"
    text = data.read_text()
    start = text.index("def sma_loop(")
    end = text.index("\n\n\n", start)
    data.write_text(text[:start] + SLOWER.strip() + text[end:])
    return tree


def _report(tree: Path, history: Path, out: Path) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "PERFLAB_HISTORY_URL": str(history),
        "PERFLAB_NOTEBOOKS": str(tree / "notebooks"),
    }
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "perflab",
            "report",
            "--quick",
            "--check-history",
            "--out",
            str(out),
        ],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    named = [
        line[len("REGRESSION ") : line.index(": ")]
        for line in (done.stdout + done.stderr).splitlines()
        if line.startswith("REGRESSION ")
    ]
    run = out / "run.json"
    rechecks = (json.loads(run.read_text()).get("rechecks") or {}) if run.exists() else {}
    return {
        "exit": done.returncode,
        "seconds": round(time.perf_counter() - t0, 1),
        "regressions": named,
        # the suspects the report re-ran before judging, and what the re-runs measured
        "rechecked": {k: [round(v) for v in f] for k, f in rechecks.get("figures", {}).items()},
        "tail": done.stderr.strip().splitlines()[-1:] if done.returncode not in (0, 1) else [],
        "judged": _judged(history),
    }


def _judged(history: Path) -> dict:
    """Every benchmark's newest change as the history judges it now: verdict, ratio, noise."""
    from perflab.bench import History

    store = History(history)
    try:
        frame = store.changes(tag="quick")
    finally:
        store.close()
    return {
        row.name: [row.verdict, round(row.ratio, 3), round(row.ci_low, 3), round(row.ci_high, 3)]
        for row in frame.itertuples()
    }


def rejudge(base: Path) -> list[dict]:
    """Judge a kept sequence of reports again with today's rules, without re-running them:
    after each report, the history as it stood then (rows up to that report's) and the
    figures its re-runs measured (its run.json)."""
    import sqlite3
    import tempfile

    from perflab.bench import History

    rows = []
    reports = sorted(
        (d for d in base.iterdir() if (d / "run.json").exists()),
        key=lambda d: (d / "run.json").stat().st_mtime,
    )
    for folder in reports:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "history.sqlite"
            shutil.copy(base / "history.sqlite", copy)
            with sqlite3.connect(copy) as db:
                (last,) = db.execute(
                    "SELECT max(id) FROM results WHERE tags LIKE ?", (f'%"run:{folder.name}"%',)
                ).fetchone()
                db.execute("DELETE FROM results WHERE id > ?", (last,))
            rechecks = json.loads((folder / "run.json").read_text()).get("rechecks") or {}
            store = History(copy)
            try:
                found = store.regressions(tag="quick", reruns=rechecks.get("figures", {}))
                judged = store.changes(tag="quick", reruns=rechecks.get("figures", {}))
            finally:
                store.close()
        sma = judged[judged["name"] == "data/sma-loop"]
        rows.append(
            {
                "report": folder.name,
                "regressions": list(found["name"]),
                "sma-loop": [
                    sma["verdict"].iloc[0],
                    *(round(float(sma[c].iloc[0]), 3) for c in ("ratio", "ci_low", "ci_high")),
                ]
                if not sma.empty
                else None,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--unchanged", type=int, default=5, help="unchanged reports before the step")
    p.add_argument("--load", action="store_true", help="one CPU-bound process beside")
    p.add_argument("--rejudge", metavar="DIR", help="judge a kept *-runs folder again, no runs")
    args = p.parse_args()
    if args.rejudge:
        rejudge(Path(args.rejudge))
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.load else None
    figures: dict = {"load": "one CPU-bound process" if args.load else "quiet", "reports": []}
    out = ROOT / "outputs" / "benchmarks"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = out / f"report-history-{'load' if args.load else 'quiet'}-{stamp}.json"
    base = path.with_name(path.stem + "-runs")
    base.mkdir(parents=True)
    history = base / "history.sqlite"
    try:
        for i in range(args.unchanged):
            row = {"tree": "unchanged", **_report(ROOT, history, base / f"r{i}")}
            figures["reports"].append(row)
            print(json.dumps(row), flush=True)
        row = {"tree": "sma-loop +20 %", **_report(_slowed_tree(base), history, base / "slow")}
        figures["reports"].append(row)
        print(json.dumps(row), flush=True)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    unchanged = figures["reports"][:-1]
    figures["false_alarms"] = sum(bool(r["regressions"]) for r in unchanged)
    figures["step_caught_alone"] = figures["reports"][-1]["regressions"] == ["data/sma-loop"]
    path.write_text(json.dumps(figures, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
