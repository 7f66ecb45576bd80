"""How the app driver frames an answer's body, against a real socket server sending exact bytes:
an HTTP/1.0 answer with Transfer-Encoding is read to its end as Inngest's Go server reads it,
while a broken chunked body in HTTP/1.1 still fails the call; and a kept-alive connection the
app closed is not used again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from headrace.core.clock import SystemClock
from headrace.protocol.driver import AppDriver
from headrace.protocol.http10 import drop_transfer_encoding
from headrace.protocol.ops import Outcome

SDK_HEADERS = {"x-inngest-sdk": "inngest-py:v0.5.19", "content-type": "application/json"}
# What the SDK streams with status 201: keep-alive spaces, then the answer it would have sent.
STREAMED = b"  " + json.dumps({"status": 200, "headers": SDK_HEADERS, "body": '"Hi"'}).encode()


@asynccontextmanager
async def raw_server(
    answers: list[bytes], closed: asyncio.Event | None = None
) -> AsyncIterator[tuple[str, list[int]]]:
    """A server on a loopback port that answers the requests of one connection with `answers`
    in turn, byte for byte, and closes it after the last (then sets `closed`). Yields its URL
    and, per connection accepted, how many requests it read there."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        for answer in answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            connections[-1] += 1
            writer.write(answer)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        if closed is not None:
            closed.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/api/inngest", connections


async def call(url: str, driver: AppDriver | None = None) -> Outcome:
    own = driver or AppDriver(SystemClock())
    try:
        return await own.call(url, b"{}", {}, account_id="default")
    finally:
        if driver is None:
            await own.close()


def head(status_line: bytes, *fields: bytes) -> bytes:
    return b"\r\n".join([status_line, *fields, b"", b""])


async def test_an_http10_answer_with_transfer_encoding_is_read_to_connection_close() -> None:
    """The inngest-py suite's proxy: HTTP/1.0, the app's chunked header, the body de-chunked."""
    answer = head(b"HTTP/1.0 201 Created", b"Transfer-Encoding: chunked") + STREAMED
    async with raw_server([answer]) as (url, _):
        outcome = await call(url)
    assert outcome.error is None
    assert outcome.done and outcome.result == "Hi"


async def test_an_http10_answer_with_transfer_encoding_and_a_length_ends_at_the_length() -> None:
    answer = head(
        b"HTTP/1.0 201 Created",
        b"transfer-encoding:  chunked",
        f"Content-Length: {len(STREAMED)}".encode(),
    )
    async with raw_server([answer + STREAMED + b"ignored after the length"]) as (url, _):
        outcome = await call(url)
    assert outcome.done and outcome.result == "Hi"


async def test_a_broken_chunked_body_in_http11_fails_the_call_clearly() -> None:
    answer = head(b"HTTP/1.1 201 Created", b"Transfer-Encoding: chunked") + STREAMED + b"\r\n"
    async with raw_server([answer]) as (url, _):
        outcome = await call(url)
    assert outcome.status == 0 and not outcome.done
    assert outcome.error is not None and outcome.error["name"] == "NetworkError"
    assert "RemoteProtocolError" in outcome.error["message"]
    assert "chunk" in outcome.error["message"]


async def test_a_head_over_the_size_limit_fails_the_call_in_http10_too() -> None:
    huge = b"X-Padding: " + b"a" * (200 * 1024)
    answer = head(b"HTTP/1.0 201 Created", b"Transfer-Encoding: chunked", huge) + STREAMED
    async with raw_server([answer]) as (url, _):
        outcome = await call(url)
    assert outcome.error is not None and outcome.error["name"] == "NetworkError"
    assert "RemoteProtocolError" in outcome.error["message"]


async def test_a_kept_alive_http11_connection_serves_later_chunked_answers() -> None:
    """Only a connection's first head is looked at: later answers on it pass untouched."""
    chunked = f"{len(STREAMED):x}\r\n".encode() + STREAMED + b"\r\n0\r\n\r\n"
    answer = head(b"HTTP/1.1 201 Created", b"Transfer-Encoding: chunked") + chunked
    driver = AppDriver(SystemClock())
    async with raw_server([answer, answer]) as (url, connections):
        outcomes = [await call(url, driver), await call(url, driver)]
    await driver.close()
    assert [o.result for o in outcomes] == ["Hi", "Hi"]
    assert connections == [2]


async def test_a_kept_alive_connection_the_app_closed_is_not_used_again() -> None:
    """The pool sees an idle connection's end (the socket reads as ready) and opens a new one:
    the next call succeeds rather than failing on the closed one."""
    fields = [f"{name}: {value}".encode() for name, value in SDK_HEADERS.items()]
    answer = head(b"HTTP/1.1 200 OK", *fields, b"Content-Length: 4") + b'"Hi"'
    driver = AppDriver(SystemClock())
    closed = asyncio.Event()
    async with raw_server([answer], closed) as (url, connections):
        first = await call(url, driver)
        await closed.wait()  # the app has closed the connection kept alive after its answer
        second = await call(url, driver)
    await driver.close()
    assert first.error is None and second.error is None, (first.error, second.error)
    assert [first.result, second.result] == ["Hi", "Hi"]
    assert connections == [1, 1]


def test_only_heads_older_than_http11_lose_transfer_encoding() -> None:
    folded = head(b"HTTP/1.0 200 OK", b"Transfer-Encoding: gzip,", b" chunked", b"X-A: 1")
    assert drop_transfer_encoding(folded) == head(b"HTTP/1.0 200 OK", b"X-A: 1")
    eleven = head(b"HTTP/1.1 200 OK", b"Transfer-Encoding: chunked")
    assert drop_transfer_encoding(eleven) == eleven
    bare = b"HTTP/1.0 200 OK\nTRANSFER-ENCODING: chunked\nX-A: 1\n\n"
    assert drop_transfer_encoding(bare) == b"HTTP/1.0 200 OK\nX-A: 1\n\n"
