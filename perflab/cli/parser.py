"""The ``perflab`` argument parser: every command and option, usage errors as one line."""

from __future__ import annotations

import argparse

import perflab
from perflab.errors import ConfigurationError

__all__ = ["build_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2) instead of usage + message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigurationError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
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
    ben.add_argument(
        "--format",
        choices=("perflab", "pyperf"),
        default="perflab",
        help="the results file's format: perflab's (default) or pyperf's JSON (each process "
        "replicate a pyperf run; pyperf show / compare_to read it)",
    )
    ben.add_argument("--save", action="store_true", help="also add the results to the history")
    ben.add_argument(
        "--instructions",
        action="store_true",
        help="FILE.py only: count each bench_* function's instructions per call under valgrind "
        "instead of timing it (CPU-bound code; the count does not move with the machine's load)",
    )
    ben.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="run the suite in N fresh worker processes, one after another; each process is "
        "one replicate of every benchmark (default 8, or the suite's own: 1 for harness and "
        "api; 1 runs in this process, with rounds as replicates)",
    )
    ben.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="FILE.py only: stop a bench_* function that runs longer than this (per process); "
        "it is reported as timed out, the others' results are kept, and the exit code is 1",
    )
    ben.add_argument("-q", "--quiet", action="store_true", help="print only where results went")

    his = sub.add_parser("history", help="saved results over time, and regressions among them")
    his.add_argument("--name", help="only this benchmark")
    his.add_argument(
        "--add",
        metavar="FILE",
        action="append",
        default=[],
        help="add a results file to the history: perflab's, or one pyperf, pytest-benchmark or "
        "asv wrote (dated and tagged with its commit where the file says); repeatable",
    )
    his.add_argument("--tag", action="append", default=[], help="tag for --add (repeatable)")
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
        "compare",
        help="compare two results files (or folders, or history:latest/previous/run:NAME); "
        "exit 1 on a significant regression",
    )
    side = (
        "results file (perflab bench --out), folder of them (a report's results/), or "
        "history:latest | history:previous | history:latest:quick | history:run:NAME"
    )
    cmp.add_argument(
        "baseline", metavar="A", help=f"the baseline: {side}; or alone, a perflab ab --out file"
    )
    cmp.add_argument("candidate", metavar="B", nargs="?", help="the candidate, the same kinds")
    cmp.add_argument(
        "--html",
        metavar="OUT.html",
        help="also write a self-contained before/after page: per benchmark an ECDF overlay, "
        "the ratio with its CI and verdict, both runs' metadata",
    )
    cmp.add_argument(
        "--threshold",
        default="5%",
        metavar="PCT",
        help="smallest change that counts, e.g. 5%% or 0.05 (default 5%%)",
    )
    cmp.add_argument(
        "--history",
        metavar="PATH|URL",
        help="learn how much separate runs differ from this history (default: PERFLAB_HISTORY_URL "
        "or outputs/history.sqlite when it exists); 'none' to judge by replicates alone",
    )

    ab = sub.add_parser(
        "ab",
        help="interleave two versions of your code until the answer is known; exit 1 if slower",
        description="Time TARGET's bench_* functions in BASELINE and in CANDIDATE, interleaved "
        "in fresh worker processes (pairs), until every benchmark is known to be faster, "
        "slower or the same at --threshold, or the budget ends. Each of BASELINE and "
        "CANDIDATE is a git revision of the repository here (checked out into a temporary "
        "worktree, removed afterwards; your working tree and index are never touched) or a "
        "folder of source code ('.' is the working tree, uncommitted changes included).",
    )
    ab.add_argument("baseline", metavar="BASELINE", help="git revision or folder")
    ab.add_argument("candidate", metavar="CANDIDATE", help="git revision or folder")
    ab.add_argument(
        "target",
        metavar="TARGET",
        help="a .py file of bench_* functions (its path inside the trees) or a built-in suite "
        "(harness, data, concurrency, cache, db, api: for versions of perflab itself)",
    )
    ab.add_argument(
        "--threshold",
        default="5%",
        metavar="PCT",
        help="smallest change that counts, e.g. 5%% or 0.05 (default 5%%)",
    )
    ab.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop adding pairs after this long (default 45; most answers come sooner)",
    )
    ab.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop with an error when one block of a benchmark (or, for a suite, one side's "
        "run) takes longer than this (default: no limit)",
    )
    duet = ab.add_mutually_exclusive_group()
    duet.add_argument(
        "--duet",
        dest="duet",
        action="store_true",
        default=None,
        help="run both sides at once, one per core, cores swapped between pairs",
    )
    duet.add_argument(
        "--no-duet",
        dest="duet",
        action="store_false",
        help="one side at a time, in random order, in short blocks (the default)",
    )
    ab.add_argument(
        "--out", metavar="FILE.json", help="write both sides (perflab compare FILE.json reads it)"
    )
    ab.add_argument("--html", metavar="OUT.html", help="also write a before/after page")
    ab.add_argument(
        "--save", action="store_true", help="add the candidate's results to the history"
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
    lod.add_argument(
        "--drain",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds after the window that requests still in flight may take; then they are "
        "cut and counted, so a hung server cannot stretch the run (default 1)",
    )
    lod.add_argument(
        "--processes", type=int, metavar="N",
        help="generator processes sharing the connections and the schedule "
        "(default: half the cores, at least 1)",
    )  # fmt: skip
    lod.add_argument(
        "--scheduler", metavar="ADDRESS",
        help="run the generator processes as tasks on this Dask scheduler's workers",
    )  # fmt: skip
    lod.add_argument("--out", metavar="FILE.json", help="results file (harness format)")
    lod.add_argument(
        "--cacert", metavar="FILE", help="https: the PEM file of a private CA to trust"
    )
    lod.add_argument(
        "--insecure",
        action="store_true",
        help="https: do not verify the certificate (a test host with a self-signed one)",
    )

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

    ini = sub.add_parser(
        "init", help="copy the lab notebooks perflab carries into DIR/notebooks (a project's)"
    )
    ini.add_argument("dir", nargs="?", default=".", metavar="DIR", help="project folder (.)")
    ini.add_argument("--force", action="store_true", help="replace notebooks already there")

    rep = sub.add_parser("report", help="run every lab notebook and write index.html")
    rep.add_argument("--quick", action="store_true", help="pass quick=True: small, fast runs")
    rep.add_argument(
        "--capacity",
        action="store_true",
        help="also measure the capacity claims (10,000 users, DB connections, RSS): minutes more",
    )
    rep.add_argument("--out", metavar="DIR", help="output folder (default: outputs/<time>)")
    rep.add_argument("--timeout", type=float, metavar="S", help="time limit per notebook, seconds")
    rep.add_argument(
        "--check-history",
        action="store_true",
        help="exit 1 if a benchmark got significantly slower than in earlier reports",
    )
    return p
