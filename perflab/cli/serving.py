"""``perflab serve`` (the demo service) and ``perflab load`` (the load generator)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from perflab.cli.checks import check_output_file, check_port, ns
from perflab.errors import ConfigurationError

__all__ = ["generator_line", "load_command", "serve_command"]


def serve_command(args: argparse.Namespace) -> int:
    import uvicorn

    from perflab import servers
    from perflab.workload import PRESETS

    if args.preset not in PRESETS:
        raise ConfigurationError(f"unknown preset {args.preset!r}; use one of {', '.join(PRESETS)}")
    if args.workers < 1:
        raise ConfigurationError(
            f"--workers must be at least 1, got {args.workers}", name="--workers"
        )
    check_port(args.port)
    servers.start()  # an unreachable URL is a one-line error before uvicorn starts
    os.environ["PERFLAB_SERVICE_PRESET"] = args.preset
    uvicorn.run(
        "perflab.service.app:app_from_env",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
        backlog=4096,  # 10,000 users connect at once in the capacity claims
        timeout_keep_alive=75,  # keep-alive users that send every few seconds stay connected
    )
    return 0


def load_command(args: argparse.Namespace) -> int:
    from perflab import suites
    from perflab.service import preflight, run_load

    for option, value in (
        ("--duration", args.duration),
        ("--rate", args.rate),
        ("--concurrency", args.concurrency),
        ("--workers", args.workers),
        ("--processes", args.processes),
        ("--drain", args.drain),
    ):
        if value is not None and not value > 0:
            raise ConfigurationError(f"{option} must be positive, got {value}", name=option)
    if args.out:  # before any load: a bad path must not cost a whole run
        check_output_file(Path(args.out), "--out")
    if args.scheduler:
        from perflab.sweep import check_scheduler

        check_scheduler(args.scheduler)
    if args.cacert and not Path(args.cacert).is_file():
        raise ConfigurationError(f"--cacert {args.cacert} is not a file", name="--cacert")
    tls = {"ca_file": args.cacert, "verify": not args.insecure}
    for url in args.urls:  # a closed port is a mistake in what was asked: exit 2, no load
        preflight(url, **tls)
    results, code = [], 0
    for url in args.urls:
        concurrency = args.workers if args.rate else args.concurrency
        r = run_load(
            url,
            rate=args.rate,
            concurrency=concurrency,
            duration=args.duration,
            processes=args.processes,
            scheduler=args.scheduler,
            progress=False,
            drain=args.drain,
            **tls,
        )
        s = r.summary()
        failed = r.params["failures"]
        print(
            f"{url}  {int(s['n'])} requests  {s['throughput']:.0f} req/s  p50 {ns(s['p50'])}  "
            f"p99 {ns(s['p99'])}  max {ns(s['max'])}  statuses {r.params['statuses']}"
        )
        print(f"{url}  generator: {generator_line(r.params['generator'])}")
        if r.params.get("cut_at_deadline"):
            print(
                f"{url}  {r.params['cut_at_deadline']} requests still waiting {args.drain:g} s "
                "after the window were cut (neither latencies nor failures; see --drain)"
            )
        if failed:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(failed.items()))
            print(f"{url}  FAILED {r.params['failed']:.0%} of requests: {kinds}")
        if r.params["failed"] > 0.5:  # the work ran and mostly failed
            code = 1
        results.append(r)
    if args.out:
        print(f"saved {suites.save_results(args.out, suites.SuiteRun('load', results))}")
    return code


def generator_line(gen: dict) -> str:
    """What the load generator says about itself, on one line."""
    cpu = gen["cpu_us_per_request"]
    text = (
        f"{gen['parts']} process(es), client CPU {cpu:.0f} µs/request, busiest at "
        f"{gen['cpu_fraction']:.0%} of a core, loop lag p99 {gen['loop_lag_p99_ms']:.2f} ms"
        if cpu is not None
        else f"{gen['parts']} process(es), no request finished"
    )
    if "send_lateness_p99_ms" in gen:
        text += f", send lateness p99 {gen['send_lateness_p99_ms']:.2f} ms"
    if gen["saturated"]:
        text += f"; the client, not the server, was the limit ({gen['reason']})"
    return text
