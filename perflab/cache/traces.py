"""Key traces from a system perflab did not create: a file (one key per line, or CSV with a key
column; gzip accepted), streamed, or a short MONITOR recording of a Redis server's GET/SET keys.

A trace is kept as one 64-bit id per request (a hash of the key), never the keys themselves, so
memory grows by 8 bytes a request whatever the keys look like, and ``max_requests`` bounds it.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import re
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import numpy as np

from perflab.errors import ConfigurationError, ServerError
from perflab.urls import REDIS_SCHEMES, check_url, redact

__all__ = [
    "MAX_MONITOR_SECONDS",
    "KeyTrace",
    "load_trace",
    "monitor_keys",
    "read_trace_file",
]

MAX_MONITOR_SECONDS = 30.0  # MONITOR slows a busy server (every command is copied to us)
DEFAULT_MAX_REQUESTS = 10_000_000  # 80 MB of ids
_SNIFF = 8192

# the reads and writes of a cache: their key comes first (MGET: every argument is a key)
_TRACED = {"GET", "SET", "MGET", "SETEX", "PSETEX", "SETNX", "GETEX", "GETDEL", "GETSET"}


@dataclasses.dataclass(frozen=True)
class KeyTrace:
    """Requests as key ids in arrival order, where they came from, and what was left out."""

    ids: np.ndarray
    source: str  # a path or a redacted URL
    truncated: bool = False  # stopped at max_requests
    note: str = ""  # a limitation the page should state

    def __len__(self) -> int:
        return int(self.ids.size)

    @property
    def distinct(self) -> int:
        return int(np.unique(self.ids).size)


def load_trace(
    trace: str, *, max_requests: int = DEFAULT_MAX_REQUESTS, key_column: str = "key"
) -> KeyTrace:
    """A file path or ``redis://host:port/db?monitor=SECONDS`` → :class:`KeyTrace`
    (``&monitor_db=N`` or ``=all``: the commands of another database, or of all; default the
    URL's)."""
    if not isinstance(trace, str) or not trace.strip():
        raise ConfigurationError(
            "trace is empty; give a key file (one key per line, CSV with a 'key' column, .gz "
            "accepted) or redis://host:6379/0?monitor=30",
            name="trace",
        )
    if trace.partition("://")[0] in REDIS_SCHEMES:
        base, _, rest = trace.partition("?")
        query = parse_qs(rest)
        seconds = query.pop("monitor", [None])[0]
        if seconds is None:
            raise ConfigurationError(
                f"trace {redact(trace)!r} is a Redis URL without ?monitor=SECONDS; add e.g. "
                "?monitor=30 to record that long",
                name="trace",
            )
        try:
            duration = float(seconds)
        except ValueError as err:
            raise ConfigurationError(
                f"trace {redact(trace)!r}: monitor={seconds!r} is not a number of seconds",
                name="trace",
            ) from err
        # MONITOR sees every database: the URL's alone by default, monitor_db=N or =all
        chosen = query.pop("monitor_db", ["url"])[0]
        if chosen not in ("url", "all") and not chosen.isdigit():
            raise ConfigurationError(
                f"trace {redact(trace)!r}: monitor_db={chosen!r} is neither a database number "
                "nor all",
                name="trace",
            )
        database = None if chosen == "all" else chosen if chosen == "url" else int(chosen)
        rest = urlencode(query, doseq=True)  # (urlsplit would turn unix:///a into unix:/a)
        url = f"{base}?{rest}" if rest else base
        return monitor_keys(url, seconds=duration, max_requests=max_requests, database=database)
    return read_trace_file(trace, max_requests=max_requests, key_column=key_column)


def _check_limit(max_requests: int) -> None:
    if not isinstance(max_requests, int) or max_requests < 1:
        raise ConfigurationError(
            f"max_requests must be a positive whole number, got {max_requests!r}",
            name="max_requests",
        )


def _open_text(path: Path) -> io.TextIOBase:
    """The file as text (gunzipped when it starts with gzip's magic bytes), after checking the
    first bytes are text: an empty or binary file is refused with the path in the message."""
    try:
        with open(path, "rb") as raw:
            magic = raw.read(2)
    except FileNotFoundError as err:
        raise ConfigurationError(
            f"trace file {path} not found; give the path of a key file", name="trace"
        ) from err
    except OSError as err:
        raise ConfigurationError(
            f"trace file {path} cannot be read ({err.strerror}); give a readable key file",
            name="trace",
        ) from err
    opener: Callable[..., io.BufferedIOBase] = gzip.open if magic == b"\x1f\x8b" else open
    binary = opener(path, "rb")
    try:
        head = binary.read(_SNIFF)
    except (OSError, EOFError) as err:
        binary.close()
        raise ConfigurationError(
            f"trace file {path} is not readable gzip ({err}); give a .gz made by gzip or a plain "
            "key file",
            name="trace",
        ) from err
    try:
        if not head.strip():
            raise ConfigurationError(
                f"trace file {path} is empty; it needs one key per line (or a CSV with a key "
                "column)",
                name="trace",
            )
        if b"\x00" in head or not _is_utf8(head):
            raise ConfigurationError(
                f"trace file {path} looks binary (not UTF-8 text); give one key per line, or a "
                "CSV with a key column, optionally gzipped",
                name="trace",
            )
    except ConfigurationError:
        binary.close()
        raise
    binary.seek(0)
    return io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="")  # type: ignore[type-var]


