"""Protocol details: signing, event ids, durations, reading responses, building requests."""

from __future__ import annotations

import base64
import json

import inngest
import pytest

from headrace.core.backoff import retry_after_ms
from headrace.core.clock import SystemClock
from headrace.core.durations import DurationError, parse_deadline_ms, parse_duration_ms
from headrace.core.ids import seeded_event_ids, step_hash
from headrace.protocol.driver import AppDriver
from headrace.protocol.ops import RunComplete
from headrace.protocol.request import MAX_INLINE_BYTES, build_body, call_url
from headrace.protocol.response import read_response
from headrace.protocol.signing import bearer_matches, hashed_signing_key, sign
from headrace.testing.sdk_app import ServedApp, make_client

SDK = {"x-inngest-sdk": "inngest-py:v0.5.19"}


def test_signing_key_hash_matches_the_reference_vector() -> None:
    expected = "94bab7f22b92278ccab46e15da43a9fb8b079c05fa099d4134c6c39bbcee49f6"
    assert hashed_signing_key("signkey-prod-123abc") == expected
    assert bearer_matches(f"Bearer {expected}", "signkey-prod-123abc")
    assert bearer_matches(f"Bearer signkey-prod-{expected}", "signkey-prod-123abc")
    assert not bearer_matches("Bearer nope", "signkey-prod-123abc")
    assert sign(b"{}", "signkey-prod-123abc", 10).startswith("t=10&s=")


def test_step_hashes_follow_the_sdks() -> None:
    assert step_hash("my-step-id").startswith("e7d8a2f1")
    assert step_hash("my-step-id", 1) != step_hash("my-step-id")


def test_seeded_event_ids_are_deterministic_and_distinct() -> None:
    seed = "1700000000000," + base64.b64encode(bytes(range(10))).decode()
    first = seeded_event_ids(seed, 3, now_ms=0)
    assert first == seeded_event_ids(seed, 3, now_ms=999)
    assert len(set(first)) == 3
    assert seeded_event_ids("garbage", 2, now_ms=0) != seeded_event_ids("garbage", 2, now_ms=0)


def test_durations_in_both_sdks_styles() -> None:
    assert parse_duration_ms("1w2d3h") == (7 + 2) * 86_400_000 + 3 * 3_600_000
    assert parse_duration_ms("") == 0
    assert parse_duration_ms("500ms") == 500
    assert parse_deadline_ms("2026-01-01T00:00:00Z", 0) == 1_767_225_600_000
    assert retry_after_ms("5", 0) == 5_000
    assert retry_after_ms("0", 0) == 1_000
    assert retry_after_ms("1970-01-03T00:00:00Z", 0) == 86_400_000


def test_a_bearer_token_with_non_ascii_text_is_no_match() -> None:
    # Found by the API fuzz: compare_digest raised TypeError on non-ASCII str, a 500 on every
    # route that asks for a signing key.
    key = "signkey-test-" + "ab" * 32
    assert bearer_matches("Bearer \u00e9", key) is False
    assert bearer_matches(f"Bearer {key}", key) is True


@pytest.mark.parametrize("text", ["999999999999d", "9" * 400 + "d", "106752d1s"])
def test_a_duration_longer_than_go_s_is_refused(text: str) -> None:
    # Found beside the API fuzz: a wait or invoke timeout this long made a deadline past 64
    # bits, and writing its timer failed (a 500 on a Durable Endpoint's checkpoint); 400 nines
    # were an OverflowError in the parse itself.
    with pytest.raises(DurationError, match="longer than"):
        parse_duration_ms(text)
    assert parse_duration_ms("106751d") == 106_751 * 86_400_000


def test_a_2xx_without_the_sdk_header_is_a_failure() -> None:
    outcome = read_response(200, {}, b"{}", 0)
    assert outcome.error is not None and "X-Inngest-SDK" in outcome.error["message"]
    assert outcome.retryable


def test_garbage_and_errors_become_clear_errors() -> None:
    garbage = read_response(206, SDK, b"<html>", 0)
    assert garbage.error is not None and "not JSON" in garbage.error["message"]
    failed = read_response(500, {**SDK, "x-inngest-no-retry": "true"}, b'{"message": "m"}', 0)
    assert failed.error == {"message": "m"} and not failed.retryable


