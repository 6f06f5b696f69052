"""perflab: a Jupyter-driven performance lab for Python backends.

Submodules load on first use (``perflab.servers``, ``perflab.settings``…), so ``import perflab``
stays cheap for the command line and for a kernel's first cell.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "bench",
    "cache",
    "claims",
    "db",
    "errors",
    "notebooks",
    "probe",
    "report",
    "servers",
    "service",
    "settings",
    "suites",
    "workload",
]


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "__version__":
        return importlib.import_module(f"perflab.{name}")
    raise AttributeError(f"module 'perflab' has no attribute {name!r}")
