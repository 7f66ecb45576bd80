"""The HTTP transport of calls to apps, reading HTTP/1.0 answers as Inngest's server does.

An HTTP/1.0 answer may not use Transfer-Encoding (RFC 9112 §6.1), but a proxy that speaks 1.0
can pass on the header of the app behind it over a body it has already de-chunked. Go's
net/http, which Inngest's server calls apps with, ignores Transfer-Encoding on a message older
than 1.1 (net/http/transfer.go, parseTransferEncoding), so such a body ends at Content-Length or
at connection close. h11 has no option for it and frames the body as chunked, so the network
stream drops the header from an HTTP/1.0 head before h11 reads it; every other byte, and every
HTTP/1.1 answer, reaches h11 unchanged, so its checks (chunk syntax, head size) still apply.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx
from httpcore._utils import is_socket_readable

# h11's end of a head, and httpcore's bound on a head (AsyncHTTP11Connection).
_HEAD_END = re.compile(b"\n\r?\n")
_MAX_HEAD_BYTES = 100 * 1024
# Older than 1.1, as Go's protoAtLeast(1, 1) reads it.
_BEFORE_1_1 = re.compile(rb"HTTP/(?:0\.[0-9]|1\.0) ")
_FIELD = re.compile(rb"transfer-encoding:", re.IGNORECASE)


def app_pool(limits: httpx.Limits) -> httpcore.AsyncConnectionPool:
    """The pool of direct connections to apps, its connections reading HTTP/1.0 heads as Go
    does."""
    return httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_Backend(httpcore.AnyIOBackend()),
    )


def app_client(
    timeout: httpx.Timeout, limits: httpx.Limits, pool: httpcore.AsyncConnectionPool
) -> httpx.AsyncClient:
    """An httpx client whose direct connections are those of `pool` (`app_pool`). Proxies from
    the environment (HTTP_PROXY, NO_PROXY, ...) apply as httpx applies them."""
    client = httpx.AsyncClient(timeout=timeout, limits=limits)
    # httpx gives no way to set the network backend of its transport for direct connections
    # (NO_PROXY hosts use it too), so that transport's pool is replaced. httpx is pinned to
    # 0.28, whose attributes these are.
    direct = httpx.AsyncHTTPTransport(limits=limits)
    direct._pool = pool
    client._transport = direct
    return client


def drop_transfer_encoding(head: bytes) -> bytes:
    """The response head `head` (up to and with its blank line) without Transfer-Encoding when
    it is older than HTTP/1.1; any other head unchanged."""
    if not _BEFORE_1_1.match(head):
        return head
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\n"):
        # A line starting with whitespace continues the field before it (obs-fold).
        if line[:1] in (b" ", b"\t") and dropping:
            continue
        dropping = _FIELD.match(line) is not None
        if not dropping:
            kept.append(line)
    return b"\n".join(kept)


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Stream(httpcore.AsyncNetworkStream):
    """A connection whose first response head is held until complete and passed through
    `drop_transfer_encoding`. Only the first: a 1.0 answer ends its connection, and a 1.1
    connection never turns 1.0."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._head_passed = False
        self._pending = b""
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if not self._head_passed:
            self._pending = await self._first_head(max_bytes, timeout)
            self._head_passed = True
            if not self._pending:
                return b""  # closed before a byte came
        if self._pending:
            data, self._pending = self._pending[:max_bytes], self._pending[max_bytes:]
            return data
        return await self._inner.read(max_bytes, timeout)

    async def _first_head(self, max_bytes: int, timeout: float | None) -> bytes:
        """The bytes up to the end of the first head and any read with them, the head rewritten."""
        received = bytearray()
        while True:
            data = await self._inner.read(max_bytes, timeout)
            received += data
            end = _HEAD_END.search(received)
            if end is not None:
                head, rest = bytes(received[: end.end()]), bytes(received[end.end() :])
                return drop_transfer_encoding(head) + rest
            if not data or len(received) > _MAX_HEAD_BYTES:
                # Closed or too long: h11 reports it as it would without this stream.
                return bytes(received)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        # The pool asks every idle connection whether it is readable (closed by the app) each
        # time it places a request, and anyio answers by building all of a stream's attributes,
        # a getpeername() among them: about 7 % of the executor's CPU under load. The socket
        # of a stream never changes, so it is looked up once.
        if info == "socket":
            return self._socket
        if info == "is_readable":
            return is_socket_readable(self._socket)
        return self._inner.get_extra_info(info)