def _is_utf8(head: bytes) -> bool:
    for cut in range(4):  # the sniffed block may end inside a multi-byte character
        try:
            head[: len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def _keys(text: io.TextIOBase, path: Path, key_column: str) -> Iterator[str]:
    """Keys from lines, or from ``key_column`` of a CSV whose header names it."""
    first = text.readline()
    header = next(csv.reader([first]), [])
    names = [h.strip() for h in header]
    if len(names) > 1 or (names and names[0] == key_column and "," in first):
        if key_column not in names:
            raise ConfigurationError(
                f"trace file {path} looks like CSV with columns {', '.join(names)!s} but has "
                f"no {key_column!r} column; name the key column {key_column!r} (or pass "
                "key_column)",
                name="key_column",
            )
        column = names.index(key_column)
        for row in csv.reader(text):
            if len(row) > column:
                yield row[column]
        return
    if names == [key_column]:
        pass  # a one-column file with a header
    elif first.strip():
        yield first.rstrip("\r\n")
    for line in text:
        yield line.rstrip("\r\n")


def read_trace_file(
    path: str | Path, *, max_requests: int = DEFAULT_MAX_REQUESTS, key_column: str = "key"
) -> KeyTrace:
    """Stream ``path`` into a :class:`KeyTrace`; blank lines are skipped. Stops at
    ``max_requests`` (and says so in ``note``) so a huge file cannot fill the memory."""
    _check_limit(max_requests)
    path = Path(path)
    ids = array("q")
    truncated = False
    with _open_text(path) as text:
        for key in _keys(text, path, key_column):
            if not key:
                continue
            if len(ids) >= max_requests:
                truncated = True
                break
            ids.append(hash(key))
    if not ids:
        raise ConfigurationError(f"trace file {path} holds no keys", name="trace")
    note = (
        f"the trace was cut at its first {max_requests:,} requests (max_requests)"
        if truncated
        else ""
    )
    return KeyTrace(np.frombuffer(ids, dtype=np.int64).copy(), str(path), truncated, note)


_MONITOR_LINE = re.compile(rb"(\d+\.\d+) \[(\d+) ([^\]]*)\] ?(.*)", re.S)
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("a"): 7, ord("b"): 8}


def parse_monitor_line(line: bytes) -> tuple[float, int, list[str]] | None:
    r"""One raw MONITOR reply (``1712.5 [0 127.0.0.1:5]  "SET" "user 1" "x"``) as
    ``(time, database, arguments)``, or None when it is not a command line (``OK``).

    Redis quotes every argument with C escapes (``\"``, ``\\``, ``\n``, ``\xHH``);
    redis-py's own Monitor splits the line at spaces, so a key ``user 1`` came back as ``user``
    and a key ending in a backslash as nothing. Arguments are decoded as UTF-8 with surrogate
    escapes: a binary key stays one distinct key, and a text key hashes as it does in a file."""
    found = _MONITOR_LINE.fullmatch(line.strip(b"\r\n"))
    if not found:
        return None
    args: list[str] = []
    rest, i = found.group(4), 0
    while i < len(rest):
        if rest[i] == 0x20:  # spaces between arguments
            i += 1
            continue
        if rest[i] != 0x22:  # Redis quotes every argument; anything else is not MONITOR's
            return None
        out, i = bytearray(), i + 1
        while i < len(rest) and rest[i] != 0x22:
            if rest[i] == 0x5C and i + 1 < len(rest):  # a backslash escape
                nxt = rest[i + 1]
                if nxt == ord("x") and i + 3 < len(rest):
                    out.append(int(rest[i + 2 : i + 4], 16))
                    i += 4
                    continue
                out.append(_ESCAPES.get(nxt, nxt))
                i += 2
                continue
            out.append(rest[i])
            i += 1
        if i >= len(rest):  # no closing quote: a cut line
            return None
        args.append(bytes(out).decode("utf-8", "surrogateescape"))
        i += 1
    return float(found.group(1)), int(found.group(2)), args


