"""The consume loops of a process: one per (topic, group), started and stopped together."""

from __future__ import annotations

import asyncio
from typing import Any

from headrace.obs.records import observed_batch_handler, observed_handler, sample_lag
from headrace.ports.log import BatchHandler, Handler, Log, PartitionsCallback
from headrace.runtime.consume import ConsumeLoop
from headrace.runtime.dead_letter import DeadLetters


class Loops:
    def __init__(self, log: Log, dead_letter_topic: str, lag_interval_s: float = 2.0) -> None:
        self._log = log
        self._dead_letter_topic = dead_letter_topic
        self._lag_interval_s = lag_interval_s
        self._topics: dict[ConsumeLoop, str] = {}
        self._loops: list[ConsumeLoop] = []
        self._tasks: list[asyncio.Task[Any]] = []

    def add(
        self,
        topic: str,
        group: str,
        handler: Handler,
        *,
        concurrency: int,
        on_assigned: PartitionsCallback | None = None,
        on_revoked: PartitionsCallback | None = None,
    ) -> ConsumeLoop:
        """Handle the records of `topic` one at a time, `concurrency` at once."""
        return self._add(
            topic,
            group,
            on_assigned,
            on_revoked,
            handler=observed_handler(handler, topic, group),
            concurrency=concurrency,
        )

    def add_in_partition_order(
        self,
        topic: str,
        group: str,
        handler: Handler,
        *,
        on_assigned: PartitionsCallback | None = None,
        on_revoked: PartitionsCallback | None = None,
    ) -> ConsumeLoop:
        """Handle the records of `topic` one at a time per partition, in offset order, every
        partition at once: for handlers whose decisions depend on the records before them in
        their partition, so that a slow partition holds up only itself."""
        return self._add(
            topic,
            group,
            on_assigned,
            on_revoked,
            handler=observed_handler(handler, topic, group),
            concurrency=self._log.partitions,
            in_partition_order=True,
        )

    def add_batched(
        self, topic: str, group: str, handler: BatchHandler, *, batch_size: int, concurrency: int
    ) -> ConsumeLoop:
        """Handle the records of `topic` up to `batch_size` at a time, `concurrency` batches at
        once: for records that cost little each, where a call per record would cost most."""
        return self._add(
            topic,
            group,
            None,
            None,
            batch_handler=observed_batch_handler(handler, topic, group),
            batch_size=batch_size,
            concurrency=concurrency,
        )

    def _add(
        self,
        topic: str,
        group: str,
        on_assigned: PartitionsCallback | None,
        on_revoked: PartitionsCallback | None,
        **handling: Any,
    ) -> ConsumeLoop:
        loop: ConsumeLoop | None = None

        async def revoked(partitions: set[int]) -> None:
            # Finish and commit the partition's records before it moves, then let the service
            # drop what it kept for the partition.
            if loop is not None:
                await loop.drain(partitions)
            if on_revoked is not None:
                await on_revoked(partitions)

        consumer = self._log.consumer(topic, group, on_assigned=on_assigned, on_revoked=revoked)
        dead_letters = DeadLetters(self._log, self._dead_letter_topic, group)
        loop = ConsumeLoop(consumer, name=group, dead_letters=dead_letters, **handling)
        self._loops.append(loop)
        self._topics[loop] = topic
        return loop

    async def start(self) -> None:
        for loop in self._loops:
            await loop.consumer.start()
            self._tasks.append(asyncio.create_task(loop.run(), name=f"consume-{loop.name}"))
            self._tasks.append(
                asyncio.create_task(
                    sample_lag(loop.consumer, self._topics[loop], loop.name, self._lag_interval_s),
                    name=f"lag-{loop.name}",
                )
            )

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        return list(self._tasks)

    async def stop(self) -> None:
        for loop in self._loops:
            await loop.stop()
            await loop.consumer.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
