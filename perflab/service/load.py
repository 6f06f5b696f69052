"""The load generator: closed loop (C clients back to back) or open loop (a constant arrival
rate, each latency counted from its scheduled start: no coordinated omission), every request's
latency kept (HDR histogram), status codes and errors counted. It drives the harness's own
``bench.run``, so its results are ``bench.Result`` objects that ``compare`` and the plots take.
Run it in a process of its own (``perflab load``), never inside the server's."""

from __future__ import annotations

import collections
import socket
import sys
import threading
import time
from typing import Any

import httpx

from perflab import bench
from perflab.bench.core import FAILED
from perflab.errors import BenchmarkError, ConfigurationError, ServerError

__all__ = ["failure_kind", "failures", "preflight", "run_load"]


def failure_kind(error: str | None = None, status: int | None = None) -> str | None:
    """The kind of failure one request is (``connect error``, ``timeout``, ``5xx``,
    ``other error``), or None when it got a response below 500. ``error`` is the httpx
    exception class name."""
    if error is None:
        return "5xx" if status is not None and status >= 500 else None
    if error in ("ConnectError", "ConnectTimeout"):
        return "connect error"
    if error.endswith("Timeout"):
        return "timeout"
    return "other error"


def failures(statuses: dict, errors: dict) -> dict[str, int]:
    """Failed requests by kind, from a result's ``statuses`` and ``errors`` params."""
    out: collections.Counter = collections.Counter()
    for status, n in statuses.items():
        if (kind := failure_kind(status=int(status))) is not None:
            out[kind] += n
    for name, n in errors.items():
        out[failure_kind(name)] += n
    return dict(out)


def preflight(url: str, timeout: float = 2.0) -> None:
    """One TCP connect to the URL's host and port: ServerError naming the URL when nothing
    listens there, before any load is generated."""
    target = httpx.URL(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        socket.create_connection((target.host, port), timeout=timeout).close()
    except OSError as err:
        raise ServerError(
            f"cannot connect to {url} ({target.host}:{port}: {err.strerror or err}); start the "
            "service (perflab serve) or check the URL",
            url=url,
        ) from err


def run_load(
    url: str,
    *,
    method: str = "GET",
    json_body: Any = None,
    concurrency: int = 8,
    rate: float | None = None,
    duration: float = 10.0,
    warmup: float = 1.0,
    timeout: float = 10.0,
    progress: bool | None = None,
    rounds: int = 10,
    check: bool = True,
) -> bench.Result:
    """Load ``url`` for ``duration`` seconds and return every request's latency. The time is
    split into ``rounds`` rounds, each one replicate (with its own throughput). With
    ``check``, one connect attempt first (ServerError if nothing listens). ``params`` of the
    result hold ``statuses``, ``errors``, ``failures`` (by kind) and ``failed`` (a fraction)."""
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"load target {url!r} is not an http(s) URL", name="URL")
    if duration <= 0 or concurrency < 1 or (rate is not None and rate <= 0):
        raise ConfigurationError(
            "duration, concurrency and rate must be positive", name="--duration"
        )
    if check:
        preflight(url, timeout=min(timeout, 5.0))
    statuses: collections.Counter = collections.Counter()
    errors: collections.Counter = collections.Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clients: dict[int, httpx.AsyncClient] = {}

    def client() -> httpx.AsyncClient:
        # one client per event loop (the harness runs coroutines on a private loop thread)
        import asyncio

        loop = id(asyncio.get_running_loop())
        if loop not in clients:
            clients[loop] = httpx.AsyncClient(timeout=timeout, limits=limits)
        return clients[loop]

    async def request() -> object:
        try:
            response = await client().request(method, url, json=json_body)
            await response.aread()
            statuses[response.status_code] += 1
        except httpx.HTTPError as err:
            errors[type(err).__name__] += 1
            return FAILED  # no response: counted apart, not a latency
        return None

    done = threading.Event()
    show = sys.stderr.isatty() if progress is None else progress
    if show:
        threading.Thread(
            target=_progress, args=(statuses, errors, duration + warmup, done), daemon=True
        ).start()
    try:
        if warmup:  # connections open, server warm; not counted
            bench.run(request, name="warm-up", concurrency=concurrency, warmup=0,
                      min_time=warmup, per_operation=True, rounds=1)  # fmt: skip
            statuses.clear()
            errors.clear()
        result = bench.run(
            request,
            name=f"{method} {url}",
            concurrency=concurrency,
            rate=rate,
            per_operation=True,
            warmup=0,
            min_time=duration,
            max_time=duration,
            rounds=rounds,
            params={"url": url, "method": method, "concurrency": concurrency, "rate": rate},
        )
    except BenchmarkError as err:
        if not errors:
            raise
        kinds = ", ".join(f"{n} {k}" for k, n in failures({}, dict(errors)).items())
        raise BenchmarkError(
            f"FAILED 100% of requests to {url} ({kinds}): no response, so no latency"
        ) from err
    finally:
        done.set()
    counted = {str(k): v for k, v in sorted(statuses.items())}
    failed = failures(counted, dict(errors))
    total = sum(statuses.values()) + sum(errors.values())
    result.params.update(
        statuses=counted,
        errors=dict(errors),
        failures=failed,
        failed=sum(failed.values()) / total if total else 0.0,
    )
    return result


def _progress(
    statuses: collections.Counter, errors: collections.Counter, total: float, done: threading.Event
) -> None:
    start = time.monotonic()
    while not done.wait(1.0):
        elapsed = time.monotonic() - start
        count = sum(statuses.values())
        print(
            f"\r{elapsed:5.1f}/{total:.0f} s  {count} responses  {sum(errors.values())} errors  "
            f"{count / elapsed:8.0f} req/s",
            end="",
            file=sys.stderr,
            flush=True,
        )
    print(file=sys.stderr)
