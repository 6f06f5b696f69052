"""``perflab ab``: two versions of the user's code, interleaved, until the answer is known.

Each *pair* is two fresh worker processes, one per side, each importing its own side's code
(:mod:`perflab.bench.abworker`). A new process per pair, because a process brings luck of its
own (memory layout, hash seed) that a comparison must see as noise, not as a change. Inside a
pair the parent drives both workers in short blocks:

* ``alternate`` (default): one side at a time, in random order each round (A B, B A, …), so a
  slow spell of the machine — here a process runs at one of two speeds for seconds at a time —
  falls on both sides alike;
* ``duet`` (Bulej et al., ICPE 2020): both at once, one per core, cores swapped between pairs.

A pair gives one log-ratio per benchmark (the floors — lower deciles — of its two sides'
samples); :mod:`perflab.bench.sequential` turns the pairs into an interval that stays valid
however often it is looked at, and the comparison stops once every benchmark's verdict is
known or the budget is spent.

A built-in suite name as TARGET runs each side's own ``python -m perflab bench SUITE --quick``
in one process per side and pair, in random order (suites time themselves; they cannot be
driven in blocks).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from perflab.bench import sequential
from perflab.bench.ab_workers import Worker, blocks, cores_for
from perflab.bench.result import Result, environment
from perflab.errors import BenchmarkError, ConfigurationError

__all__ = ["BUDGET", "ABRun", "ab_sources", "cores_for"]

BUDGET = 45.0  # seconds of pairs by default; the worktrees and the first pair's start add ~5 s
SAMPLE_NS = 1_000_000  # one sample lasts about 1 ms (as bench.run's)
ROUNDS = sequential.ROUNDS  # blocks per side per benchmark in one pair
PAIR_SECONDS = 0.3  # sampling per benchmark per pair, both sides together


@dataclasses.dataclass(frozen=True)
class ABRun:
    """What ``ab_sources`` found: one comparison per benchmark both sides define."""

    baseline: str
    candidate: str
    comparisons: list[Any]  # bench.Comparison, in the target's order
    pairs: int
    seconds: float
    mode: str  # alternate | duet | suite
    only: dict[str, str]  # benchmark -> the one side that has it
    threshold: float = 0.05
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def slower(self) -> list[str]:
        return [c.name for c in self.comparisons if c.verdict == "slower"]

    def summary(self) -> str:
        counts = {v: sum(c.verdict == v for c in self.comparisons) for v in _VERDICTS}
        said = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        return (
            f"{self.candidate} vs {self.baseline}: {said} ({self.pairs} interleaved pairs, "
            f"{self.mode}, {self.seconds:.0f} s)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Both sides' results and the verdicts: what ``--out`` writes and ``perflab compare
        FILE.json`` reads back (its verdicts are the same: the looks' level travels along)."""
        return {
            "format": 3,
            "kind": "ab",
            "meta": self.meta,
            "threshold": self.threshold,
            "pairs": self.pairs,
            "mode": self.mode,
            "seconds": self.seconds,
            "summary": self.summary(),
            "comparisons": [
                {
                    "name": c.name,
                    "ratio": c.ratio,
                    "ci": [c.ci_low, c.ci_high],
                    "verdict": c.verdict,
                    "explanation": c.explanation,
                }
                for c in self.comparisons
            ],
            "only": self.only,
            **{
                role: {"label": label, "results": [r.to_dict() for r in self.results(role)]}
                for role, label in (("baseline", self.baseline), ("candidate", self.candidate))
            },
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), default=str), encoding="utf-8")
        return path

    def results(self, side: str) -> list[Result]:
        """Every benchmark's results of one side (``baseline`` or ``candidate``)."""
        return [getattr(c, side) for c in self.comparisons]


def _file_pair(
    files: tuple[Path, Path],
    trees: tuple[Path, Path],
    labels: tuple[str, str],
    duet: bool,
    cores: tuple[int, int] | None,
    rng: np.random.Generator,
    timeout: float | None = None,
) -> dict[str, tuple[list[float], list[float]]]:
    workers = [
        Worker(trees[i], files[i], labels[i], cores[i] if cores else None, timeout)
        for i in range(2)
    ]
    try:
        for w in workers:  # both calibrate at once: they start up side by side anyway
            w.send({"op": "calibrate", "target_ns": SAMPLE_NS})
        # calibrating runs every bench_* function of the file once or more
        names = ", ".join(_functions(files[0]))
        loops = [w.receive(f"calibrating {names}")["loops"] for w in workers]
        out = {}
        for name in [n for n in loops[0] if n in loops[1]]:
            # one loop count for both sides, so a sample of each is the same work
            n = max(1, min(loops[0][name], loops[1][name]))
            count = max(3, round(PAIR_SECONDS * 1e9 / (2 * ROUNDS * SAMPLE_NS)))
            a, b = blocks(workers, name, n, count, duet, rng, ROUNDS)
            out[name] = (a, b)
        return out
    finally:
        for w in workers:
            w.close()


