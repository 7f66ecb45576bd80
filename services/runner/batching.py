"""Event batching (`batchEvents`): events for a batched function collect in a batch per key
until it holds `maxSize` events or its `timeout` passes; then one run gets them all.

The runner that owns the account's partition is the batch's only writer. Open batches are kept
in memory and in the BatchStore, so a new owner picks them up; a batch's id is the id of the run
it starts, so a batch started twice (after a crash) starts one run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from headrace.core.clock import Clock
from headrace.core.durations import DurationError, parse_duration_ms
from headrace.core.ids import new_ulid
from headrace.expressions import EvaluationError, ExpressionError, compile_expression, evaluate_bool
from headrace.messages.model import Batch, Event
from headrace.messages.state import FunctionRecord
from headrace.ports.stores import BatchStore
from headrace.protocol.registration import MAX_BATCH_SIZE

DEFAULT_TIMEOUT_MS = 60_000

ScheduleDue = Callable[[Batch, int], Awaitable[None]]
StartBatch = Callable[[Batch, int], Awaitable[None]]


def batch_config(fn: FunctionRecord) -> dict[str, Any] | None:
    config = fn.config.get("batchEvents")
    return config if isinstance(config, dict) else None


class Batcher:
    def __init__(
        self, store: BatchStore, clock: Clock, schedule_due: ScheduleDue, start: StartBatch
    ) -> None:
        self._store = store
        self._clock = clock
        self._schedule_due = schedule_due
        self._start = start
        self._open: dict[str, tuple[Batch, int]] = {}

    async def own(self, partitions: set[int]) -> None:
        for partition in partitions:
            for batch in await self._store.batches_for_partition(partition):
                self._open[batch.batch_key] = (batch, partition)

    def release(self, partitions: set[int]) -> None:
        for key, (_, partition) in list(self._open.items()):
            if partition in partitions:
                del self._open[key]

    async def add(self, fn: FunctionRecord, event: Event, partition: int) -> bool:
        """Put the event in its batch; False when the batch's `if` leaves it out (it then runs
        on its own, as Inngest does)."""
        config = batch_config(fn) or {}
        variables = {"event": event.payload}
        condition = config.get("if")
        if condition and not evaluate_bool(str(condition), variables):
            return False
        key = key_value(config.get("key"), variables)
        batch_key = f"{fn.account_id}:{fn.fn_id}:{key}"
        now = self._clock.now_ms()
        opened = self._open.get(batch_key)
        if opened is None:
            batch = Batch(
                batch_key=batch_key,
                batch_id=new_ulid(now),
                account_id=fn.account_id,
                fn_id=fn.fn_id,
                opened_ms=now,
            )
            await self._schedule_due(batch, now + _timeout_ms(config))
        else:
            batch = opened[0]
        if event.internal_id not in batch.event_ids:  # a repeat after a crash is in already
            batch.events.append(event.payload)
            batch.event_ids.append(event.internal_id)
        if len(batch.events) >= _max_size(config):
            await self.flush(batch, partition)
        else:
            await self.keep(batch, partition)
        return True

    def opened(self, batch_key: str) -> Batch | None:
        opened = self._open.get(batch_key)
        return opened[0] if opened is not None else None

    async def keep(self, batch: Batch, partition: int) -> None:
        """Open or replace a buffer under its key (the debouncer keeps its buffers here too)."""
        self._open[batch.batch_key] = (batch, partition)
        await self._store.put_batch(batch, partition)

    async def due(self, batch_key: str, batch_id: str) -> None:
        opened = self._open.get(batch_key)
        if opened is not None and opened[0].batch_id == batch_id:
            await self.flush(*opened)

    async def flush(self, batch: Batch, partition: int) -> None:
        await self._start(batch, partition)
        self._open.pop(batch.batch_key, None)
        await self._store.delete_batch(batch.batch_key)


def key_value(expression: object, variables: dict[str, Any]) -> str:
    """A key expression's value as text; "" without an expression or when it fails."""
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
