"""One error tree for perflab.

Every error says what was wrong and what to do about it; the context a caller needs (the URL, the
parameter, the notebook cell) travels on the exception as attributes. ``exit_code`` is what the
``perflab`` command exits with when the error reaches it: 2 for a mistake in what the user asked
for (arguments, parameters, configuration, an unreachable URL), 1 for work that ran and failed.
"""

from __future__ import annotations

__all__ = [
    "BenchmarkError",
    "CacheError",
    "ConfigurationError",
    "NotebookError",
    "ParameterError",
    "PerflabError",
    "QueryError",
    "ServerError",
]


class PerflabError(Exception):
    """Root of every error perflab raises on purpose."""

    exit_code = 1


class ConfigurationError(PerflabError):
    """A setting, URL or argument is invalid. ``name`` is the setting or argument at fault."""

    exit_code = 2

    def __init__(self, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


class ServerError(PerflabError):
    """A Redis or PostgreSQL server could not be started, reached or stopped."""

    exit_code = 2

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class ParameterError(ConfigurationError):
    """A notebook parameter is unknown or cannot be converted to its declared type."""


class NotebookError(PerflabError):
    """A notebook failed to execute: a cell raised, timed out, or the kernel died.

    ``cell_index`` is the 0-based index of the failing cell in the executed notebook, ``output``
    the executed notebook that holds the traceback (when one was written).
    """

    def __init__(
        self,
        message: str,
        *,
        notebook: str | None = None,
        cell_index: int | None = None,
        output: str | None = None,
    ) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell_index = cell_index
        self.output = output


class CacheError(PerflabError):
    """A cache tier failed or was misused. ``key`` is the cache key at fault and ``tier`` the
    tier's name (``memory/lru``, ``redis``, ``database``) when known."""

    def __init__(self, message: str, *, key: str | None = None, tier: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.tier = tier


class QueryError(PerflabError):
    """A query failed; ``sql`` holds the statement when known."""

    def __init__(self, message: str, *, sql: str | None = None) -> None:
        super().__init__(message)
        self.sql = sql


class BenchmarkError(PerflabError):
    """A benchmark could not be run or its results could not be read."""
