"""The load generator: closed loop (C connections back to back) or open loop (a constant
arrival rate, each latency counted from its scheduled start: no coordinated omission), every
request's latency kept in HDR histograms, status codes and errors counted.

It is built not to be the bottleneck: a raw-asyncio HTTP/1.1 client on ``httptools``
(:mod:`perflab.service.httpclient`), spread over ``processes`` generator processes (or Dask
workers) whose histograms merge losslessly; and it watches itself (its CPU per request, its
event loop's lag, how late it sent each request) and flags a run whose figures it shaped.
Results are ``bench.Result`` objects (one replicate per round) that ``compare`` and the plots
take. Run it in a process of its own (``perflab load``), never inside the server's."""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import os
import queue
import socket
import ssl
import sys
import time
import urllib.parse
from typing import Any

import numpy as np

from perflab import bench
from perflab.errors import BenchmarkError, ConfigurationError, ServerError
from perflab.progress import note as progress_note
from perflab.progress import watched
from perflab.service import hdr, schedule
from perflab.service.generator import LoadPlan, run_part
from perflab.service.httpclient import encode_request, tls_context
from perflab.service.limits import raise_file_limit

__all__ = [
    "default_processes",
    "failure_kind",
    "failures",
    "merge_parts",
    "preflight",
    "run_load",
]

_START_LEAD = 0.05  # s between "all parts ready" and the common start
_DASK_LEAD = 1.0  # s: a Dask worker gets its task over the network


def failure_kind(error: str | None = None, status: int | None = None) -> str | None:
    """The kind of failure one request is (``connect error``, ``timeout``, ``5xx``,
    ``other error``), or None when it got a response below 500. ``error`` is the httpx-style
    exception class name (:class:`perflab.service.httpclient.RequestFailed` uses the same)."""
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


def preflight(
    url: str, timeout: float = 2.0, *, ca_file: str | None = None, verify: bool = True
) -> None:
    """One connect to the URL's host and port (with the TLS handshake for https): ServerError
    naming the URL when nothing listens there or its certificate is refused, before any load
    is generated."""
    target = urllib.parse.urlsplit(url)
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        with socket.create_connection((target.hostname, port), timeout=timeout) as sock:
            if target.scheme == "https":
                context = tls_context(ca_file=ca_file, verify=verify)
                with context.wrap_socket(sock, server_hostname=target.hostname):
                    pass
    except ssl.SSLCertVerificationError as err:
        raise ServerError(
            f"{url}: the server's certificate was refused ({err.verify_message}); give its CA "
            "with --cacert FILE (ca_file=), or --insecure (verify=False) for a test host",
            url=url,
        ) from err
    except ssl.SSLError as err:
        raise ServerError(
            f"{url}: the TLS handshake failed ({err.reason or err})", url=url
        ) from err
    except OSError as err:
        raise ServerError(
            f"cannot connect to {url} ({target.hostname}:{port}: {err.strerror or err}); start "
            "the service (perflab serve) or check the URL",
            url=url,
        ) from err


