"""Checks of command-line input made before long work starts, and the text the commands print."""

from __future__ import annotations

import socket
from pathlib import Path

from perflab.errors import ConfigurationError
from perflab.paths import probe_writable

__all__ = [
    "check_out_dir",
    "check_output_dir",
    "check_output_file",
    "check_port",
    "check_timeout",
    "figure",
    "ns",
    "regression_line",
    "threshold",
]


def check_out_dir(out: str | None) -> None:
    """``--out DIR``, or (without it) the PERFLAB_OUTPUTS folder the default goes under."""
    if out:
        check_output_dir(Path(out), "--out")
    else:
        from perflab.settings import resolve

        check_output_dir(resolve().outputs_dir, "PERFLAB_OUTPUTS")


def check_timeout(timeout: float | None) -> None:
    if timeout is not None and not timeout > 0:  # also NaN
        raise ConfigurationError(f"--timeout must be positive, got {timeout}", name="--timeout")


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
    probe_writable(parent, option, path)


def check_port(port: int | None, option: str = "--port") -> None:
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


def threshold(text: str) -> float:
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


def ns(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):  # nan or unbounded
        return "?"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} ns"


def regression_line(row) -> str:  # a row of History.regressions()
    from perflab.bench import History

    reruns = int(getattr(row, "reruns", 0) or 0)
    again = f" (the newest with {reruns} re-run{'s' if reruns != 1 else ''})" if reruns else ""
    confirmed = getattr(row, "confirmed", None)
    if isinstance(confirmed, str) and confirmed:
        again = f"; {confirmed}"
    level = f"{History.CONFIDENCE:.0%}"
    return (
        f"REGRESSION {row.name}: {row.ratio:.3f}x slower ({level} CI {row.ci_low:.3f}-"
        f"{row.ci_high:.3f}) from result #{row.at} (commit {row.git or 'unknown'}), "
        f"{_amount(row.before, row)} -> {_amount(row.after, row)} over "
        f"{row.runs_before}+{row.runs_after} "
        f"runs{again}; accept a wanted change with: perflab history --accept {row.name}"
    )


def _amount(value: float, row) -> str:
    """A run figure in its unit: durations as ns/µs/ms/s, counts (instructions) as counts."""
    unit = getattr(row, "unit", None) or "ns"
    return ns(value) if unit == "ns" else f"{value:,.0f} {unit}"


def environment_line(row) -> str:  # a row of History.changes() with cause "environment"
    return (
        f"moved with its peer: {row.name} {row.ratio:.3f}x slower from result #{row.at}, and "
        f"its interleaved peer {row.peer} by as much (their ratio held): the server or the "
        "machine changed, not the code; not counted as a regression"
    )


def figure(value: object) -> str:
    from perflab.suites import figure_parts

    number, low, high = figure_parts(value)
    if number is None:
        return str(value)
    if low is None or high is None:
        return f"{number:.4g}"
    return f"{number:.4g} [{low:.4g}, {high:.4g}]"
