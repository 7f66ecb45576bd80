"""Flow control at the scheduler: concurrency leases on calls, throttle on run starts, priority
among what waits, and the start timeout (the finish timeout counts from the run's start, so the
executor sets it).

Every call (and every run start) passes through `offer` on its way to `work`:
- A StartRun is planned once (`flow.config.plan_run`: concurrency slots, priority, throttle,
  timeouts) from the function's current configuration and its trigger event, and leaves with
  that plan in its `flow`; the executor stamps it on each of the run's calls. A throttled
  start waits for its GCRA.
- A call takes a lease on each of its slots (virtual queues with a limit) before it is
  delivered, or waits. The executor publishes ReleaseLease once the call's outcome is stored;
  a lease that is never released expires after `lease_ms` (the call timeout plus a margin).
  A lease's id is derived from the call, so a call delivered again after a crash finds the
  lease it already holds and goes on with it.

Waiting items sit in a FairQueue (per queue by enqueue time minus priority, queues round robin).
Leases, waiting items and throttle states are written to the FlowStore before anything is
published, and a new owner of the partition reloads them in `own`, so none is lost or doubled
by a crash or a rebalance. Only the owner of an account's partition decides, so no lock is
shared between instances; `_lock` only orders this instance's record handler, timer wheel and
wake-up loop.
"""

from __future__ import annotations

import asyncio
import heapq
from collections import defaultdict
from collections.abc import Awaitable, Callable

import msgspec
import structlog
from headrace.services.scheduler.wheel import TimerWheel

from headrace.core.clock import Clock
from headrace.core.wake import sleep_until_woken
from headrace.flow.config import plan_run
from headrace.flow.fairqueue import FairQueue
from headrace.flow.gcra import Gcra
from headrace.messages.flow import Slot, lease_id, start_timer_id
from headrace.messages.records import DELIVERABLE_CODEC, Call, CancelRun, Deliverable, StartRun
from headrace.messages.state import Timer
from headrace.obs.metrics import count_flow_control_wait
from headrace.ports.stores import Stores

log = structlog.get_logger(__name__)

Send = Callable[[Deliverable, bytes], Awaitable[None]]

LEASE, WAITING, THROTTLE = "lease", "wait", "throttle"


class Lease(msgspec.Struct, kw_only=True):
    lease_id: str
    slots: list[str]
    expires_ms: int


class Waiting(msgspec.Struct, kw_only=True):
    """An item held back by flow control: a call (for `slots`) or a run start (for a throttle)."""

    item_id: str
    queue: str
    order_ms: int
    seq: int
    record: bytes
    slots: list[Slot] = []
    throttle_key: str = ""
    emission_ms: float = 0.0
    capacity: int = 0


_enc = msgspec.msgpack.Encoder()
_lease_dec = msgspec.msgpack.Decoder(Lease)
_waiting_dec = msgspec.msgpack.Decoder(Waiting)
_float_dec = msgspec.msgpack.Decoder(float)