def _functions(file: Path) -> list[str]:
    """The bench_* function names a file defines, read without importing it."""
    import ast

    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("bench_")
    ]


def _suite_pair(
    suite: str,
    trees: tuple[Path, Path],
    labels: tuple[str, str],
    rng: np.random.Generator,
    environ: dict[str, str],
    timeout: float | None = None,
) -> dict[str, tuple[Result, Result]]:
    """One process per side, in random order: each side's own perflab runs the suite."""
    got: list[dict[str, Result]] = [{}, {}]
    with tempfile.TemporaryDirectory(prefix="perflab-ab-") as tmp:
        for i in rng.permutation(2):
            out = Path(tmp) / f"{i}.json"
            argv = [sys.executable, "-m", "perflab", "bench", suite, "--quick", "--quiet"]
            argv += ["--processes", "1", "--out", str(out)]
            path = os.pathsep.join([str(trees[i]), *sys.path[1:]])
            env = {**os.environ, **environ, "PYTHONPATH": path}
            try:
                done = subprocess.run(
                    argv, cwd=trees[i], env=env, capture_output=True, text=True, timeout=timeout
                )
            except subprocess.TimeoutExpired as err:
                raise BenchmarkError(
                    f"{labels[i]}: suite {suite!r} gave no result within {timeout:g} s "
                    "(--timeout); stopped"
                ) from err
            if done.returncode != 0:
                last = (done.stderr or done.stdout).strip().splitlines() or ["(no output)"]
                raise BenchmarkError(f"{labels[i]}: suite {suite!r} failed: {last[-1]}")
            doc = json.loads(out.read_text())
            got[i] = {r.name: r for r in (Result.from_dict(d) for d in doc["results"])}
    return {name: (got[0][name], got[1][name]) for name in got[0] if name in got[1]}


