"""The app driver's contract (protocol/driver.py, protocol/response.py): what a user sees of an
SDK's answer, the same whether the app is called in-process (httpx's ASGI transport) or over
real HTTP on loopback (uvicorn on a free port). The app is a scripted ASGI app that answers as
an SDK would (protocol §3): 200 done, 206 ops, 201 streamed, errors retried or not, Retry-After,
the SDK headers, signatures both ways, and every way an answer goes wrong, each an Outcome with a
clear error, never an exception.

Where httpx's ASGI transport cannot stand for a network it is not used: a refused connection is
tested over loopback alone. It also differs where the engine never uses it (the executor's
driver always has its own transport): an app that raises, or returns without finishing its
answer, raises out of the call in-process (a 500, a NetworkError over HTTP), and `before_send`
never runs in-process (no httpcore trace; tests/contract/test_run_writers.py stands one in)."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from inngest._internal import net, server_lib

from headrace.core.clock import FakeClock
from headrace.protocol.accounts import AccountKeys
from headrace.protocol.driver import AppDriver
from headrace.protocol.ops import Outcome, Sleep, StepError, StepPlanned, StepRun
from headrace.protocol.response import MAX_ANSWER_BYTES
from headrace.runtime.http import HttpServer
from headrace.testing.sdk_app import free_port

KEY = "signkey-prod-" + "5e" * 32
NOW_MS = 1_700_000_000_000
SDK = {"x-inngest-sdk": "inngest-py:v0.5.19", "content-type": "application/json"}
CALL_BODY = b'{"ctx":{"run_id":"r1"},"event":{"name":"e"},"version":-1}'
CALL_HEADERS = {"x-run-id": "r1", "x-inngest-req-version": "-1", "x-inngest-step-id": "step"}
OPS = [
    {"op": "StepRun", "id": "h1", "name": "charge", "data": {"ok": True}},
    {"op": "StepPlanned", "id": "h2", "name": "ship"},
    {"op": "Sleep", "id": "h3", "name": "nap", "opts": {"duration": "1h"}},
]
STEP_ERROR = [
    {"op": "StepError", "id": "h1", "name": "charge", "error": {"name": "E", "message": "x"}}
]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Answers one call, the call's body already read.
Script = Callable[[Receive, Send], Awaitable[None]]


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def answer(
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    sdk: bool = True,
    chunk_bytes: int = 1 << 20,
) -> Script:
    """One whole answer, as from an SDK unless `sdk` is False, its body in chunks."""
    fields = {**(SDK if sdk else {}), **(headers or {})}

    async def script(_: Receive, send: Send) -> None:
        raw = [(k.encode(), v.encode()) for k, v in fields.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        chunks = [body[i : i + chunk_bytes] for i in range(0, len(body), chunk_bytes)] or [b""]
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return script


def streamed(status: int, headers: dict[str, str], body: Any) -> Script:
    """An SDK's streaming mode: 201 at once, keep-alive spaces a while apart, then the answer
    it would have sent, as `{"status", "headers", "body"}` (`body` a JSON text or value)."""

    async def script(_: Receive, send: Send) -> None:
        raw = [(k.encode(), v.encode()) for k, v in SDK.items()]
        await send({"type": "http.response.start", "status": 201, "headers": raw})
        for _keep_alive in range(3):
            await send({"type": "http.response.body", "body": b" ", "more_body": True})
            await asyncio.sleep(0.02)
        envelope = _json({"status": status, "headers": headers, "body": body})
        await send({"type": "http.response.body", "body": envelope})

    return script


def silent() -> Script:
    """Never answers a byte: waits until the caller hangs up."""

    async def script(receive: Receive, _: Send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    return script


def trickle(status: int, body: bytes, interval_s: float) -> Script:
    """Answers at once, then the body a byte at a time, `interval_s` apart."""

    async def script(_: Receive, send: Send) -> None:
        raw = [(k.encode(), v.encode()) for k, v in SDK.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        for i in range(len(body)):
            await send({"type": "http.response.body", "body": body[i : i + 1], "more_body": True})
            await asyncio.sleep(interval_s)
        await send({"type": "http.response.body", "body": b""})

    return script


def signature(body: bytes, key: str = KEY) -> str:
    """The X-Inngest-Signature a production-mode SDK puts on `body`, by the SDK's own signer."""
    value = net.sign_response(body, key, NOW_MS // 1000)
    assert isinstance(value, str)
    return value


def signed(status: int, body: bytes, key: str = KEY) -> Script:
    return answer(status, body, {"x-inngest-signature": signature(body, key)})


@dataclass
class Seen:
    """A call as the app got it."""

    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class ScriptedApp:
    """An ASGI app that reads each call whole, remembers it and answers it with `script`."""

    script: Script = field(default_factory=lambda: answer(200, b"null"))
    calls: list[Seen] = field(default_factory=list)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.calls.append(Seen(scope["query_string"].decode(), headers, body))
        await self.script(receive, send)


@dataclass
class Reach:
    """How a driver reaches the scripted app: its URL, and the transport to hand the driver
    (None: the driver's own, over the network)."""

    app: ScriptedApp
    url: str
    transport: Callable[[], httpx.AsyncBaseTransport | None]

    @asynccontextmanager
    async def driver(self, **options: Any) -> AsyncIterator[AppDriver]:
        driver = AppDriver(FakeClock(NOW_MS), transport=self.transport(), **options)
        try:
            yield driver
        finally:
            await driver.close()

    async def call(self, script: Script, **options: Any) -> Outcome:
        self.app.script = script
        async with self.driver(**options) as driver:
            return await driver.call(self.url, CALL_BODY, CALL_HEADERS, account_id="default")


@pytest.fixture(params=["in-process", "loopback-http"])
async def reach(request: pytest.FixtureRequest) -> AsyncIterator[Reach]:
    app = ScriptedApp()
    query = "?fnId=app-fn&stepId=step"
    if request.param == "in-process":
        yield Reach(app, f"http://app.test/api/inngest{query}", lambda: httpx.ASGITransport(app))
        return
    port = free_port()
    server = HttpServer.for_app(app, "127.0.0.1", port)
    task = await server.start()
    try:
        yield Reach(app, f"http://127.0.0.1:{port}/api/inngest{query}", lambda: None)
    finally:
        await server.finish(task)


def _signed_keys() -> AccountKeys:
    return AccountKeys.of(None, KEY)


# The run done, and ops.


async def test_a_200_is_the_run_done_with_the_function_s_output(reach: Reach) -> None:
    outcome = await reach.call(answer(200, _json({"total": 3}), {"x-inngest-req-version": "2"}))
    assert (outcome.done, outcome.result, outcome.status) == (True, {"total": 3}, 200)
    assert outcome.error is None and outcome.ops is None
    assert outcome.request_version == 2


async def test_a_206_is_the_list_of_ops_in_order(reach: Reach) -> None:
    outcome = await reach.call(answer(206, _json(OPS), {"x-inngest-req-version": "1"}))
    assert outcome.error is None and not outcome.done and outcome.status == 206
    assert outcome.ops is not None
    assert [type(op) for op in outcome.ops] == [StepRun, StepPlanned, Sleep]
    assert [op.id for op in outcome.ops] == ["h1", "h2", "h3"]
    assert isinstance(outcome.ops[0], StepRun) and outcome.ops[0].data == {"ok": True}
    assert outcome.retryable and outcome.retry_after_ms is None
    assert outcome.request_version == 1


@pytest.mark.parametrize(("body", "count"), [(_json(OPS[0]), 1), (b"[]", 0), (b"", 0)])
async def test_a_206_of_one_op_object_or_of_none_is_read(
    reach: Reach, body: bytes, count: int
) -> None:
    """A single op object is a list of one; `[]` and an empty body are no ops (the run machine
    then fails the call as one with nothing to act on)."""
    outcome = await reach.call(answer(206, body))
    assert outcome.error is None and outcome.ops is not None and len(outcome.ops) == count


async def test_a_206_with_an_op_that_cannot_be_read_is_a_clear_error(reach: Reach) -> None:
    outcome = await reach.call(answer(206, _json([{"id": "h1", "name": "no opcode"}])))
    assert outcome.ops is None and outcome.error is not None
    assert outcome.error["name"] == "UnexpectedResponse"
    assert outcome.error["message"].startswith("the app answered 206 with an invalid op: ")
    assert outcome.retryable


# The streamed answer (201).


async def test_a_201_stream_is_read_as_the_answer_it_wraps(reach: Reach) -> None:
    """The body the SDK wraps is JSON text (both SDKs) or a JSON value (Go's parser takes
    both); the wrapped status and headers count, not the 201's."""
    as_text = await reach.call(streamed(206, {"x-inngest-req-version": "1"}, json.dumps(OPS)))
    assert as_text.error is None and as_text.status == 206
    assert [op.id for op in as_text.ops or []] == ["h1", "h2", "h3"]
    assert as_text.request_version == 1
    as_value = await reach.call(streamed(200, SDK, {"total": 3}))
    assert (as_value.done, as_value.result, as_value.status) == (True, {"total": 3}, 200)


async def test_a_201_stream_carries_the_wrapped_error_and_its_retry_headers(reach: Reach) -> None:
    error = {"name": "Boom", "message": "no"}
    headers = {"x-inngest-no-retry": "true", "retry-after": "30"}
    outcome = await reach.call(streamed(500, headers, json.dumps(error)))
    assert (outcome.error, outcome.status, outcome.retryable) == (error, 500, False)
    assert outcome.retry_after_ms == 30_000


@pytest.mark.parametrize("stream", [b"   ", b"  not json", b'  {"headers": {}}', b""])
async def test_a_201_that_is_no_stream_envelope_is_a_clear_error(
    reach: Reach, stream: bytes
) -> None:
    outcome = await reach.call(answer(201, stream))
    assert outcome.error is not None and outcome.error["name"] == "UnexpectedResponse"
    assert outcome.error["message"] == f"invalid streamed response: {stream.decode()}"
    assert outcome.status == 201 and outcome.retryable and not outcome.done


# Errors, retried or not, and when.


async def test_a_500_with_a_serialized_error_is_that_error_retried(reach: Reach) -> None:
    error = {"code": "unknown", "message": "boom", "name": "ValueError", "stack": "Trace..."}
    outcome = await reach.call(answer(500, _json(error), {"x-inngest-req-version": "2"}))
    assert (outcome.error, outcome.status) == (error, 500)
    assert outcome.retryable and outcome.retry_after_ms is None
    assert not outcome.done and outcome.ops is None and outcome.request_version == 2


@pytest.mark.parametrize("value", ["true", "True", "TRUE"])
async def test_no_retry_true_makes_an_error_final(reach: Reach, value: str) -> None:
    error = {"name": "NonRetriableError", "message": "stop"}
    outcome = await reach.call(answer(500, _json(error), {"X-Inngest-No-Retry": value}))
    assert (outcome.error, outcome.retryable) == (error, False)


async def test_no_retry_on_a_206_is_the_step_error_s(reach: Reach) -> None:
    outcome = await reach.call(answer(206, _json(STEP_ERROR), {"x-inngest-no-retry": "true"}))
    assert outcome.ops is not None and isinstance(outcome.ops[0], StepError)
    assert not outcome.retryable
    retried = await reach.call(answer(206, _json(STEP_ERROR), {"x-inngest-no-retry": "false"}))
    assert retried.retryable


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        # The JS SDK's error answer, 400 as it may send.
        (400, b'{"name":"Error","message":"bad input"}', {"name": "Error", "message": "bad input"}),
        # Not an SDK's error: the status says what happened.
        (404, b"Not Found", {"name": "Error", "message": "invalid status code: 404: Not Found"}),
        (
            422,
            b'{"detail": "x"}',
            {"name": "Error", "message": 'invalid status code: 422: {"detail": "x"}'},
        ),
        (409, b"", {"name": "Error", "message": "invalid status code: 409"}),
    ],
)
async def test_a_4xx_is_an_error_retried_unless_the_app_says_not(
    reach: Reach, status: int, body: bytes, error: dict[str, str]
) -> None:
    """Inngest retries any failed call without X-Inngest-No-Retry, a 4xx too."""
    outcome = await reach.call(answer(status, body, sdk=status == 400))
    assert (outcome.error, outcome.status, outcome.retryable) == (error, status, True)
    final = await reach.call(answer(status, body, {"x-inngest-no-retry": "true"}))
    assert (final.error, final.retryable) == (error, False)


