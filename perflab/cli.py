"""The ``perflab`` command: thin over the functions a notebook calls.

Exit codes: 0 success; 1 the work ran and failed (a notebook cell, a timeout); 2 a user error
(arguments, parameters, configuration, an unreachable server), reported as one line.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import perflab
from perflab.errors import ConfigurationError, PerflabError

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2) instead of usage + message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigurationError(f"{message} (see '{self.prog} --help')")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="perflab",
        description="A Jupyter-driven performance lab: real embedded Redis and PostgreSQL, "
        "parameterised notebooks run by papermill, one-file HTML reports.",
        epilog="Exit codes: 0 ok, 1 a notebook or check failed, 2 bad input or configuration. "
        "Settings come from PERFLAB_* variables (see README).",
    )
    p.add_argument("--version", action="version", version=f"perflab {perflab.__version__}")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="show the log of papermill and the servers"
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = sub.add_parser("servers", help="start, inspect or stop the Redis and PostgreSQL servers")
    ssub = s.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    ssub.required = True
    start = ssub.add_parser(
        "start", help="start the embedded servers (or check the external ones); print their URLs"
    )
    start.add_argument(
        "--exports",
        action="store_true",
        help='print only shell export lines, for: eval "$(perflab servers start --exports)"',
    )
    ssub.add_parser("status", help="show each server, its URL and whether it answers")
    ssub.add_parser("stop", help="stop the embedded servers (external ones are left alone)")

    lab = sub.add_parser(
        "lab", help="start JupyterLab on the notebooks with the servers up and the kernel set"
    )
    lab.add_argument(
        "--port", type=int, default=None, help="port for JupyterLab (default: its own)"
    )
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")

    run = sub.add_parser("run", help="execute one notebook headless; write .ipynb and .html")
    run.add_argument("notebook", metavar="NOTEBOOK", help="path of the .ipynb to run")
    run.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="set a parameter (checked against the notebook's parameters cell); repeatable",
    )
    run.add_argument(
        "--out", metavar="DIR", help="output folder (default: outputs/runs/<time>-<name>)"
    )
    run.add_argument(
        "--timeout", type=float, metavar="S", help="time limit for the whole run, in seconds"
    )
    run.add_argument(
        "--no-servers",
        action="store_true",
        help="do not start or check Redis/PostgreSQL before the kernel starts",
    )
    run.add_argument("--progress", action="store_true", help="show a progress bar per cell")

    ben = sub.add_parser(
        "bench", help="run a benchmark suite (or a file of bench_* functions); save its results"
    )
    ben.add_argument(
        "suite",
        metavar="SUITE",
        help="suite name (harness, data, concurrency, cache, db, api) or a .py file whose "
        "bench_* functions are timed",
    )
    ben.add_argument("--quick", action="store_true", help="shorter runs, for CI")
    ben.add_argument("--out", metavar="FILE.json", help="results file (default: outputs/bench/)")
    ben.add_argument("--save", action="store_true", help="also add the results to the history")
    ben.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="run the suite in N fresh worker processes, one after another; each process is "
        "one replicate of every benchmark (default 4, or the suite's own: 1 for harness and "
        "api; 1 runs in this process, with rounds as replicates)",
    )
    ben.add_argument("-q", "--quiet", action="store_true", help="print only where results went")

    his = sub.add_parser("history", help="saved results over time, and regressions among them")
    his.add_argument("--name", help="only this benchmark")
    his.add_argument(
        "--check", action="store_true", help="list regressions; exit 1 if there are any"
    )
    his.add_argument(
        "--accept",
        metavar="NAME",
        help="make NAME's newest change its new baseline (a known, wanted change)",
    )
    his.add_argument("--threshold", default="5%", metavar="PCT", help="smallest change (5%%)")
    his.add_argument(
        "--path",
        help="history file or postgresql:// URL (default: PERFLAB_HISTORY_URL, else "
        "outputs/history.sqlite)",
    )

    cmp = sub.add_parser(
        "compare", help="compare two results files; exit 1 on a significant regression"
    )
    cmp.add_argument("baseline", metavar="A.json")
    cmp.add_argument("candidate", metavar="B.json")
    cmp.add_argument(
        "--threshold",
        default="5%",
        metavar="PCT",
        help="smallest change that counts, e.g. 5%% or 0.05 (default 5%%)",
    )

    srv = sub.add_parser("serve", help="run the demo service (baseline and optimized endpoints)")
    srv.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    srv.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    srv.add_argument("--preset", default="quick", help="workload preset loaded at start")

    lod = sub.add_parser("load", help="load-test URLs; every latency recorded (HDR)")
    lod.add_argument("urls", nargs="+", metavar="URL")
    mode = lod.add_mutually_exclusive_group()
    mode.add_argument("--rate", type=float, help="open loop: requests per second")
    mode.add_argument("--concurrency", type=int, default=8, help="closed loop: clients (default 8)")
    lod.add_argument("--workers", type=int, default=8, help="open loop: concurrent senders")
    lod.add_argument("--duration", type=float, default=10.0, help="seconds per URL (default 10)")
    lod.add_argument("--out", metavar="FILE.json", help="results file (harness format)")

    swp = sub.add_parser("sweep", help="run a notebook over a parameter grid on Dask")
    swp.add_argument("notebook", metavar="NOTEBOOK")
    swp.add_argument(
        "--grid", action="append", required=True, metavar="NAME=V1,V2",
        help="values of one parameter; repeat for more (every combination runs)",
    )  # fmt: skip
    swp.add_argument("--scheduler", metavar="ADDRESS", help="a Dask scheduler (default: local)")
    swp.add_argument("--workers", type=int, default=2, help="LocalCluster workers (default 2)")
    swp.add_argument("--out", metavar="DIR", help="output folder (default: outputs/sweeps/…)")
    swp.add_argument("--timeout", type=float, metavar="S", help="time limit per run, seconds")

    rep = sub.add_parser("report", help="run every lab notebook and write index.html")
    rep.add_argument("--quick", action="store_true", help="pass quick=True: small, fast runs")
    rep.add_argument("--out", metavar="DIR", help="output folder (default: outputs/<time>)")
    rep.add_argument("--timeout", type=float, metavar="S", help="time limit per notebook, seconds")
    rep.add_argument(
        "--check-history",
        action="store_true",
        help="exit 1 if a benchmark got significantly slower than in earlier reports",
    )
    return p


def _servers(action: str, exports: bool = False) -> int:
    from perflab import servers

    if action == "start":
        endpoints = servers.start()
        if exports:
            print(endpoints.exports())
            return 0
        for state in servers.status():
            print(f"{state.name:<14} {'embedded' if state.embedded else 'external'}  {state.url}")
        print("\n# to point another shell at these servers:")
        print(endpoints.exports())
    elif action == "status":
        for state in servers.status():
            where = "embedded" if state.embedded else "external"
            up = "running" if state.running else "not running"
            extra = f" pid {state.pid}" if state.pid else ""
            note = f"  ({state.detail})" if state.detail and not state.running else ""
            print(f"{state.name:<14} {where:<9} {up}{extra}  {state.url or '-'}{note}")
    else:
        from perflab.settings import _redact

        for state in servers.stop():
            if state.embedded:
                print(f"{state.name:<14} stopped")
            else:
                print(f"{state.name:<14} external, left alone  {_redact(state.url or '')}")
    return 0


def _lab(port: int | None, no_browser: bool) -> int:
    from perflab import servers
    from perflab.notebooks import _kernel_environ, ensure_kernelspec
    from perflab.settings import resolve

    _check_port(port)
    settings = resolve()
    servers.start(settings)
    ensure_kernelspec()
    argv = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={settings.notebooks_dir}"]
    argv += ["--ServerApp.ip=127.0.0.1"]
    if port:
        argv.append(f"--port={port}")
    if no_browser:
        argv.append("--no-browser")
    if os.geteuid() == 0:  # containers and CI run as root; JupyterLab refuses without this
        argv.append("--allow-root")
    env = {**os.environ, **_kernel_environ(settings)}
    return _run_child(argv, env)


def _run_child(argv: list[str], env: dict[str, str], grace: float = 20.0) -> int:
    """Run ``argv`` until it exits. SIGTERM (and SIGHUP) to this process is passed on to the
    child as SIGTERM and the child is waited for, so stopping ``perflab lab`` never leaves
    JupyterLab holding its port; Ctrl-C (which the terminal also sends the child) stops it the
    same way. A child still running ``grace`` seconds later (or at a second Ctrl-C) is killed.
    Returns the child's exit code, or 128+N when this process was stopped by signal N."""
    received: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        received.append(signum)
        raise _Stopped

    child = subprocess.Popen(argv, env=env)
    saved = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        try:
            return child.wait()
        except (_Stopped, KeyboardInterrupt) as why:
            if isinstance(why, KeyboardInterrupt):
                received.append(signal.SIGINT)
            for sig in saved:  # a repeated signal must not cut the wait below short
                signal.signal(sig, lambda *_: None)
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            try:
                child.wait(grace)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                child.kill()
                child.wait()
            print(f"perflab: stopped ({signal.Signals(received[0]).name})", file=sys.stderr)
            return 128 + received[0]
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


