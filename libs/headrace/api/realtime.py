"""Inngest Realtime over HTTP, as the TypeScript SDK calls it (inngest-js src/api/api.ts,
src/components/realtime/subscribe/TokenSubscription.ts) and Inngest serves it
(pkg/execution/realtime/api.go):

- `POST /v1/realtime/publish?channel=&topic=&run_id=`, signing key auth: the body (JSON, or
  text sent as a JSON string) goes to the subscribers of the key's account on that channel and
  topic. 200 with no body, whether anyone listens or not. A `text/stream` body (the SDK's
  publish of a `ReadableStream`) is streamed: `datastream-start`, a `chunk` per piece as it
  arrives, `datastream-end` (realtime/chunks.py).
- `POST /v1/realtime/token`, signing key auth, body `[{"channel", "name", "kind"}]`: 201
  `{"jwt": ...}`, a token to read those topics of the key's account.
- WebSocket `/v1/realtime/connect?token=<jwt>`: `data` messages of the token's topics, one JSON
  text frame each, for as long as it stays open.
- Durable Endpoint streaming (4.x `api/api.js` `checkpointStream`, `getRealtimeStreamRedirect`):
  `POST /v1/realtime/publish/tee?channel=<run id>`, signing key auth, passes the endpoint's SSE
  text to topic `$stream` of that channel as it arrives; `GET /v1/realtime/sse?token=<jwt>`
  (the token the run's first checkpoint gave, api/endpoint.py) streams the token's topics as
  server-sent events: teed text as it came, other messages as `data: <json>` events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

import msgspec
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from headrace.api.context import ApiContext, acting, api_error
from headrace.core.durations import format_iso_ms
from headrace.core.errors import InputError
from headrace.core.jsonutil import decode
from headrace.realtime.bus import Bus
from headrace.realtime.chunks import MAX_STREAM_BYTES, ChunkSplitter
from headrace.realtime.hub import Subscription
from headrace.realtime.messages import (
    KIND_CHUNK,
    KIND_DATA,
    KIND_RAW,
    KIND_STREAM_END,
    KIND_STREAM_START,
    STREAM_TOPIC,
    Published,
    to_wire,
)
from headrace.realtime.tokens import InvalidToken, TokenIssuer, TopicClaim

# As Inngest's consts.MaxStreamingMessageSizeBytes; a larger body is refused (Inngest cuts it).
MAX_MESSAGE_BYTES = 512 * 1024
MAX_NAME_CHARS = 256
MAX_TOPICS = 100
MAX_TOKEN_REQUEST_BYTES = 64 * 1024
# WebSocket close codes (RFC 6455): policy violation, and "try again later" for a subscriber
# too far behind.
_CLOSE_REFUSED = 1008
_CLOSE_TOO_SLOW = 1013


def _name_problem(what: str, value: str | None) -> str | None:
    if not value:
        return f"{what} is required"
    if len(value) > MAX_NAME_CHARS:
        return f"{what} is longer than {MAX_NAME_CHARS} characters"
    return None


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes (read no further)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _as_json(body: bytes) -> bytes:
    """JSON as sent; other text as a JSON string (as Inngest does)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise InputError("the body must be UTF-8 text or JSON") from None
    try:
        json.loads(text)
        return body
    except ValueError:
        return json.dumps(text).encode()
    except RecursionError:
        # Deeper than any decoder reading it would go (Inngest's too: Go's stops at 10,000).
        raise InputError("the body's JSON is nested too deeply") from None


class _Compose(Protocol):
    """A message on the request's account, channel and topic."""

    def __call__(self, kind: str, data: bytes, stream_id: str = "") -> Published: ...


