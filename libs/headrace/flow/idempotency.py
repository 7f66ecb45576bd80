"""Idempotency (`idempotency`, a CEL expression over `event`): at most one run per function
per key value within 24 hours.

Inngest turns it into a rate limit of one per 24 h keyed by the expression; here it is a claim
on (function, key value) by the first event (a KeyStore claim expiring after 24 h), checked when
an event arrives (before debounce and batching, as Inngest checks rate limits). The claim holds
the event's id, so the same event handled again after a crash is still let through.
"""

from __future__ import annotations

from headrace.expressions import EvaluationError, ExpressionError, compile_expression
from headrace.flow.runner_effects import Skip
from headrace.messages.model import Event
from headrace.messages.state import FunctionRecord

IDEMPOTENCY_TTL_MS = 24 * 3_600_000

KEY_SEEN = Skip("idempotency key seen")


def idempotency_key(fn: FunctionRecord, event: Event) -> str | None:
    """The claim's key; None when `fn` has no idempotency, or its expression fails for this
    event (no key value: nothing to be idempotent about)."""
    expression = fn.config.get("idempotency")
    if not isinstance(expression, str) or not expression:
        return None
    try:
        value = compile_expression(expression).evaluate({"event": event.payload})
    except (ExpressionError, EvaluationError):
        return None
    return f"idempotency:{fn.account_id}:{fn.fn_id}:{value}"


def admit_first(event: Event, holder: str | None) -> list[Skip]:
    """The event against the claim's holder within the last 24 h (None: no claim, this event's
    now): another event's claim drops it."""
    return [] if holder is None or holder == event.internal_id else [KEY_SEEN]
