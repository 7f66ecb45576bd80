"""Rate limits (`rateLimit`), decided when an event triggers a function: an event over its key's
limit starts no run. Inngest's semantics: GCRA per key (`flow.gcra`), checked at event time.

The first decision for an event stands: a skip is marked under the event's dedupe key, so the
event handled again after a crash is skipped again, and an admitted one is not counted twice.
"""

from __future__ import annotations

from headrace.flow.config import EVENT_DEDUPE_TTL_MS
from headrace.flow.gcra import Gcra
from headrace.flow.runner_effects import PutRateLimit, RateLimitEffect, Skip

# What the marker of an event's first decision holds.
ADMITTED, SKIPPED = "admitted", "skipped"
MARKER_TTL_MS = EVENT_DEDUPE_TTL_MS  # as long as the run dedupe by event id it follows

RATE_LIMITED = Skip("rate limited")


def marker_key(account_id: str, fn_id: str, dedupe: str) -> str:
    return f"ratelimited:{account_id}:{fn_id}:{dedupe}"


def admit_event(limit: tuple[str, Gcra], tat: float | None, now_ms: int) -> list[RateLimitEffect]:
    """A new event against its key's TAT (None: never seen): admitted, or skipped."""
    key, gcra = limit
    admitted, new_tat = gcra.admit(tat, now_ms)
    return [PutRateLimit(key, new_tat)] if admitted else [RATE_LIMITED]


def admit_repeat(first: str | None) -> list[RateLimitEffect]:
    """An event handled again: what its marker says was decided the first time (no marker: it
    was admitted)."""
    return [RATE_LIMITED] if first == SKIPPED else []
