"""The runner's flow-control state of one partition, as pure decisions: the open buffers
(batches and debounces, by key) and the rate-limit TATs (by key).

A `RunnerPartitionFlow` is created when the runner is assigned the partition (from the
BatchStore and the FlowStore: `loaded`) and dropped when it is revoked. Each decision takes the
event and the time and returns effects (`flow.runner_effects`) without changing the state; the
runner carries them out in order and hands each one back to `apply`.
"""

from __future__ import annotations

from collections.abc import Iterable

from headrace.flow.batching import add_to_batch, batch_due, batch_key
from headrace.flow.debounce import debounce, debounce_key
from headrace.flow.gcra import Gcra
from headrace.flow.ratelimit import admit_event
from headrace.flow.runner_effects import (
    BufferEffect,
    CancelDue,
    DropBuffer,
    ForgetRateLimit,
    KeepBuffer,
    PutRateLimit,
    RateLimitEffect,
    SetDue,
    Skip,
    StartBuffered,
)
from headrace.messages.model import Batch, Event
from headrace.messages.state import FunctionRecord


class RunnerPartitionFlow:
    def __init__(self, partition: int) -> None:
        self.partition = partition
        self._buffers: dict[str, Batch] = {}
        self._tats: dict[str, float] = {}

    @classmethod
    def loaded(
        cls,
        partition: int,
        *,
        buffers: Iterable[Batch],
        tats: Iterable[tuple[str, float]],
        now_ms: int,
    ) -> tuple[RunnerPartitionFlow, list[ForgetRateLimit]]:
        """The state a new owner finds in the stores, and the past TATs it need not keep."""
        flow = cls(partition)
        for batch in buffers:
            flow._buffers[batch.batch_key] = batch
        forget = []
        for key, tat in tats:
            if tat <= now_ms:
                forget.append(ForgetRateLimit(key))
            else:
                flow._tats[key] = tat
        return flow, forget

    def buffer(self, key: str) -> Batch | None:
        """The batch or debounce open under `key`."""
        return self._buffers.get(key)

    # --- decisions ----------------------------------------------------------------------------

    def rate_limit(self, limit: tuple[str, Gcra], now_ms: int) -> list[RateLimitEffect]:
        """A new event against its rate limit (key, limiter)."""
        return admit_event(limit, self._tats.get(limit[0]), now_ms)

    def batch(
        self, fn: FunctionRecord, event: Event, now_ms: int, new_id: str
    ) -> list[BufferEffect] | None:
        """The event into its batch; None when the batch's `if` leaves it out."""
        key = batch_key(fn, event)
        if key is None:
            return None
        return add_to_batch(self._buffers.get(key), key, fn, event, now_ms, new_id)

    def debounce(
        self, fn: FunctionRecord, event: Event, now_ms: int, new_id: str
    ) -> list[BufferEffect]:
        key = debounce_key(fn, event)
        return debounce(self._buffers.get(key), key, fn, event, now_ms, new_id)

    def due(self, key: str, batch_id: str) -> list[BufferEffect]:
        return batch_due(self._buffers.get(key), batch_id)

    # --- applying what was done ---------------------------------------------------------------

    def apply(self, effect: BufferEffect | RateLimitEffect) -> None:
        """Record an effect the runner has carried out."""
        match effect:
            case KeepBuffer(batch=batch):
                self._buffers[batch.batch_key] = batch
            case DropBuffer(batch_key=key):
                self._buffers.pop(key, None)
            case PutRateLimit(key=key, tat=tat):
                self._tats[key] = tat
            case ForgetRateLimit(key=key):
                self._tats.pop(key, None)
            case SetDue() | CancelDue() | StartBuffered() | Skip():
                pass  # nothing of this partition's state changes