def default_processes() -> int:
    """Generator processes by default: half the cores (the rest is the server's), at least 1."""
    return max(1, (os.cpu_count() or 2) // 2)


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
    processes: int | None = 1,
    scheduler: str | None = None,
    max_samples: int = 100_000,
    headers: dict[str, str] | None = None,
    preconnect: bool = False,
    loop: str = "auto",
    drain: float | None = None,
    ca_file: str | None = None,
    verify: bool = True,
) -> bench.Result:
    """Load ``url`` for ``duration`` seconds (after ``warmup`` seconds not counted) over
    ``concurrency`` keep-alive connections and return every request's latency. Closed loop,
    or with ``rate`` an open loop of that many requests per second in all. The window is cut
    into ``rounds`` rounds, each one replicate (with its own throughput).

    ``processes`` generator processes share the connections and the schedule (1: in this
    process; None: :func:`default_processes`); with ``scheduler`` (a Dask address) they run
    as tasks on that cluster's workers. With ``check``, one connect attempt first (ServerError
    if nothing listens).

    ``params`` of the result hold ``statuses``, ``errors``, ``failures`` (by kind), ``failed``
    (a fraction) and ``generator``: its CPU per request, loop lag, send lateness and whether
    it was ``saturated`` (with the ``reason``): then the client, not the server, was the
    limit. Open-loop results also keep the uncorrected histogram (from the actual send) in
    ``params["uncorrected_histogram"]``; ``histogram`` is corrected (from the due time).

    ``drain``: seconds after the window that requests still in flight may take; then they are
    cut and counted in ``params["cut_at_deadline"]`` (default: the request ``timeout``).

    ``https://`` URLs speak TLS: certificates are verified against the system's CAs, or
    ``ca_file`` (a PEM bundle) for a private CA; ``verify=False`` skips the check for a test
    host (``params["tls"]`` records which). The generator's CPU per request then includes the
    encryption (``params["generator"]["cpu_us_per_request"]``)."""
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"load target {url!r} is not an http(s) URL", name="URL")
    if ca_file is not None and not os.path.isfile(ca_file):
        raise ConfigurationError(
            f"ca_file {ca_file!r} is not a file; give the PEM file of the CA that signed the "
            "server's certificate",
            name="--cacert",
        )
    if duration <= 0 or concurrency < 1 or (rate is not None and rate <= 0):
        raise ConfigurationError(
            "duration, concurrency and rate must be positive", name="--duration"
        )
    progress_note(f"load {method} {urllib.parse.urlsplit(url).path or '/'}")
    processes = default_processes() if processes is None else processes
    if processes < 1:
        raise ConfigurationError(
            f"processes must be at least 1, got {processes}", name="--processes"
        )
    processes = min(processes, concurrency)
    if check:
        preflight(url, timeout=min(timeout, 5.0), ca_file=ca_file, verify=verify)
    # ``preconnect``: every connection is opened before the start and held (keep-alive users)
    if rate is not None and int(duration * rate) < rounds:
        raise ConfigurationError(
            f"rate {rate:g}/s for {duration:g} s schedules fewer requests than the {rounds} "
            "rounds; raise the rate or the duration",
            name="--rate",
        )
    limit = raise_file_limit(max(schedule.split(concurrency, processes)))  # each part's own
    try:
        request = encode_request(url, method, json_body, headers)
    except ValueError as err:
        raise ConfigurationError(str(err), name="headers") from err
    shares = schedule.split(concurrency, processes)
    plans = [
        LoadPlan(url=url, request=request, connections=n, rate=rate, duration=duration,
             warmup=warmup, rounds=rounds, timeout=timeout, part=i, parts=processes,
             max_samples=max_samples, preconnect=preconnect, loop=loop, drain=drain,
             ca_file=ca_file, verify=verify)
        for i, n in enumerate(shares)
    ]  # fmt: skip
    show = watched() if progress is None else progress
    if show:
        print(f"loading {url} for {warmup + duration:.0f} s …", file=sys.stderr, flush=True)
    if scheduler is not None:
        parts = _on_dask(plans, scheduler)
    elif processes == 1:
        parts = [run_part(plans[0])]
    else:
        parts = _in_processes(plans)
    result = merge_parts(
        parts,
        name=f"{method} {url}",
        params={"url": url, "method": method, "concurrency": concurrency, "rate": rate,
                "processes": processes, "file_limit": limit,
                **({"tls": "verified" if verify else "not verified (verify=False)"}
                   if url.startswith("https://") else {}),
                **({"scheduler": scheduler} if scheduler else {})},
        duration=duration,
        open_loop=rate is not None,
        concurrency=concurrency,
    )  # fmt: skip
    gen = result.params["generator"]
    gen["loop"] = loop
    if gen["saturated"] and progress is not False:
        print(
            f"perflab load: {url}: the client, not the server, was the limit ({gen['reason']})",
            file=sys.stderr,
        )
    return result


def merge_parts(
    parts: list[dict[str, Any]],
    *,
    name: str,
    params: dict[str, Any],
    duration: float,
    open_loop: bool,
    concurrency: int,
) -> bench.Result:
    """One ``bench.Result`` from the figures of every generator part: histograms added
    bucket by bucket, counts summed, round ``r`` of every part one replicate."""
    statuses: collections.Counter = collections.Counter()
    errors: collections.Counter = collections.Counter()
    for p in parts:
        statuses.update(p["statuses"])
        errors.update(p["errors"])
    counted = {str(k): v for k, v in sorted(statuses.items(), key=lambda kv: int(kv[0]))}
    failed = failures(counted, dict(errors))
    total = sum(statuses.values()) + sum(errors.values())
    n_rounds = len(parts[0]["rounds"])
    per_round = duration / n_rounds
    samples, sizes, rates = [], [], []
    for r in range(n_rounds):
        got = np.concatenate([p["rounds"][r]["samples"] for p in parts])
        n = sum(p["rounds"][r]["n"] for p in parts)
        if got.size:
            samples.append(got)
            sizes.append(got.size)
            rates.append(n / per_round)
    completed = sum(statuses.values())
    cut = sum(p.get("cut_at_deadline", 0) for p in parts)
    if not samples:
        kinds = ", ".join(f"{n} {k}" for k, n in failed.items()) or "no request finished"
        if cut:
            kinds += f"; {cut} still in flight at the deadline after the window, cut"
        raise BenchmarkError(
            f"FAILED 100% of requests to {params['url']} ({kinds}): no response, so no latency"
        )
    corrected = hdr.merge(p["corrected"] for p in parts)
    generator = _self_report(parts, completed + sum(errors.values()), open_loop)
    extra: dict[str, Any] = {"generator": generator}
    if open_loop:
        extra["uncorrected_histogram"] = _text(hdr.merge(p["uncorrected"] for p in parts))
        extra["lateness_histogram"] = _text(hdr.merge(p["lateness"] for p in parts))
    return bench.Result(
        name=name,
        samples=np.concatenate(samples).astype(float),
        replicates=tuple(sizes),
        replicate_level="round",
        rates=tuple(rates),
        loops=1,
        mode="open-loop tasks" if open_loop else "tasks",
        concurrency=concurrency,
        throughput=completed / duration,
        histogram=_text(corrected),
        params={
            **params,
            "statuses": counted,
            "errors": dict(errors),
            "failures": failed,
            "failed": sum(failed.values()) / total if total else 0.0,
            # requests still in flight a second after the window: cut, neither kept nor failed
            "cut_at_deadline": cut,
            **extra,
        },
        meta=bench.environment(),
    )