_IN_90_S = datetime.datetime.fromtimestamp(NOW_MS / 1000 + 90, datetime.UTC)


@pytest.mark.parametrize(
    ("header", "delay_ms"),
    [
        ("30", 30_000),
        # The Python SDK's RetryAfterError: an ISO date in UTC.
        (_IN_90_S.isoformat().replace("+00:00", "Z"), 90_000),
        ("0", 1_000),  # at least 1 s
        ("9999999", 86_400_000),  # at most 24 h
        ("soon", None),
    ],
)
async def test_retry_after_says_when_an_error_is_retried(
    reach: Reach, header: str, delay_ms: int | None
) -> None:
    error = _json({"name": "RetryAfterError", "message": "later"})
    outcome = await reach.call(answer(500, error, {"Retry-After": header}))
    assert outcome.retryable and outcome.retry_after_ms == delay_ms


async def test_retry_after_on_a_206_times_its_step_error_s_retry(reach: Reach) -> None:
    """The JS SDK answers a step that threw RetryAfterError with a 206 of its StepError and
    Retry-After; Inngest waits that long before the step's next attempt."""
    outcome = await reach.call(answer(206, _json(STEP_ERROR), {"retry-after": "120"}))
    assert outcome.ops is not None and isinstance(outcome.ops[0], StepError)
    assert outcome.retryable and outcome.retry_after_ms == 120_000


