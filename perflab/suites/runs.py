"""What a suite is and what it produced: :class:`Suite` and :class:`SuiteRun`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from perflab.bench import Result

__all__ = ["Suite", "SuiteRun"]


@dataclasses.dataclass(frozen=True)
class SuiteRun:
    """What a suite produced: its results, and named figures that are not latencies (counts,
    ratios of self-checks) under ``checks``."""

    suite: str
    results: list[Result]
    checks: dict[str, Any] = dataclasses.field(default_factory=dict)
    tables: dict[str, Any] = dataclasses.field(default_factory=dict)  # name -> DataFrame
    # benchmarks that raised (or exited) instead of finishing: name -> why; the others' results
    # are kept (one failing bench_ function once lost the whole file's results)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Suite:
    name: str
    help: str
    fn: Callable[[bool], list[Result] | SuiteRun]
    processes: int | None = None  # worker processes `perflab bench` uses (None: its default)
    path: Path | None = None  # a user's benchmark file (``perflab bench FILE.py``)
    functions: tuple[str, ...] = ()  # its bench_* functions, in file order
