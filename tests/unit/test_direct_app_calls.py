"""App calls over a direct connection skip httpx's client (protocol/direct_call.py), yet the app
sees the request the client would send, and a user sees the answer, and any failure, as the
client would give it. With a proxy in the environment (HTTP_PROXY), calls keep the client: they
go through the proxy, except to the hosts of NO_PROXY."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from headrace.core.clock import SystemClock
from headrace.protocol.driver import AppDriver
from headrace.protocol.ops import Outcome
from headrace.testing.hostile_app import HostileApp, fixed, http_answer
from headrace.testing.sdk_app import free_port

BODY = b'"done"'
ANSWER = (
    b"HTTP/1.1 200 OK\r\nx-inngest-sdk: inngest-py:v0.5.19\r\ncontent-type: application/json\r\n"
    b"content-length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@asynccontextmanager
async def answering_server() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A loopback server answering every request with ANSWER, connections kept alive; yields
    its port and the head of each request it read."""
    heads: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError):  # the client closed
            await answer_each(reader, writer)

    async def answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            heads.append(head)
            lengths = [
                int(field.split(b":", 1)[1])
                for field in head.split(b"\r\n")
                if field.lower().startswith(b"content-length:")
            ]
            await reader.readexactly(sum(lengths))
            writer.write(ANSWER)
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1], heads


async def call(url: str, method: str = "POST", body: bytes = b"{}") -> Outcome:
    driver = AppDriver(SystemClock())
    try:
        return await driver.call(url, body, {"x-run-id": "r1"}, account_id="default", method=method)
    finally:
        await driver.close()


def head_fields(head: bytes) -> tuple[bytes, list[bytes]]:
    """A request head's request line and its fields (sorted: their order means nothing),
    without `traceparent`: the driver's call is a span of its own."""
    line, *fields = head.rstrip(b"\r\n").split(b"\r\n")
    return line, sorted(field for field in fields if not field.lower().startswith(b"traceparent:"))


@pytest.mark.parametrize(
    ("method", "body", "credentials"),
    [("POST", b'{"a":1}', ""), ("GET", b"", ""), ("POST", b"{}", "user:p%40ss@")],
    ids=["post", "empty-get", "credentials-in-url"],
)
async def test_the_app_sees_the_request_httpx_would_send(
    method: str, body: bytes, credentials: str
) -> None:
    """The same head (Host, Accept-Encoding, User-Agent, Content-Length unless an empty GET,
    Basic auth from the URL's credentials) as from httpx's client given the call's headers."""
    async with answering_server() as (port, heads):
        url = f"http://{credentials}127.0.0.1:{port}/api/inngest?fnId=f"
        outcome = await call(url, method, body)
        async with httpx.AsyncClient() as client:
            headers = {"content-type": "application/json", "x-run-id": "r1"}
            await client.request(method, url, content=body, headers=headers)
    assert outcome.error is None and outcome.result == "done"
    direct, through_httpx = heads
    assert head_fields(direct) == head_fields(through_httpx)


@pytest.mark.parametrize(
    ("coding", "packed"),
    [
        ("gzip", gzip.compress(BODY)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", zlib.compress(BODY)[2:-4]),  # raw deflate, without the zlib wrapper
        ("deflate, gzip", gzip.compress(zlib.compress(BODY))),
    ],
    ids=["gzip", "deflate", "raw-deflate", "two-codings"],
)
async def test_a_compressed_answer_is_unpacked(coding: str, packed: bytes) -> None:
    app = HostileApp()
    app.answers["fn"] = fixed(http_answer(200, packed, {"content-encoding": coding}))
    async with app.serving():
        outcome = await call(f"{app.url}?fnId=fn")
    assert outcome.error is None and outcome.done and outcome.result == "done"


async def _fails_as_through_httpx(url: str, error: type[httpx.HTTPError]) -> None:
    """The direct call's outcome names the error httpx's client raises for the same call."""
    outcome = await call(url)
    async with httpx.AsyncClient() as client:
        with pytest.raises(error) as raised:
            await client.post(url, content=b"{}")
    assert outcome.status == 0 and outcome.retryable
    assert outcome.error == {
        "name": "NetworkError",
        "message": f"calling {url} failed: {error.__name__}: {raised.value}",
    }


async def test_an_answer_that_does_not_unpack_fails_as_it_does_through_httpx() -> None:
    app = HostileApp()
    app.answers["fn"] = fixed(http_answer(200, BODY, {"content-encoding": "gzip"}))
    async with app.serving():
        await _fails_as_through_httpx(f"{app.url}?fnId=fn", httpx.DecodingError)


async def test_a_refused_connection_fails_as_it_does_through_httpx() -> None:
    nothing_listens = f"http://127.0.0.1:{free_port()}/api/inngest?fnId=fn"
    await _fails_as_through_httpx(nothing_listens, httpx.ConnectError)


async def test_a_call_goes_through_the_proxy_of_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with answering_server() as (port, heads):
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        outcome = await call("http://app.example/api/inngest?fnId=f")
    assert outcome.status == 200 and outcome.error is None
    assert [head_fields(head)[0] for head in heads] == [
        b"POST http://app.example/api/inngest?fnId=f HTTP/1.1"
    ]


async def test_a_host_of_no_proxy_is_called_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    async with answering_server() as (port, heads):
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # no proxy there
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        outcome = await call(f"http://127.0.0.1:{port}/api/inngest?fnId=f")
    assert outcome.status == 200 and outcome.error is None
    assert [head_fields(head)[0] for head in heads] == [b"POST /api/inngest?fnId=f HTTP/1.1"]