def _monitored(args: list[str]) -> list[str]:
    """The keys one MONITOR command touches (GET/SET and their relatives), else none."""
    name = args[0].upper() if args else ""
    if name not in _TRACED or len(args) < 2:
        return []
    if name == "MGET":
        return args[1:]
    return args[1:2]


def monitor_keys(
    url: str,
    *,
    seconds: float = MAX_MONITOR_SECONDS,
    max_requests: int = 1_000_000,
    clock: Callable[[], float] = time.monotonic,
    database: int | str | None = "url",
) -> KeyTrace:
    """Record the keys of GET/SET-like commands a Redis server sees for ``seconds`` (at most
    :data:`MAX_MONITOR_SECONDS`) or until ``max_requests`` keys, whichever comes first.
    MONITOR only reads; it does cost a busy server throughput while it runs, hence both bounds.
    MONITOR sees every database: only commands on ``database`` are kept (default: the URL's,
    ``/0`` when it names none; None keeps them all). Keys are parsed from the raw reply, so
    spaces, quotes, backslashes and binary bytes in them survive.
    """
    import redis

    _check_limit(max_requests)
    check_url("trace", url, REDIS_SCHEMES)
    shown = redact(url)
    if not 0 < seconds <= MAX_MONITOR_SECONDS:
        raise ConfigurationError(
            f"trace {shown}: monitor={seconds:g} s is outside 0-{MAX_MONITOR_SECONDS:g} s; "
            "MONITOR slows the server while it runs, so perflab records at most "
            f"{MAX_MONITOR_SECONDS:g} s",
            name="trace",
        )
    client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=5)
    kwargs = client.connection_pool.connection_kwargs
    wanted = kwargs.get("db", 0) if database == "url" else database
    ids = array("q")
    ended_by = "time"
    deadline = clock() + seconds
    try:
        with client.monitor() as monitor:  # type: ignore[no-untyped-call]  # (redis-py's stubs)
            while clock() < deadline:
                try:  # the raw reply: redis-py's next_command() splits keys at spaces
                    raw = monitor.connection.read_response(disable_decoding=True)
                except redis.TimeoutError:
                    continue  # a quiet server: look at the clock again
                entry = parse_monitor_line(raw) if isinstance(raw, bytes) else None
                if entry is None or (wanted is not None and entry[1] != int(wanted)):
                    continue
                # an MGET touches several keys: the bound is on keys, so stop mid-command
                for key in _monitored(entry[2])[: max_requests - len(ids)]:
                    ids.append(hash(key))
                if len(ids) >= max_requests:
                    ended_by = "keys"
                    break
    except redis.AuthenticationError as err:
        raise ServerError(
            f"Redis at {shown} refused the credentials ({err}); give a user that may run MONITOR",
            url=shown,
        ) from err
    except redis.ResponseError as err:
        raise ServerError(
            f"Redis at {shown} refused MONITOR ({err}); the user needs the +monitor permission",
            url=shown,
        ) from err
    except (redis.ConnectionError, OSError) as err:
        raise ServerError(
            f"cannot record a trace from Redis at {shown} ({err}); check the URL and that the "
            "server is running",
            url=shown,
        ) from err
    finally:
        client.close()
    if not ids:
        raise ConfigurationError(
            f"Redis at {shown} served no GET/SET in {seconds:g} s of MONITOR; record while the "
            "application is busy, or give a key file",
            name="trace",
        )
    note = (
        f"recorded until {max_requests:,} keys (max_requests), before {seconds:g} s"
        if ended_by == "keys"
        else f"recorded {seconds:g} s of MONITOR"
    )
    return KeyTrace(np.frombuffer(ids, dtype=np.int64).copy(), shown, ended_by == "keys", note)
