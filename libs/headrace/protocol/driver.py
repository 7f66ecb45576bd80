"""The app driver: one HTTP call to an app with the SDK protocol.

The transport is injectable (httpx), so tests can call an ASGI app in-process. Without one, an
app call goes straight to the pool of direct connections (protocol/direct_call.py) unless the
environment names a proxy; the model calls of step.ai.infer and the requests of step.fetch keep
httpx's client (redirects, proxies).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpcore
import httpx
from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind, StatusCode

from headrace.core.clock import Clock
from headrace.obs.tracing import tracer
from headrace.protocol import gateway as fetch_gateway
from headrace.protocol.accounts import AccountKeys
from headrace.protocol.ai_gateway import build_request, settled_op
from headrace.protocol.answer_signature import AnswerCheck
from headrace.protocol.direct_call import (
    TRANSPORT_ERRORS,
    Answer,
    call_direct,
    proxy_in_environment,
)
from headrace.protocol.http10 import app_client, app_pool
from headrace.protocol.ops import AIGateway, Gateway, Op, Outcome
from headrace.protocol.response import MAX_ANSWER_BYTES, read_response, too_large, transport_error
from headrace.protocol.signing import sign
from headrace.protocol.urls import CALLABLE_URL_CHARS, callable_url


class AppDriver:
    def __init__(
        self,
        clock: Clock,
        *,
        keys: AccountKeys | None = None,
        timeout_s: float = 300.0,
        transport: httpx.AsyncBaseTransport | None = None,
        require_signed_answers: bool = False,
    ) -> None:
        """`require_signed_answers`: an answer to a signed call must be signed too; without,
        only an answer that carries a signature has it checked."""
        self._clock = clock
        self._keys = keys or AccountKeys()
        self._timeout_s = timeout_s
        self._require_signed_answers = require_signed_answers
        timeout = httpx.Timeout(timeout_s, connect=10.0)
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self._timeouts = timeout.as_dict()  # a direct call's, as httpcore takes them
        # The pool of app calls that go straight to it; None: they go through the client.
        self._direct: httpcore.AsyncConnectionPool | None = None
        if transport is not None:
            self._client = httpx.AsyncClient(transport=transport, timeout=timeout, limits=limits)
        else:
            pool = app_pool(limits)
            self._client = app_client(timeout, limits, pool)
            self._direct = None if proxy_in_environment() else pool

    async def call(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        account_id: str,
        before_send: Callable[[], None] | None = None,
        method: str = "POST",
    ) -> Outcome:
        """POST `body` to `url` (a Durable Endpoint: its own method), signed with the account's
        signing key; any failure becomes an Outcome with a clear error.

        `before_send` runs when the request's first byte is about to be written (after any wait
        for a connection): an exception it raises abandons the request unsent and propagates.
        The call is a client span, and the app gets its context as `traceparent`."""
        target = callable_url(url, max_chars=CALLABLE_URL_CHARS)
        if isinstance(target, str):
            return _uncallable(url, target)
        with _client_span(target) as span:
            all_headers = {"content-type": "application/json", **headers}
            propagate.inject(all_headers)
            signing_key = self._keys.signing_key(account_id)
            check = None
            if signing_key:
                all_headers["x-inngest-signature"] = sign(
                    body, signing_key, self._clock.now_ms() // 1000
                )
                check = AnswerCheck(signing_key, self._require_signed_answers)
            outcome = await self._post(url, target, body, all_headers, before_send, method, check)
            span.set_attribute("http.response.status_code", outcome.status)
            if outcome.error is not None:
                span.set_status(StatusCode.ERROR, str(outcome.error.get("name") or "error"))
        return outcome

    async def _post(
        self,
        url: str,
        target: httpx.URL,
        body: bytes,
        all_headers: dict[str, str],
        before_send: Callable[[], None] | None,
        method: str,
        check: AnswerCheck | None,
    ) -> Outcome:
        started = time.monotonic()
        extensions: dict[str, Any] = {}
        if before_send is not None:
            extensions["trace"] = _on_first_byte(before_send)
        try:
            # The timeout covers the whole answer: a body that never starts, comes a byte at a
            # time or never ends is cut off with the same reason.
            async with asyncio.timeout(self._timeout_s):
                answer = await self._send(method, target, body, all_headers, extensions)
        except TimeoutError:
            outcome = transport_error(f"the app did not answer within {self._timeout_s:g} s")
        except (httpx.HTTPError, *TRANSPORT_ERRORS) as err:
            # httpcore's errors (a direct call) have the names and messages of httpx's.
            outcome = transport_error(f"calling {url} failed: {type(err).__name__}: {err}")
        else:
            if answer.body is None:
                outcome = too_large(answer.status, MAX_ANSWER_BYTES)
            else:
                outcome = read_response(
                    answer.status, answer.headers, answer.body, self._clock.now_ms(), check
                )
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        return outcome

    async def _send(
        self,
        method: str,
        target: httpx.URL,
        body: bytes,
        all_headers: dict[str, str],
        extensions: dict[str, Any],
    ) -> Answer:
        if self._direct is not None:
            extensions["timeout"] = self._timeouts
            return await call_direct(
                self._direct, method, target, body, all_headers, extensions, MAX_ANSWER_BYTES
            )
        async with self._client.stream(
            method, target, content=body, headers=all_headers, extensions=extensions
        ) as response:
            content = await _read_capped(response, MAX_ANSWER_BYTES)
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Answer(response.status_code, headers, content)

    async def gateway(self, op: AIGateway) -> Op:
        """Make the model call of an AIGateway op; return the op standing for its result."""
        request = build_request(op.opts)
        if isinstance(request, str):
            return settled_op(op, 0, b"", request)
        # The query may hold the model provider's key (gemini's `?key=`): the span has none.
        with _client_span(httpx.URL(request.url).copy_with(query=None), ai=True) as span:
            try:
                async with (
                    asyncio.timeout(self._timeout_s),
                    self._client.stream(
                        "POST", request.url, content=request.body, headers=request.headers
                    ) as response,
                ):
                    body = await _read_capped(response, MAX_ANSWER_BYTES)
            except TimeoutError:
                span.set_status(StatusCode.ERROR, "timeout")
                return settled_op(op, 0, b"", f"no answer within {self._timeout_s:g} s")
            except httpx.HTTPError as err:
                span.set_status(StatusCode.ERROR, type(err).__name__)
                return settled_op(op, 0, b"", f"{type(err).__name__}: {err}")
            span.set_attribute("http.response.status_code", response.status_code)
            if body is None:
                span.set_status(StatusCode.ERROR, "response too large")
                limit = f"the response is larger than {MAX_ANSWER_BYTES} bytes"
                return settled_op(op, response.status_code, b"", limit)
            return settled_op(op, response.status_code, body)

    async def fetch(self, op: Gateway) -> Op:
        """Make the request of a Gateway op (step.fetch); return the op standing for its
        response. Its headers and body can hold the app's secrets: neither is logged, nor is
        the URL's query."""
        request = fetch_gateway.build_fetch(op.opts)
        if isinstance(request, str):
            return fetch_gateway.failed_op(op, request)
        target = httpx.URL(request.url)
        with _client_span(target.copy_with(query=None), method=request.method) as span:
            try:
                async with (
                    asyncio.timeout(self._timeout_s),
                    self._client.stream(
                        request.method,
                        target,
                        content=request.body,
                        headers=request.headers,
                        follow_redirects=True,  # as fetch() and Go's client do
                    ) as response,
                ):
                    body = await _read_capped(response, fetch_gateway.MAX_RESPONSE_BYTES)
                    if body is None:
                        span.set_status(StatusCode.ERROR, "response too large")
                        limit = fetch_gateway.MAX_RESPONSE_BYTES
                        return fetch_gateway.failed_op(
                            op, f"the response is larger than {limit} bytes"
                        )
            except TimeoutError:
                span.set_status(StatusCode.ERROR, "timeout")
                return fetch_gateway.failed_op(op, f"no answer within {self._timeout_s:g} s")
            except httpx.HTTPError as err:
                span.set_status(StatusCode.ERROR, type(err).__name__)
                return fetch_gateway.failed_op(op, f"{type(err).__name__}: {err}")
            span.set_attribute("http.response.status_code", response.status_code)
            return fetch_gateway.fetched_op(
                op, request.url, response.status_code, response.headers.multi_items(), body
            )

    async def close(self) -> None:
        await self._client.aclose()  # and the pool of direct calls, which is its transport's


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The body of a streamed response, or None as soon as it passes `limit` bytes (decoded:
    a compressed body counts as it unpacks), so no answer can fill the memory."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _uncallable(url: str, problem: str) -> Outcome:
    """A URL no request can go to (one synced before sync refused it; httpx would raise
    InvalidURL, the socket OverflowError): trying again cannot help, so the run fails now."""
    outcome = transport_error(f"the app's url {url[:200]!r} cannot be called: it {problem}")
    outcome.retryable = False
    return outcome


def _on_first_byte(check: Callable[[], None]) -> Callable[[str, Any], Awaitable[None]]:
    """An httpcore trace hook that runs `check` as the request's headers start to go out."""

    async def trace(event: str, info: Any) -> None:
        if event.endswith("send_request_headers.started"):
            check()

    return trace


@contextlib.contextmanager
def _client_span(target: httpx.URL, *, ai: bool = False, method: str = "POST") -> Iterator[Span]:
    """The CLIENT span of one request: a POST to an app, to a model provider for step.ai.infer
    (`ai`), or step.fetch's request."""
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.full": str(target),
        "server.address": target.host,
        "server.port": target.port or (443 if target.scheme == "https" else 80),
    }
    if ai:
        attributes["headrace.ai.gateway"] = True
    with tracer.start_as_current_span(method, kind=SpanKind.CLIENT, attributes=attributes) as span:
        yield span