class _Stopped(PerflabError):
    """Raised by :func:`_run_child`'s signal handler to end its wait."""


def _check_out_dir(out: str | None) -> None:
    """``--out DIR``, or (without it) the PERFLAB_OUTPUTS folder the default goes under."""
    if out:
        check_output_dir(Path(out), "--out")
    else:
        from perflab.settings import resolve

        check_output_dir(resolve().outputs_dir, "PERFLAB_OUTPUTS")


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and not timeout > 0:  # also NaN
        raise ConfigurationError(f"--timeout must be positive, got {timeout}", name="--timeout")


def _run(args: argparse.Namespace) -> int:
    from perflab.notebooks import run_notebook

    params = dict(args.parameter)
    if len(params) != len(args.parameter):
        dup = next(n for n, _ in args.parameter if [m for m, _ in args.parameter].count(n) > 1)
        raise ConfigurationError(f"parameter {dup!r} given more than once", name=dup)
    _check_out_dir(args.out)
    result = run_notebook(
        args.notebook,
        params,
        out_dir=args.out,
        timeout=args.timeout,
        start_servers=not args.no_servers,
        progress=args.progress,
    )
    print(f"ok  {result.notebook}  {result.seconds:.1f} s")
    print(f"    {result.html}")
    print(f"    {result.ipynb}")
    return 0


