"""How values travel to the shared tiers (Redis, the database).

JSON by default, extended for what a pandas/numpy user stores (numpy scalars and arrays,
DataFrames, Series, datetimes, bytes, tuples, sets, Decimal). msgpack when asked for. pickle only
by explicit opt-in and then HMAC-signed: a payload without a valid signature is refused, never
unpickled. A value that cannot be serialised raises TypeError naming the key and type before
anything is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import hmac
import io
import json
import json.scanner
import pickle
from typing import Any, Protocol

from perflab.errors import CacheError

__all__ = ["JsonSerializer", "MsgpackSerializer", "PickleSerializer", "Serializer", "serializer"]


class Serializer(Protocol):
    name: str

    def dumps(self, key: str, value: Any) -> bytes: ...
    def loads(self, key: str, data: bytes) -> Any: ...


def _encode(obj: Any) -> Any:
    """JSON for the types json doesn't know, as tagged objects."""
    import numpy as np
    import pandas as pd

    if isinstance(obj, pd.DataFrame | pd.Series):
        buffer = io.StringIO()
        obj.to_json(buffer, orient="split", date_format="iso", date_unit="ns")
        kind = "dataframe" if isinstance(obj, pd.DataFrame) else "series"
        return {"__perflab__": kind, "v": buffer.getvalue(), "dtypes": _dtypes(obj)}
    if isinstance(obj, np.ndarray):
        return {"__perflab__": "ndarray", "dtype": obj.dtype.str, "v": obj.tolist()}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes | bytearray):
        return {"__perflab__": "bytes", "v": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, dt.datetime):
        return {"__perflab__": "datetime", "v": obj.isoformat()}
    if isinstance(obj, dt.date):
        return {"__perflab__": "date", "v": obj.isoformat()}
    if isinstance(obj, decimal.Decimal):
        return {"__perflab__": "decimal", "v": str(obj)}
    if isinstance(obj, set | frozenset):
        return {"__perflab__": "set", "v": [_walk(x) for x in obj]}
    raise TypeError(type(obj).__name__)


def _dtypes(obj: Any) -> Any:
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return {str(k): str(v) for k, v in obj.dtypes.items()}
    return str(obj.dtype)


def _walk(obj: Any) -> Any:
    """Tuples survive as tagged lists (json would make them lists silently)."""
    if isinstance(obj, tuple):
        return {"__perflab__": "tuple", "v": [_walk(x) for x in obj]}
    if isinstance(obj, list):
        return [_walk(x) for x in obj]
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            bad = next(k for k in obj if not isinstance(k, str))
            raise TypeError(f"dict with a {type(bad).__name__} key ({bad!r})")
        if "__perflab__" in obj:  # a user's dict with our tag key: carried as pairs, not a tag
            return {"__perflab__": "dict", "v": [[k, _walk(v)] for k, v in obj.items()]}
        return {k: _walk(v) for k, v in obj.items()}
    if isinstance(obj, str | int | float | bool) or obj is None:
        return obj
    return _encode(obj)


_TAG = b'"__perflab__"'


def _decode(obj: dict[str, Any]) -> Any:
    kind = obj.get("__perflab__")
    if kind is None:
        return obj
    value = obj["v"]
    if kind == "tuple":
        return tuple(value)
    if kind == "dict":
        return dict(value)
    if kind == "set":
        return set(value)
    if kind == "bytes":
        return base64.b64decode(value, validate=True)
    if kind == "datetime":
        return dt.datetime.fromisoformat(value)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "decimal":
        return decimal.Decimal(value)
    if kind == "ndarray":
        import numpy as np

        return np.asarray(value, dtype=np.dtype(obj["dtype"]))
    if kind in ("dataframe", "series"):
        import pandas as pd

        reader = pd.read_json(
            io.StringIO(value), orient="split", typ="frame" if kind == "dataframe" else "series"
        )
        dtypes = obj.get("dtypes") or {}
        if kind == "dataframe":
            return reader.astype({k: v for k, v in dtypes.items() if k in reader.columns})
        return reader.astype(dtypes)
    raise CacheError(f"unknown tagged value {kind!r} in cached JSON")


# Anything the decoder raises on bytes it did not write becomes a CorruptEntry in
# perflab.cache.entry (a counted miss, deleted), so loads() need not list every failure here.


