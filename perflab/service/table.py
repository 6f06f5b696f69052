"""The seed's API table, measured: each endpoint baseline vs optimised under the same load, with
latency percentiles, throughput and the speedup's confidence interval; and a capacity curve.

The service runs in its own process (``perflab serve``); the load comes from this one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd

from perflab import bench
from perflab.bench import stats
from perflab.errors import ServerError
from perflab.service.load import run_load

__all__ = ["ENDPOINTS", "api_table", "capacity_curve", "running_service", "terminate"]

# (label, method, path, body, the seed's claimed baseline ms, claimed optimised ms)
_FIVE = {"symbols": ["S0001", "S0002", "S0003", "S0004", "S0005"]}
_TEN = {"symbols": [f"S{i:04d}" for i in range(10)]}
ENDPOINTS = [
    ("GET /signals", "GET", "/signals?symbol=S0001", None, 150, 5),
    ("GET /market-data/stream", "GET", "/market-data/stream?symbol=S0002&limit=500", None, 50, 1),
    ("POST /portfolio/optimize", "POST", "/portfolio/optimize", _FIVE, 500, 50),
    ("POST /batch/signals", "POST", "/batch/signals", _TEN, 1000, 100),
]


@contextlib.contextmanager
def running_service(
    preset: str = "quick", workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``perflab serve`` on a free port for the duration of the block; yields its base URL.
    ``env`` adds variables for the service process (e.g. another PERFLAB_STATE_DIR)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "perflab", "serve", "--port", str(port), "--preset", preset,
         "--workers", str(workers)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise ServerError(
                    f"the service exited: {proc.stderr.read().decode().strip()[-500:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise ServerError(f"the service did not answer on {base} within 120 s")
            time.sleep(0.2)
        yield base
    finally:
        terminate(proc)


def terminate(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop a process started with ``start_new_session=True`` and its children: SIGTERM to the
    group, SIGKILL if it is still there after ``grace`` seconds."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def api_table(
    base: str,
    *,
    concurrency: int = 8,
    duration: float = 5.0,
    warmup: float = 1.0,
    rounds: int = 5,
) -> tuple[pd.DataFrame, list[bench.Result]]:
    """Every endpoint, baseline and optimised under the same closed-loop load, in ``rounds``
    interleaved rounds (A B B A …) of ``duration / rounds`` seconds each, so drift and busy
    spells fall on both; each round is one replicate of the speedup and throughput ratio.
    Returns the table (one row per endpoint, shaped like the seed's) and the raw results."""
    rows, results = [], []
    for label, method, path, body, claimed_base, claimed_opt in ENDPOINTS:
        parts: dict[str, list[bench.Result]] = {"baseline": [], "optimized": []}
        for i in range(rounds):
            order = ("baseline", "optimized") if i % 2 == 0 else ("optimized", "baseline")
            for variant in order:
                parts[variant].append(
                    run_load(f"{base}/{variant}{path}", method=method, json_body=body,
                             concurrency=concurrency, duration=duration / rounds,
                             warmup=warmup if i == 0 else 0.0, rounds=1)
                )  # fmt: skip
        together = uuid.uuid4().hex  # the two variants' rounds were interleaved
        b, o = combine(parts["baseline"], together), combine(parts["optimized"], together)
        results += [b, o]
        c = bench.compare(b, o, match_names=False)
        rate = stats.replicate_ratio(np.array(b.rates), np.array(o.rates))
        p50 = stats.geometric_interval(o.replicate_medians)
        sb, so = b.summary(), o.summary()
        rows.append(
            {
                "endpoint": label,
                "claimed baseline ms": claimed_base,
                "claimed optimized ms": claimed_opt,
                "claimed improvement": f"{claimed_base / claimed_opt:g}x",
                "baseline p50 ms": sb["p50"] / 1e6,
                "baseline p99 ms": sb["p99"] / 1e6,
                "optimized p50 ms": so["p50"] / 1e6,
                "optimized p50 95% CI": (p50[1] / 1e6, p50[2] / 1e6),
                "optimized p99 ms": so["p99"] / 1e6,
                "speedup p50": c.speedup,
                "speedup 95% CI": (1 / c.ci_high, 1 / c.ci_low),
                "baseline req/s": sb["throughput"],
                "optimized req/s": so["throughput"],
                "throughput ratio": rate.ratio,
                "throughput ratio 95% CI": (rate.ci_low, rate.ci_high),
                "rounds": rounds,
                "errors": sum(b.params["errors"].values()) + sum(o.params["errors"].values()),
                "non-2xx": _non_2xx(b) + _non_2xx(o),
            }
        )
    return pd.DataFrame(rows).set_index("endpoint"), results


def combine(parts: list[bench.Result], interleaved: str | None = None) -> bench.Result:
    """Load results of one URL from separate rounds as one result, a replicate per round:
    histograms added, status and error counts summed, each round's throughput kept.
    ``interleaved`` marks results whose rounds alternated with another's (A B B A …), so
    ``compare`` may judge their rounds as replicates."""
    import collections

    hist = parts[0].hdr()
    for p in parts[1:]:
        hist.add(p.hdr())
    statuses: collections.Counter = collections.Counter()
    errors: collections.Counter = collections.Counter()
    for p in parts:
        statuses.update(p.params.get("statuses", {}))
        errors.update(p.params.get("errors", {}))
    rates = [p.throughput for p in parts if p.throughput is not None]
    return dataclasses.replace(
        parts[0],
        samples=np.concatenate([p.samples for p in parts]),
        replicates=tuple(p.samples.size for p in parts),
        replicate_level="round",
        rates=tuple(rates),
        throughput=float(np.mean(rates)) if rates else None,
        histogram=hist.encode().decode("ascii"),
        params={**parts[0].params, "statuses": dict(statuses), "errors": dict(errors)},
        meta={**parts[0].meta, **({"interleaved": interleaved} if interleaved else {})},
    )


def capacity_curve(
    url: str,
    *,
    levels: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64),
    duration: float = 2.0,
    explode: float = 10.0,
    method: str = "GET",
    json_body: object = None,
) -> pd.DataFrame:
    """Throughput and p99 as closed-loop concurrency rises; stops once p99 exceeds ``explode``
    times its value at the first level, or errors appear."""
    rows, first_p99 = [], None
    for level in levels:
        r = run_load(
            url,
            method=method,
            json_body=json_body,
            concurrency=level,
            duration=duration,
            warmup=0.3,
        )
        s = r.summary()
        failures = sum(r.params["errors"].values()) + _non_2xx(r)
        rows.append(
            {
                "concurrency": level,
                "throughput": s["throughput"],
                "p50_ms": s["p50"] / 1e6,
                "p99_ms": s["p99"] / 1e6,
                "max_ms": s["max"] / 1e6,
                "failures": failures,
            }
        )
        first_p99 = first_p99 or s["p99"]
        if failures or s["p99"] > explode * first_p99:
            break
    return pd.DataFrame(rows)


def _non_2xx(result: bench.Result) -> int:
    return sum(v for k, v in result.params["statuses"].items() if not k.startswith("2"))
