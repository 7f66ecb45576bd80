"""Debounce (`debounce: {period, key?, timeout?}`): a run starts `period` after the last
matching event (per key value), with that last event; `timeout` caps the delay since the first.

A debounce is a one-event buffer kept by the Batcher (memory and BatchStore, rebuilt by the
partition's new owner), under its own key prefix. Each event makes a new generation: a new
buffer id, which is also the id of the run it may start, and a new due timer. A due timer
whose id is no longer the buffer's is stale and does nothing, so a newer event supersedes an
older timer without any race: the event and the timer's BatchDue are records of the same
partition, handled one at a time by its owner.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from headrace.services.runner.batching import Batcher, key_value

from headrace.core.clock import Clock
from headrace.core.durations import DurationError, parse_duration_ms
from headrace.core.ids import new_ulid
from headrace.messages.model import Batch, Event
from headrace.messages.state import FunctionRecord

PREFIX = "debounce:"

ScheduleDue = Callable[[Batch, int], Awaitable[None]]
CancelDue = Callable[[Batch], Awaitable[None]]


def debounce_config(fn: FunctionRecord) -> dict[str, Any] | None:
    config = fn.config.get("debounce")
    return config if isinstance(config, dict) and config.get("period") else None


class Debouncer:
    def __init__(
        self, batcher: Batcher, clock: Clock, schedule_due: ScheduleDue, cancel_due: CancelDue
    ) -> None:
        self._batcher = batcher
        self._clock = clock
        self._schedule_due = schedule_due
        self._cancel_due = cancel_due

    async def add(self, fn: FunctionRecord, event: Event, partition: int) -> None:
        config = debounce_config(fn) or {}
        key = key_value(config.get("key"), {"event": event.payload})
        debounce_key = f"{PREFIX}{fn.account_id}:{fn.fn_id}:{key}"
        previous = self._batcher.opened(debounce_key)
        if previous is not None and event.internal_id in previous.event_ids:
            return  # a repeat after a crash: this event is the current generation already
        now = self._clock.now_ms()
        first_ms = previous.opened_ms if previous is not None else now
        due_ms = now + _ms(config.get("period"))
        timeout_ms = _ms(config.get("timeout"))
        if timeout_ms:
            due_ms = min(due_ms, first_ms + timeout_ms)
        current = Batch(
            batch_key=debounce_key,
            batch_id=new_ulid(now),
            account_id=fn.account_id,
            fn_id=fn.fn_id,
            events=[event.payload],
            event_ids=[event.internal_id],
            opened_ms=first_ms,
        )
        # Timer first: a crash before the buffer is kept leaves only a stale timer behind.
        await self._schedule_due(current, due_ms)
        await self._batcher.keep(current, partition)
        if previous is not None:
            await self._cancel_due(previous)


def _ms(value: object) -> int:
    try:
        return parse_duration_ms(str(value or ""))
    except DurationError:  # refused at sync; a function synced before that gets no delay
        return 0
