"""Do verdicts survive a rerun? The issue-10 targets, measured on this machine.

* A/A across separate runs: N x ``perflab bench data --quick``, every pair compared
  (``perflab compare``'s verdicts): how many benchmark verdicts say faster/slower.
* A/A and a true 10 % slowdown across separate ``perflab bench FILE.py`` runs of one CPU-bound
  function (``WORK`` sets its size): false verdicts, and how often +10 % is called slower/faster.
* In a notebook-like session: two sequential ``bench.run`` of one function, then ``compare``.
* The wall time of one ``perflab bench data --quick``.

Run: ``.venv/bin/python benchmarks/verdicts.py [--load] [--runs 6] [--file-runs 10]``
(``--instructions``: the FILE.py runs count instructions under valgrind instead of timing);
``--load`` keeps one other CPU-bound process spinning throughout (``python -c "while True:
pass"``), as on a busy CI runner. Figures go to ``outputs/benchmarks/verdicts-*.json``, the
runs themselves beside them (``verdicts-*-runs/``); ``--rejudge DIR`` judges saved runs again
with and without the stray-replicate rule (``stats.STRAY``), side by side on the same data.
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PERFLAB = [sys.executable, "-m", "perflab"]
WORK_FILE = """
import os
N = int(os.environ.get("WORK", "20000"))

def bench_work():
    return sum(range(N))
