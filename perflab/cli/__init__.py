"""The ``perflab`` command: thin over the functions a notebook calls.

Exit codes: 0 success; 1 the work ran and failed (a notebook cell, a timeout); 2 a user error
(arguments, parameters, configuration, an unreachable server), reported as one line.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence

from perflab.cli import commands
from perflab.cli.child import run_child
from perflab.cli.parser import build_parser
from perflab.errors import PerflabError

__all__ = ["main", "run_child"]

_run_child = run_child  # the name tests and older scripts use


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
        args = build_parser().parse_args(argv)
        _configure_logging(args.verbose)
        if args.command == "servers":
            return commands.servers_command(args.action, getattr(args, "exports", False))
        if args.command == "lab":
            return commands.lab_command(args.port, args.no_browser)
        if args.command == "run":
            return commands.run_command(args)
        if args.command == "bench":
            return commands.bench_command(args)
        if args.command == "ab":
            return commands.ab_command(args)
        if args.command == "compare":
            return commands.compare_command(args)
        if args.command == "history":
            return commands.history_command(args)
        if args.command == "sweep":
            return commands.sweep_command(args)
        if args.command == "serve":
            return commands.serve_command(args)
        if args.command == "load":
            return commands.load_command(args)
        if args.command == "init":
            return commands.init_command(args)
        return commands.report_command(args)
    except PerflabError as err:
        print(f"perflab: error: {_one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except ModuleNotFoundError as err:  # an optional part not installed: say which, exit 2
        from perflab.extras import missing_extra

        advice = missing_extra(err)
        if advice is None:
            raise
        print(f"perflab: error: {advice}", file=sys.stderr)
        return 2
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