def _text(hist: Any) -> str:
    return hist.encode().decode("ascii")


def _self_report(parts: list[dict[str, Any]], requests: int, open_loop: bool) -> dict[str, Any]:
    """What the generator says about itself: client CPU per request (the loop threads'), the
    busiest part's share of a core, loop lag and (open loop) send lateness; ``saturated`` and
    its ``reason`` from :func:`schedule.verdict`."""
    cpu = sum(p["cpu_s"] for p in parts)
    busiest = max(p["process_cpu_s"] / p["wall_s"] for p in parts if p["wall_s"] > 0)
    lag = hdr.merge(p["lag"] for p in parts)
    out: dict[str, Any] = {
        "client": "httptools (raw asyncio)",
        "parts": len(parts),
        "cpu_us_per_request": cpu / requests * 1e6 if requests else None,
        "cpu_fraction": busiest,
        "loop_lag_p99_ms": lag.get_value_at_percentile(99) / 1e6,
    }
    own_p99 = None
    if open_loop:
        late = hdr.merge(p["lateness"] for p in parts)
        own = hdr.merge(p["own_lateness"] for p in parts)
        own_p99 = own.get_value_at_percentile(99)
        out.update(
            send_lateness_p50_ms=late.get_value_at_percentile(50) / 1e6,
            send_lateness_p99_ms=late.get_value_at_percentile(99) / 1e6,
            send_lateness_max_ms=late.get_max_value() / 1e6,
            own_lateness_p99_ms=own_p99 / 1e6,
            early=sum(p["early"] for p in parts),
        )
    saturated, reason = schedule.verdict(
        cpu_fraction=busiest, lag_p99_ns=lag.get_value_at_percentile(99), own_late_p99_ns=own_p99
    )
    out.update(saturated=saturated, reason=reason)
    return out


def _child(plan: LoadPlan, ready: Any, go: Any, results: Any) -> None:
    """A generator process: ready, wait for the common start, run, send the figures back."""
    try:
        ready.put(plan.part)
        start_at = go.get(timeout=120)
        results.put((plan.part, run_part(dataclasses.replace(plan, start_at=start_at)), None))
    except BaseException as err:  # noqa: BLE001 (sent to the parent, which raises it)
        results.put((plan.part, None, f"{type(err).__name__}: {err}"))


def _in_processes(plans: list[LoadPlan]) -> list[dict[str, Any]]:
    ctx = multiprocessing.get_context("spawn")  # forking a process with threads is unsafe
    ready, go, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(p, ready, go, results), daemon=True) for p in plans]
    for p in procs:
        p.start()
    try:
        for _ in plans:
            ready.get(timeout=120)
        start_at = time.time() + _START_LEAD
        for _ in plans:
            go.put(start_at)
        longest = plans[0].warmup + plans[0].duration + plans[0].timeout + 120
        out: dict[int, dict] = {}
        for _ in plans:
            part, figures, error = results.get(timeout=longest)
            if error:
                raise BenchmarkError(f"load generator process {part} failed: {error}")
            out[part] = figures
    except queue.Empty as err:
        raise BenchmarkError("a load generator process did not answer in time") from err
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
    return [out[i] for i in sorted(out)]


def _on_dask(plans: list[LoadPlan], scheduler: str) -> list[dict[str, Any]]:
    """Each part as a task on its own Dask worker (when there are enough), from a common start
    a moment after the tasks are sent (the workers import the generator first)."""
    from distributed import Client

    with Client(scheduler, timeout=10) as client:
        workers = list(client.scheduler_info()["workers"])
        client.run(_warm)
        start_at = time.time() + _DASK_LEAD
        futures = [
            client.submit(run_part, dataclasses.replace(p, start_at=start_at), pure=False,
                          workers=[workers[i % len(workers)]], allow_other_workers=True)
            for i, p in enumerate(plans)
        ]  # fmt: skip
        return client.gather(futures)


def _warm() -> None:
    import perflab.service.generator  # noqa: F401  (imported before the common start)
