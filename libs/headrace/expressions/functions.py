"""The functions Inngest adds to CEL (its pkg/expressions/exprenv), as Python callables.

They follow Inngest's results for bad input (a non-string lowercases to "", undecodable base64
gives "", json_parse of anything but a JSON object gives {}) and never raise: cel-rust logs a
warning for every exception a Python function raises. Where Inngest returns nil (a date or a
duration it cannot read) these return None, so any comparison with the result is not a match.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import json
import re
from collections.abc import Callable

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
# Inngest's date() reads integers by size: seconds from 2000 on, then milliseconds, then
# nanoseconds (its pkg/dateutil).
_YEAR_2000_S = 946_684_800
_MAX_SECONDS = 9_999_999_999
_MAX_MILLISECONDS = 9_999_999_999_999


def lowercase(value: object) -> str:
    return value.lower() if isinstance(value, str) else ""


def uppercase(value: object) -> str:
    return value.upper() if isinstance(value, str) else ""


def b64decode(value: object) -> str:
    if not isinstance(value, str):
        return ""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return ""
    return decoded.decode("utf-8", errors="replace")


def json_parse(value: object) -> dict[str, object]:
    if not isinstance(value, str):
        return {}
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        # Event data is anyone's: JSON nested past the decoder's depth parses to nothing.
        return {}
    return parsed if isinstance(parsed, dict) else {}


def date(value: object) -> datetime.datetime | None:
    """A timestamp from an RFC 3339 / ISO 8601 or RFC 1123-style string, or from epoch time."""
    if isinstance(value, str):
        return _parse_date_string(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _from_epoch(value)
    return None


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def now_plus(duration: object) -> datetime.datetime | None:
    return _shift_now(duration, 1)


def now_minus(duration: object) -> datetime.datetime | None:
    return _shift_now(duration, -1)


def _shift_now(duration: object, direction: int) -> datetime.datetime | None:
    delta = parse_duration(duration)
    if delta is None:
        return None
    try:
        return now() + direction * delta
    except OverflowError:  # past year 9999
        return None


def parse_duration(text: object) -> datetime.timedelta | None:
    """A Go-style duration with days and weeks ("1h30m", "1.5d", "-2w"); None if unreadable."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    sign = 1.0
    if text[:1] in ("-", "+"):
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return datetime.timedelta(0)
    seconds = 0.0
    position = 0
    for part in _DURATION_PART.finditer(text):
        if part.start() != position:
            return None
        seconds += float(part.group(1)) * _UNIT_SECONDS[part.group(2)]
        position = part.end()
    if position == 0 or position != len(text):
        return None
    try:
        return datetime.timedelta(seconds=sign * seconds)
    except OverflowError:
        return None


def _parse_date_string(text: str) -> datetime.datetime | None:
    try:
        parsed = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except ValueError:
            return None
    # Like Go's time.Parse, a time without a zone is UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


def _from_epoch(value: int) -> datetime.datetime | None:
    if value < _YEAR_2000_S:
        return None
    if value < _MAX_SECONDS:
        seconds = float(value)
    elif value < _MAX_MILLISECONDS:
        seconds = value / 1_000
    else:
        seconds = value / 1_000_000_000
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return None


# name -> callable, as registered on every evaluation context.
FUNCTIONS: dict[str, Callable[..., object]] = {
    "lowercase": lowercase,
    "uppercase": uppercase,
    "b64decode": b64decode,
    "json_parse": json_parse,
    "date": date,
    "now": now,
    "now_plus": now_plus,
    "now_minus": now_minus,
}
