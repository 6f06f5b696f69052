"""The older name of :mod:`perflab.your_system` (notebooks 07-09 saved before the rename
import ``from perflab import probe``); new code imports ``perflab.your_system``."""

from __future__ import annotations

from perflab.your_system import *  # noqa: F403 (the same names, under the older module name)
from perflab.your_system import __all__ as __all__
