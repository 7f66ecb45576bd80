"""substitute_event: baking the trigger event into waitForEvent / cancelOn expressions."""

from __future__ import annotations

import math

import pytest

from headrace.expressions import ExpressionError, evaluate_bool, substitute_event

TRIGGER = {
    "name": "app/signup",
    "data": {
        "userId": "u1",
        "count": 3,
        "amount": 100.5,
        "delta": -2,
        "flag": True,
        "none": None,
        "tags": ["a", "b"],
        "profile": {"plan": "pro", "seats": 5},
        "a-b": "dashed",
        "tricky": 'it\'s "quoted" \\ back\nslash\ttab \u0001 ✓ 😀',
    },
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("event.data.userId == async.data.userId", '"u1" == async.data.userId'),
        ("async.data.userId == event.data.userId", 'async.data.userId == "u1"'),
        ("async.data.n > event.data.count", "async.data.n > 3"),
        ("async.data.n > event.data.amount", "async.data.n > 100.5"),
        ("async.data.n == event.data.delta", "async.data.n == (-2)"),
        ("async.data.ok == event.data.flag", "async.data.ok == true"),
        ("async.data.x == event.data.none", "async.data.x == null"),
        ("async.data.x == event.data.missing", "async.data.x == null"),
        ("async.data.x == event.data.profile.nope.deeper", "async.data.x == null"),
        ("async.data.tags == event.data.tags", 'async.data.tags == ["a", "b"]'),
        ("async.data.p == event.data.profile", 'async.data.p == {"plan": "pro", "seats": 5}'),
        ("async.data.t == event.data.tags[1]", 'async.data.t == "b"'),
        ("async.data.t == event.data.tags[7]", "async.data.t == null"),
        ("async.data.d == event.data['a-b']", 'async.data.d == "dashed"'),
        ("async.data.p == event.data.profile.plan", 'async.data.p == "pro"'),
        ("has(event.data.userId) && async.x == 1", "true && async.x == 1"),
        ("!has(event.data.missing) && async.x == 1", "!false && async.x == 1"),
        ("event.data.userId.startsWith('u') == async.ok", "\"u1\".startsWith('u') == async.ok"),
        ("event.data.tags[async.data.i] == 'a'", '["a", "b"][async.data.i] == \'a\''),
        ("async.data.event == 'event.data.userId'", "async.data.event == 'event.data.userId'"),
        ("async.event.data == event . data . count", "async.event.data == 3"),
    ],
)
def test_event_references_become_literals(source: str, expected: str) -> None:
    assert substitute_event(source, TRIGGER) == expected


def test_async_only_expression_is_returned_unchanged() -> None:
    source = "async.data.userId == 'u1'"
    assert substitute_event(source, TRIGGER) is source


def test_the_whole_event_can_be_substituted() -> None:
    substituted = substitute_event("async.data.original == event", TRIGGER)
    incoming = {"data": {"original": TRIGGER}}
    assert evaluate_bool(substituted, {"async": incoming}) is True


def test_substituted_values_round_trip_through_cel() -> None:
    paths = ["userId", "count", "amount", "delta", "flag", "none", "tags", "profile", "tricky"]
    for path in paths:
        substituted = substitute_event(f"event.data.{path} == async.data.{path}", TRIGGER)
        assert "event" not in substituted.replace("async", "")
        assert evaluate_bool(substituted, {"async": TRIGGER}) is True, substituted


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        (2**63 - 1, "9223372036854775807"),
        (-(2**63), "(-9223372036854775808)"),
        (2**63, "9223372036854775808u"),
        (2**70, "1.1805916207174113e+21"),
        (10**400, 'double("inf")'),
        (math.inf, 'double("inf")'),
        (-math.inf, 'double("-inf")'),
        (math.nan, 'double("nan")'),
        (-0.5, "(-0.5)"),
        (1e100, "1e+100"),
        (2.0, "2.0"),
        ("\ud800", '"\\ufffd"'),
        ("a\x7fb", '"a\\u007fb"'),
    ],
)
def test_numbers_and_strings_cel_cannot_write_directly(value: object, literal: str) -> None:
    substituted = substitute_event("async.x == event.data.v", {"data": {"v": value}})
    assert substituted == f"async.x == {literal}"
    # Whatever was written must still compile.
    evaluate_bool(substituted, {"async": {"x": 0}})


def test_substituted_expression_matches_like_the_original() -> None:
    source = (
        "event.data.userId == async.data.userId && async.data.amount >= event.data.amount"
        " && event.data.profile.plan == async.data.plan"
    )
    incoming = {"data": {"userId": "u1", "amount": 200, "plan": "pro"}}
    substituted = substitute_event(source, TRIGGER)
    both = {"event": TRIGGER, "async": incoming}
    assert evaluate_bool(source, both) is True
    assert evaluate_bool(substituted, {"async": incoming}) is True
    other = {"data": {"userId": "u2", "amount": 200, "plan": "pro"}}
    assert evaluate_bool(substituted, {"async": other}) is False


def test_a_missing_trigger_field_is_null_and_matches_a_missing_incoming_field() -> None:
    substituted = substitute_event("event.data.nope == async.data.nope", TRIGGER)
    assert substituted == "null == async.data.nope"
    assert evaluate_bool(substituted, {"async": {"data": {}}}) is True
    assert evaluate_bool(substituted, {"async": {"data": {"nope": 1}}}) is False


def test_invalid_source_raises() -> None:
    with pytest.raises(ExpressionError):
        substitute_event("event.data.userId == ", TRIGGER)
    with pytest.raises(ExpressionError):
        substitute_event("event.data.userId == 'open", TRIGGER)
