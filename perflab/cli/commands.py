"""One function per ``perflab`` command, each thin over the library calls a notebook makes."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

from perflab.cli.checks import (
    check_out_dir,
    check_output_dir,
    check_output_file,
    check_port,
    check_timeout,
    figure,
    ns,
    regression_line,
)
from perflab.cli.child import run_child
from perflab.cli.comparing import ab_command, compare_command
from perflab.cli.history import history_command
from perflab.cli.serving import load_command, serve_command
from perflab.errors import ConfigurationError

__all__ = [
    "ab_command",
    "bench_command",
    "compare_command",
    "history_command",
    "init_command",
    "lab_command",
    "load_command",
    "report_command",
    "run_command",
    "serve_command",
    "servers_command",
    "sweep_command",
]


class _NotATerminal:
    """``stream`` as a file that says it is no terminal (``isatty()`` False)."""

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


_nothing = contextlib.nullcontext


def servers_command(action: str, exports: bool = False) -> int:
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
        from perflab.urls import redact

        for state in servers.stop():
            if state.embedded:
                print(f"{state.name:<14} stopped")
            else:
                print(f"{state.name:<14} external, left alone  {redact(state.url or '')}")
    return 0


def init_command(args: argparse.Namespace) -> int:
    """``perflab init [DIR]``: the lab notebooks packaged with perflab, copied into
    ``DIR/notebooks`` for a project of one's own. Existing files are kept unless ``--force``."""
    import shutil

    from perflab.settings import PACKAGED_NOTEBOOKS

    folder = Path(args.dir).expanduser() / "notebooks"
    sources = sorted(PACKAGED_NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    if not sources:
        raise ConfigurationError(
            f"this perflab install carries no notebooks ({PACKAGED_NOTEBOOKS}); reinstall it",
            name="perflab",
        )
    check_output_dir(folder, "DIR")  # a file in the way, or a folder we cannot write: exit 2
    folder.mkdir(parents=True, exist_ok=True)
    copied, kept = [], []
    for source in sources:
        target = folder / source.name
        if target.exists() and not args.force:
            kept.append(target.name)
            continue
        shutil.copyfile(source, target)
        copied.append(target.name)
    print(f"copied {len(copied)} notebooks into {folder}")
    if kept:
        print(f"kept {len(kept)} already there (--force replaces them): {', '.join(kept)}")
    where = "" if Path(args.dir) == Path(".") else f"cd {args.dir} && "
    print(f"next: {where}perflab report --quick (or perflab lab to open them)")
    return 0


def lab_command(port: int | None, no_browser: bool) -> int:
    from perflab import servers
    from perflab.notebooks import ensure_kernelspec, kernel_environ
    from perflab.settings import resolve

    check_port(port)
    settings = resolve()
    from perflab.settings import PACKAGED_NOTEBOOKS

    if settings.notebooks_dir == PACKAGED_NOTEBOOKS:
        print(
            "perflab: no ./notebooks here: opening the notebooks packaged with perflab; "
            "perflab init copies them here to keep your changes",
            file=sys.stderr,
        )
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
    env = {**os.environ, **kernel_environ(settings)}
    return run_child(argv, env)


def run_command(args: argparse.Namespace) -> int:
    from perflab.notebooks import run_notebook

    params = dict(args.parameter)
    if len(params) != len(args.parameter):
        dup = next(n for n, _ in args.parameter if [m for m, _ in args.parameter].count(n) > 1)
        raise ConfigurationError(f"parameter {dup!r} given more than once", name=dup)
    check_out_dir(args.out)
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


def report_command(args: argparse.Namespace) -> int:
    check_timeout(args.timeout)
    check_out_dir(args.out)
    import tempfile

    from perflab.lab import lab_notebooks, report
    from perflab.progress import Progress, expected_seconds
    from perflab.settings import resolve

    settings = resolve()
    notebooks = lab_notebooks(settings)
    mode = "quick" if args.quick else "full"
    with tempfile.TemporaryDirectory(prefix="perflab-progress-") as scratch:
        progress = Progress(
            [path.stem for path in notebooks],
            expected_seconds(notebooks, mode, settings.outputs_dir),
            Path(scratch) / "note",
        )

        def done(run) -> None:
            state = "ok    " if run.ok else "FAILED"
            progress.done(f"{state} {run.notebook.name:<32} {run.seconds:6.1f} s")
            if run.error:
                progress.say(f"       {run.error}")

        progress.start()
        try:
            result = report(
                quick=args.quick,
                capacity=args.capacity,
                out_dir=args.out,
                timeout=args.timeout,
                settings=settings,
                check_history=args.check_history,
                on_done=done,
                progress=progress,
            )
        finally:
            progress.close()
    print(f"report: {result.index}")
    regressed = result.regressions is not None and not result.regressions.empty
    if regressed:
        for row in result.regressions.itertuples():
            print(regression_line(row))
    return 0 if result.ok and not regressed else 1


def bench_command(args: argparse.Namespace) -> int:
    import time

    from perflab import suites
    from perflab.bench import stats
    from perflab.settings import resolve
    from perflab.suites import DEFAULT_PROCESSES, run_in_processes

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
    check_timeout(args.timeout)
    suites.set_timeout(args.timeout)
    if args.instructions:
        return _count_instructions(args, suite, out)
    # --quiet: the harness draws progress bars only on a terminal, so the run sees a stderr that
    # is none (its messages still get through); no module state of the harness is changed
    with contextlib.redirect_stderr(_NotATerminal(sys.stderr)) if args.quiet else _nothing():
        if processes == 1:
            run = suites.run_suite(args.suite, quick=args.quick)
        else:

            def done(i: int) -> None:
                if not args.quiet:
                    print(f"  worker process {i}/{processes} done", file=sys.stderr, flush=True)

            run = run_in_processes(
                args.suite,
                quick=args.quick,
                processes=processes,
                on_done=done,
                timeout=args.timeout,
            )
    results = run.results
    if not args.quiet:
        print(f"{'benchmark':<34} {'centre':>12} {'95% CI':>25} {'p99':>12} {'reps':>5}")
        for r in results:
            s = r.summary()
            centre, low, high = stats.geometric_interval(r.replicate_medians)
            ci = f"[{ns(low)}, {ns(high)}]" if r.n_replicates > 1 else "(one replicate)"
            row = f"{ns(centre):>12} {ci:>25} {ns(s['p99']):>12} {r.n_replicates:>5}"
            print(f"{r.name:<34} {row}")
        for key, value in run.checks.items():
            print(f"  {key}: {figure(value)}")
    _save(args, out, run, tags=[suite.name])
    for name, why in run.failed.items():  # the others were kept, saved and printed above
        print(f"perflab: {name} failed: {why}", file=sys.stderr)
    return 1 if run.failed else 0


def _count_instructions(args: argparse.Namespace, suite, out: Path) -> int:
    from perflab import suites
    from perflab.bench import instructions

    if suite.path is None or not suite.functions:
        raise ConfigurationError(
            f"--instructions counts the bench_* functions of a .py file; {args.suite!r} "
            + ("is a built-in suite" if suite.path is None else "has none"),
            name="--instructions",
        )
    if instructions.available() is None:
        raise ConfigurationError(
            "--instructions needs valgrind: apt-get install valgrind (Debian/Ubuntu)",
            name="valgrind",
        )
    run = suites.SuiteRun(suite.name, instructions.count_file(suite.path, suite.functions))
    if not args.quiet:
        print(f"{'benchmark':<44} {'instructions/call':>18} {'spread':>8} {'seeds':>5}")
        for r in run.results:
            low, high = min(r.replicate_figures), max(r.replicate_figures)
            print(
                f"{r.name:<44} {r.figure:>18,.0f} {(high - low) / r.figure:>8.2%} "
                f"{r.n_replicates:>5}"
            )
    _save(args, out, run, tags=[suite.name, instructions.UNIT])
    return 0


def _save(args: argparse.Namespace, out: Path, run, *, tags: list[str]) -> None:
    """``--out`` in the asked ``--format``, and the history with ``--save``."""
    from perflab import suites

    if getattr(args, "format", "perflab") == "pyperf":
        from perflab.bench.foreign import to_pyperf
        from perflab.paths import write_page

        write_page(out, json.dumps(to_pyperf(run.results), indent=1))
        print(f"saved {out} (pyperf format)")
    else:
        print(f"saved {suites.save_results(out, run)}")
    if args.save:
        from perflab.bench import History

        store = History()
        try:
            for r in run.results:
                store.save(r, tags=tags)
        finally:
            store.close()
        print(f"history: {store.location}")


def sweep_command(args: argparse.Namespace) -> int:
    if not args.verbose:  # Dask's workers log at INFO from their own processes (35 lines)
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    from perflab.sweep import parse_grid, sweep

    check_timeout(args.timeout)
    if args.workers < 1:
        raise ConfigurationError(
            f"--workers must be at least 1, got {args.workers}", name="--workers"
        )
    check_out_dir(args.out)
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
        if not row.ok and row.error:  # the cell and the error, not only where the page went
            print(f"       {str(row.error).strip().splitlines()[0]}")
    print(f"sweep: {result.index}")
    return 0 if result.ok else 1
