"""SQL identifiers: validated against a strict pattern, then quoted. Values are never formatted
into SQL; they are always bound."""

from __future__ import annotations

import re

__all__ = ["check_identifier", "quote_identifier", "quote_qualified"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def check_identifier(name: str, what: str = "identifier") -> str:
    """``name`` if it is a plain SQL identifier (letters, digits, _; ≤ 63), else ValueError."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(
            f"{what} {name!r} is not a plain SQL identifier (letters, digits and _, starting "
            "with a letter or _, at most 63 characters); nothing was executed"
        )
    return name


def quote_identifier(name: str, what: str = "identifier") -> str:
    return '"' + check_identifier(name, what) + '"'


def quote_qualified(name: str, what: str = "table") -> str:
    """``schema.table`` or ``table``, each part validated and quoted."""
    parts = name.split(".") if isinstance(name, str) else [name]
    if len(parts) > 2:
        raise ValueError(f"{what} {name!r} has too many dots; use table or schema.table")
    return ".".join(quote_identifier(p, what) for p in parts)
