"""Change-point detectors on synthetic run-level histories, measured side by side in one run.

    .venv/bin/python benchmarks/changepoints.py [--reps 20] [--seed 20261201]
        [--edivisive-python /path/to/python] [--out outputs/changepoints.json]

Series are log run medians of length 5..200: A/A (no change) and one step of +10/+20/+50 % at a
random run 2..n-2, lognormal noise sd 2/5/10 %, and 1 run in 20 an outlier (x1.3-1.6, slower).
Every candidate sees the same seeded series. Per candidate: false-positive rate (any change point
on A/A), hit rate (a change point within 2 runs of the step), median position error of the
nearest change point when hit, change points per step series, time per series, and the time for
20 benchmarks x 365 runs (one +20 % step each).

``signal-processing-algorithms`` (MongoDB's E-Divisive) pins numpy<2, so it cannot share the
project venv (pandas 3 needs numpy>=2): give ``--edivisive-python`` an interpreter of a separate
venv that has it (``python -m venv /tmp/spa && /tmp/spa/bin/pip install
signal-processing-algorithms``); this script runs itself there as a worker on the same series.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LENGTHS = (5, 10, 20, 50, 100, 200)
NOISES = (0.02, 0.05, 0.10)
STEPS = (0.0, 0.10, 0.20, 0.50)
OUTLIER_RATE = 1 / 20
TOLERANCE = 2
EDIVISIVE = "E-Divisive (signal-processing-algorithms), p=0.05"


def make_series(rng: np.random.Generator, n: int, sd: float, step: float) -> tuple[np.ndarray, int]:
    """Run medians in ns (around 1 µs) and the index of the first stepped run (-1 for A/A)."""
    x = rng.normal(0.0, sd, n)
    outliers = rng.random(n) < OUTLIER_RATE
    x[outliers] += np.log(rng.uniform(1.3, 1.6, int(outliers.sum())))
    k = -1
    if step:
        k = int(rng.integers(2, n - 1))  # 2..n-2: both levels last >= 2 runs
        x[k:] += math.log1p(step)
    return 1000.0 * np.exp(x), k


def find_step(medians: np.ndarray) -> int | None:
    """The hand-written detector perflab had before (kept here as the peer it was measured
    against): the index splitting the series into two flat runs with the least total absolute
    deviation from each run's median."""
    values = np.asarray(medians, dtype=float)
    if values.size < 2:
        return None
    costs = []
    for k in range(1, values.size):
        left, right = values[:k], values[k:]
        costs.append(np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum())
    return int(np.argmin(costs)) + 1


def candidates() -> dict[str, Callable[[np.ndarray], list[int]]]:
    import ruptures as rpt

    from perflab.bench.changepoint import PENALTY, change_points, noise_floor

    def pen_l1(x: np.ndarray) -> float:
        return PENALTY * max(noise_floor(x), 0.005) * math.log(len(x))

    def pelt(model: str, x: np.ndarray) -> list[int]:
        if len(x) < 4:
            return []
        y = np.log(x)
        s = max(noise_floor(x), 0.005)
        # BIC-like: L1 cost scales with the noise, L2 with its square.
        pen = PENALTY * s * math.log(len(x)) if model == "l1" else 2 * PENALTY * s * s
        pen = pen if model == "l1" else pen * math.log(len(x))
        return [int(k) for k in rpt.Pelt(model=model, min_size=2, jump=1).fit(y).predict(pen)[:-1]]

    def split(x: np.ndarray, gated: bool) -> list[int]:
        k = find_step(x)
        if k is None:
            return []
        if not gated:
            return [k]
        y = np.log(x)

        def l1(s: np.ndarray) -> float:
            return float(np.abs(s - np.median(s)).sum())

        return [k] if l1(y) - l1(y[:k]) - l1(y[k:]) > pen_l1(x) else []

    return {
        "ruptures Binseg L1 (perflab change_points, min_size=1)": lambda x: change_points(x),
        "ruptures Binseg L1 (perflab change_points, min_size=2)": lambda x: change_points(
            x, min_size=2
        ),
        "ruptures PELT L1, same penalty, min_size=2": lambda x: pelt("l1", x),
        "ruptures PELT L2 (mean), BIC-like, min_size=2": lambda x: pelt("l2", x),
        "hand-written best split + same L1 penalty": lambda x: split(x, True),
        "hand-written best split (find_step), ungated": lambda x: split(x, False),
    }


def edivisive(x: np.ndarray) -> list[int]:
    from signal_processing_algorithms.energy_statistics.energy_statistics import e_divisive

    if len(x) < 2:
        return []
    return sorted(int(k) for k in e_divisive(np.log(x), pvalue=0.05, permutations=100))


def timed_run(detect: Callable[[np.ndarray], list[int]], series: list[np.ndarray]):
    found, seconds = [], []
    for x in series:
        t0 = time.perf_counter()
        cps = detect(x)
        seconds.append(time.perf_counter() - t0)
        found.append([int(k) for k in cps])
    return found, seconds


def worker(path: Path, seed: int) -> None:
    """Runs in the E-Divisive venv: reads series, writes change points and times."""
    job = json.loads(path.read_text())
    np.random.seed(seed)  # e_divisive shuffles with the global generator
    series = [np.array(s) for s in job["series"]]
    year = [np.array(s) for s in job["year"]]
    found, seconds = timed_run(edivisive, series)
    t0 = time.perf_counter()
    for x in year:
        edivisive(x)
    year_s = time.perf_counter() - t0
    import numpy

    out = {"found": found, "seconds": seconds, "year_s": year_s, "numpy": numpy.__version__}
    path.with_suffix(".out.json").write_text(json.dumps(out))


