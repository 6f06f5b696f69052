"""A cached value with its absolute expiry, and its wire form for the shared tiers."""

from __future__ import annotations

import dataclasses
import math
import pickle
import struct
from typing import Any

from perflab.errors import CacheError

__all__ = ["CorruptEntry", "Entry", "pack", "unpack", "unpack_many"]

_MAGIC = b"PL"
_VERSION = 1
_HEADER = struct.Struct(">2sBBd")  # magic, version, serializer id, expires_at (NaN: never)
_SERIALIZER_IDS = {"json": 1, "msgpack": 2, "pickle": 3}
_SERIALIZER_NAMES = {v: k for k, v in _SERIALIZER_IDS.items()}


# What a decoder may raise on bytes it did not write (tagged envelopes missing a field, a bad
# Decimal, nesting past the recursion limit, msgpack's ExtraData, a pickle of a class that no
# longer exists): every one of them means "this entry is unreadable", never a caller's bug.
UNDECODABLE = (
    ValueError,  # JSONDecodeError, UnicodeDecodeError, binascii.Error, msgpack's ExtraData
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    ArithmeticError,  # decimal.InvalidOperation, OverflowError
    RecursionError,
    EOFError,
    ImportError,
    pickle.UnpicklingError,
)


_FAILURES = (CacheError, *UNDECODABLE)


class CorruptEntry(CacheError):
    """Stored bytes that this cache cannot read back: not a perflab envelope, or a payload its
    serializer cannot decode. The cache counts each as a miss and deletes it from the tier.
    ``keys`` are the unreadable keys; ``found`` the entries of a batch read that did decode."""

    def __init__(
        self,
        message: str,
        *,
        keys: list[str],
        found: dict[str, Any] | None = None,
        tier: str | None = None,
    ) -> None:
        super().__init__(message, key=keys[0] if len(keys) == 1 else None, tier=tier)
        self.keys = keys
        self.found = found or {}


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """``value`` until ``expires_at`` (in the cache's timer, seconds); None: no expiry."""

    value: Any
    expires_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def remaining(self, now: float) -> float | None:
        """Seconds left (never negative), or None for no expiry."""
        return None if self.expires_at is None else max(self.expires_at - now, 0.0)


def pack(serializer: Any, key: str, entry: Entry) -> bytes:
    """Header (format, serializer, expiry) + the serialised value."""
    payload = serializer.dumps(key, entry.value)
    expires = math.nan if entry.expires_at is None else entry.expires_at
    typed: bytes = (
        _HEADER.pack(_MAGIC, _VERSION, _SERIALIZER_IDS[serializer.name], expires) + payload
    )
    return typed


# the first four header bytes (magic, version, serializer id) each serializer expects
_PREFIXES = {n: _HEADER.pack(_MAGIC, _VERSION, i, 0.0)[:4] for n, i in _SERIALIZER_IDS.items()}
_EXPIRES = struct.Struct(">d")


def _header(serializer: Any, key: str, data: bytes) -> float | None:
    if len(data) < _HEADER.size or data[:2] != _MAGIC:
        raise CorruptEntry(
            f"key {key!r}: not a perflab cache entry; it is deleted and read as a miss",
            keys=[key],
        )
    _, version, sid, expires = _HEADER.unpack_from(data)
    if version != _VERSION:  # a newer perflab wrote it: refused, left for that writer
        raise CacheError(
            f"key {key!r}: written in cache format {version}, this reads {_VERSION}; "
            "read it with the newer perflab that wrote it",
            key=key,
        )
    if _SERIALIZER_NAMES.get(sid) != serializer.name:
        raise CacheError(
            f"key {key!r} was written with serializer {_SERIALIZER_NAMES.get(sid, sid)!r}; "
            f"this cache reads {serializer.name!r}; give both caches the same serializer",
            key=key,
        )
    return None if math.isnan(expires) else expires


def _loads(serializer: Any, key: str, payload: bytes) -> Any:
    try:
        return serializer.loads(key, payload)
    except CorruptEntry:
        raise
    except CacheError as err:  # the serializer's own refusal (invalid JSON, bad signature)
        raise CorruptEntry(str(err), keys=[key], tier=err.tier) from err
    except UNDECODABLE as err:
        raise CorruptEntry(
            f"key {key!r}: stored {serializer.name} payload does not decode "
            f"({type(err).__name__}: {err}); it is deleted and read as a miss",
            keys=[key],
        ) from err


def _unpack_all(serializer: Any, items: list[tuple[str, bytes]]) -> dict[str, Entry] | None:
    """Every entry in one ``loads_many`` call, or None if any is unreadable or foreign (the
    caller then decodes them one by one to find which)."""
    size = _HEADER.size
    keys = [key for key, _ in items]
    try:
        expiries = [_header(serializer, key, data) for key, data in items]
        values = serializer.loads_many(keys, [data[size:] for _, data in items])
    except (CacheError, *UNDECODABLE):
        return None
    return {k: Entry(v, e) for k, v, e in zip(keys, values, expiries, strict=True)}


def unpack_many(serializer: Any, items: list[tuple[str, bytes]]) -> dict[str, Entry]:
    """``unpack`` for many entries; serializers with ``loads_many`` decode all in one call.
    Unreadable entries raise one :class:`CorruptEntry` naming them and carrying the rest."""
    if getattr(serializer, "loads_many", None) is not None:
        fast = _unpack_all(serializer, items)
        if fast is not None:
            return fast
    found: dict[str, Entry] = {}
    bad: list[str] = []
    refused: CacheError | None = None
    for key, data in items:
        try:
            found[key] = unpack(serializer, key, data)
        except CorruptEntry:
            bad.append(key)
        except CacheError as err:  # foreign serializer or format: a miss, left in place
            refused = err
    if bad:
        raise CorruptEntry(
            f"unreadable cache entries {bad[:5]!r}{' …' if len(bad) > 5 else ''}; "
            "they are deleted and read as misses",
            keys=bad,
            found=found,
        )
    if refused is not None and not found:
        raise refused
    return found


def unpack(serializer: Any, key: str, data: bytes) -> Entry:
    """The entry in ``data``; refuses (CacheError) anything not written by a cache with the same
    serializer, before the payload is touched, and raises :class:`CorruptEntry` for bytes that
    do not decode."""
    # the hit path of L2 and L3: the header checked by one comparison of its first four bytes
    # (magic, version, serializer), the slower _header only to say what is wrong
    if data[:4] == _PREFIXES[serializer.name] and len(data) >= _HEADER.size:
        expires = _EXPIRES.unpack_from(data, 4)[0]
        expires = None if expires != expires else expires  # NaN: never
        try:
            return Entry(serializer.loads(key, data[_HEADER.size :]), expires)
        except _FAILURES:
            pass  # decoded again by _loads below, which says what is wrong
    else:
        expires = _header(serializer, key, data)
    return Entry(_loads(serializer, key, data[_HEADER.size :]), expires)
