"""A lean HTTP/1.1 client for the load generator: one keep-alive connection per
:class:`Connection`, a raw asyncio protocol, responses parsed by ``httptools`` (the C parser
uvicorn uses). It sends pre-encoded requests and reads only the status and the end of each
response, so its client CPU per request is a small fraction of a general client's.

Failures are named like httpx's exception classes (``ConnectError``, ``ConnectTimeout``,
``ReadTimeout``, ``RemoteProtocolError``) so :func:`perflab.service.load.failure_kind`
counts them the same way."""

from __future__ import annotations

import asyncio
import json as _json
import ssl
import urllib.parse
from typing import Any

import httptools

__all__ = ["Connection", "RequestFailed", "encode_request", "split_url"]


class RequestFailed(Exception):
    """A request that got no response; ``kind`` is the httpx-style failure name."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


DEFAULT_PORTS = {"http": 80, "https": 443}


def split_url(url: str) -> tuple[str, int, str]:
    """(host, port, path with query) of an ``http://`` or ``https://`` URL."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme], path


def tls_context(*, ca_file: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """The client side of TLS: certificates checked against the system's CAs (or ``ca_file``,
    a PEM bundle, for a private CA) and the host name, unless ``verify`` is False (a test host
    with a self-signed certificate; said in the results)."""
    context = ssl.create_default_context(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])  # the generator speaks HTTP/1.1
    return context


def encode_request(
    url: str, method: str = "GET", json_body: Any = None, headers: dict[str, str] | None = None
) -> bytes:
    """The bytes of one keep-alive request to ``url``, built once and sent many times."""
    host, port, path = split_url(url)
    body = b"" if json_body is None else _json.dumps(json_body).encode()
    scheme = urllib.parse.urlsplit(url).scheme
    # the port only when it is not the scheme's own: virtual hosts match "Host: example.com"
    shown = host if port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    lines = [f"{method.upper()} {path} HTTP/1.1", f"Host: {shown}", "User-Agent: perflab"]
    for name, value in (headers or {}).items():
        if any(c in f"{name}{value}" for c in "\r\n") or ":" in name:
            raise ValueError(f"header {name!r} has a line break or a colon in its name")
        lines.append(f"{name}: {value}")
    if json_body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection(asyncio.Protocol):
    """One keep-alive connection; :meth:`request` sends a pre-encoded request and returns the
    response's status code once the whole response has arrived. One request at a time."""

    def __init__(
        self, host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host, self.port, self.timeout, self.tls = host, port, timeout, tls
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future | None = None
        self.keep_alive = True
        self.sent_at = 0.0  # loop time of the request in flight (for the timeout sweeper)

    # --- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail("RemoteProtocolError", str(err))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail("RemoteProtocolError", "server closed the connection")

    # --- httptools callbacks ----------------------------------------------------------------
    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self.parser.get_status_code())

    # --- use --------------------------------------------------------------------------------
    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: self,
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                ),
                self.timeout,
            )
        except TimeoutError as err:
            raise RequestFailed("ConnectTimeout", f"{self.host}:{self.port}") from err
        except ssl.SSLError as err:  # before OSError: it is one (a certificate, a handshake)
            raise RequestFailed("TLSError", f"{self.host}:{self.port}: {err}") from err
        except OSError as err:
            raise RequestFailed("ConnectError", f"{self.host}:{self.port}: {err}") from err
        self.parser = httptools.HttpResponseParser(self)
        self.keep_alive = True

    async def request(self, data: bytes) -> int:
        if self.transport is None or not self.keep_alive:
            self.close()
            await self.connect()
        if self.transport is None:  # accepted, then closed before we wrote a byte
            raise RequestFailed("RemoteProtocolError", "server closed the connection")
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        self.sent_at = loop.time()
        self.transport.write(data)
        return await waiter

    def expire(self, now: float) -> None:
        """Fail the request in flight if it has waited longer than the timeout (called by a
        sweeper a few times a second: cheaper than a timer per request)."""
        if self.waiter is not None and now - self.sent_at > self.timeout:
            self._fail("ReadTimeout", f"no response within {self.timeout} s")
            self.close()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    def _fail(self, kind: str, detail: str) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(RequestFailed(kind, detail))
