"""A cached value with its absolute expiry, and its wire form for the shared tiers."""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Any

from perflab.errors import CacheError

__all__ = ["Entry", "pack", "unpack", "unpack_many"]

_MAGIC = b"PL"
_VERSION = 1
_HEADER = struct.Struct(">2sBBd")  # magic, version, serializer id, expires_at (NaN: never)
_SERIALIZER_IDS = {"json": 1, "msgpack": 2, "pickle": 3}
_SERIALIZER_NAMES = {v: k for k, v in _SERIALIZER_IDS.items()}


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
    return _HEADER.pack(_MAGIC, _VERSION, _SERIALIZER_IDS[serializer.name], expires) + payload


def _header(serializer: Any, key: str, data: bytes) -> float | None:
    if len(data) < _HEADER.size:
        raise CacheError(f"key {key!r}: not a perflab cache entry")
    magic, version, sid, expires = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != _VERSION:
        raise CacheError(f"key {key!r}: not a perflab cache entry (or a newer format)")
    if _SERIALIZER_NAMES.get(sid) != serializer.name:
        raise CacheError(
            f"key {key!r} was written with serializer {_SERIALIZER_NAMES.get(sid, sid)!r}; "
            f"this cache reads {serializer.name!r}"
        )
    return None if math.isnan(expires) else expires


def unpack_many(serializer: Any, items: list[tuple[str, bytes]]) -> dict[str, Entry]:
    """``unpack`` for many entries; serializers with ``loads_many`` decode all in one call."""
    expiries = [_header(serializer, key, data) for key, data in items]
    size = _HEADER.size
    payloads = [data[size:] for _, data in items]
    keys = [key for key, _ in items]
    loads_many = getattr(serializer, "loads_many", None)
    if loads_many is not None:
        values = loads_many(keys, payloads)
    else:
        values = [serializer.loads(k, p) for k, p in zip(keys, payloads, strict=True)]
    return {k: Entry(v, e) for k, v, e in zip(keys, values, expiries, strict=True)}


def unpack(serializer: Any, key: str, data: bytes) -> Entry:
    """The entry in ``data``; refuses (CacheError) anything not written by a cache with the same
    serializer, before the payload is touched."""
    expires = _header(serializer, key, data)
    return Entry(serializer.loads(key, data[_HEADER.size :]), expires)
