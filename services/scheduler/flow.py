"""Flow control at the scheduler: concurrency leases on calls, throttle on run starts, priority
among what waits, and the start timeout (the finish timeout counts from the run's start, so the
executor sets it).

Every call (and every run start) passes through `offer` on its way to `work`:
- A StartRun is planned once (`flow.config.plan_run`: concurrency slots, priority, throttle,
  timeouts, the run's flow key) from the function's current configuration and its trigger
  event, and leaves with that plan in its `flow`; the executor stamps it on each of the run's
  calls and keys the run's `schedule` records by the flow key. A StartRun that arrived on
  another partition than its flow key's (published by a runner of an older version, or before
  the function's configuration changed) is forwarded there unplanned. A throttled start waits
  for its GCRA.
- A resume the executor scheduled (a sleep's end, a wait's timeout) goes at once, with the lease
  of the call after it when its slots have room (then the executor makes that call itself).
- A call takes a lease on each of its slots before it is delivered, or waits. The executor
  publishes ReleaseLease once the call's outcome is stored; a lease that is never released
  expires after `lease_ms` (the call timeout plus a margin).

The decisions are `flow.partition.PartitionFlow`'s, one per owned partition, created from the
FlowStore in `own` and dropped on revocation; this gate loads state, asks, and carries out the
effects in order: leases, waiting items and throttle states are written to the FlowStore before
anything is published, so none is lost or doubled by a crash or a rebalance. Only the owner of
the partition of a run's flow key decides (`flow.config.flow_key`: its function, or its account
when a limit is shared across functions), so no lock is shared between instances, and one
account's functions spread over the partitions and scheduler instances. Within this instance a
lock per partition orders what the partition's records, its timers and the wake-up loop ask of
its PartitionFlow; partitions go on at once, as their records do (runtime/consume.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import msgspec
import structlog
from headrace.services.scheduler.wheel import TimerWheel

from headrace.core.clock import Clock
from headrace.core.wake import sleep_until_woken
from headrace.flow.config import plan_run
from headrace.flow.effects import (
    AddTimer,
    CancelTimer,
    Deliver,
    Effect,
    FreeLease,
    HoldLease,
    PutThrottle,
    StartWaiting,
    StopWaiting,
)
from headrace.flow.entries import Lease, Waiting
from headrace.flow.partition import PartitionFlow
from headrace.messages.records import (
    DELIVERABLE_CODEC,
    Call,
    CancelRun,
    Deliverable,
    Resume,
    StartRun,
)
from headrace.messages.topics import partition_for
from headrace.obs.metrics import count_flow_control_wait
from headrace.ports.stores import Stores

log = structlog.get_logger(__name__)

Send = Callable[[Deliverable, bytes], Awaitable[None]]
# Publish a StartRun to `schedule` again, under the given key.
Forward = Callable[[StartRun, str], Awaitable[None]]

LEASE, WAITING, THROTTLE = "lease", "wait", "throttle"

_enc = msgspec.msgpack.Encoder()
_lease_dec = msgspec.msgpack.Decoder(Lease)
_waiting_dec = msgspec.msgpack.Decoder(Waiting)
_float_dec = msgspec.msgpack.Decoder(float)


class FlowGate:
    def __init__(
        self,
        stores: Stores,
        clock: Clock,
        wheel: TimerWheel,
        send: Send,
        forward: Forward,
        *,
        lease_ms: int,
        partitions: int,
    ) -> None:
        """`partitions`: how many the `schedule` topic has, to tell where a flow key belongs."""
        self._stores = stores
        self._clock = clock
        self._wheel = wheel
        self._send = send
        self._forward = forward
        self._lease_ms = lease_ms
        self._partitions = partitions
        # One per partition ever owned (as many as the topic has), kept across ownerships.
        self._locks: dict[int, asyncio.Lock] = {}
        self._wake = asyncio.Event()
        self._flows: dict[int, PartitionFlow] = {}

    @property
    def waiting(self) -> int:
        return sum(flow.waiting for flow in self._flows.values())

    def held(self, slot_key: str) -> int:
        """How many leases hold this slot now."""
        return sum(flow.held(slot_key) for flow in self._flows.values())

    def _lock(self, partition: int) -> asyncio.Lock:
        return self._locks.setdefault(partition, asyncio.Lock())

    def _flow(self, partition: int) -> PartitionFlow:
        # Loaded in `own`; a gate driven without an assignment (a unit test) starts empty.
        flow = self._flows.get(partition)
        if flow is None:
            flow = self._flows[partition] = PartitionFlow(partition, lease_ms=self._lease_ms)
        return flow

    # --- the way to `work` --------------------------------------------------------------------

    async def offer(self, partition: int, item: Deliverable, encoded: bytes) -> None:
        """Deliver `item` now, or hold it until flow control lets it go."""
        async with self._lock(partition):
            flow = self._flow(partition)
            match item:
                case StartRun():
                    await self._offer_start(flow, item)
                case Call(flow=run_flow) if run_flow is not None:
                    await self._apply(flow, flow.offer_call(item, encoded, self._clock.now_ms()))
                case Resume(flow=run_flow) if run_flow is not None:
                    await self._apply(flow, flow.offer_resume(item, self._clock.now_ms()))
                case CancelRun():
                    await self._apply(flow, flow.cancel(item.run_id))
                    await self._send(item, encoded)
                case _:
                    await self._send(item, encoded)

    async def release(self, partition: int, lease: str) -> None:
        async with self._lock(partition):
            flow = self._flow(partition)
            effects = flow.release(lease)
            if effects:
                await self._apply(flow, effects)
                # A lease's slots are its account's, so only its partition's waiting items
                # can take them.
                await self._pump(flow)

    async def _offer_start(self, flow: PartitionFlow, item: StartRun) -> None:
        if flow.start_waits(item.run_id):
            return
        if item.flow is not None:
            # Planned already: nothing to plan again, nor a function to read for it.
            await self._send(item, DELIVERABLE_CODEC.encode(item))
            return
        fn = item.function or await self._stores.get_function(item.account_id, item.fn_id)
        if fn is None:
            # The executor fails a run whose function is gone; nothing to plan for it.
            await self._send(item, DELIVERABLE_CODEC.encode(item))
            return
        plan = plan_run(
            item.account_id, item.fn_id, fn.config, item.events[0] if item.events else {}
        )
        if partition_for(plan.flow.key, self._partitions) != flow.partition:
            await self._forward(item, plan.flow.key)
            return
        await self._apply(flow, flow.offer_start(item, plan, self._clock.now_ms()))

    async def _apply(self, flow: PartitionFlow, effects: list[Effect]) -> None:
        """Carry out each effect, then record it in the partition's state (see `flow.effects`)."""
        partition = flow.partition
        for effect in effects:
            match effect:
                case HoldLease(lease=lease):
                    await self._stores.put_flow(
                        partition, LEASE, lease.lease_id, _enc.encode(lease)
                    )
                case FreeLease(lease_id=lease_id, expired=expired):
                    if expired:
                        log.warning("concurrency lease expired unreleased", lease_id=lease_id)
                    await self._stores.delete_flow(partition, LEASE, lease_id)
                case StartWaiting(waiting=waiting, fn_id=fn_id):
                    # The one place where a run or a call starts waiting for flow control.
                    kind = "throttle" if waiting.throttle_key else "concurrency"
                    count_flow_control_wait(kind, fn_id)
                    await self._stores.put_flow(
                        partition, WAITING, waiting.item_id, _enc.encode(waiting)
                    )
                case StopWaiting(item_id=item_id):
                    await self._stores.delete_flow(partition, WAITING, item_id)
                case PutThrottle(key=key, tat=tat):
                    await self._stores.put_flow(partition, THROTTLE, key, _enc.encode(tat))
                case Deliver(item=item, record=record):
                    await self._send(item, record)
                case AddTimer(timer=timer):
                    await self._wheel.add(timer)
                case CancelTimer(timer_id=timer_id):
                    await self._wheel.cancel(partition, timer_id)
            flow.apply(effect)
            if isinstance(effect, StartWaiting):
                self._wake.set()

    # --- letting waiting items go -------------------------------------------------------------

    async def _pump(self, flow: PartitionFlow) -> None:
        """Deliver every waiting item of the partition that flow control now admits, queues
        served in turn."""
        now = self._clock.now_ms()
        while effects := flow.next_step(now):
            await self._apply(flow, effects)

    async def admit(self) -> int | None:
        """Deliver what flow control admits now; return when to look again without a record
        arriving (None: only when one arrives)."""
        # Partitions at once: one whose lock a slow record holds delays only its own.
        wakes = await asyncio.gather(*(self._admit(partition) for partition in list(self._flows)))
        return min((at for at in wakes if at is not None), default=None)

    async def _admit(self, partition: int) -> int | None:
        async with self._lock(partition):
            flow = self._flows.get(partition)
            if flow is None:
                return None  # released while this waited for the lock
            await self._pump(flow)
            return flow.next_wake(self._clock.now_ms())

    async def run(self) -> None:
        while True:
            # Cleared first: anything that starts waiting meanwhile wakes the next round.
            self._wake.clear()
            await sleep_until_woken(self._clock, await self.admit(), self._wake)

    # --- partition ownership ------------------------------------------------------------------

    async def own(self, partitions: set[int]) -> None:
        for partition in partitions:
            async with self._lock(partition):
                await self._pump(await self._load(partition))
        self._wake.set()

    async def _load(self, partition: int) -> PartitionFlow:
        entries = self._stores.flow_entries
        flow, effects = PartitionFlow.loaded(
            partition,
            lease_ms=self._lease_ms,
            leases=[_lease_dec.decode(body) for _, body in await entries(partition, LEASE)],
            tats=[
                (key, _float_dec.decode(body)) for key, body in await entries(partition, THROTTLE)
            ],
            waiting=[_waiting_dec.decode(body) for _, body in await entries(partition, WAITING)],
        )
        self._flows[partition] = flow
        await self._apply(flow, effects)
        return flow

    async def release_partitions(self, partitions: set[int]) -> None:
        """Drop the partitions' state, each once what its lock's holder does is done (the wake-up
        loop or a timer may be delivering for it), so the next owner loads it complete."""
        for partition in partitions:
            async with self._lock(partition):
                self._flows.pop(partition, None)
