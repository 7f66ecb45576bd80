"""Retry delays: Inngest's schedule, so that retries on headrace behave as they do there."""

from __future__ import annotations

import random

from headrace.core.durations import DurationError, parse_iso_ms

# pkg/backoff in inngest/inngest: the delay before retry n (n = attempt that failed).
_SCHEDULE_MS = (
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    1_200_000,
    2_400_000,
    3_600_000,
    7_200_000,
)
_JITTER_MS = 30_000
_MIN_RETRY_AFTER_MS = 1_000
_MAX_RETRY_AFTER_MS = 86_400_000


def backoff_ms(
    failed_attempt: int, rng: random.Random | None = None, interval_ms: int | None = None
) -> int:
    """Delay before retrying after attempt `failed_attempt` (0-based) failed.

    With `interval_ms` (the server's `--retry-interval`), every retry waits that long, without
    jitter: Inngest's linear backoff (pkg/backoff `GetLinearBackoffFunc`)."""
    if interval_ms is not None:
        return interval_ms
    base = _SCHEDULE_MS[min(failed_attempt, len(_SCHEDULE_MS) - 1)]
    return base + (rng or random).randint(0, _JITTER_MS)


def interval_ms(seconds: float | None) -> int | None:
    """`--retry-interval` in milliseconds, at least one; None (unset) stays None."""
    return None if seconds is None else max(1, round(seconds * 1000))


def retry_after_ms(header: str | None, now_ms: int) -> int | None:
    """Read a `Retry-After` header: seconds, or a date; clamped to 1 s..24 h from now."""
    if not header:
        return None
    header = header.strip()
    delay: int
    if len(header) <= 7 and header.isdigit():
        delay = int(header) * 1000
    else:
        try:
            delay = parse_iso_ms(header) - now_ms
        except DurationError:
            return None
    return max(_MIN_RETRY_AFTER_MS, min(delay, _MAX_RETRY_AFTER_MS))
