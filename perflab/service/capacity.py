"""The seed's three capacity claims, measured as ratios between the variants under the same
load on one machine: concurrent keep-alive users (each sending at a low fixed rate, open
loop: errors and p99), peak database connections (server-side backends in
``pg_stat_activity``) and peak RSS of the service. Each variant runs in a fresh service
process per replicate, so neither inherits the other's connections or heap."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import numpy as np
import pandas as pd
import psutil
import psycopg

from perflab.bench import stats
from perflab.errors import BenchmarkError
from perflab.service.api_runs import service_process
from perflab.service.load import run_load

__all__ = ["PATH", "Peaks", "capacity_claims", "summarise_capacity"]

PATH = "/signals?symbol=S0001"
SLO_P99_MS = 1000.0  # a level is "served" with < 0.1 % failed requests and p99 under 1 s
MAX_FAILED = 0.001


class Peaks:
    """Samples, every ``interval`` s in a thread, the RSS of a process and its children and
    the database backends whose application_name is ``app``; keeps the peaks."""

    def __init__(self, pid: int, database_url: str | None, app: str, interval: float = 0.05):
        self.proc, self.url = psutil.Process(pid), database_url
        self.app, self.interval = app, interval
        self.rss = 0
        self.backends = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perflab-peaks", daemon=True)

    def _rss(self) -> int:
        total = 0
        for p in (self.proc, *self.proc.children(recursive=True)):
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        conn = None
        if self.url and self.url.startswith("postgres"):
            conn = psycopg.connect(self.url, autocommit=True)
        try:
            while not self._stop.is_set():
                self.rss = max(self.rss, self._rss())
                if conn is not None:
                    n = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                        (self.app,),
                    ).fetchone()[0]
                    self.backends = max(self.backends, n)
                self._stop.wait(self.interval)
        finally:
            if conn is not None:
                conn.close()

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def capacity_claims(
    database_url: str | None,
    *,
    users: tuple[int, ...] = (1_000, 10_000),
    per_user_rate: float = 0.02,
    duration: float = 30.0,
    warmup: float = 2.0,
    replicates: int = 2,
    preset: str = "quick",
    timeout: float = 10.0,
) -> pd.DataFrame:
    """One row per (users, replicate, variant): ``users`` keep-alive connections opened
    first, then an open loop of ``users * per_user_rate`` requests/s on ``GET /signals``
    for ``duration`` s; failed fraction, p99, the generator's verdict, and the service's
    peak RSS and database backends. Variants alternate (A B, B A …) per replicate."""
    rows = []
    for level in users:
        for rep in range(replicates):
            order = ("baseline", "optimized") if rep % 2 == 0 else ("optimized", "baseline")
            for variant in order:
                app = f"perflab-capacity-{uuid.uuid4().hex[:8]}"
                with (
                    service_process(preset, env={"PGAPPNAME": app}) as (base, proc),
                    Peaks(proc.pid, database_url, app) as peaks,
                ):
                    try:
                        r = run_load(f"{base}/{variant}{PATH}", rate=level * per_user_rate,
                                     concurrency=level, duration=duration, warmup=warmup,
                                     timeout=timeout, rounds=5, progress=False,
                                     preconnect=True)  # fmt: skip
                    except BenchmarkError as err:  # every request failed: a row, not a crash
                        r = None
                        failed_all = str(err)
                row = {"users": level, "replicate": rep, "variant": variant,
                       "rate": level * per_user_rate, "peak_rss_mb": peaks.rss / 2**20,
                       "peak_db_connections": peaks.backends}  # fmt: skip
                if r is None:
                    rows.append({**row, "failed": 1.0, "failures": failed_all, "p50_ms": np.nan,
                                 "p99_ms": np.nan, "max_ms": np.nan})  # fmt: skip
                    continue
                gen = r.params["generator"]
                s = r.summary()
                rows.append(
                    {
                        **row,
                        "requests": sum(r.params["statuses"].values())
                        + sum(r.params["errors"].values()),
                        "failed": r.params["failed"],
                        "failures": r.params["failures"],
                        "p50_ms": s["p50"] / 1e6,
                        "p99_ms": s["p99"] / 1e6,
                        "max_ms": s["max"] / 1e6,
                        "generator_saturated": gen["saturated"],
                        "generator_reason": gen["reason"],
                        "file_limit": r.params["file_limit"],
                    }
                )
                time.sleep(0.5)  # sockets of the last service closing
    return pd.DataFrame(rows)


def summarise_capacity(frame: pd.DataFrame) -> dict[str, Any]:
    """Figures for the claims audit: per level and variant the worst failed fraction and the
    median p99; users served (the largest level with < 0.1 % failures and p99 < 1 s) per
    variant and their ratio; peak DB connections and RSS as baseline / optimised ratios
    over the replicates (with a CI when there are two or more)."""
    out: dict[str, Any] = {}
    served = {}
    for variant, part in frame.groupby("variant"):
        ok = [lvl for lvl, g in part.groupby("users")
              if g["failed"].max() < MAX_FAILED and g["p99_ms"].max() < SLO_P99_MS]  # fmt: skip
        served[variant] = max(ok, default=0)
        for lvl, g in part.groupby("users"):
            out[f"users{lvl}/{variant}/failed"] = float(g["failed"].max())
            out[f"users{lvl}/{variant}/p99_ms"] = float(g["p99_ms"].median())
    out["users_served/baseline"] = served.get("baseline", 0)
    out["users_served/optimized"] = served.get("optimized", 0)
    if served.get("baseline"):
        out["users_served_ratio"] = served["optimized"] / served["baseline"]
    for column, key in (("peak_db_connections", "db_connections"), ("peak_rss_mb", "rss")):
        top = frame[frame["users"] == frame["users"].max()]
        b = top[top["variant"] == "baseline"].sort_values("replicate")[column].to_numpy(float)
        o = top[top["variant"] == "optimized"].sort_values("replicate")[column].to_numpy(float)
        out[f"{key}/baseline"] = float(np.median(b))
        out[f"{key}/optimized"] = float(np.median(o))
        if len(b) >= 2 and np.all(b > 0) and np.all(o > 0):
            ratio = stats.replicate_ratio(o, b)  # baseline / optimised: how many times fewer
            out[f"{key}_ratio"] = (ratio.ratio, ratio.ci_low, ratio.ci_high)
        elif np.all(o > 0) and len(b):
            out[f"{key}_ratio"] = float(np.median(b) / np.median(o))
    return out
