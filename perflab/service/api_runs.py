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

__all__ = [
    "ENDPOINTS",
    "api_table",
    "capacity_curve",
    "combine",
    "running_service",
    "service_process",
    "terminate",
]

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
    with service_process(preset, workers, env) as (base, _):
        yield base


@contextlib.contextmanager
def service_process(
    preset: str = "quick", workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """:func:`running_service`, yielding (base URL, the service's process)."""
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
        yield base, proc
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


COLD = {"Cache-Control": "no-cache"}  # the optimised endpoints skip the cache lookup
ARMS = ("baseline", "optimized cold", "optimized warm")


def api_table(
    base: str,
    *,
    concurrency: int = 8,
    duration: float = 5.0,
    warmup: float = 1.0,
    rounds: int = 5,
    endpoints: list | None = None,
) -> tuple[pd.DataFrame, list[bench.Result]]:
    """Every endpoint under the same closed-loop load: baseline, optimised with a cold cache
    (``Cache-Control: no-cache``: every request loads and computes) and optimised warm, in
    ``rounds`` interleaved rounds (the order rotates each round) of ``duration / rounds``
    seconds each, so drift and busy spells fall on all three; each round is one replicate of
    every figure. p50, p99 and max carry a 95 % CI over the rounds; the warm arm's GC pauses,
    event-loop stalls and cache loads (the service's ``/metrics/tail``) explain its tail.
    Returns the table (one row per endpoint, shaped like the seed's) and the raw results."""
    rows, results = [], []
    for label, method, path, body, claimed_base, claimed_opt in endpoints or ENDPOINTS:
        parts: dict[str, list[bench.Result]] = {arm: [] for arm in ARMS}
        tails: list[dict] = []
        for i in range(rounds):
            order = ARMS[i % 3 :] + ARMS[: i % 3]
            for arm in order:
                variant = arm.split()[0]
                if arm == "optimized warm":
                    _tail(base, reset=True)
                parts[arm].append(
                    run_load(f"{base}/{variant}{path}", method=method, json_body=body,
                             concurrency=concurrency, duration=duration / rounds,
                             warmup=warmup if i == 0 else 0.0, rounds=1,
                             headers=COLD if arm == "optimized cold" else None,
                             progress=False)  # the "generator saturated" column says it
                )  # fmt: skip
                if arm == "optimized warm":
                    tails.append(_tail(base))
        together = uuid.uuid4().hex  # the arms' rounds were interleaved
        b, cold, warm = (
            dataclasses.replace(combine(parts[arm], together), name=f"{label} ({arm})")
            for arm in ARMS
        )
        for arm, r in zip(ARMS, (b, cold, warm), strict=True):
            r.params.update(arm=arm, endpoint=label)
        results += [b, cold, warm]
        row: dict = {
            "endpoint": label,
            "claimed baseline ms": claimed_base,
            "claimed optimized ms": claimed_opt,
            "claimed improvement": f"{claimed_base / claimed_opt:g}x",
        }
        for arm, r in zip(ARMS, (b, cold, warm), strict=True):
            row.update(_percentiles(arm, r))
        for arm, r in (("warm", warm), ("cold", cold)):
            c = bench.compare(b, r, match_names=False)
            row[f"speedup p50 {arm}"] = c.speedup
            row[f"speedup {arm} 95% CI"] = (1 / c.ci_high, 1 / c.ci_low)
        rate = stats.replicate_ratio(np.array(b.rates), np.array(warm.rates))
        row.update(
            {
                "baseline req/s": b.throughput,
                "optimized warm req/s": warm.throughput,
                "throughput ratio": rate.ratio,
                "throughput ratio 95% CI": (rate.ci_low, rate.ci_high),
                "rounds": rounds,
                "errors": sum(sum(r.params["errors"].values()) for r in (b, cold, warm)),
                "non-2xx": sum(_non_2xx(r) for r in (b, cold, warm)),
                **_tail_columns(tails),
                "generator saturated": any(
                    p.params["generator"]["saturated"] for arm in ARMS for p in parts[arm]
                ),
            }
        )
        # the names of the seed's table, kept for the claims audit and older notebooks
        row["speedup p50"] = row["speedup p50 warm"]
        row["speedup 95% CI"] = row["speedup warm 95% CI"]
        row["optimized p50 ms"] = row["optimized warm p50 ms"]
        row["optimized p50 95% CI"] = row["optimized warm p50 95% CI"]
        row["optimized p99 ms"] = row["optimized warm p99 ms"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("endpoint"), results


def _percentiles(arm: str, r: bench.Result) -> dict:
    """p50, p99 and max (ms) of every request, each with a 95 % CI over the rounds."""
    out = {}
    summary = r.summary()
    sizes = r.replicates or (r.samples.size,)
    split = np.split(r.samples, np.cumsum(sizes)[:-1])
    for name, q in (("p50", 50), ("p99", 99), ("max", 100)):
        per_round = np.array([np.percentile(s, q) for s in split])
        _, low, high = stats.geometric_interval(per_round / 1e6)
        out[f"{arm} {name} ms"] = summary[name] / 1e6
        out[f"{arm} {name} 95% CI"] = (low, high)
    return out


def _tail(base: str, reset: bool = False) -> dict:
    response = httpx.get(f"{base}/metrics/tail", params={"reset": reset}, timeout=10)
    response.raise_for_status()
    return response.json()


def _tail_columns(tails: list[dict]) -> dict:
    """The warm arm's GC pauses, loop stalls and cache loads, summed over its rounds."""
    gc_n = sum(t["gc"][g]["n"] for t in tails for g in ("0", "1", "2"))
    gc2_n = sum(t["gc"]["2"]["n"] for t in tails)
    return {
        "warm GC pauses": gc_n,
        "warm GC gen2 pauses": gc2_n,
        "warm GC max ms": max((t["gc"][g]["max_ms"] for t in tails for g in "012"), default=0),
        "warm GC total ms": sum(t["gc"][g]["total_ms"] for t in tails for g in "012"),
        "warm loop stalls": sum(t["stalls"]["n"] for t in tails),
        "warm stalls held": sum(t["stalls"]["held"]["n"] for t in tails),
        "warm stalls preempted": sum(t["stalls"]["preempted"]["n"] for t in tails),
        "warm stalls blocked": sum(t["stalls"]["blocked"]["n"] for t in tails),
        "warm stall max ms": max((t["stalls"]["max_ms"] for t in tails), default=0),
        "warm held stall max ms": max((t["stalls"]["held"]["max_ms"] for t in tails), default=0),
        "warm cache loads": sum(t["loads"]["n"] for t in tails),
        "warm load max ms": max((t["loads"]["max_ms"] for t in tails), default=0),
    }


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
    warmup: float = 0.3,
    ca_file: str | None = None,
    verify: bool = True,
) -> pd.DataFrame:
    """Throughput and p99 as closed-loop concurrency rises; stops once p99 exceeds ``explode``
    times its value at the first level, or errors appear. ``ca_file``/``verify``: https, as
    :func:`run_load`."""
    rows, first_p99 = [], None
    for level in levels:
        r = run_load(
            url,
            method=method,
            json_body=json_body,
            concurrency=level,
            duration=duration,
            warmup=warmup,
            progress=False,  # the "generator saturated" column says it
            ca_file=ca_file,
            verify=verify,
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
                "generator saturated": r.params["generator"]["saturated"],
            }
        )
        first_p99 = first_p99 or s["p99"]
        if failures or s["p99"] > explode * first_p99:
            break
    return pd.DataFrame(rows)


def _non_2xx(result: bench.Result) -> int:
    return sum(v for k, v in result.params["statuses"].items() if not k.startswith("2"))
