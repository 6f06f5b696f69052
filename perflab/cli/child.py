"""A child process (JupyterLab) run to its end, with SIGTERM/SIGHUP/Ctrl-C passed on."""

from __future__ import annotations

import signal
import subprocess
import sys

from perflab.errors import PerflabError

__all__ = ["run_child"]


def run_child(argv: list[str], env: dict[str, str], grace: float = 20.0) -> int:
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
    """Raised by :func:`run_child`'s signal handler to end its wait."""