class JsonSerializer:
    """JSON, extended for numpy, pandas, bytes, datetimes, Decimal, tuples and sets."""

    name = "json"

    # built once: json.dumps/loads with options construct a new encoder/decoder per call
    _encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=True)
    _decoder = json.JSONDecoder(object_hook=_decode)
    # Payloads without a tag (most) skip the object hook, a Python call per JSON object: the
    # encoder writes the tag key literally, so its absence from the bytes is proof enough.
    _plain = json.JSONDecoder()
    # the C scanner json's decode() wraps: called directly, the hit path skips two Python
    # frames and two whitespace regexes (our encoder writes none); anything it doesn't take
    # whole goes to the full decoder, which says what is wrong
    _scan = json.scanner.make_scanner(_plain)  # type: ignore[arg-type]  # (typeshed: the class)

    def dumps(self, key: str, value: Any) -> bytes:
        try:
            return self._encoder.encode(_walk(value)).encode()
        except TypeError as err:
            raise TypeError(
                f"cannot cache key {key!r}: a {type(value).__name__} value holds {err}, which "
                "JSON cannot carry; store plain data, or opt in to pickle with a secret"
            ) from None
        except ValueError as err:  # circular references
            raise TypeError(f"cannot cache key {key!r}: {err}") from None

    def loads(self, key: str, data: bytes) -> Any:
        try:
            if _TAG not in data:
                text = data.decode()
                try:
                    value, end = self._scan(text, 0)
                    if end == len(text):
                        return value
                except StopIteration:
                    pass
                return self._plain.decode(text)
            return self._decoder.decode(data.decode())
        except ValueError as err:  # includes UnicodeDecodeError and JSONDecodeError
            raise CacheError(
                f"key {key!r}: stored value is not valid JSON ({err})", key=key
            ) from err

    def loads_many(self, keys: list[str], payloads: list[bytes]) -> list[Any]:
        """Many values in one parse: the payloads joined as one JSON array."""
        joined = b",".join(payloads)
        decoder = self._decoder if _TAG in joined else self._plain
        try:
            values = decoder.decode("[" + joined.decode() + "]")
        except ValueError:
            return [self.loads(k, p) for k, p in zip(keys, payloads, strict=True)]  # find which
        if len(values) != len(keys):  # a payload holding "1,2" would shift the rest
            return [self.loads(k, p) for k, p in zip(keys, payloads, strict=True)]
        typed: list[Any] = values
        return typed


class MsgpackSerializer:
    """msgpack (the optional ``msgpack`` package): compact, for plain data."""

    name = "msgpack"

    def __init__(self) -> None:
        try:
            import msgpack
        except ImportError as err:
            raise CacheError(
                "serializer='msgpack' needs the msgpack package: pip install msgpack"
            ) from err
        self._msgpack = msgpack

    def dumps(self, key: str, value: Any) -> bytes:
        try:
            typed: bytes = self._msgpack.packb(value, use_bin_type=True)
            return typed
        except (TypeError, ValueError) as err:
            raise TypeError(
                f"cannot cache key {key!r} with msgpack: {type(value).__name__}: {err}"
            ) from None

    def loads(self, key: str, data: bytes) -> Any:
        return self._msgpack.unpackb(data, raw=False)


class PickleSerializer:
    """pickle, signed with HMAC-SHA256 under ``secret``. Unsigned or tampered payloads are refused
    before unpickling: whoever can write to Redis must not be able to run code here."""

    name = "pickle"
    _SIG = 32

    def __init__(self, secret: bytes | str) -> None:
        secret = secret.encode() if isinstance(secret, str) else secret
        if len(secret) < 16:
            raise CacheError("pickle needs a secret of at least 16 bytes to sign payloads")
        self._secret = secret

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def dumps(self, key: str, value: Any) -> bytes:
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            raise TypeError(
                f"cannot cache key {key!r}: {type(value).__name__} does not pickle: {err}"
            ) from None
        return self._sign(payload) + payload

    def loads(self, key: str, data: bytes) -> Any:
        signature, payload = data[: self._SIG], data[self._SIG :]
        if len(data) <= self._SIG or not hmac.compare_digest(signature, self._sign(payload)):
            raise CacheError(
                f"refusing to unpickle key {key!r}: missing or invalid signature", key=key
            )
        return pickle.loads(payload)  # signed by us, verified above


def serializer(name: str = "json", *, secret: bytes | str | None = None) -> Serializer:
    """A serializer by name: ``json`` (default), ``msgpack``, or ``pickle`` (needs ``secret``)."""
    if name == "json":
        return JsonSerializer()
    if name == "msgpack":
        return MsgpackSerializer()
    if name == "pickle":
        if secret is None:
            raise CacheError("serializer='pickle' is opt-in and needs secret= to sign payloads")
        return PickleSerializer(secret)
    raise CacheError(f"unknown serializer {name!r}; use 'json', 'msgpack' or 'pickle'")
