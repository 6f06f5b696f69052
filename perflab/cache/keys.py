"""Cache keys: strings, with over-long ones shortened by a hash, and keys for function calls."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_KEY_LENGTH", "call_key", "normalize"]

MAX_KEY_LENGTH = 200


def normalize(key: Any, key_func: Callable[[Any], str] | None = None) -> str:
    """``key`` as the string the tiers store. Longer than MAX_KEY_LENGTH: its first 100
    characters (still readable, still matched by patterns on the prefix) plus a SHA-256."""
    if key_func is not None:
        key = key_func(key)
    if type(key) is not str:
        raise TypeError(
            f"cache key {key!r} is a {type(key).__name__}, not a str; "
            "pass a string or give the cache a key_func"
        )
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{key[:100]}#sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def call_key(prefix: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """A stable key for a call: ``prefix`` + the JSON of its arguments (repr for other types)."""
    try:
        spelled = json.dumps([args, sorted(kwargs.items())], default=repr, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise TypeError(f"cannot build a cache key for {prefix}: {err}") from err
    return f"{prefix}:{spelled}"
