"""SQL identifiers: validated against a strict pattern, then quoted. Values are never formatted
into SQL; they are always bound."""

from __future__ import annotations

from perflab.errors import ConfigurationError
from perflab.identifiers import is_identifier

__all__ = ["IdentifierError", "check_identifier", "quote_identifier", "quote_qualified"]


class IdentifierError(ConfigurationError, ValueError):
    """A table, column, view or schema name is not a plain SQL identifier. ``name`` says which
    kind (``"table"``, ``"column"``…), ``identifier`` holds the rejected value. Also a
    ValueError, as it always was."""

    def __init__(self, message: str, *, name: str | None = None, identifier: object = None):
        super().__init__(message, name=name)
        self.identifier = identifier


def check_identifier(name: str, what: str = "identifier") -> str:
    """``name`` if it is a plain SQL identifier (letters, digits, _; ≤ 63), else IdentifierError
    (a ValueError). The whole string must match: a trailing newline is rejected too."""
    if not is_identifier(name):
        raise IdentifierError(
            f"{what} {name!r} is not a plain SQL identifier (letters, digits and _, starting "
            "with a letter or _, at most 63 characters); nothing was executed",
            name=what,
            identifier=name,
        )
    return name


def quote_identifier(name: str, what: str = "identifier") -> str:
    return '"' + check_identifier(name, what) + '"'


def quote_qualified(name: str, what: str = "table") -> str:
    """``schema.table`` or ``table``, each part validated and quoted."""
    parts = name.split(".") if isinstance(name, str) else [name]
    if len(parts) > 2:
        raise IdentifierError(
            f"{what} {name!r} has too many dots; use table or schema.table; nothing was executed",
            name=what,
            identifier=name,
        )
    return ".".join(quote_identifier(p, what) for p in parts)