# The SDK's headers the engine reads.


@pytest.mark.parametrize("status", [200, 206])
async def test_a_2xx_without_x_inngest_sdk_is_no_sdk_answering(reach: Reach, status: int) -> None:
    """What a URL that serves something else answers (a proxy's page, the wrong route)."""
    outcome = await reach.call(
        answer(status, b"[]", {"content-type": "application/json"}, sdk=False)
    )
    assert outcome.error == {
        "name": "UnexpectedResponse",
        "message": f"the app answered {status} without an X-Inngest-SDK header: "
        "the URL does not serve an Inngest SDK",
    }
    assert outcome.retryable and not outcome.done and outcome.ops is None


async def test_the_sdk_headers_are_read_in_any_case(reach: Reach) -> None:
    headers = {"X-Inngest-SDK": "inngest-js:v3.54.2", "X-Inngest-Req-Version": "1"}
    outcome = await reach.call(answer(200, b'"ok"', headers, sdk=False))
    assert outcome.done and outcome.result == "ok" and outcome.request_version == 1


@pytest.mark.parametrize("version", ["abc", "", "1.5"])
async def test_a_request_version_that_is_no_integer_is_none(reach: Reach, version: str) -> None:
    outcome = await reach.call(answer(206, b"[]", {"x-inngest-req-version": version}))
    assert outcome.error is None and outcome.request_version is None