def _report(args: argparse.Namespace) -> int:
    _check_timeout(args.timeout)
    _check_out_dir(args.out)
    from perflab.lab import report

    def done(run) -> None:
        state = "ok    " if run.ok else "FAILED"
        print(f"{state} {run.notebook.name:<32} {run.seconds:6.1f} s", flush=True)
        if run.error:
            print(f"       {run.error}", flush=True)

    result = report(
        quick=args.quick,
        out_dir=args.out,
        timeout=args.timeout,
        check_history=args.check_history,
        on_done=done,
    )
    print(f"report: {result.index}")
    regressed = result.regressions is not None and not result.regressions.empty
    if regressed:
        for row in result.regressions.itertuples():
            print(_regression_line(row))
    return 0 if result.ok and not regressed else 1


def _bench(args: argparse.Namespace) -> int:
    import time

    from perflab import suites
    from perflab.bench import stats
    from perflab.settings import resolve
    from perflab.suites.workers import DEFAULT_PROCESSES, run_in_processes

    suite = suites.get(args.suite)  # unknown name, bad file: exit 2 before anything runs
    processes = (
        args.processes if args.processes is not None else suite.processes or DEFAULT_PROCESSES
    )
    if processes < 1:
        raise ConfigurationError("--processes must be at least 1", name="--processes")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    out = (
        Path(args.out)
        if args.out
        else resolve().outputs_dir / "bench" / f"{suite.name}-{stamp}.json"
    )
    check_output_file(out, "--out")  # before the suite runs, not after
    if args.quiet:
        from perflab.bench import runner

        runner.QUIET = True
    if processes == 1:
        run = suites.run_suite(args.suite, quick=args.quick)
    else:

        def done(i: int) -> None:
            if not args.quiet:
                print(f"  worker process {i}/{processes} done", file=sys.stderr, flush=True)

        run = run_in_processes(args.suite, quick=args.quick, processes=processes, on_done=done)
    results = run.results
    if not args.quiet:
        print(f"{'benchmark':<34} {'centre':>12} {'95% CI':>25} {'p99':>12} {'reps':>5}")
        for r in results:
            s = r.summary()
            centre, low, high = stats.geometric_interval(r.replicate_medians)
            ci = f"[{_ns(low)}, {_ns(high)}]" if r.n_replicates > 1 else "(one replicate)"
            row = f"{_ns(centre):>12} {ci:>25} {_ns(s['p99']):>12} {r.n_replicates:>5}"
            print(f"{r.name:<34} {row}")
        for key, value in run.checks.items():
            print(f"  {key}: {_figure(value)}")
    print(f"saved {suites.save_results(out, run)}")
    if args.save:
        from perflab.bench import History

        store = History()
        for r in results:
            store.save(r, tags=[suite.name])
        print(f"history: {store.location}")
    return 0


def _figure(value: object) -> str:
    from perflab.suites import figure_parts

    number, low, high = figure_parts(value)
    if number is None:
        return str(value)
    if low is None or high is None:
        return f"{number:.4g}"
    return f"{number:.4g} [{low:.4g}, {high:.4g}]"


