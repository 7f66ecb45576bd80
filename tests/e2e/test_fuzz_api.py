"""Property-based fuzzing of every route in the OpenAPI document against `headrace dev` in this
process: requests drawn from the document and garbage beside them get no 5xx, an answer within
a bounded time, nothing stored when refused, and, with keys configured, a refusal on every
protected route. A bounded, derandomized number of examples per route here; benchmarks/fuzz_api.py
runs as many as asked with a fresh seed and prints each route's status histogram."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headrace.api.openapi import document
from headrace.testing.api_bodies import fuzz_requests
from headrace.testing.api_fuzz import REQUEST_TIMEOUT_S, Outcome, Target, problems
from headrace.testing.api_requests import ApiRequest, Operation, operations

DOC = document()
HTTP_OPERATIONS = [op for op in operations(DOC) if not op.websocket]
OPEN_EXAMPLES = 30
KEYED_EXAMPLES = 15


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


class _Served:
    """A target and the event loop its requests run on (hypothesis drives a plain function)."""

    def __init__(self, keyed: bool) -> None:
        self.loop = asyncio.new_event_loop()
        self.keyed = keyed
        self.target = self.loop.run_until_complete(self._start())

    async def _start(self) -> Target:
        return await Target.start(keyed=self.keyed)

    def send(self, request: ApiRequest) -> Outcome:
        return self.loop.run_until_complete(self.target.send(request))

    def close(self) -> None:
        self.loop.run_until_complete(self.target.close())
        self.loop.close()


@pytest.fixture(scope="module")
def open_dev() -> Iterator[_Served]:
    served = _Served(keyed=False)
    yield served
    served.close()


@pytest.fixture(scope="module")
def keyed_dev() -> Iterator[_Served]:
    served = _Served(keyed=True)
    yield served
    served.close()


def _fuzz(served: _Served, op: Operation, examples: int) -> None:
    @_settings(examples)
    @given(fuzz_requests(DOC, op, served.target.known, served.target.held))
    def check(request: ApiRequest) -> None:
        outcome = served.send(request)
        assert problems(op, outcome, keyed=served.keyed) == [], request

    check()


@pytest.mark.parametrize("op", HTTP_OPERATIONS, ids=lambda op: op.name)
def test_no_route_fails_or_stores_what_it_refuses(open_dev: _Served, op: Operation) -> None:
    _fuzz(open_dev, op, OPEN_EXAMPLES)


@pytest.mark.parametrize("op", HTTP_OPERATIONS, ids=lambda op: op.name)
def test_with_keys_every_protected_route_refuses_a_stranger(
    keyed_dev: _Served, op: Operation
) -> None:
    _fuzz(keyed_dev, op, KEYED_EXAMPLES)


# The routes whose checks a body drawn from the document alone rarely passes; the fuzz sends
# them mostly-valid bodies (testing/api_bodies.py) too.
DEEP_PATHS = [
    "/fn/register",
    "/v1/checkpoint",
    "/v1/checkpoint/{run_id}/steps",
    "/v1/checkpoint/{run_id}/async",
]
DEEP_EXAMPLES = 200


@pytest.mark.parametrize("path", DEEP_PATHS)
def test_the_fuzz_reaches_past_validation_on_sync_and_checkpoints(
    open_dev: _Served, path: str
) -> None:
    """At least one request in twenty is accepted (2xx): stored an app, started a run,
    memoized steps. (Before these bodies, 2 of 300 syncs and no checkpoint were:
    benchmarks/fuzz_api.md.) The examples are fixed (derandomized), but what the server
    answers depends on what earlier tests stored (a run id already taken is a 409), so the
    bar sits well under the rates seen: 7.5 % of syncs, 16-40 % of checkpoints in 200."""
    [op] = [o for o in HTTP_OPERATIONS if o.path == path and o.method == "post"]
    statuses: Counter[int] = Counter()

    @_settings(DEEP_EXAMPLES)
    @given(fuzz_requests(DOC, op, open_dev.target.known, open_dev.target.held))
    def check(request: ApiRequest) -> None:
        outcome = open_dev.send(request)
        assert problems(op, outcome, keyed=False) == [], request
        statuses[outcome.status] += 1

    check()
    accepted = sum(n for status, n in statuses.items() if 200 <= status < 300)
    assert accepted * 20 >= statuses.total(), statuses


# What the fuzz and probes beside it found: (method, target, body, status, reason).
FOUND = [
    # Realtime publish decoded the body with Python's json, whose RecursionError escaped.
    (
        "POST",
        "/v1/realtime/publish?channel=c&topic=t",
        b"[" * 100_000 + b"]" * 100_000,
        400,
        "nested too deeply",
    ),
    # An expression whose chain overflowed cel-rust's stack: the process died (SIGSEGV).
    (
        "POST",
        "/v1/cancellations",
        json.dumps(
            {
                "app_id": "fuzz-app",
                "function_id": "fuzz-fn",
                "started_before": "2030-01-01T00:00:00Z",
                "if": "event.data" + ".a" * 30_000,
            }
        ).encode(),
        400,
        "more than 2000 operators",
    ),
]


def test_a_durable_endpoint_output_token_with_non_ascii_text_is_refused(
    open_dev: _Served,
) -> None:
    """Found by the fuzz: compare_digest raised TypeError on non-ASCII text (a 500)."""
    run = next(known for known in open_dev.target.known if known.startswith("01"))
    for route in ("/v1/http/runs", "/v1/checkpoint"):
        request = ApiRequest("GET", f"{route}/{run}/output?token=%C3%A7", (), b"")
        assert open_dev.send(request).status == 401


def test_a_durable_endpoint_run_created_again_is_refused_without_a_write(
    open_dev: _Served,
) -> None:
    """Found by the fuzz: a new run whose id was taken got its 409 after its app and function
    were written."""
    run = next(known for known in open_dev.target.known if known.startswith("01"))
    data = {"domain": "http://127.0.0.1:1", "method": "PUT", "path": "/elsewhere"}
    body = {"run_id": run, "event": {"name": "inngest/http.request", "data": data}}
    headers = (("content-type", "application/json"),)
    again = ApiRequest("POST", "/v1/checkpoint", headers, json.dumps(body).encode())
    outcome = open_dev.send(again)
    assert (outcome.status, outcome.writes) == (409, 0), outcome.body


def test_with_keys_a_bearer_token_with_non_ascii_text_is_refused(keyed_dev: _Served) -> None:
    """Found by the fuzz: the same TypeError in the signing key check, a 500 to a stranger on
    every route that asks for the key."""
    request = ApiRequest("GET", "/v1/events", (("authorization", "Bearer \u00e9"),), b"")
    assert keyed_dev.send(request).status == 401


@pytest.mark.parametrize(("method", "target", "body", "status", "reason"), FOUND)
def test_what_the_fuzz_found_is_refused_with_a_reason(
    open_dev: _Served, method: str, target: str, body: bytes, status: int, reason: str
) -> None:
    request = ApiRequest(method, target, (("content-type", "application/json"),), body)
    outcome = open_dev.send(request)
    assert (outcome.status, outcome.writes) == (status, 0), outcome.body
    assert reason in outcome.body.decode()


async def _first_answer(target: Target, token: str) -> dict[str, Any]:
    """What the server sends first to a WebSocket upgrade of /v1/realtime/connect (ASGI, as
    uvicorn hands it over); a server that accepted would wait for frames, and time out here."""
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/v1/realtime/connect",
        "raw_path": b"/v1/realtime/connect",
        "root_path": "",
        "query_string": urlencode({"token": token}).encode(),
        "headers": [],
        "subprotocols": [],
        "server": ("fuzz", 80),
        "client": ("stranger", 1),
    }
    incoming: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(target.server.app(scope, receive, send), REQUEST_TIMEOUT_S)
    return sent[0]


def test_with_keys_the_realtime_websocket_refuses_a_stranger(keyed_dev: _Served) -> None:
    @_settings(KEYED_EXAMPLES)
    @given(st.text(max_size=300))
    def check(token: str) -> None:
        answer = keyed_dev.loop.run_until_complete(_first_answer(keyed_dev.target, token))
        assert answer["type"] == "websocket.close" and answer["code"] == 1008, answer

    check()


def test_the_checks_see_writes_and_flag_what_is_wrong(open_dev: _Served) -> None:
    """The fuzz's checks can fail: an accepted event shows as writes, and each kind of wrong
    answer is named."""
    [send] = [op for op in HTTP_OPERATIONS if op.path == "/e/{key}"]
    request = ApiRequest(
        "POST", "/e/any-key", (("content-type", "application/json"),), b'{"name": "t/x"}'
    )
    accepted = open_dev.send(request)
    assert accepted.status == 200 and accepted.writes > 0
    assert problems(send, accepted, keyed=False) == []
    assert problems(send, accepted, keyed=True) == ["answered a stranger with 200"]
    assert problems(send, Outcome(500, "", b"boom", 0), keyed=False)[0].startswith("answered 500")
    assert problems(send, Outcome(0, "", b"", 0), keyed=False)[0].startswith("no answer")
    stored = Outcome(400, "", b'{"ids": ["a"]}', 2)
    assert problems(send, stored, keyed=False) == ["refused (400) but wrote 2 rows"]
