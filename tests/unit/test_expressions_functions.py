"""The functions Inngest adds to CEL, called directly and from expressions."""

from __future__ import annotations

import base64
import datetime

import pytest

from headrace.expressions import compile_expression, evaluate_bool
from headrace.expressions.functions import (
    b64decode,
    date,
    json_parse,
    lowercase,
    now,
    now_minus,
    now_plus,
    parse_duration,
    uppercase,
)

UTC = datetime.UTC
NEW_YEAR = datetime.datetime(2024, 1, 1, tzinfo=UTC)
ENCODED = base64.b64encode(b'{"plan": "pro", "seats": 5}').decode()
VARS = {
    "event": {
        "data": {
            "email": "Ann@Example.COM",
            "payload": ENCODED,
            "body": '{"plan": "pro", "seats": 5, "tags": ["x"]}',
            "created": "2024-01-01T00:00:00Z",
            "created_ms": 1_704_067_200_000,
        }
    }
}


def evaluate(source: str) -> object:
    return compile_expression(source).evaluate(VARS)


def test_lowercase_and_uppercase() -> None:
    assert evaluate("lowercase(event.data.email)") == "ann@example.com"
    assert evaluate("uppercase(event.data.email)") == "ANN@EXAMPLE.COM"
    assert evaluate_bool("lowercase(event.data.email) == 'ann@example.com'", VARS)
    # As in Inngest, anything but a string gives "".
    assert lowercase(12) == "" and uppercase(None) == ""


def test_b64decode() -> None:
    assert evaluate("b64decode(event.data.payload)") == '{"plan": "pro", "seats": 5}'
    assert b64decode("aGk") == "hi"  # missing padding is tolerated
    assert b64decode("not base64!") == ""
    assert b64decode(5) == ""
    assert evaluate_bool("json_parse(b64decode(event.data.payload)).seats == 5", VARS)


def test_json_parse() -> None:
    assert evaluate("json_parse(event.data.body)") == {"plan": "pro", "seats": 5, "tags": ["x"]}
    assert evaluate_bool("json_parse(event.data.body).plan == 'pro'", VARS)
    assert evaluate_bool("'x' in json_parse(event.data.body).tags", VARS)
    # Inngest decodes into a map: anything but a JSON object gives an empty one.
    assert json_parse("[1, 2]") == {}
    assert json_parse("{broken") == {}
    assert json_parse(None) == {}
    assert evaluate_bool("json_parse('nope').plan == 'pro'", VARS) is False


def test_json_parse_of_json_nested_past_the_decoder_s_depth_is_empty() -> None:
    # Event data is anyone's: JSON deeper than the decoder goes must not raise out of CEL.
    deep = "[" * 100_000 + "]" * 100_000
    assert json_parse(deep) == {}


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-01T00:00:00Z",
        "2024-01-01T01:00:00+01:00",
        "2024-01-01T00:00:00.000000000Z",
        "2024-01-01T00:00:00",  # no zone: UTC
        "2024-01-01",
        "Mon, 01 Jan 2024 00:00:00 GMT",  # RFC 1123
        "Mon, 01 Jan 2024 00:00:00 +0000",
        1_704_067_200,  # epoch seconds
        1_704_067_200_000,  # epoch milliseconds
        1_704_067_200_000_000_000,  # epoch nanoseconds
        1_704_067_200_000.0,  # a whole JSON number read as a double
    ],
)
def test_date_reads_strings_and_epoch_numbers(value: object) -> None:
    assert date(value) == NEW_YEAR


@pytest.mark.parametrize("value", ["yesterday", "", 12, 1.5, True, None, [2024]])
def test_date_gives_null_for_what_it_cannot_read(value: object) -> None:
    assert date(value) is None


def test_date_in_expressions() -> None:
    assert evaluate("date(event.data.created)") == NEW_YEAR
    assert evaluate_bool("date(event.data.created) == date(event.data.created_ms)", VARS)
    assert evaluate_bool("date(event.data.created) == timestamp('2024-01-01T00:00:00Z')", VARS)
    assert evaluate_bool("date(event.data.created) < date('2024-01-02')", VARS)
    assert evaluate_bool("date(event.data.created).getFullYear() == 2024", VARS)
    # An unreadable date is null, and comparing null with a timestamp is no match.
    assert evaluate_bool("date('soon') < now()", VARS) is False


def test_now() -> None:
    before = datetime.datetime.now(UTC)
    value = evaluate("now()")
    after = datetime.datetime.now(UTC)
    assert isinstance(value, datetime.datetime)
    assert before <= value <= after
    assert now().tzinfo is not None
    assert evaluate_bool("now() > date(event.data.created)", VARS)


def test_now_plus_and_now_minus() -> None:
    assert evaluate_bool("now_plus('1h') > now() && now_minus('1h') < now()", VARS)
    assert evaluate_bool("now_plus('1h') < now_plus('2h')", VARS)
    assert evaluate_bool("now_minus('1d') > now_minus('1w')", VARS)
    assert evaluate_bool("now_minus('3650d') < date(event.data.created)", VARS)
    plus = now_plus("90m")
    assert plus is not None
    expected = datetime.datetime.now(UTC) + datetime.timedelta(minutes=90)
    assert abs((plus - expected).total_seconds()) < 5
    minus = now_minus("2d")
    assert minus is not None
    assert abs((datetime.datetime.now(UTC) - minus).total_seconds() - 2 * 86400) < 5
    assert now_plus("soon") is None and now_minus(3) is None
    assert now_plus("99999999w") is None  # beyond year 9999
    assert evaluate_bool("now_plus('soon') > now()", VARS) is False


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h", 3600),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("2d", 172800),
        ("1w", 604800),
        ("250ms", 0.25),
        ("10us", 0.00001),
        ("-5m", -300),
        ("+5s", 5),
        ("0", 0),
        (" 45s ", 45),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    parsed = parse_duration(text)
    assert parsed is not None
    assert parsed.total_seconds() == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "h", "1", "1x", "1h 30m", "5m-", "--5m", None, 60])
def test_parse_duration_refuses(text: object) -> None:
    assert parse_duration(text) is None
