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


def backoff_ms(failed_attempt: int, rng: random.Random | None = None) -> int:
    """Delay before retrying after attempt `failed_attempt` (0-based) failed."""
    base = _SCHEDULE_MS[min(failed_attempt, len(_SCHEDULE_MS) - 1)]
    return base + (rng or random).randint(0, _JITTER_MS)


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
