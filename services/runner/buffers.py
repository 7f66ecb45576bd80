"""Batches (`batchEvents`) and debounces (`debounce`), handled for the partition's flow state:
each event or due timer asks `RunnerPartitionFlow` (`flow.batching`, `flow.debounce`), and the
effects are carried out here, the BatchStore written before the state is changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from headrace.services.runner.flows import RunnerFlows

from headrace.core.clock import Clock
from headrace.core.ids import new_ulid
from headrace.flow.runner_effects import (
    BufferEffect,
    CancelDue,
    DropBuffer,
    KeepBuffer,
    SetDue,
    StartBuffered,
)
from headrace.flow.runner_partition import RunnerPartitionFlow
from headrace.messages.model import Batch, Event
from headrace.messages.state import FunctionRecord
from headrace.ports.stores import BatchStore

ScheduleDue = Callable[[Batch, int], Awaitable[None]]
CancelDueTimer = Callable[[Batch], Awaitable[None]]
StartBatch = Callable[[Batch, int], Awaitable[None]]


class Buffers:
    def __init__(
        self,
        store: BatchStore,
        clock: Clock,
        flows: RunnerFlows,
        schedule_due: ScheduleDue,
        cancel_due: CancelDueTimer,
        start: StartBatch,
    ) -> None:
        self._store = store
        self._clock = clock
        self._flows = flows
        self._schedule_due = schedule_due
        self._cancel_due = cancel_due
        self._start = start

    async def batch(self, fn: FunctionRecord, event: Event, partition: int) -> bool:
        """Put the event in its batch; False when the batch's `if` leaves it out (it then runs
        on its own, as Inngest does)."""
        flow = self._flows.of(partition)
        now = self._clock.now_ms()
        effects = flow.batch(fn, event, now, new_ulid(now))
        if effects is None:
            return False
        await self._apply(flow, effects)
        return True

    async def debounce(self, fn: FunctionRecord, event: Event, partition: int) -> None:
        flow = self._flows.of(partition)
        now = self._clock.now_ms()
        await self._apply(flow, flow.debounce(fn, event, now, new_ulid(now)))

    async def due(self, batch_key: str, batch_id: str, partition: int) -> None:
        flow = self._flows.of(partition)
        await self._apply(flow, flow.due(batch_key, batch_id))

    async def _apply(self, flow: RunnerPartitionFlow, effects: list[BufferEffect]) -> None:
        for effect in effects:
            match effect:
                case SetDue(batch=batch, at_ms=at_ms):
                    await self._schedule_due(batch, at_ms)
                case CancelDue(batch=batch):
                    await self._cancel_due(batch)
                case KeepBuffer(batch=batch):
                    await self._store.put_batch(batch, flow.partition)
                case StartBuffered(batch=batch):
                    await self._start(batch, flow.partition)
                case DropBuffer(batch_key=key):
                    await self._store.delete_batch(key)
            flow.apply(effect)