class FlowGate:
    def __init__(
        self, stores: Stores, clock: Clock, wheel: TimerWheel, send: Send, *, lease_ms: int
    ) -> None:
        self._stores = stores
        self._clock = clock
        self._wheel = wheel
        self._send = send
        self._lease_ms = lease_ms
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._next_seq = 0
        self._owned: set[int] = set()
        self._leases: dict[str, tuple[int, Lease]] = {}
        self._held: defaultdict[str, set[str]] = defaultdict(set)
        self._expiry: list[tuple[int, str]] = []
        self._waiting: FairQueue[tuple[int, Waiting]] = FairQueue()
        self._by_run: defaultdict[str, set[str]] = defaultdict(set)
        self._tats: dict[str, tuple[int, float]] = {}

    def _seq(self) -> int:
        self._next_seq += 1
        return self._next_seq

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def held(self, slot_key: str) -> int:
        """How many leases hold this slot now."""
        return len(self._held.get(slot_key, ()))

    # --- the way to `work` --------------------------------------------------------------------

    async def offer(self, partition: int, item: Deliverable, encoded: bytes) -> None:
        """Deliver `item` now, or hold it until flow control lets it go."""
        async with self._lock:
            match item:
                case StartRun():
                    await self._offer_start(partition, item)
                case Call(flow=flow) if flow is not None:
                    await self._offer_call(partition, item, encoded)
                case CancelRun():
                    await self._drop_waiting(partition, item.run_id)
                    await self._send(item, encoded)
                case _:
                    await self._send(item, encoded)

    async def release(self, partition: int, lease: str) -> None:
        async with self._lock:
            if lease in self._leases:
                await self._free(lease)
                await self._pump()

    async def _offer_start(self, partition: int, item: StartRun) -> None:
        item_id = f"{item.run_id}:start"
        if item_id in self._waiting:
            return
        fn = await self._stores.get_function(item.account_id, item.fn_id)
        if fn is None or item.flow is not None:
            # The executor fails a run whose function is gone; nothing to plan for it.
            await self._send(item, DELIVERABLE_CODEC.encode(item))
            return
        plan = plan_run(
            item.account_id, item.fn_id, fn.config, item.events[0] if item.events else {}
        )
        item.flow = plan.flow
        encoded = DELIVERABLE_CODEC.encode(item)
        now = self._clock.now_ms()
        if plan.start_timeout_ms:
            await self._start_timeout(partition, item, now + plan.start_timeout_ms)
        if plan.throttle is None:
            await self._send(item, encoded)
            return
        key, gcra = plan.throttle
        queue = f"throttle:{key}"
        if not self._waiting.has_queue(queue) and await self._throttle(partition, key, gcra):
            await self._send(item, encoded)
            return
        await self._wait(
            partition,
            Waiting(
                item_id=item_id,
                queue=queue,
                order_ms=now - plan.flow.priority_ms,
                seq=self._seq(),
                record=encoded,
                throttle_key=key,
                emission_ms=gcra.emission_ms,
                capacity=gcra.capacity,
            ),
            item.run_id,
            plan.flow.fn_id,
        )

    async def _start_timeout(self, partition: int, item: StartRun, at_ms: int) -> None:
        cancel = CancelRun(
            account_id=item.account_id,
            run_id=item.run_id,
            reason="the run exceeded its start timeout",
        )
        timer_id = start_timer_id(item.run_id)
        timer = Timer(
            timer_id=timer_id, partition=partition, fire_ms=at_ms, record=_enc.encode(cancel)
        )
        await self._wheel.add(timer)

    async def _offer_call(self, partition: int, item: Call, encoded: bytes) -> None:
        assert item.flow is not None
        lease = lease_id(item.run_id, item.target, item.seq, item.attempt)
        if lease in self._leases:
            # Delivered again (a crash upstream): it goes on with the lease it has.
            await self._send(item, encoded)
            return
        if lease in self._waiting:
            return
        slots = item.flow.slots
        queue = "slots:" + "|".join(slot.key for slot in slots)
        if not self._waiting.has_queue(queue) and self._fits(slots):
            await self._take(partition, lease, item)
            await self._send(item, encoded)
            return
        now = self._clock.now_ms()
        waiting = Waiting(
            item_id=lease,
            queue=queue,
            order_ms=now - item.flow.priority_ms,
            seq=self._seq(),
            record=encoded,
            slots=slots,
        )
        await self._wait(partition, waiting, item.run_id, item.flow.fn_id)

    async def _wait(self, partition: int, waiting: Waiting, run_id: str, fn_id: str) -> None:
        """The one place where a run or a call starts waiting for flow control."""
        count_flow_control_wait("throttle" if waiting.throttle_key else "concurrency", fn_id)
        await self._stores.put_flow(partition, WAITING, waiting.item_id, _enc.encode(waiting))
        self._remember_waiting(partition, waiting)
        self._by_run[run_id].add(waiting.item_id)
        self._wake.set()

    def _remember_waiting(self, partition: int, waiting: Waiting) -> None:
        self._waiting.push(
            waiting.queue, waiting.item_id, waiting.order_ms, waiting.seq, (partition, waiting)
        )

    async def _drop_waiting(self, partition: int, run_id: str) -> None:
        """A cancelled run's waiting calls will never be useful; a run start still waiting is
        delivered first, so that the run exists to be cancelled and shows why it ended."""
        for item_id in sorted(self._by_run.pop(run_id, ())):
            found = self._waiting.remove(item_id)
            if found is None:
                continue
            _, waiting = found
            if waiting.throttle_key:
                await self._send(DELIVERABLE_CODEC.decode(waiting.record), waiting.record)
            await self._stores.delete_flow(partition, WAITING, item_id)

    # --- concurrency ------------------------------------------------------------------------

    def _fits(self, slots: list[Slot]) -> bool:
        return all(len(self._held.get(slot.key, ())) < slot.limit for slot in slots)

    async def _take(self, partition: int, lease: str, item: Call) -> None:
        assert item.flow is not None
        record = Lease(
            lease_id=lease,
            slots=[slot.key for slot in item.flow.slots],
            expires_ms=self._clock.now_ms() + self._lease_ms,
        )
        await self._stores.put_flow(partition, LEASE, lease, _enc.encode(record))
        self._hold(partition, record)
        if item.flow.start_timeout and item.target is None and item.seq == 0 and item.attempt == 0:
            # The run's first call starts: its start timeout no longer applies.
            await self._wheel.cancel(partition, start_timer_id(item.run_id))

    def _hold(self, partition: int, lease: Lease) -> None:
        self._leases[lease.lease_id] = (partition, lease)
        for key in lease.slots:
            self._held[key].add(lease.lease_id)
        heapq.heappush(self._expiry, (lease.expires_ms, lease.lease_id))

    async def _free(self, lease_id: str) -> None:
        partition, lease = self._leases.pop(lease_id)
        for key in lease.slots:
            holders = self._held.get(key)
            if holders is not None:
                holders.discard(lease_id)
                if not holders:
                    del self._held[key]
        await self._stores.delete_flow(partition, LEASE, lease_id)

    async def _expire(self) -> None:
        """Free leases whose release never came (lost with a crashed executor's output)."""
        now = self._clock.now_ms()
        while self._expiry and self._expiry[0][0] <= now:
            expires_ms, lease = heapq.heappop(self._expiry)
            found = self._leases.get(lease)
            if found is not None and found[1].expires_ms == expires_ms:
                log.warning("concurrency lease expired unreleased", lease_id=lease)
                await self._free(lease)

    # --- throttle -----------------------------------------------------------------------------

    async def _throttle(self, partition: int, key: str, gcra: Gcra) -> bool:
        found = self._tats.get(key)
        admitted, tat = gcra.admit(found[1] if found else None, self._clock.now_ms())
        if admitted:
            self._tats[key] = (partition, tat)
            await self._stores.put_flow(partition, THROTTLE, key, _enc.encode(tat))
        return admitted

    # --- letting waiting items go -------------------------------------------------------------

    async def _pump(self) -> None:
        """Deliver every waiting item that flow control now admits, queues served in turn."""
        await self._expire()
        progressed = True
        while progressed:
            progressed = False
            for queue, item_id, (partition, waiting) in self._waiting.heads():
                if waiting.throttle_key:
                    gcra = Gcra(waiting.emission_ms, waiting.capacity)
                    if not await self._throttle(partition, waiting.throttle_key, gcra):
                        continue
                elif item_id not in self._leases and not self._fits(waiting.slots):
                    continue
                item = DELIVERABLE_CODEC.decode(waiting.record)
                # Forgotten only once delivered: should Kafka or Cassandra fail on the way, the
                # item is still at the head of its queue (holding its lease) for the next pump.
                if isinstance(item, StartRun):
                    await self._send(item, waiting.record)
                elif isinstance(item, Call):
                    if item_id not in self._leases:
                        await self._take(partition, item_id, item)
                    await self._send(item, waiting.record)
                await self._stores.delete_flow(partition, WAITING, item_id)
                self._waiting.pop(queue)
                self._by_run[item.run_id].discard(item_id)
                if not self._by_run[item.run_id]:
                    del self._by_run[item.run_id]
                progressed = True

    def _next_wake_ms(self) -> int | None:
        """When waiting items may next be admitted without a record arriving: a throttle's next
        slot, or the earliest lease expiry."""
        times = []
        for _, _, (_, waiting) in self._waiting.heads():
            if waiting.throttle_key:
                found = self._tats.get(waiting.throttle_key)
                gcra = Gcra(waiting.emission_ms, waiting.capacity)
                times.append(gcra.next_at(found[1] if found else None, self._clock.now_ms()))
        if self._waiting and self._expiry:
            times.append(self._expiry[0][0])
        return min(times) if times else None

    async def admit(self) -> int | None:
        """Deliver what flow control admits now; return when to look again without a record
        arriving (None: only when one arrives)."""
        async with self._lock:
            await self._pump()
            return self._next_wake_ms()

    async def run(self) -> None:
        while True:
            # Cleared first: anything that starts waiting meanwhile wakes the next round.
            self._wake.clear()
            await sleep_until_woken(self._clock, await self.admit(), self._wake)

    # --- partition ownership ------------------------------------------------------------------

    async def own(self, partitions: set[int]) -> None:
        async with self._lock:
            for partition in partitions:
                await self._load(partition)
            await self._pump()
        self._wake.set()

    async def _load(self, partition: int) -> None:
        self._owned.add(partition)
        for _, body in await self._stores.flow_entries(partition, LEASE):
            self._hold(partition, _lease_dec.decode(body))
        for key, body in await self._stores.flow_entries(partition, THROTTLE):
            self._tats[key] = (partition, _float_dec.decode(body))
        for item_id, body in await self._stores.flow_entries(partition, WAITING):
            waiting = _waiting_dec.decode(body)
            if item_id in self._leases:
                # Admitted just before a crash, its waiting entry not yet deleted: deliver it
                # again with the lease it holds.
                await self._send(DELIVERABLE_CODEC.decode(waiting.record), waiting.record)
                await self._stores.delete_flow(partition, WAITING, item_id)
                continue
            self._next_seq = max(self._next_seq, waiting.seq + 1)
            self._remember_waiting(partition, waiting)
            self._by_run[DELIVERABLE_CODEC.decode(waiting.record).run_id].add(item_id)

    def release_partitions(self, partitions: set[int]) -> None:
        self._owned -= partitions
        for lease, (partition, _) in list(self._leases.items()):
            if partition in partitions:
                lease_record = self._leases.pop(lease)[1]
                for key in lease_record.slots:
                    self._held[key].discard(lease)
                    if not self._held[key]:
                        del self._held[key]
        for item_id, (partition, _) in list(self._waiting):
            if partition in partitions:
                self._waiting.remove(item_id)
        still = {item_id for item_id, _ in self._waiting}
        for run_id, ids in list(self._by_run.items()):
            ids &= still
            if not ids:
                del self._by_run[run_id]
        for key, (partition, _) in list(self._tats.items()):
            if partition in partitions:
                del self._tats[key]
