"""Plain SQL identifiers: the one check that the query runner's names, the database cache tier's
table and schema, and ``PERFLAB_SCHEMA`` all use.

Bottom layer (imports nothing of perflab), so ``cache`` and ``db`` share it without importing each
other. ``fullmatch``, never ``match(...$)``: ``$`` also matches before a trailing newline, so
``"ticks\\n"`` would pass a ``^…$`` pattern.
"""

from __future__ import annotations

import re

__all__ = ["is_identifier"]

_ANY_CASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_LOWER_CASE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def is_identifier(name: object, *, lower: bool = False) -> bool:
    """True when ``name`` is a plain SQL identifier: ASCII letters, digits and ``_``, not starting
    with a digit, at most 63 characters (PostgreSQL's limit); with ``lower``, lower-case only."""
    pattern = _LOWER_CASE if lower else _ANY_CASE
    return isinstance(name, str) and pattern.fullmatch(name) is not None
