"""Event batching (`batchEvents`): events for a batched function collect in a batch per key
until it holds `maxSize` events or its `timeout` passes; then one run gets them all.

A batch's id is the id of the run it starts, so a batch started twice (after a crash) starts
one run. The decisions take the batch open under the event's key (None: none is) and return
effects (`flow.runner_effects`) without changing it.
"""

from __future__ import annotations

from typing import Any

from headrace.core.durations import DurationError, parse_duration_ms
from headrace.expressions import EvaluationError, ExpressionError, compile_expression, evaluate_bool
from headrace.flow.runner_effects import BufferEffect, DropBuffer, KeepBuffer, SetDue, StartBuffered
from headrace.messages.model import Batch, Event
from headrace.messages.state import FunctionRecord
from headrace.protocol.registration import MAX_BATCH_SIZE

DEFAULT_TIMEOUT_MS = 60_000


def batch_config(fn: FunctionRecord) -> dict[str, Any] | None:
    config = fn.config.get("batchEvents")
    return config if isinstance(config, dict) else None


def batch_key(fn: FunctionRecord, event: Event) -> str | None:
    """The key of the event's batch; None when the batch's `if` leaves the event out (it then
    runs on its own, as Inngest does)."""
    config = batch_config(fn) or {}
    variables = {"event": event.payload}
    condition = config.get("if")
    if condition and not evaluate_bool(str(condition), variables):
        return None
    return f"{fn.account_id}:{fn.fn_id}:{buffer_key_value(config.get('key'), variables)}"


def add_to_batch(
    opened: Batch | None, key: str, fn: FunctionRecord, event: Event, now_ms: int, new_id: str
) -> list[BufferEffect]:
    """The event joins the batch open under `key` (or a new one, id `new_id`, due at its
    timeout); a batch that is full starts its run."""
    config = batch_config(fn) or {}
    effects: list[BufferEffect] = []
    if opened is None:
        batch = Batch(
            batch_key=key,
            batch_id=new_id,
            account_id=fn.account_id,
            fn_id=fn.fn_id,
            opened_ms=now_ms,
        )
        effects.append(SetDue(batch, now_ms + _timeout_ms(config)))
    else:
        batch = opened
    if event.internal_id not in batch.event_ids:  # a repeat after a crash is in already
        batch = Batch(
            batch_key=batch.batch_key,
            batch_id=batch.batch_id,
            account_id=batch.account_id,
            fn_id=batch.fn_id,
            events=[*batch.events, event.payload],
            event_ids=[*batch.event_ids, event.internal_id],
            opened_ms=batch.opened_ms,
        )
    if len(batch.events) >= _max_size(config):
        return [*effects, *flush(batch)]
    return [*effects, KeepBuffer(batch)]


def batch_due(opened: Batch | None, batch_id: str) -> list[BufferEffect]:
    """A buffer's due timer fired: it starts its run, unless it is no longer the buffer open
    under its key (flushed full, or superseded)."""
    if opened is None or opened.batch_id != batch_id:
        return []
    return flush(opened)


def flush(batch: Batch) -> list[BufferEffect]:
    return [StartBuffered(batch), DropBuffer(batch.batch_key)]


def buffer_key_value(expression: object, variables: dict[str, Any]) -> str:
    """A batch or debounce key expression's value as text; "" without an expression or when it
    fails."""
    if not expression:
        return ""
    try:
        return str(compile_expression(str(expression)).evaluate(variables))
    except (ExpressionError, EvaluationError):
        return ""


def _max_size(config: dict[str, Any]) -> int:
    size = config.get("maxSize")
    return max(1, min(size, MAX_BATCH_SIZE)) if isinstance(size, int) else MAX_BATCH_SIZE


def _timeout_ms(config: dict[str, Any]) -> int:
    try:
        return parse_duration_ms(str(config.get("timeout") or "")) or DEFAULT_TIMEOUT_MS
    except DurationError:
        return DEFAULT_TIMEOUT_MS
