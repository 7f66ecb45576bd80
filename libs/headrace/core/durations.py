"""Durations and dates as the SDKs write them: "10s", "1h30m", "2d", "1w", or an ISO 8601 date."""

from __future__ import annotations

import datetime
import re

_UNIT_MS = {
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MS = datetime.timedelta(milliseconds=1)
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
# Inngest reads durations into Go's time.Duration, int64 nanoseconds (about 292 years); longer
# ones are not durations to it, and here a deadline past them would not fit a 64-bit record.
MAX_DURATION_MS = (2**63 - 1) // 1_000_000


class DurationError(ValueError):
    """A duration or date string that cannot be read."""


def parse_duration_ms(text: str) -> int:
    """Read a compound duration ("1w2d3h", "500ms", "1.5s"); an empty string is zero."""
    text = text.strip()
    if not text:
        return 0
    total = 0.0
    pos = 0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_MS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise DurationError(
            f"invalid duration {text!r}: expected forms like 30s, 5m, 1h30m, 2d, 1w"
        )
    if total > MAX_DURATION_MS:
        raise DurationError(f"invalid duration {text!r}: longer than {MAX_DURATION_MS} ms")
    return int(total)


def parse_iso_ms(text: str) -> int:
    """Read an ISO 8601 date; a date without a zone is taken as UTC."""
    try:
        value = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as err:
        raise DurationError(f"invalid date {text!r}: {err}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    try:
        # In UTC it must still be a date of years 1 to 9999, or it could never be written back.
        value = value.astimezone(datetime.UTC)
    except OverflowError:
        raise DurationError(f"invalid date {text!r}: out of the years 1 to 9999 in UTC") from None
    return (value - _EPOCH) // _MS


def parse_deadline_ms(text: str, now_ms: int) -> int:
    """A Sleep op's target: a duration from now, or an absolute ISO date."""
    try:
        return now_ms + parse_duration_ms(text)
    except DurationError:
        return parse_iso_ms(text)


def format_iso_ms(ms: int) -> str:
    """An RFC 3339 UTC timestamp with milliseconds, as the Inngest APIs write times."""
    # Whole milliseconds, not a float of seconds: the last millisecond of year 9999 rounded up
    # through a float is out of datetime's range.
    value = _EPOCH + datetime.timedelta(milliseconds=ms)
    return f"{value.year:04d}-{value:%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"