# What the app is sent, signed.


async def test_the_call_reaches_the_app_as_sent_unsigned_without_a_key(reach: Reach) -> None:
    await reach.call(answer(200, b"null"))
    [seen] = reach.app.calls
    assert seen.query == "fnId=app-fn&stepId=step"
    assert seen.body == CALL_BODY
    assert seen.headers["content-type"] == "application/json"
    assert {k: seen.headers[k] for k in CALL_HEADERS} == CALL_HEADERS
    assert "x-inngest-signature" not in seen.headers


async def test_with_a_signing_key_the_call_is_signed_as_the_sdk_checks_it(reach: Reach) -> None:
    outcome = await reach.call(answer(200, b"null"), keys=_signed_keys())
    assert outcome.done
    [seen] = reach.app.calls
    assert seen.headers["x-inngest-signature"].startswith(f"t={NOW_MS // 1000}&s=")
    verified = net.validate_request_sig(
        body=seen.body,
        headers=seen.headers,
        mode=server_lib.ServerKind.CLOUD,
        signing_key=KEY,
        signing_key_fallback=None,
    )
    assert verified == KEY


# Answer signatures (docs/answer-signatures.md).


async def test_an_answer_the_sdk_signed_is_read(reach: Reach) -> None:
    outcome = await reach.call(
        signed(206, _json(OPS)), keys=_signed_keys(), require_signed_answers=True
    )
    assert outcome.error is None and [op.id for op in outcome.ops or []] == ["h1", "h2", "h3"]