def test_an_answer_with_more_ops_than_inngest_s_step_limit_fails_the_run_at_once() -> None:
    ops = [{"op": "Gateway", "id": f"h{i}", "opts": {"url": "http://x"}} for i in range(1001)]
    outcome = read_response(206, SDK, json.dumps(ops).encode(), 0)
    assert outcome.ops is None and not outcome.retryable
    assert outcome.error == {
        "name": "InngestErrFunctionOverflowed",
        "message": "The function run exceeded the step limit of 1000 steps: "
        "the app answered 1001 ops at once",
    }
    assert read_response(206, SDK, json.dumps(ops[:1000]).encode(), 0).ops is not None


def test_a_step_op_without_an_id_is_an_invalid_answer() -> None:
    outcome = read_response(206, SDK, b'[{"op": "StepRun", "data": 1}]', 0)
    assert outcome.error == {
        "name": "UnexpectedResponse",
        "message": "the app answered 206 with a 'StepRun' op without an id",
    }
    assert outcome.retryable
    done = read_response(206, SDK, b'[{"op": "RunComplete", "data": 1}]', 0)
    assert done.ops is not None and isinstance(done.ops[0], RunComplete)


def test_a_single_op_object_and_a_streamed_response_are_read() -> None:
    single = read_response(206, SDK, b'{"op": "StepRun", "id": "h", "data": 1, "opts": null}', 0)
    assert single.ops is not None and single.ops[0].data == 1
    inner = json.dumps({"status": 200, "headers": SDK, "body": json.dumps({"ok": True})})
    streamed = read_response(201, {}, b"   " + inner.encode(), 0)
    assert streamed.done and streamed.result == {"ok": True}


def test_requests_over_4mb_ask_the_sdk_to_fetch_through_the_api() -> None:
    common = dict(
        run_id="r",
        fn_id="f",
        stack=["h"],
        attempt=0,
        max_attempts=5,
        target=None,
        disable_immediate=False,
        version=-1,
    )
    small = json.loads(build_body(events=[{"name": "e"}], memos={"h": b'{"data":1}'}, **common))
    assert small["use_api"] is False and small["steps"] == {"h": {"data": 1}}
    big_memo = json.dumps({"data": "x" * MAX_INLINE_BYTES}).encode()
    big = json.loads(build_body(events=[{"name": "e"}], memos={"h": big_memo}, **common))
    assert big["use_api"] is True and big["steps"] == {} and big["events"] == []
    assert big["event"] == {"name": "e"} and big["ctx"]["stack"]["stack"] == ["h"]


def test_call_url_targets_a_step() -> None:
    url = call_url("http://a/api/inngest?fnId=x&stepId=step", "app-fn", "abc")
    assert url == "http://a/api/inngest?fnId=app-fn&stepId=abc"


class _Refused(Exception):
    pass


async def test_a_call_refused_before_its_first_byte_never_reaches_the_app() -> None:
    """`before_send` runs once a connection is ready, just before the request's first byte; an
    exception from it leaves the request unsent and reaches the caller. Over real loopback HTTP,
    since that is where requests wait for connections."""
    client = make_client("http://127.0.0.1:1", "refusal-app")

    @client.create_function(fn_id="noop", trigger=inngest.TriggerEvent(event="t/noop"))
    async def noop(ctx: inngest.Context) -> None:
        return None

    driver = AppDriver(SystemClock())
    checks: list[str] = []

    def refuse() -> None:
        checks.append("refused")
        raise _Refused()

    def allow() -> None:
        checks.append("allowed")

    with ServedApp(client, [noop], keep_request_headers=True) as app:
        with pytest.raises(_Refused):
            await driver.call(app.url, b"{}", {}, account_id="default", before_send=refuse)
        assert app.request_headers == []
        outcome = await driver.call(app.url, b"{}", {}, account_id="default", before_send=allow)
        assert outcome.status != 0 and len(app.request_headers) == 1
    await driver.close()
    assert checks == ["refused", "allowed"]
