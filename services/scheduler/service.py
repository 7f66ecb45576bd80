"""The scheduler's record handler: work due now goes straight to `work`, the rest to the wheel."""

from __future__ import annotations

from headrace.services.scheduler.wheel import TimerWheel

from headrace.core.clock import Clock
from headrace.messages.records import SCHEDULE_CODEC, WORK_CODEC, CancelTimer, Enqueue
from headrace.messages.state import Timer
from headrace.messages.topics import Topics
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
                    await self._log.publish(
                        self._topics.work, item.account_id, WORK_CODEC.encode(item)
                    )
                else:
                    await self.wheel.add(
                        Timer(
                            timer_id=timer_id,
                            partition=record.partition,
                            fire_ms=at_ms,
                            record=WORK_CODEC.encode(item),
                        )
                    )
            case CancelTimer(timer_id=timer_id):
                await self.wheel.cancel(record.partition, timer_id)

    async def _fire(self, timer: Timer) -> None:
        item = WORK_CODEC.decode(timer.record)
        await self._log.publish(self._topics.work, item.account_id, timer.record)

    async def on_assigned(self, partitions: set[int]) -> None:
        await self.wheel.own(partitions)

    async def on_revoked(self, partitions: set[int]) -> None:
        self.wheel.release(partitions)