def check_output_file(path: Path, option: str) -> None:
    """Fail before long work when ``path`` cannot be written as a file."""
    if path.is_dir():
        raise ConfigurationError(f"{option} {path} is a directory; give a file name", name=option)
    _check_writable_ancestor(path, option)


def check_output_dir(path: Path, option: str) -> None:
    """Fail before long work when ``path`` cannot be (made) a folder this process writes in."""
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"{option} {path} is a file; give a folder", name=option)
    _check_writable_ancestor(path, option)


def _check_writable_ancestor(path: Path, option: str) -> None:
    """The nearest existing folder above ``path`` must be a folder that takes a new file (a real
    one is made and removed: ``os.access`` says yes to root in /proc, where nothing can be
    created)."""
    parent = path if path.is_dir() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigurationError(f"{option} {path}: {parent} is not a directory", name=option)
    try:
        handle, probe = tempfile.mkstemp(prefix=".perflab-probe-", dir=parent)
    except OSError as err:
        raise ConfigurationError(
            f"{option} {path}: cannot create files in {parent} ({err.strerror}); "
            "give a place you can write",
            name=option,
        ) from err
    os.close(handle)
    os.unlink(probe)


def _check_port(port: int | None, option: str = "--port") -> None:
    """A TCP port on 127.0.0.1 that is in range and free, checked before servers start."""
    if port is None:
        return
    if not 1 <= port <= 65535:
        raise ConfigurationError(f"{option} {port} is not a TCP port (1-65535)", name=option)
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn and tornado do
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as err:
            raise ConfigurationError(
                f"{option} {port}: 127.0.0.1:{port} is not free ({err.strerror}); "
                "stop what listens there or pick another port",
                name=option,
            ) from err


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from perflab import servers
    from perflab.workload import PRESETS

    if args.preset not in PRESETS:
        raise ConfigurationError(f"unknown preset {args.preset!r}; use one of {', '.join(PRESETS)}")
    if args.workers < 1:
        raise ConfigurationError(
            f"--workers must be at least 1, got {args.workers}", name="--workers"
        )
    _check_port(args.port)
    servers.start()  # an unreachable URL is a one-line error before uvicorn starts
    os.environ["PERFLAB_SERVICE_PRESET"] = args.preset
    uvicorn.run(
        "perflab.service.app:app_from_env",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )
    return 0


def _load(args: argparse.Namespace) -> int:
    from perflab import suites
    from perflab.service.load import preflight, run_load

    for option, value in (
        ("--duration", args.duration),
        ("--rate", args.rate),
        ("--concurrency", args.concurrency),
        ("--workers", args.workers),
    ):
        if value is not None and not value > 0:
            raise ConfigurationError(f"{option} must be positive, got {value}", name=option)
    if args.out:  # before any load: a bad path must not cost a whole run
        check_output_file(Path(args.out), "--out")
    for url in args.urls:  # a closed port is a mistake in what was asked: exit 2, no load
        preflight(url)
    results, code = [], 0
    for url in args.urls:
        concurrency = args.workers if args.rate else args.concurrency
        r = run_load(url, rate=args.rate, concurrency=concurrency, duration=args.duration)
        s = r.summary()
        failed = r.params["failures"]
        print(
            f"{url}  {int(s['n'])} requests  {s['throughput']:.0f} req/s  p50 {_ns(s['p50'])}  "
            f"p99 {_ns(s['p99'])}  max {_ns(s['max'])}  statuses {r.params['statuses']}"
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


def _sweep(args: argparse.Namespace) -> int:
    from perflab.sweep import parse_grid, sweep

    _check_timeout(args.timeout)
    if args.workers < 1:
        raise ConfigurationError(
            f"--workers must be at least 1, got {args.workers}", name="--workers"
        )
    _check_out_dir(args.out)
    result = sweep(
        args.notebook,
        parse_grid(args.grid),
        out_dir=args.out,
        scheduler=args.scheduler,
        workers=args.workers,
        timeout=args.timeout,
    )
    for row in result.frame.itertuples():
        print(f"{'ok    ' if row.ok else 'FAILED'} {row.seconds:6.1f} s  {row.html}")
    print(f"sweep: {result.index}")
    return 0 if result.ok else 1


def _history(args: argparse.Namespace) -> int:
    from perflab.bench import History
    from perflab.settings import DATABASE_SCHEMES, _check_url

    if args.path and "://" in args.path:
        _check_url("--path", args.path, DATABASE_SCHEMES)
    elif args.path:
        check_output_file(Path(args.path), "--path")  # a SQLite file, created when missing
    store = History(args.path)
    if args.accept:
        start = store.accept(args.accept)
        print(f"accepted: {args.accept} is judged from result #{start} on")
        return 0
    if not args.check:
        frame = store.frame(args.name)
        if frame.empty:
            where = store.location
            print(f"no results saved in {where}" + (f" for {args.name!r}" if args.name else ""))
            return 0
        print(frame.drop(columns=["tags"]).to_string(index=False))
        return 0
    found = store.regressions(args.name, threshold=_threshold(args.threshold))
    if found.empty:
        print("no regressions")
        return 0
    for row in found.itertuples():
        print(_regression_line(row))
    return 1


def _regression_line(row) -> str:  # a row of History.regressions()
    return (
        f"REGRESSION {row.name}: {row.ratio:.3f}x slower (95 % CI {row.ci_low:.3f}-"
        f"{row.ci_high:.3f}) from result #{row.at} (commit {row.git or 'unknown'}), "
        f"{_ns(row.before)} -> {_ns(row.after)} over {row.runs_before}+{row.runs_after} "
        f"runs; accept a wanted change with: perflab history --accept {row.name}"
    )


def _ns(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):  # nan or unbounded
        return "?"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} ns"


