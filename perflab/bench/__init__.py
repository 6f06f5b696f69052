"""The benchmark harness: notebook-safe timing, honest statistics, comparisons, profiles,
history. Knows no subject: suites bring the cache, the database or the service to it."""

from perflab.bench.compare import Comparison, compare
from perflab.bench.core import Budget
from perflab.bench.history import History
from perflab.bench.profiling import MemoryUsage, memory, profile
from perflab.bench.result import Result, environment
from perflab.bench.runner import ab, run

__all__ = [
    "Budget",
    "Comparison",
    "History",
    "MemoryUsage",
    "Result",
    "ab",
    "compare",
    "environment",
    "memory",
    "profile",
    "run",
]
