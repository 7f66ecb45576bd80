"""An app call over a direct connection, on the driver's httpcore pool without httpx's client
around it: the client's layers (URL merging, auth, redirects, cookies, its request and response
models) cost about as much CPU as the HTTP exchange itself, on every step
(benchmarks/step_overhead.md). The request carries the headers the client sends, the answer is
unpacked and capped here, and httpcore's errors come out as they are: httpx raises them under
the same names with the same messages (`TRANSPORT_ERRORS`).

No cookie jar, as Inngest's server has none (the client kept an app's cookies for later calls).
Calls through a proxy from the environment, or an injected transport, keep the client."""

from __future__ import annotations

import base64
import urllib.request
import zlib
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

TRANSPORT_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)
# What httpx's client adds to each request, so that an app sees the same request whichever way
# it is called; only the codings `_Unpacker` undoes are accepted.
_CLIENT_HEADERS = {
    "accept": (b"Accept", b"*/*"),
    "accept-encoding": (b"Accept-Encoding", b"gzip, deflate"),
    "connection": (b"Connection", b"keep-alive"),
    "user-agent": (b"User-Agent", f"python-httpx/{httpx.__version__}".encode()),
}
_WITH_BODY = ("POST", "PUT", "PATCH")


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names; a repeated field's values joined with ", "
    body: bytes | None  # None: it passed the limit (counted unpacked)


def proxy_in_environment() -> bool:
    """Whether httpx's client may send a call through a proxy the environment names
    (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, in either case), read with `urllib.request.getproxies`
    as httpx reads them (trust_env). With one set, every app call keeps the client, which
    applies NO_PROXY by httpx's own rules rather than a copy of them here; without (the usual
    deployment), every app call is direct."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


async def call_direct(
    pool: httpcore.AsyncConnectionPool,
    method: str,
    url: httpx.URL,
    body: bytes,
    headers: dict[str, str],
    extensions: dict[str, Any],
    limit: int,
) -> Answer:
    """Send the request on `pool`, read its answer up to `limit` bytes. Raises one of
    TRANSPORT_ERRORS, or httpx.DecodingError for a body its coding does not unpack."""
    target = httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )
    async with pool.stream(
        method,
        target,
        headers=_request_headers(url, headers),
        # Content-Length (httpcore adds it) as httpx sends it: not for an empty GET.
        content=body if body or method in _WITH_BODY else None,
        extensions=extensions,
    ) as response:
        fields = _fields(response.headers)
        unpackers = _unpackers(fields.get("content-encoding"))
        received = bytearray()
        async for chunk in response.aiter_stream():
            for unpacker in unpackers:
                chunk = unpacker.unpack(chunk)
            received += chunk
            if len(received) > limit:
                return Answer(response.status, fields, None)
        received += _finish(unpackers)
    return Answer(response.status, fields, bytes(received) if len(received) <= limit else None)


def _request_headers(url: httpx.URL, headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Host (an IPv6 address in brackets), the client's headers unless the call has its own,
    credentials in the URL as Basic auth (as httpx and Go's client send them), then the call's."""
    own = {name.lower() for name in headers}
    fields = [(b"Host", url.netloc)]
    fields += [field for name, field in _CLIENT_HEADERS.items() if name not in own]
    if url.userinfo:
        credentials = f"{url.username}:{url.password}".encode()
        fields.append((b"Authorization", b"Basic " + base64.b64encode(credentials)))
    fields += [(name.encode("ascii"), value.encode("ascii")) for name, value in headers.items()]
    return fields


def _fields(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    return fields


class _Unpacker:
    """Undoes one content coding: gzip, or deflate with its zlib wrapper or without (servers
    send both, and httpx reads both: it tries the wrapper on the first chunk)."""

    def __init__(self, coding: str) -> None:
        self._maybe_raw = coding == "deflate"
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if coding == "gzip" else zlib.MAX_WBITS)

    def unpack(self, data: bytes) -> bytes:
        maybe_raw, self._maybe_raw = self._maybe_raw, False
        try:
            return self._zlib.decompress(data)
        except zlib.error as err:
            if not maybe_raw:
                raise httpx.DecodingError(str(err)) from err
        self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
        return self.unpack(data)

    def flush(self) -> bytes:
        try:
            return self._zlib.flush()
        except zlib.error as err:
            raise httpx.DecodingError(str(err)) from err


def _unpackers(codings: str | None) -> list[_Unpacker]:
    """The unpackers of a Content-Encoding, in the order they apply: the last coding first.
    Codings other than gzip and deflate are left as they are, as httpx leaves unknown ones."""
    if not codings:
        return []
    named = [coding.strip().lower() for coding in codings.split(",")]
    return [_Unpacker(coding) for coding in reversed(named) if coding in ("gzip", "deflate")]


def _finish(unpackers: list[_Unpacker]) -> bytes:
    """What the unpackers still hold at the end of the body."""
    data = b""
    for unpacker in unpackers:
        data = unpacker.unpack(data) + unpacker.flush()
    return data
