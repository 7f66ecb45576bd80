"""The scheduler's record handler: work due now goes straight to `work`, the rest to the wheel."""

from __future__ import annotations

from typing import Any

from headrace.services.scheduler.wheel import TimerWheel

from headrace.core.clock import Clock
from headrace.messages.records import (
    DELIVERABLE_CODEC,
    RUNNER_DUE,
    SCHEDULE_CODEC,
    BatchDue,
    CancelTimer,
    CronDue,
    Deliverable,
    Enqueue,
)
from headrace.messages.state import Timer
from headrace.messages.topics import Topics
from headrace.obs.tracing import run_span
from headrace.ports.log import Log, LogRecord
from headrace.ports.stores import Stores


class Scheduler:
    def __init__(
        self,
        log_port: Log,
        topics: Topics,
        stores: Stores,
        clock: Clock,
        *,
        window_ms: int = 60_000,
    ) -> None:
        self._log = log_port
        self._topics = topics
        self._clock = clock
        self.wheel = TimerWheel(stores, clock, self._fire, window_ms=window_ms)

    async def handle(self, record: LogRecord) -> None:
        match SCHEDULE_CODEC.decode(record.value):
            case Enqueue(timer_id=timer_id, item=item, at_ms=at_ms):
                if at_ms <= self._clock.now_ms():
                    await self._deliver(item, DELIVERABLE_CODEC.encode(item), timer_id)
                else:
                    await self.wheel.add(
                        Timer(
                            timer_id=timer_id,
                            partition=record.partition,
                            fire_ms=at_ms,
                            record=DELIVERABLE_CODEC.encode(item),
                        )
                    )
            case CancelTimer(timer_id=timer_id):
                await self.wheel.cancel(record.partition, timer_id)

    async def _fire(self, timer: Timer) -> None:
        await self._deliver(
            DELIVERABLE_CODEC.decode(timer.record), timer.record, timer.timer_id, timer.fire_ms
        )

    async def _deliver(
        self, item: Deliverable, encoded: bytes, timer_id: str, due_ms: int | None = None
    ) -> None:
        # Tagged msgpack is the same whichever union encodes it, so the bytes go as they are.
        topic = self._topics.events if isinstance(item, RUNNER_DUE) else self._topics.work
        if isinstance(item, CronDue):  # no run yet: the runner derives it from the tick
            await self._log.publish(topic, item.account_id, encoded)
            return
        attributes: dict[str, Any] = {
            "headrace.account_id": item.account_id,
            "headrace.timer_id": timer_id,
            "headrace.record": type(item).__name__,
        }
        if due_ms is not None:
            attributes["headrace.timer.lateness_ms"] = max(self._clock.now_ms() - due_ms, 0)
        # A batch's run id is its batch id.
        run_id = item.batch_id if isinstance(item, BatchDue) else item.run_id
        with run_span("deliver", run_id, attributes):
            await self._log.publish(topic, item.account_id, encoded)

    async def on_assigned(self, partitions: set[int]) -> None:
        await self.wheel.own(partitions)

    async def on_revoked(self, partitions: set[int]) -> None:
        await self.wheel.release(partitions)
