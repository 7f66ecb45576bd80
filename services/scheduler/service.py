"""The scheduler's record handler: work due now goes to `work` through flow control (see
`flow.FlowGate`), the rest to the wheel, which hands it to flow control when it fires."""

from __future__ import annotations

from typing import Any

from headrace.services.scheduler.flow import FlowGate
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
    ReleaseLease,
    StartRun,
)
from headrace.messages.state import Timer
from headrace.messages.topics import Topics
from headrace.obs.tracing import run_span
from headrace.ports.log import Log, LogRecord
from headrace.ports.stores import Stores

# A lease outlives its call's timeout by this much before it is taken back.
LEASE_MARGIN_MS = 60_000


def lease_ms(call_timeout_s: float) -> int:
    return int(call_timeout_s * 1000) + LEASE_MARGIN_MS


class Scheduler:
    def __init__(
        self,
        log_port: Log,
        topics: Topics,
        stores: Stores,
        clock: Clock,
        *,
        window_ms: int = 60_000,
        lease_ms: int = 360_000,
    ) -> None:
        """`lease_ms`: how long a concurrency lease lasts unreleased (call timeout + margin)."""
        self._log = log_port
        self._topics = topics
        self._clock = clock
        self.wheel = TimerWheel(stores, clock, self._fire, window_ms=window_ms)
        self.flow = FlowGate(
            stores,
            clock,
            self.wheel,
            self._send,
            self._forward,
            lease_ms=lease_ms,
            partitions=log_port.partitions,
        )

    async def handle(self, record: LogRecord) -> None:
        match SCHEDULE_CODEC.decode(record.value):
            case Enqueue(timer_id=timer_id, item=item, at_ms=at_ms):
                if at_ms <= self._clock.now_ms():
                    await self.flow.offer(record.partition, item, DELIVERABLE_CODEC.encode(item))
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
            case ReleaseLease(lease_id=lease_id):
                await self.flow.release(record.partition, lease_id)

    async def _fire(self, timer: Timer) -> None:
        await self.flow.offer(timer.partition, DELIVERABLE_CODEC.decode(timer.record), timer.record)

    async def _send(self, item: Deliverable, encoded: bytes) -> None:
        # Tagged msgpack is the same whichever union encodes it, so the bytes go as they are.
        topic = self._topics.events if isinstance(item, RUNNER_DUE) else self._topics.work
        if isinstance(item, CronDue):  # no run yet: the runner derives it from the tick
            await self._log.publish(topic, item.account_id, encoded)
            return
        attributes: dict[str, Any] = {
            "headrace.account_id": item.account_id,
            "headrace.record": type(item).__name__,
        }
        # A batch's run id is its batch id.
        run_id = item.batch_id if isinstance(item, BatchDue) else item.run_id
        # `work` by run: an account's runs spread over every executor, each run's records in
        # order on one partition (the executor's epochs fence per partition, so per run).
        key = item.account_id if topic == self._topics.events else run_id
        with run_span("deliver", run_id, attributes):
            await self._log.publish(topic, key, encoded)

    async def _forward(self, item: StartRun, key: str) -> None:
        record = Enqueue(timer_id=f"{item.run_id}:start", item=item)
        await self._log.publish(self._topics.schedule, key, SCHEDULE_CODEC.encode(record))

    async def on_assigned(self, partitions: set[int]) -> None:
        await self.wheel.own(partitions)
        await self.flow.own(partitions)

    async def on_revoked(self, partitions: set[int]) -> None:
        await self.wheel.release(partitions)
        await self.flow.release_partitions(partitions)