def _threshold(text: str) -> float:
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 10:
        raise ConfigurationError(
            f"--threshold {text!r} is not a percentage like 5% or a fraction like 0.05",
            name="--threshold",
        )
    return value


def _compare(args: argparse.Namespace) -> int:
    from perflab.bench import compare
    from perflab.suites import load_results

    threshold = _threshold(args.threshold)
    base = {r.name: r for r in load_results(args.baseline)}
    cand = {r.name: r for r in load_results(args.candidate)}
    common = [name for name in base if name in cand]
    if not common:
        raise ConfigurationError(
            f"{args.baseline} and {args.candidate} share no benchmark names; nothing to compare"
        )
    slower = 0
    notes: list[str] = []
    print(f"{'benchmark':<34} {'ratio':>7} {'95% CI':>17} {'reps':>7}  verdict")
    for name in common:
        c = compare(base[name], cand[name], threshold=threshold)
        slower += c.verdict == "slower"
        ci = f"[{c.ci_low:.3f}, {c.ci_high:.3f}]"
        reps = f"{c.replicates[0]}v{c.replicates[1]}"
        shown = c.verdict
        if c.verdict == "inconclusive":
            shown += f" (sees ≥{c.detectable:.0%})" if c.detectable == c.detectable else ""
        print(f"{name:<34} {c.ratio:>7.3f} {ci:>17} {reps:>7}  {shown}")
        notes += [n for n in c.notes if n not in notes]
    for name in sorted(set(base) ^ set(cand)):
        print(f"{name:<34} only in {args.baseline if name in base else args.candidate}")
    for note in notes:
        print(f"note: {note}")
    return 1 if slower else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``perflab`` command; returns the exit code."""
    # jsonschema imports rfc3987-syntax (a lark grammar, ~1 s) whenever it is installed, which
    # jupyterlab's dependencies ensure; nbformat's schema never uses the IRI formats it checks,
    # so this process skips it. Kernels and JupyterLab itself are unaffected.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # main() called from a thread other than the main one: leave it be
        previous = None
    try:
        args = _parser().parse_args(argv)
        _configure_logging(args.verbose)
        if args.command == "servers":
            return _servers(args.action, getattr(args, "exports", False))
        if args.command == "lab":
            return _lab(args.port, args.no_browser)
        if args.command == "run":
            return _run(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "history":
            return _history(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "load":
            return _load(args)
        return _report(args)
    except PerflabError as err:
        print(f"perflab: error: {_one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (see _terminate)
        where = _one_line(str(err))
        print(f"perflab: {where or 'interrupted'}", file=sys.stderr)
        return getattr(err, "exit_code", 130)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM ends a command the way Ctrl-C does: a run marks its notebook honestly and writes
    its HTML, then the command exits 143 with one line (instead of dying silently)."""
    from perflab.notebooks import RunInterrupted

    raise RunInterrupted(signum=signum)


def _configure_logging(verbose: bool) -> None:
    """Quiet by default: perflab reports a failure once, as one line, so the libraries' own
    records of it (papermill's "Timeout waiting for execute reply", pgserver's retries) stay out
    of the terminal unless asked for."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.CRITICAL,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    for name in ("papermill", "traitlets", "pgserver"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.CRITICAL)


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
