"""A hostile app for protocol fuzzing: a raw HTTP server on loopback that the engine syncs and
calls, and that answers each call with whatever bytes the test chose for the function called,
however broken (a stranger's app, so a fake is right here; no SDK would answer like this).
And a stranger in the path: a proxy that changes a real app's answers on their way back."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

# Writes one whole answer, then returns; the connection is closed after it.
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
# Changes an answer on its way: (headers with lower-case names, body) -> the same, changed.
Tamper = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]
# What the proxy does not pass on as it came: it sends the body whole and decoded, then closes.
_HOP_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive"}
)

SDK_HEADERS = {"x-inngest-sdk": "inngest-py:v0.5.19", "content-type": "application/json"}


def http_answer(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, sdk: bool = True
) -> bytes:
    """An HTTP/1.1 answer with a Content-Length; as from an SDK unless `sdk` is False."""
    fields = {**(SDK_HEADERS if sdk else {}), **(headers or {})}
    fields["content-length"] = str(len(body))
    fields["connection"] = "close"
    head = f"HTTP/1.1 {status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return head.encode() + b"\r\n" + body


def fixed(data: bytes) -> Answer:
    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(data)
        await writer.drain()

    return answer


def trickle(data: bytes, interval_s: float) -> Answer:
    """`data` a byte at a time, `interval_s` apart."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for i in range(len(data)):
            if reader.at_eof():
                return  # the caller hung up
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(interval_s)

    return answer


def endless(status: int = 200) -> Answer:
    """A chunked body that never ends, until the caller hangs up."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = {**SDK_HEADERS, "transfer-encoding": "chunked"}
        writer.write(
            f"HTTP/1.1 {status} X\r\n".encode()
            + "".join(f"{k}: {v}\r\n" for k, v in head.items()).encode()
            + b"\r\n"
        )
        chunk = b"[" * 65536
        while not reader.at_eof():
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            await asyncio.sleep(0)

    return answer


def silent() -> Answer:
    """Reads the call and never answers a byte; returns when the caller hangs up."""

    async def answer(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await reader.read()

    return answer


class HostileApp:
    """Serves `answers[fn_id]` to each call of that function (by the call's `fnId` query) and
    counts the calls. The functions are registered with `register_body`."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.calls: collections.Counter[str] = collections.Counter()
        self.url = ""

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[HostileApp]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/inngest"
        async with server:
            yield self
            server.close()

    def register_body(self, app_id: str, functions: dict[str, int]) -> dict[str, Any]:
        """What an SDK's sync would send: one function per id, triggered by the event of the
        same name, with that many retries."""
        return {
            "url": self.url,
            "appName": app_id,
            "framework": "hostile",
            "functions": [
                {
                    "id": fn_id,
                    "name": fn_id,
                    "triggers": [{"event": fn_id}],
                    "steps": {
                        "step": {
                            "id": "step",
                            "name": "step",
                            "runtime": {
                                "type": "http",
                                "url": f"{self.url}?fnId={fn_id}&step=step",
                            },
                            "retries": {"attempts": retries},
                        }
                    },
                }
                for fn_id, retries in functions.items()
            ],
        }

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *fields = head.decode("latin-1").split("\r\n")
            length = 0
            for field in fields:
                name, _, value = field.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            fn_id = parse_qs(urlsplit(request_line.split(" ")[1]).query).get("fnId", [""])[0]
            self.calls[fn_id] += 1
            await self.answers[fn_id](reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the engine hung up: what a cut-off answer ends with
        finally:
            writer.close()


class TamperingProxy:
    """Forwards each request to the app at `target` (an origin) and passes its answer back
    through `tamper` (None: as it came), signature header and all. A real app served with this
    proxy's `origin` as its own is called through it."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.tamper: Tamper | None = None
        self.origin = ""

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[TamperingProxy]:
        async with httpx.AsyncClient(base_url=self.target, timeout=60) as client:
            self._client = client
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.origin = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            async with server:
                yield self
                server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *fields = head.decode("latin-1").split("\r\n")
            method, target, _ = request_line.split(" ", 2)
            headers = {}
            for field in filter(None, fields):
                name, _, value = field.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            sent = {k: v for k, v in headers.items() if k not in _HOP_HEADERS | {"host"}}
            answer = await self._client.request(method, target, content=body, headers=sent)
            out = {k: v for k, v in answer.headers.items() if k not in _HOP_HEADERS}
            content = answer.content
            if self.tamper is not None:
                out, content = self.tamper(out, content)
            writer.write(http_answer(answer.status_code, content, out, sdk=False))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the engine hung up
        finally:
            writer.close()