"""


def _bench(args: list[str], out: Path, env: dict | None = None) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [*PERFLAB, "bench", *args, "--quiet", "--out", str(out)],
        check=True,
        capture_output=True,
        env={**os.environ, **(env or {})},
    )
    return time.perf_counter() - t0


PROCESSES: list[str] = []  # ["--processes", "N"] when given on the command line
FILE_MODE = ["--quick"]  # ["--instructions"]: count instructions under valgrind instead


RUN_NOISE: dict[str, tuple] = {}  # name -> (sd, runs[, slope]), as a history would know it
ADJUST = [True]  # [False]: judge without the machine's reference speed (as before format 3)


def _verdicts(a: Path, b: Path) -> list[str]:
    from perflab.bench import compare
    from perflab.suites import load_results

    base = {r.name: r for r in load_results(a)}
    return [
        compare(base[r.name], r, run_noise=RUN_NOISE.get(r.name), adjust=ADJUST[0]).verdict
        for r in load_results(b)
        if r.name in base
    ]


def _learn_run_noise(files: list[Path]) -> None:
    """What ``History.run_noise`` would know had these runs been saved with ``--save``."""
    from perflab.bench import changepoint, machine_speed
    from perflab.suites import load_results

    figures: dict[str, list[float]] = collections.defaultdict(list)
    speeds: dict[str, list[float]] = collections.defaultdict(list)
    for f in files:
        for r in load_results(f):
            figures[r.name].append(r.judged_figure)
            ref = r.reference_figures
            speeds[r.name].append(float(np.exp(np.mean(np.log(ref)))) if ref.size else np.nan)
    for name, values in figures.items():
        fit = None
        if ADJUST[0] and np.all(np.isfinite(speeds[name])):
            fit = machine_speed.speed_slope(values, speeds[name])
            values = list(machine_speed.speed_adjusted(values, speeds[name]))
        RUN_NOISE[name] = (changepoint.run_spread(values), len(values))
        if fit is not None:  # and the slope across runs, as History.run_noise gives it
            RUN_NOISE[name] = (*RUN_NOISE[name], fit)


def _tally(pairs: list[tuple[Path, Path]]) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for a, b in pairs:
        counts.update(_verdicts(a, b))
    return counts


def _both(judge, *args) -> dict:
    """Judged as ``perflab compare`` does (adjusted for the machine's reference speed), and
    unadjusted on the same runs, side by side."""
    adjusted = judge(*args)
    ADJUST[0] = False
    try:
        unadjusted = judge(*args)
    finally:
        ADJUST[0] = True
    return {**adjusted, "unadjusted": unadjusted}


def separate_data_runs(tmp: Path, runs: int) -> dict:
    files, seconds = [], []
    for i in range(runs):
        files.append(tmp / f"data-{i}.json")
        seconds.append(_bench(["data", "--quick", *PROCESSES], files[-1]))
    return {"seconds_per_run": sorted(seconds), **_both(judge_data, files)}


def judge_data(files: list[Path]) -> dict:
    runs = len(files)
    counts = _tally(list(itertools.combinations(files, 2)))
    return {
        "runs": runs,
        "pairs": runs * (runs - 1) // 2,
        "verdicts": dict(counts),
        "false": counts["faster"] + counts["slower"],
        "total": sum(counts.values()),
    }


def separate_file_runs(tmp: Path, runs: int) -> dict:
    path = tmp / "work_bench.py"
    path.write_text(WORK_FILE)
    base, slow = [], []
    for i in range(runs):
        base.append(tmp / f"work-a-{i}.json")
        _bench([str(path), *FILE_MODE, *PROCESSES], base[-1], {"WORK": "20000"})
        slow.append(tmp / f"work-b-{i}.json")
        _bench([str(path), *FILE_MODE, *PROCESSES], slow[-1], {"WORK": "22000"})
    return _both(judge_file, base, slow)


def judge_file(base: list[Path], slow: list[Path]) -> dict:
    aa = _tally(list(itertools.combinations(base, 2)))
    # each slow run against the baseline run next to it, and against another one
    ten = _tally([*zip(base, slow, strict=True), *zip(base[1:] + base[:1], slow, strict=True)])
    return {
        "runs_per_side": len(base),
        "aa_verdicts": dict(aa),
        "aa_false": aa["faster"] + aa["slower"],
        "aa_total": sum(aa.values()),
        "slower_10pct_verdicts": dict(ten),
        "slower_10pct_total": sum(ten.values()),
    }


def notebook_pairs(pairs: int) -> dict:
    from perflab import bench

    def work() -> int:
        return sum(range(20_000))

    def more() -> int:
        return sum(range(22_000))

    aa: collections.Counter = collections.Counter()
    ten: collections.Counter = collections.Counter()
    for _ in range(pairs):
        a, b = bench.run(work, name="w"), bench.run(work, name="w")
        aa[bench.compare(a, b).verdict] += 1
        c = bench.run(more, name="w")
        ten[bench.compare(a, c).verdict] += 1
    return {"pairs": pairs, "aa_verdicts": dict(aa), "slower_10pct_verdicts": dict(ten)}


def rejudge(folder: Path) -> dict:
    """The saved runs of an earlier invocation, judged with and without the stray rule, with and
    without the machine's reference speed (runs of format 3), and with the run-to-run noise a
    history of the baseline runs would have learnt."""
    from perflab.bench import stats

    data = sorted(folder.glob("data-*.json"))
    base, slow = sorted(folder.glob("work-a-*.json")), sorted(folder.glob("work-b-*.json"))
    out: dict = {}
    stray_default = stats.STRAY
    for label, stray in (("with_stray_rule", stats.STRAY), ("without_stray_rule", None)):
        stats.STRAY = stray
        out[label] = {
            **({"data": judge_data(data)} if len(data) > 1 else {}),
            **({"file": judge_file(base, slow)} if base and len(base) == len(slow) else {}),
        }
    stats.STRAY = stray_default
    out["adjusted_for_reference_speed"] = {
        **({"data": _both(judge_data, data)} if len(data) > 1 else {}),
        **({"file": _both(judge_file, base, slow)} if base and len(base) == len(slow) else {}),
    }
    for label, adjust in (("with_run_noise_from_history", True), ("unadjusted_run_noise", False)):
        # the noise a history of these runs would learn: of speed-adjusted run figures when
        # the comparison adjusts for the speed, of the raw ones when it does not
        ADJUST[0] = adjust
        try:
            _learn_run_noise(data + base)
            out[label] = {
                **({"data": judge_data(data)} if len(data) > 1 else {}),
                **({"file": judge_file(base, slow)} if base and len(base) == len(slow) else {}),
                "run_noise": {
                    k: [round(v[0], 4), v[1], *([list(map(float, v[2]))] if len(v) > 2 else [])]
                    for k, v in RUN_NOISE.items()
                },
            }
        finally:
            ADJUST[0] = True
            RUN_NOISE.clear()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--load", action="store_true", help="one CPU-bound process beside")
    p.add_argument("--runs", type=int, default=6, help="separate data --quick runs")
    p.add_argument("--file-runs", type=int, default=10, help="separate FILE.py runs per side")
    p.add_argument("--pairs", type=int, default=20, help="notebook pairs")
    p.add_argument("--only", choices=["data", "file", "notebook"], action="append")
    p.add_argument("--processes", type=int, help="worker processes per run (suite default)")
    p.add_argument("--rejudge", type=Path, help="judge the saved runs in this folder again")
    p.add_argument(
        "--instructions", action="store_true", help="FILE.py runs count instructions (valgrind)"
    )
    args = p.parse_args()
    if args.rejudge:
        print(json.dumps(rejudge(args.rejudge), indent=2))
        return
    if args.processes:
        PROCESSES.extend(["--processes", str(args.processes)])
    if args.instructions:
        FILE_MODE[:] = ["--instructions"]
    only = set(args.only or ["data", "file", "notebook"])
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.load else None
    figures: dict = {"load": "one CPU-bound process" if args.load else "quiet"}
    figures["processes"] = args.processes or "suite default"
    figures["file_mode"] = " ".join(FILE_MODE)
    out = ROOT / "outputs" / "benchmarks"
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    kind = ("load" if args.load else "quiet") + ("-instructions" if args.instructions else "")
    path = out / f"verdicts-{kind}-{stamp}.json"
    runs = path.with_name(path.stem + "-runs")
    runs.mkdir(parents=True, exist_ok=True)
    try:
        if "data" in only:
            figures["data_quick_separate_runs"] = separate_data_runs(runs, args.runs)
            print(json.dumps(figures["data_quick_separate_runs"]), flush=True)
        if "file" in only:
            figures["file_separate_runs"] = separate_file_runs(runs, args.file_runs)
            print(json.dumps(figures["file_separate_runs"]), flush=True)
        if "notebook" in only:
            figures["notebook_sequential_runs"] = notebook_pairs(args.pairs)
            print(json.dumps(figures["notebook_sequential_runs"]), flush=True)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    path.write_text(json.dumps(figures, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()
