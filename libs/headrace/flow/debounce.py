"""Debounce (`debounce: {period, key?, timeout?}`): a run starts `period` after the last
matching event (per key value), with that last event; `timeout` caps the delay since the first.

A debounce is a one-event buffer kept with the batches, under its own key prefix. Each event
makes a new generation: a new buffer id, which is also the id of the run it may start, and a
new due timer replacing the previous one. A due timer whose id is no longer the buffer's is
stale and does nothing (`batching.batch_due`), so a newer event supersedes an older timer
without any race: the event and the timer's BatchDue are records of the same partition, handled
one at a time by its owner.
"""

from __future__ import annotations

from typing import Any

from headrace.core.durations import DurationError, parse_duration_ms
from headrace.flow.batching import buffer_key_value
from headrace.flow.runner_effects import BufferEffect, CancelDue, KeepBuffer, SetDue
from headrace.messages.model import Batch, Event
from headrace.messages.state import FunctionRecord

PREFIX = "debounce:"


def debounce_config(fn: FunctionRecord) -> dict[str, Any] | None:
    config = fn.config.get("debounce")
    return config if isinstance(config, dict) and config.get("period") else None


def debounce_key(fn: FunctionRecord, event: Event) -> str:
    config = debounce_config(fn) or {}
    key = buffer_key_value(config.get("key"), {"event": event.payload})
    return f"{PREFIX}{fn.account_id}:{fn.fn_id}:{key}"


def debounce(
    previous: Batch | None, key: str, fn: FunctionRecord, event: Event, now_ms: int, new_id: str
) -> list[BufferEffect]:
    """The event becomes the debounce's new generation (id `new_id`), due `period` from now but
    no later than `timeout` after the debounce's first event; the previous one's timer goes."""
    if previous is not None and event.internal_id in previous.event_ids:
        return []  # a repeat after a crash: this event is the current generation already
    config = debounce_config(fn) or {}
    first_ms = previous.opened_ms if previous is not None else now_ms
    due_ms = now_ms + _ms(config.get("period"))
    timeout_ms = _ms(config.get("timeout"))
    if timeout_ms:
        due_ms = min(due_ms, first_ms + timeout_ms)
    current = Batch(
        batch_key=key,
        batch_id=new_id,
        account_id=fn.account_id,
        fn_id=fn.fn_id,
        events=[event.payload],
        event_ids=[event.internal_id],
        opened_ms=first_ms,
    )
    # Timer first: a crash before the buffer is kept leaves only a stale timer behind.
    effects: list[BufferEffect] = [SetDue(current, due_ms), KeepBuffer(current)]
    if previous is not None:
        effects.append(CancelDue(previous))
    return effects


def _ms(value: object) -> int:
    try:
        return parse_duration_ms(str(value or ""))
    except DurationError:  # refused at sync; a function synced before that gets no delay
        return 0
