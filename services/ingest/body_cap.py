"""A cap on every request body, so that no route reads an unbounded one into memory: a body
declared (Content-Length) or found, as it streams in, to be over the cap is answered 413
before more of it is read."""

from __future__ import annotations

from headrace.services.ingest.events import MAX_REQUEST_BYTES
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from headrace.api.context import api_error


class _TooLarge(Exception):
    pass


class BodyCap:
    """ASGI middleware: at most `max_bytes` of body per request (by default the Event API's
    limit, the largest any route takes)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        if _declared(scope) > self._max:
            await self._refusal()(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counted, watched)
        except _TooLarge:
            # A route that answered before reading all of the body has said its piece.
            if not started:
                await self._refusal()(scope, receive, send)

    def _refusal(self) -> ASGIApp:
        return api_error(413, f"the request body is over the limit of {self._max} bytes")


def _declared(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0
