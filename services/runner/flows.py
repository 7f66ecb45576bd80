"""The runner's flow state: one `flow.runner_partition.RunnerPartitionFlow` per owned partition
(open batches and debounces, rate-limit TATs), loaded from the stores when the partition is
assigned and dropped when it is revoked, so a new owner carries on where the last one stopped."""

from __future__ import annotations

import msgspec

from headrace.core.clock import Clock
from headrace.flow.runner_partition import RunnerPartitionFlow
from headrace.ports.stores import Stores

RATE_LIMIT = "ratelimit"  # the FlowStore kind of the rate-limit TATs

_float_dec = msgspec.msgpack.Decoder(float)


class RunnerFlows:
    def __init__(self, stores: Stores, clock: Clock) -> None:
        self._stores = stores
        self._clock = clock
        self._flows: dict[int, RunnerPartitionFlow] = {}

    def of(self, partition: int) -> RunnerPartitionFlow:
        # Loaded in `own`; a runner driven without an assignment starts empty.
        flow = self._flows.get(partition)
        if flow is None:
            flow = self._flows[partition] = RunnerPartitionFlow(partition)
        return flow

    async def own(self, partitions: set[int]) -> None:
        for partition in partitions:
            entries = await self._stores.flow_entries(partition, RATE_LIMIT)
            flow, past = RunnerPartitionFlow.loaded(
                partition,
                buffers=await self._stores.batches_for_partition(partition),
                tats=[(key, _float_dec.decode(body)) for key, body in entries],
                now_ms=self._clock.now_ms(),
            )
            for forget in past:
                await self._stores.delete_flow(partition, RATE_LIMIT, forget.key)
                flow.apply(forget)
            self._flows[partition] = flow

    def release(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._flows.pop(partition, None)