def run_edivisive(python: str, series, year, seed: int):
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(
            json.dumps({"series": [s.tolist() for s in series], "year": [s.tolist() for s in year]})
        )
        subprocess.run(
            [python, __file__, "--worker", str(job), "--seed", str(seed)], check=True, cwd=ROOT
        )
        return json.loads(job.with_suffix(".out.json").read_text())


def score(found, seconds, meta) -> dict:
    rows = {}
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(meta):
        groups.setdefault(("all", m["step"]), []).append(i)
        groups.setdefault((m["sd"], m["step"]), []).append(i)
    for (sd, step), idx in sorted(groups.items(), key=lambda g: (str(g[0][0]), g[0][1])):
        if step == 0.0:
            stat = {"fp_rate": float(np.mean([bool(found[i]) for i in idx]))}
        else:
            hits, errors = [], []
            for i in idx:
                k = meta[i]["k"]
                err = min((abs(c - k) for c in found[i]), default=None)
                hit = err is not None and err <= TOLERANCE
                hits.append(hit)
                if hit:
                    errors.append(err)
            stat = {
                "hit_rate": float(np.mean(hits)),
                "any_rate": float(np.mean([bool(found[i]) for i in idx])),
                "median_position_error": float(np.median(errors)) if errors else None,
                "mean_points": float(np.mean([len(found[i]) for i in idx])),
            }
        stat["n_series"] = len(idx)
        stat["mean_ms"] = 1000 * float(np.mean([seconds[i] for i in idx]))
        rows[f"sd={sd} step={step}"] = stat
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=20, help="series per length x noise x step")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--edivisive-python", default=None)
    parser.add_argument("--out", default=str(ROOT / "outputs" / "changepoints.json"))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(Path(args.worker), args.seed)
        return

    rng = np.random.default_rng(args.seed)
    series, meta = [], []
    for step in STEPS:
        for sd in NOISES:
            for n in LENGTHS:
                for _ in range(args.reps):
                    x, k = make_series(rng, n, sd, step)
                    series.append(x)
                    meta.append({"n": n, "sd": sd, "step": step, "k": k})
    year = [make_series(rng, 365, 0.05, 0.20)[0] for _ in range(20)]

    results: dict[str, dict] = {}
    for name, detect in candidates().items():
        found, seconds = timed_run(detect, series)
        t0 = time.perf_counter()
        for x in year:
            detect(x)
        results[name] = {
            "by_group": score(found, seconds, meta),
            "year_s": time.perf_counter() - t0,
        }
        print(f"measured {name}", file=sys.stderr)
    if args.edivisive_python:
        out = run_edivisive(args.edivisive_python, series, year, args.seed)
        results[EDIVISIVE] = {
            "by_group": score(out["found"], out["seconds"], meta),
            "year_s": out["year_s"],
            "numpy": out["numpy"],
        }
    else:
        results[EDIVISIVE] = {"skipped": "no --edivisive-python (it needs numpy<2)"}

    head = (
        f"{'candidate':<56} {'A/A FP':>7} {'+10% hit':>9} {'+20% hit':>9} {'+50% hit':>9}"
        f" {'pos err':>7} {'pts':>5} {'ms/ser':>7} {'20x365 s':>9}"
    )
    print(head)
    for name, r in results.items():
        if "skipped" in r:
            print(f"{name:<56} skipped: {r['skipped']}")
            continue
        g = r["by_group"]
        steps = [g[f"sd=all step={s}"] for s in STEPS[1:]]
        ms = np.mean([v["mean_ms"] for k, v in g.items() if k.startswith("sd=all")])
        err = steps[1]["median_position_error"]
        print(
            f"{name:<56} {g['sd=all step=0.0']['fp_rate']:>7.1%}"
            + "".join(f" {s['hit_rate']:>9.1%}" for s in steps)
            + f" {err if err is not None else float('nan'):>7.1f} {steps[1]['mean_points']:>5.2f}"
            f" {ms:>7.2f} {r['year_s']:>9.2f}"
        )
    print("\nA/A false-positive rate by noise:")
    for name, r in results.items():
        if "skipped" not in r:
            fps = [r["by_group"][f"sd={sd} step=0.0"]["fp_rate"] for sd in NOISES]
            print(
                f"  {name:<56} "
                + "  ".join(f"sd {sd:.0%}: {f:.1%}" for sd, f in zip(NOISES, fps, strict=True))
            )
    print("+20 % hit rate by noise:")
    for name, r in results.items():
        if "skipped" not in r:
            hs = [r["by_group"][f"sd={sd} step=0.2"]["hit_rate"] for sd in NOISES]
            print(
                f"  {name:<56} "
                + "  ".join(f"sd {sd:.0%}: {h:.1%}" for sd, h in zip(NOISES, hs, strict=True))
            )

    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        "seed": args.seed,
        "reps": args.reps,
        "lengths": LENGTHS,
        "noises": NOISES,
        "steps": STEPS,
        "outlier_rate": OUTLIER_RATE,
        "tolerance": TOLERANCE,
    }
    out_path.write_text(json.dumps({"config": config, "results": results}, indent=2))
    print(f"\nsaved {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