async def test_a_signed_answer_sent_gzipped_is_checked_over_the_body_the_sdk_signed(
    reach: Reach,
) -> None:
    body = _json(OPS)
    headers = {"x-inngest-signature": signature(body), "content-encoding": "gzip"}
    outcome = await reach.call(
        answer(206, gzip.compress(body), headers), keys=_signed_keys(), require_signed_answers=True
    )
    assert outcome.error is None and outcome.ops is not None and len(outcome.ops) == 3


@pytest.mark.parametrize("status", [200, 206, 500])
async def test_an_answer_whose_signature_fails_is_refused_for_good(
    reach: Reach, status: int
) -> None:
    """Changed on the way (or signed with another key): nothing of it is read, and it is not
    retried, since the same answer would be refused again."""
    body = _json({"name": "E", "message": "x"}) if status == 500 else b'"forged"'
    tampered = answer(status, body, {"x-inngest-signature": signature(b'"real"')})
    for script in (tampered, signed(status, body, key="signkey-prod-" + "a7" * 32)):
        outcome = await reach.call(script, keys=_signed_keys())
        assert outcome.error is not None and outcome.error["name"] == "InvalidAnswerSignature"
        assert "does not match its body under the account's signing key" in outcome.error["message"]
        assert not outcome.retryable and not outcome.done and outcome.ops is None
        assert outcome.status == status


async def test_an_unsigned_answer_is_read_unless_signed_answers_are_required(
    reach: Reach,
) -> None:
    read = await reach.call(answer(206, _json(OPS)), keys=_signed_keys())
    assert read.error is None and read.ops is not None
    refused = await reach.call(
        answer(206, _json(OPS)), keys=_signed_keys(), require_signed_answers=True
    )
    assert refused.error is not None and refused.error["name"] == "InvalidAnswerSignature"
    assert refused.error["message"].startswith(
        "the app answered 206 without an X-Inngest-Signature, and this server requires signed "
        "answers"
    )
    assert not refused.retryable and refused.ops is None


async def test_a_streamed_answer_is_checked_by_its_envelope_s_signature(reach: Reach) -> None:
    """As the JS SDK signs it: the envelope's headers sign the envelope's body."""
    body = json.dumps(OPS)
    envelope_headers = {**SDK, "x-inngest-signature": signature(body.encode())}
    good = await reach.call(
        streamed(206, envelope_headers, body), keys=_signed_keys(), require_signed_answers=True
    )
    assert good.error is None and good.ops is not None and len(good.ops) == 3
    changed = await reach.call(
        streamed(206, envelope_headers, json.dumps(OPS[:1])),
        keys=_signed_keys(),
        require_signed_answers=True,
    )
    assert changed.error is not None and changed.error["name"] == "InvalidAnswerSignature"
    assert changed.status == 206 and not changed.retryable


# Answers that are not answers.


