"""Idempotency (`idempotency`) at the event, handled on the KeyStore: the event claims its key
value for 24 h and `flow.idempotency` decides from the claim's holder."""

from __future__ import annotations

from headrace.flow.idempotency import IDEMPOTENCY_TTL_MS, admit_first, idempotency_key
from headrace.messages.model import Event
from headrace.messages.state import FunctionRecord
from headrace.ports.stores import KeyStore


async def first_of_its_key(keys: KeyStore, fn: FunctionRecord, event: Event, now_ms: int) -> bool:
    """False when another event of the same key value started the function within 24 h."""
    key = idempotency_key(fn, event)
    if key is None:
        return True
    holder = await keys.claim(key, event.internal_id, IDEMPOTENCY_TTL_MS, now_ms)
    return not admit_first(event, holder)
