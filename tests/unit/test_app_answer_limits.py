"""The app driver's limits on an answer, against a hostile app on a real socket: a body past
Inngest's 8 MB is cut off (whether it says its length, never ends or unpacks from a small
gzip), and the call timeout covers an answer that never starts or comes a byte at a time."""

from __future__ import annotations

import gzip
import json

from headrace.core.clock import SystemClock
from headrace.protocol.driver import AppDriver
from headrace.protocol.ops import AIGateway, AIGatewayOpts, Outcome, RequestFailed
from headrace.protocol.response import MAX_ANSWER_BYTES
from headrace.testing.hostile_app import (
    Answer,
    HostileApp,
    endless,
    fixed,
    http_answer,
    silent,
    trickle,
)


async def call(answer: Answer, timeout_s: float = 10.0) -> Outcome:
    app = HostileApp()
    app.answers["fn"] = answer
    driver = AppDriver(SystemClock(), timeout_s=timeout_s)
    try:
        async with app.serving():
            return await driver.call(f"{app.url}?fnId=fn", b"{}", {}, account_id="default")
    finally:
        await driver.close()


async def test_an_answer_past_the_limit_is_an_error_naming_the_limit() -> None:
    body = json.dumps("x" * MAX_ANSWER_BYTES).encode()
    outcome = await call(fixed(http_answer(200, body)))
    assert outcome.error is not None
    assert outcome.error["name"] == "OutputTooLarge"
    assert outcome.error["message"] == (
        f"the app answered 200 with a body larger than {MAX_ANSWER_BYTES} bytes, "
        "the most the engine reads"
    )
    assert outcome.retryable and outcome.status == 200


async def test_an_answer_at_the_limit_is_read() -> None:
    body = json.dumps("x" * (MAX_ANSWER_BYTES - 2)).encode()
    outcome = await call(fixed(http_answer(200, body)))
    assert outcome.error is None and outcome.done
    assert len(outcome.result) == MAX_ANSWER_BYTES - 2


async def test_a_small_gzip_that_unpacks_past_the_limit_is_cut_off() -> None:
    body = gzip.compress(b'"' + b"x" * (MAX_ANSWER_BYTES * 4) + b'"')
    assert len(body) < 100_000
    outcome = await call(fixed(http_answer(206, body, {"content-encoding": "gzip"})))
    assert outcome.error is not None and outcome.error["name"] == "OutputTooLarge"


async def test_a_body_that_never_ends_is_cut_off_at_the_limit() -> None:
    outcome = await call(endless(206))
    assert outcome.error is not None and outcome.error["name"] == "OutputTooLarge"


async def test_an_answer_that_never_starts_times_out() -> None:
    outcome = await call(silent(), timeout_s=0.3)
    assert outcome.error == {
        "name": "NetworkError",
        "message": "the app did not answer within 0.3 s",
    }
    assert outcome.retryable


async def test_a_body_a_byte_at_a_time_past_the_timeout_times_out() -> None:
    """Each byte comes well within any read timeout; the call's timeout covers the whole."""
    outcome = await call(trickle(http_answer(200, b'"' + b"x" * 100 + b'"'), 0.02), timeout_s=0.5)
    assert outcome.error is not None
    assert outcome.error["message"] == "the app did not answer within 0.5 s"


async def test_a_model_answer_past_the_limit_fails_the_ai_step_with_the_reason() -> None:
    """step.ai.infer's request goes where the app says: its answer is capped as the app's is."""
    app = HostileApp()
    app.answers["model"] = endless(200)
    driver = AppDriver(SystemClock())
    try:
        async with app.serving():
            op = AIGateway(id="h", opts=AIGatewayOpts(url=f"{app.url}?fnId=model", body={}))
            settled = await driver.gateway(op)
    finally:
        await driver.close()
    assert isinstance(settled, RequestFailed)
    assert settled.error["message"] == (
        f"Error making AI request: the response is larger than {MAX_ANSWER_BYTES} bytes"
    )