def realtime_routes(ctx: ApiContext, bus: Bus, tokens: TokenIssuer) -> list[BaseRoute]:
    async def publish(ctx: ApiContext, request: Request) -> Response:
        params = request.query_params
        # The SDK repeats `topic` per topic of a publish (api/api.js `publish`, always one);
        # Inngest takes the first, as Go's Query().Get does.
        channel, topic = params.get("channel"), next(iter(params.getlist("topic")), None)
        problem = _name_problem("channel", channel) or _name_problem("topic", topic)
        if problem is not None:
            return api_error(400, problem)
        run_id = params.get("run_id") or ""
        if len(run_id) > MAX_NAME_CHARS:
            return api_error(400, f"run_id is longer than {MAX_NAME_CHARS} characters")
        assert channel is not None and topic is not None

        def message(kind: str, data: bytes, stream_id: str = "") -> Published:
            return Published(
                account=ctx.account,
                channel=channel,
                topic=topic,
                data=msgspec.Raw(data),
                created_at=format_iso_ms(ctx.clock.now_ms()),
                run_id=run_id,
                kind=kind,
                stream_id=stream_id,
            )

        if request.headers.get("content-type", "").startswith("text/stream"):
            return await _publish_stream(bus, request, message)
        body = await _bounded_body(request, MAX_MESSAGE_BYTES)
        if body is None:
            return api_error(413, f"a realtime message is at most {MAX_MESSAGE_BYTES} bytes")
        try:
            data = _as_json(body)
        except InputError as err:
            return api_error(err.status, str(err))
        await bus.publish(message(KIND_DATA, data))
        return Response(status_code=200)

    async def token(ctx: ApiContext, request: Request) -> Response:
        body = await _bounded_body(request, MAX_TOKEN_REQUEST_BYTES)
        if body is None:
            return api_error(413, f"a token request is at most {MAX_TOKEN_REQUEST_BYTES} bytes")
        try:
            topics = decode(body, list[TopicClaim])
        except msgspec.MsgspecError as err:
            return api_error(400, f"the body must be a list of topics {{channel, name}}: {err}")
        if not topics or len(topics) > MAX_TOPICS:
            return api_error(400, f"a token names 1 to {MAX_TOPICS} topics")
        for claim in topics:
            problem = _name_problem("channel", claim.channel) or _name_problem("name", claim.name)
            if problem is not None:
                return api_error(400, problem)
        jwt = tokens.issue(ctx.account, topics, ctx.clock.now_ms())
        return JSONResponse({"jwt": jwt}, status_code=201)

    async def connect(websocket: WebSocket) -> None:
        try:
            grant = tokens.verify(websocket.query_params.get("token", ""), ctx.clock.now_ms())
        except InvalidToken as err:
            # Closing before accepting refuses the upgrade (HTTP 403).
            await websocket.close(code=_CLOSE_REFUSED, reason=str(err)[:120])
            return
        await websocket.accept()
        sub = bus.hub.subscribe(grant.account, grant.topics)
        try:
            await _stream(websocket, sub)
        finally:
            bus.hub.unsubscribe(sub)

    async def publish_tee(ctx: ApiContext, request: Request) -> Response:
        channel = request.query_params.get("channel")
        problem = _name_problem("channel", channel)
        if problem is not None:
            return api_error(400, problem)
        assert channel is not None

        async def raw(pieces: list[str]) -> None:
            created_at = format_iso_ms(ctx.clock.now_ms())
            await bus.publish_many(
                [
                    Published(
                        account=ctx.account,
                        channel=channel,
                        topic=STREAM_TOPIC,
                        data=msgspec.Raw(msgspec.json.encode(piece)),
                        created_at=created_at,
                        kind=KIND_RAW,
                    )
                    for piece in pieces
                ]
            )

        return await _publish_pieces(request, raw)

    async def sse(request: Request) -> Response:
        try:
            grant = tokens.verify(request.query_params.get("token", ""), ctx.clock.now_ms())
        except InvalidToken as err:
            return api_error(401, str(err))

        # Subscribed before answering: what is published once the client has the headers
        # reaches it.
        sub = bus.hub.subscribe(grant.account, grant.topics)

        async def events() -> AsyncIterator[bytes]:
            while True:
                message = await sub.frames.get()
                if sub.overflowed:
                    return
                yield _sse_frame(message)

        return _EventStream(events(), lambda: bus.hub.unsubscribe(sub))

    return [
        Route("/v1/realtime/publish", acting(ctx, publish), methods=["POST"]),
        Route("/v1/realtime/publish/tee", acting(ctx, publish_tee), methods=["POST"]),
        Route("/v1/realtime/token", acting(ctx, token), methods=["POST"]),
        Route("/v1/realtime/sse", sse, methods=["GET"]),
        WebSocketRoute("/v1/realtime/connect", connect),
    ]


async def _publish_stream(bus: Bus, request: Request, message: _Compose) -> Response:
    """Publish the body's pieces as they arrive, between a start and an end that carry the
    stream's id."""
    stream_id = secrets.token_hex(8)
    id_json = msgspec.json.encode(stream_id)
    await bus.publish(message(KIND_STREAM_START, id_json))

    async def chunks(pieces: list[str]) -> None:
        await bus.publish_many(
            [message(KIND_CHUNK, msgspec.json.encode(p), stream_id) for p in pieces]
        )

    try:
        return await _publish_pieces(request, chunks)
    finally:
        await bus.publish(message(KIND_STREAM_END, id_json))


async def _publish_pieces(
    request: Request, publish: Callable[[list[str]], Awaitable[None]]
) -> Response:
    """Publish the body's UTF-8 text piece by piece as it arrives (realtime/chunks.py), the
    pieces of each read together.
    Subscribers have the pieces before a bad body is found (too long, not UTF-8): the
    publisher is told then."""
    splitter = ChunkSplitter()
    received = 0
    try:
        async for part in request.stream():
            received += len(part)
            if received > MAX_STREAM_BYTES:
                return api_error(413, f"a realtime stream is at most {MAX_STREAM_BYTES} bytes")
            pieces = splitter.feed(part)
            if pieces:
                await publish(pieces)
        splitter.finish()
    except UnicodeDecodeError:
        return api_error(400, "a realtime stream must be UTF-8 text")
    except ClientDisconnect:
        return api_error(400, "the publisher went away before the stream ended")
    return Response(status_code=200)


class _EventStream(StreamingResponse):
    """Server-sent events that end their subscription when the response ends, however it
    ends (a client gone before the first event included)."""

    def __init__(self, events: AsyncIterator[bytes], unsubscribe: Callable[[], None]) -> None:
        super().__init__(
            events, media_type="text/event-stream", headers={"cache-control": "no-cache"}
        )
        self._unsubscribe = unsubscribe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._unsubscribe()


def _sse_frame(message: Published) -> bytes:
    """A message as a server-sent event (sub_sse.go `writeSSE`); teed text as it came."""
    if message.kind == KIND_RAW:
        return to_wire(message)
    return b"data: " + to_wire(message) + b"\n\n"


async def _stream(websocket: WebSocket, sub: Subscription) -> None:
    """Send the subscription's frames until the client goes away (or falls too far behind)."""

    async def send() -> None:
        while True:
            message = await sub.frames.get()
            if sub.overflowed:
                await websocket.close(code=_CLOSE_TOO_SLOW, reason="subscriber too slow")
                return
            await websocket.send_text(to_wire(message).decode())

    async def receive() -> None:
        # The SDK sends nothing; reading is how a closed socket is noticed.
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return

    tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        # A send to a socket the client just closed fails; that is its normal end.
        await asyncio.gather(*tasks, return_exceptions=True)