@pytest.mark.parametrize("status", [200, 206])
async def test_a_2xx_body_that_is_not_json_is_a_clear_error(reach: Reach, status: int) -> None:
    outcome = await reach.call(answer(status, b"<html>oops</html>"))
    assert outcome.error == {
        "name": "UnexpectedResponse",
        "message": f"the app answered {status} with a body that is not JSON: <html>oops</html>",
    }
    assert outcome.status == status and outcome.retryable
    assert not outcome.done and outcome.ops is None


async def test_an_error_body_that_is_not_json_is_quoted_clipped(reach: Reach) -> None:
    outcome = await reach.call(answer(502, b"x" * 500, sdk=False))
    assert outcome.error == {
        "name": "Error",
        "message": "invalid status code: 502: " + "x" * 200 + "...",
    }
    assert outcome.retryable


@pytest.mark.parametrize(
    ("status", "done", "ops", "error"),
    [
        (200, True, None, None),  # a function that returned nothing
        (206, False, [], None),  # no ops
        (500, False, None, {"name": "Error", "message": "invalid status code: 500"}),
    ],
)
async def test_an_empty_body_is_read_by_its_status(
    reach: Reach, status: int, done: bool, ops: list[Any] | None, error: dict[str, str] | None
) -> None:
    outcome = await reach.call(answer(status, b""))
    assert (outcome.done, outcome.result, outcome.ops, outcome.error) == (done, None, ops, error)
    assert outcome.status == status


async def test_an_answer_past_the_limit_is_cut_off_with_the_limit_named(reach: Reach) -> None:
    body = _json("x" * MAX_ANSWER_BYTES)
    outcome = await reach.call(answer(200, body))
    assert outcome.error == {
        "name": "OutputTooLarge",
        "message": f"the app answered 200 with a body larger than {MAX_ANSWER_BYTES} bytes, "
        "the most the engine reads",
    }
    assert outcome.status == 200 and outcome.retryable and not outcome.done


async def test_an_answer_at_the_limit_is_read(reach: Reach) -> None:
    outcome = await reach.call(answer(200, _json("x" * (MAX_ANSWER_BYTES - 2))))
    assert outcome.error is None and outcome.done
    assert len(outcome.result) == MAX_ANSWER_BYTES - 2


async def test_a_small_gzip_that_unpacks_past_the_limit_is_cut_off(reach: Reach) -> None:
    body = gzip.compress(b'"' + b"x" * (MAX_ANSWER_BYTES * 4) + b'"')
    assert len(body) < 100_000
    outcome = await reach.call(answer(206, body, {"content-encoding": "gzip"}))
    assert outcome.error is not None and outcome.error["name"] == "OutputTooLarge"
    assert outcome.status == 206


async def test_an_app_that_never_answers_times_out(reach: Reach) -> None:
    outcome = await reach.call(silent(), timeout_s=0.3)
    assert outcome.error == {
        "name": "NetworkError",
        "message": "the app did not answer within 0.3 s",
    }
    assert outcome.status == 0 and outcome.retryable and outcome.duration_ms >= 300


async def test_a_body_a_byte_at_a_time_past_the_timeout_times_out(reach: Reach) -> None:
    """The timeout covers the whole answer, however steadily its bytes come."""
    outcome = await reach.call(trickle(200, b'"' + b"x" * 100 + b'"', 0.02), timeout_s=0.5)
    assert outcome.error == {
        "name": "NetworkError",
        "message": "the app did not answer within 0.5 s",
    }
    assert outcome.status == 0 and outcome.retryable


async def test_a_refused_connection_is_a_network_error() -> None:
    """Over the network only: an app called in-process has no connection to refuse."""
    port = free_port()  # nothing listens on it
    url = f"http://127.0.0.1:{port}/api/inngest?fnId=app-fn&stepId=step"
    driver = AppDriver(FakeClock(NOW_MS))
    try:
        outcome = await driver.call(url, CALL_BODY, CALL_HEADERS, account_id="default")
    finally:
        await driver.close()
    assert outcome.error is not None and outcome.error["name"] == "NetworkError"
    assert outcome.error["message"].startswith(f"calling {url} failed: ConnectError: ")
    assert outcome.status == 0 and outcome.retryable and not outcome.done
