"""Idempotency (`idempotency`, a CEL expression over `event`): at most one run per function
per key value within 24 hours.

Inngest turns it into a rate limit of one per 24 h keyed by the expression; here it is a claim
on (function, key value) by the first event, checked by the partition's owner when an event
arrives (before debounce and batching, as Inngest checks rate limits). The claim holds the
event's id, so the same event handled again after a crash is still let through.
"""

from __future__ import annotations

from headrace.expressions import EvaluationError, ExpressionError, compile_expression
from headrace.messages.model import Event
from headrace.messages.state import FunctionRecord
from headrace.ports.stores import KeyStore

IDEMPOTENCY_TTL_MS = 24 * 3_600_000


async def first_of_its_key(keys: KeyStore, fn: FunctionRecord, event: Event, now_ms: int) -> bool:
    """False when another event of the same key value started the function within 24 h."""
    expression = fn.config.get("idempotency")
    if not isinstance(expression, str) or not expression:
        return True
    try:
        value = compile_expression(expression).evaluate({"event": event.payload})
    except (ExpressionError, EvaluationError):
        return True  # no key value: nothing to be idempotent about
    key = f"idempotency:{fn.account_id}:{fn.fn_id}:{value}"
    holder = await keys.claim(key, event.internal_id, IDEMPOTENCY_TTL_MS, now_ms)
    return holder is None or holder == event.internal_id
