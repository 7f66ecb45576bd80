"""Inngest Realtime over HTTP, as the TypeScript SDK calls it (inngest-js src/api/api.ts,
src/components/realtime/subscribe/TokenSubscription.ts) and Inngest serves it
(pkg/execution/realtime/api.go):

- `POST /v1/realtime/publish?channel=&topic=&run_id=`, signing key auth: the body (JSON, or
  text sent as a JSON string) goes to the subscribers of the key's account on that channel and
  topic. 200 with no body, whether anyone listens or not.
- `POST /v1/realtime/token`, signing key auth, body `[{"channel", "name", "kind"}]`: 201
  `{"jwt": ...}`, a token to read those topics of the key's account.
- WebSocket `/v1/realtime/connect?token=<jwt>`: `data` messages of the token's topics, one JSON
  text frame each, for as long as it stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from headrace.api.context import ApiContext, acting
from headrace.core.durations import format_iso_ms
from headrace.core.jsonutil import decode
from headrace.realtime.bus import Bus
from headrace.realtime.hub import Subscription
from headrace.realtime.messages import Published
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


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message, "status": status}, status_code=status)


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


def _as_json(body: bytes) -> bytes | None:
    """JSON as sent; other text as a JSON string (as Inngest does); None for non-UTF-8."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    try:
        json.loads(text)
        return body
    except ValueError:
        return json.dumps(text).encode()


def realtime_routes(ctx: ApiContext, bus: Bus, tokens: TokenIssuer) -> list[BaseRoute]:
    async def publish(ctx: ApiContext, request: Request) -> Response:
        params = request.query_params
        channel, topic = params.get("channel"), params.get("topic")
        problem = _name_problem("channel", channel) or _name_problem("topic", topic)
        if problem is not None:
            return _error(400, problem)
        run_id = params.get("run_id") or ""
        if len(run_id) > MAX_NAME_CHARS:
            return _error(400, f"run_id is longer than {MAX_NAME_CHARS} characters")
        if request.headers.get("content-type", "").startswith("text/stream"):
            return _error(415, "streamed publishing (text/stream) is not supported")
        body = await _bounded_body(request, MAX_MESSAGE_BYTES)
        if body is None:
            return _error(413, f"a realtime message is at most {MAX_MESSAGE_BYTES} bytes")
        data = _as_json(body)
        if data is None:
            return _error(400, "the body must be UTF-8 text or JSON")
        assert channel is not None and topic is not None
        await bus.publish(
            Published(
                account=ctx.account,
                channel=channel,
                topic=topic,
                data=msgspec.Raw(data),
                created_at=format_iso_ms(ctx.clock.now_ms()),
                run_id=run_id,
            )
        )
        return Response(status_code=200)

    async def token(ctx: ApiContext, request: Request) -> Response:
        body = await _bounded_body(request, MAX_TOKEN_REQUEST_BYTES)
        if body is None:
            return _error(413, f"a token request is at most {MAX_TOKEN_REQUEST_BYTES} bytes")
        try:
            topics = decode(body, list[TopicClaim])
        except msgspec.MsgspecError as err:
            return _error(400, f"the body must be a list of topics {{channel, name}}: {err}")
        if not topics or len(topics) > MAX_TOPICS:
            return _error(400, f"a token names 1 to {MAX_TOPICS} topics")
        for claim in topics:
            problem = _name_problem("channel", claim.channel) or _name_problem("name", claim.name)
            if problem is not None:
                return _error(400, problem)
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

    return [
        Route("/v1/realtime/publish", acting(ctx, publish), methods=["POST"]),
        Route("/v1/realtime/token", acting(ctx, token), methods=["POST"]),
        WebSocketRoute("/v1/realtime/connect", connect),
    ]


async def _stream(websocket: WebSocket, sub: Subscription) -> None:
    """Send the subscription's frames until the client goes away (or falls too far behind)."""

    async def send() -> None:
        while True:
            frame = await sub.frames.get()
            if sub.overflowed:
                await websocket.close(code=_CLOSE_TOO_SLOW, reason="subscriber too slow")
                return
            await websocket.send_text(frame.decode())

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
