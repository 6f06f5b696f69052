"""Result history in SQLite, and regression detection over it.

Detection looks for one step in each benchmark's series of medians (the split that best explains
the series as two flat segments, the simplest form of asv's step detection), then asks the same
question ``compare`` asks of the pooled samples before and after: significant rank test *and* a
change past the threshold. Only the most recent step of each benchmark is reported.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from perflab.bench.compare import ALPHA, THRESHOLD, Comparison, compare
from perflab.bench.result import Result
from perflab.errors import BenchmarkError

__all__ = ["History", "find_step"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    saved REAL NOT NULL,
    git TEXT,
    tags TEXT NOT NULL,
    median REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_name ON results (name, id);
"""


def find_step(medians: np.ndarray) -> int | None:
    """Index k (1 <= k < n) splitting ``medians`` into two flat runs with the least total
    absolute deviation from each run's median; None for fewer than 2 points."""
    values = np.asarray(medians, dtype=float)
    if values.size < 2:
        return None
    costs = []
    for k in range(1, values.size):
        left, right = values[:k], values[k:]
        costs.append(np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum())
    return int(np.argmin(costs)) + 1


class History:
    """Results saved over time (default file: ``outputs/history.sqlite``)."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            from perflab.settings import resolve

            path = resolve().outputs_dir / "history.sqlite"
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def save(self, item: Result | Comparison, *, tags: Iterable[str] = ()) -> list[int]:
        """Store a result (or both sides of a comparison); returns the new row ids."""
        results = [item.baseline, item.candidate] if isinstance(item, Comparison) else [item]
        if not all(isinstance(r, Result) for r in results):
            raise BenchmarkError(
                f"History.save takes a Result or a Comparison, not {type(item).__name__}"
            )
        ids = []
        with self._connect() as db:
            for r in results:
                row = (r.name, time.time(), r.meta.get("git"), json.dumps(sorted(tags)), r.median)
                cur = db.execute(
                    "INSERT INTO results (name, saved, git, tags, median, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (*row, r.to_json()),
                )
                ids.append(int(cur.lastrowid))
        return ids

    def frame(self, name: str | None = None) -> pd.DataFrame:
        """One row per saved result: id, name, saved (UTC), git, tags, median."""
        query = "SELECT id, name, saved, git, tags, median FROM results"
        args: tuple = ()
        if name is not None:
            query, args = query + " WHERE name = ?", (name,)
        with self._connect() as db:
            frame = pd.read_sql_query(query + " ORDER BY id", db, params=args)
        frame["saved"] = pd.to_datetime(frame["saved"], unit="s", utc=True)
        frame["tags"] = frame["tags"].map(json.loads)
        return frame

    def results(self, name: str) -> list[Result]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT payload FROM results WHERE name = ? ORDER BY id", (name,)
            ).fetchall()
        return [Result.from_json(payload) for (payload,) in rows]

    def regressions(
        self, name: str | None = None, *, threshold: float = THRESHOLD, alpha: float = ALPHA
    ) -> pd.DataFrame:
        """Benchmarks whose latest step made them slower: name, at (row id of the first slower
        result), before/after medians, ratio, p-value."""
        names = [name] if name else sorted(set(self.frame()["name"]))
        rows = []
        for bench_name in names:
            series = self.results(bench_name)
            frame = self.frame(bench_name)
            k = find_step(np.array([r.median for r in series]))
            if k is None:
                continue
            before = Result(
                name=bench_name, samples=np.concatenate([r.samples for r in series[:k]])
            )
            after = Result(name=bench_name, samples=np.concatenate([r.samples for r in series[k:]]))
            c = compare(before, after, threshold=threshold, alpha=alpha)
            if c.verdict == "slower":
                rows.append(
                    {
                        "name": bench_name,
                        "at": int(frame["id"].iloc[k]),
                        "before_median": before.median,
                        "after_median": after.median,
                        "ratio": c.ratio,
                        "p_value": c.p_value,
                    }
                )
        columns = ["name", "at", "before_median", "after_median", "ratio", "p_value"]
        return pd.DataFrame(rows, columns=columns)