def ab_sources(
    baseline: str,
    candidate: str,
    target: str,
    *,
    threshold: float = 0.05,
    budget: float | None = None,
    duet: bool = False,
    confidence: float = 0.95,
    where: Path | None = None,
    seed: int | None = None,
    on_pair: Callable[[int, float], None] | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> ABRun:
    """Compare two versions of the code at ``where`` (default: the current folder): each of
    ``baseline`` and ``candidate`` is a git revision or a folder; ``target`` a ``.py`` file of
    ``bench_*`` functions (its path inside the trees) or a built-in suite name. Pairs are added
    until every benchmark's verdict at ``threshold`` is known or ``budget`` seconds (default
    :data:`BUDGET`) are spent; the verdicts' family-wise error is at most ``1 - confidence``.
    ``env``: variables for a suite's worker processes (the servers a report started).
    ``timeout``: seconds one request to a worker (a block of samples; a whole suite run in
    suite mode) may take before the run stops with a BenchmarkError naming the benchmark."""
    from perflab.bench import sources
    from perflab.bench.comparison import compare

    if not 0 < threshold < 10:
        raise ConfigurationError(f"threshold must be above 0, got {threshold}", name="--threshold")
    budget = BUDGET if budget is None else budget
    if not budget > 0 or not math.isfinite(budget):
        raise ConfigurationError(
            f"budget must be a positive number of seconds, got {budget}", name="--budget"
        )
    if duet and len(os.sched_getaffinity(0)) < 2:
        raise ConfigurationError("--duet needs two cores; this process may use one", name="--duet")
    where = (where or Path.cwd()).absolute()
    is_file = target.endswith(".py")
    rel = sources.target_path(target, where) if is_file else None
    if not is_file and not _is_suite(target):
        raise ConfigurationError(
            f"TARGET {target!r} is neither a .py file of bench_* functions nor a built-in suite "
            f"({', '.join(_SUITES)})",
            name="TARGET",
        )
    started = time.monotonic()
    rng = np.random.default_rng(seed)
    cores = sorted(os.sched_getaffinity(0))[:2]
    with (
        sources.checkout(baseline, "BASELINE", where) as a,
        sources.checkout(candidate, "CANDIDATE", where) as b,
    ):
        trees, labels = (a.tree, b.tree), (f"BASELINE {a.label}", f"CANDIDATE {b.label}")
        only: dict[str, str] = {}
        if rel is not None:
            files = (a.tree / rel, b.tree / rel)
            for side, f in zip((a, b), files, strict=True):
                if not f.is_file():
                    role = "BASELINE" if side is a else "CANDIDATE"
                    raise ConfigurationError(
                        f"TARGET {rel} does not exist in {role} {side.label}", name="TARGET"
                    )
            found = [_functions(f) for f in files]
            names = [n for n in found[0] if n in found[1]]
            only = {n: "baseline" for n in found[0] if n not in found[1]}
            only |= {n: "candidate" for n in found[1] if n not in found[0]}
            if not names:
                raise ConfigurationError(
                    f"TARGET {rel}: no bench_* function is defined on both sides", name="TARGET"
                )
            m = len(names)
        else:
            m = None  # known after the first pair
        pairs: list[dict[str, tuple[Any, Any]]] = []
        mode = "suite" if rel is None else "duet" if duet else "alternate"
        stopper = sequential.Stopper(budget)
        level = None
        while True:
            if rel is not None:
                pin = cores_for(len(pairs), cores) if duet else None
                pairs.append(_file_pair(files, trees, labels, duet, pin, rng, timeout))
            else:
                pairs.append(_suite_pair(target, trees, labels, rng, dict(env or {}), timeout))
                m = m or len(pairs[0])
            if level is None:
                level = 1.0 - sequential.look_alpha((1.0 - confidence) / max(1, m or 1))
            n, elapsed = len(pairs), time.monotonic() - started
            if on_pair is not None:
                on_pair(n, elapsed)
            known = functools.partial(_known, pairs, level, threshold, rel is None)
            if stopper.after_pair(n, elapsed, known):
                break
        decided = stopper.decided
        used = pairs[:decided] if decided else pairs  # fewer than a look: inconclusive
        meta = {**environment(), "interleaved": uuid.uuid4().hex}
        stem = rel.stem if rel is not None else None
        comparisons = []
        for name in used[0]:
            sides = []
            for i, source in enumerate((a, b)):
                sides.append(
                    _side_result(
                        name, [p[name][i] for p in used], stem, source, meta, level=level, mode=mode
                    )
                )
            comparisons.append(compare(sides[0], sides[1], threshold=threshold))
    return ABRun(
        baseline=a.label,
        candidate=b.label,
        comparisons=comparisons,
        pairs=len(used),
        seconds=time.monotonic() - started,
        mode=mode,
        only=only,
        threshold=threshold,
        meta={k: v for k, v in meta.items() if k != "interleaved"},
    )


_VERDICTS = ("slower", "faster", "same", "inconclusive")
_SUITES = ("harness", "data", "concurrency", "cache", "db", "api")


def _is_suite(name: str) -> bool:
    return name in _SUITES


def _known(pairs: list[dict[str, Any]], level: float, threshold: float, whole: bool) -> bool:
    """Whether every benchmark's verdict is known from these pairs."""
    for name in pairs[0]:
        rounds = 1 if whole else ROUNDS
        d = []
        for p in pairs:
            a, b = (p[name][i].samples if whole else p[name][i] for i in (0, 1))
            d.append(sequential.pair_log_ratio(a, b, rounds))
        ci = sequential.paired_interval(np.asarray(d), level)
        if sequential.decide(ci.ci_low, ci.ci_high, threshold) == "inconclusive":
            return False
    return True


def _side_result(
    name: str,
    parts: list[Any],  # Results (a suite) or sample lists (a file)
    stem: str | None,
    source: Any,
    meta: dict[str, Any],
    level: float,
    mode: str,
) -> Result:
    """One side of one benchmark: every pair's samples, each pair one replicate. ``stem``: the
    benchmark file's name (its results are named ``stem/function``, as ``perflab bench
    FILE.py`` names them); None for a suite, whose parts are Results."""
    whole = stem is None
    samples = [np.asarray(p.samples if whole else p, dtype=float) for p in parts]
    first = parts[0] if whole else None
    return Result(
        name=name if whole else f"{stem}/{name.removeprefix('bench_')}",
        samples=np.concatenate(samples),
        replicates=tuple(s.size for s in samples),
        replicate_level="pair",
        loops=first.loops if first else 1,
        mode=first.mode if first else "sync",
        concurrency=first.concurrency if first else 1,
        histogram=first.histogram if first else None,
        unit=first.unit if first else "ns",
        params={"arm": source.spec},
        meta={
            **meta,
            "git": source.commit,
            "ab": {
                "level": level,
                "mode": mode,
                "source": source.label,
                "rounds": 1 if whole else ROUNDS,  # blocks per side in a pair, beside each other
            },
        },
    )
