"""The benchmark harness: notebook-safe timing, honest statistics, comparisons, profiles,
history. Knows no subject: suites bring the cache, the database or the service to it.

Names load on first use (PEP 562), so a worker process that needs only the timing core
(``perflab.bench.core``) does not pay for pandas, scipy and SQLAlchemy."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and editors; at run time names load lazily
    from perflab.bench.comparison import VERDICTS, Comparison, compare
    from perflab.bench.core import Budget
    from perflab.bench.history import History
    from perflab.bench.interleave import ABRun
    from perflab.bench.profiling import (
        CpuProfile,
        MemoryTimeline,
        MemoryUsage,
        cpu_profile,
        memory,
        memory_timeline,
        profile,
    )
    from perflab.bench.result import Result, environment
    from perflab.bench.runner import ab, run

__all__ = [
    "VERDICTS",
    "ABRun",
    "Budget",
    "Comparison",
    "CpuProfile",
    "History",
    "MemoryTimeline",
    "MemoryUsage",
    "Result",
    "ab",
    "compare",
    "cpu_profile",
    "environment",
    "memory",
    "memory_timeline",
    "profile",
    "run",
]

_WHERE = {
    "VERDICTS": "comparison",
    "Comparison": "comparison",
    "compare": "comparison",
    "Budget": "core",
    "ABRun": "interleave",
    "History": "history",
    "MemoryUsage": "profiling",
    "CpuProfile": "profiling",
    "MemoryTimeline": "profiling",
    "cpu_profile": "profiling",
    "memory_timeline": "profiling",
    "memory": "profiling",
    "profile": "profiling",
    "Result": "result",
    "environment": "result",
    "ab": "runner",
    "run": "runner",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f"perflab.bench.{_WHERE[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'perflab.bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
