"""Flow control of one scheduler partition, as pure decisions: concurrency leases on calls,
throttle on run starts, and the fair queue of what waits.

A `PartitionFlow` is created when the scheduler is assigned the partition (from the FlowStore:
`loaded`) and dropped when it is revoked. Each decision takes the time as an argument and returns
effects (`flow.effects`) without changing the state; the scheduler carries them out in order and
hands each one back to `apply`. A decision therefore sees what the previous ones did only once
they are applied, which is why admissions come one at a time (`next_step`).

- A call takes a lease on each of its slots (virtual queues with a limit), or waits. A lease's id
  is derived from the call, so a call delivered again finds the lease it holds and goes on.
- A throttled run start goes when its GCRA admits it, or waits. A run start that goes takes the
  lease of the run's first call with it when its slots have room and nothing waits for them;
  the executor then makes that call itself (the fast path, `flow.fast_path`). Otherwise it goes
  without, and its first call waits for the slots like any other.
- A resume the executor scheduled (a sleep's end, a wait's timeout) takes the lease of the call
  that follows it on the same terms, and the executor makes that call itself; otherwise it
  goes without, and that call waits for the slots like any other. A resume never waits.
- Waiting items are served by `FairQueue`: per queue by enqueue time minus priority, queues
  round robin. A lease never released expires `lease_ms` after it was taken.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable

import msgspec

from headrace.flow.config import RunPlan
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
from headrace.flow.fairqueue import FairQueue
from headrace.flow.gcra import Gcra
from headrace.messages.flow import Slot, lease_id, resume_lease_id, start_timer_id
from headrace.messages.records import DELIVERABLE_CODEC, Call, CancelRun, Resume, StartRun
from headrace.messages.state import Timer


def _start_item_id(run_id: str) -> str:
    return f"{run_id}:start"


def _slots_queue(slots: list[Slot]) -> str:
    """The queue of what waits for these slots."""
    return "slots:" + "|".join(slot.key for slot in slots)


class PartitionFlow:
    def __init__(self, partition: int, *, lease_ms: int) -> None:
        self.partition = partition
        self._lease_ms = lease_ms
        self._next_seq = 0
        self._leases: dict[str, Lease] = {}
        self._held: defaultdict[str, set[str]] = defaultdict(set)
        # (expires_ms, lease id); an entry whose lease is gone or renewed is skipped.
        self._expiry: list[tuple[int, str]] = []
        self._waiting: FairQueue[Waiting] = FairQueue()
        self._by_run: defaultdict[str, set[str]] = defaultdict(set)
        self._tats: dict[str, float] = {}

    @classmethod
    def loaded(
        cls,
        partition: int,
        *,
        lease_ms: int,
        leases: Iterable[Lease],
        tats: Iterable[tuple[str, float]],
        waiting: Iterable[Waiting],
    ) -> tuple[PartitionFlow, list[Effect]]:
        """The state a new owner finds in the FlowStore, and what it must do before serving."""
        flow = cls(partition, lease_ms=lease_ms)
        for lease in leases:
            flow._hold(lease)
        flow._tats.update(tats)
        effects: list[Effect] = []
        for entry in waiting:
            item = DELIVERABLE_CODEC.decode(entry.record)
            if entry.item_id in flow._leases:
                # Admitted just before a crash, its waiting entry not yet deleted: deliver it
                # again with the lease it holds.
                effects.append(Deliver(item, entry.record))
                effects.append(StopWaiting(entry.item_id, entry.queue, item.run_id, served=False))
                continue
            flow._next_seq = max(flow._next_seq, entry.seq + 1)
            flow._remember_waiting(entry, item.run_id)
        return flow, effects

    # --- what it holds ------------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def held(self, slot_key: str) -> int:
        """How many leases hold this slot now."""
        return len(self._held.get(slot_key, ()))

    def start_waits(self, run_id: str) -> bool:
        """Whether this run's start already waits (a StartRun delivered again)."""
        return _start_item_id(run_id) in self._waiting

    # --- decisions ----------------------------------------------------------------------------

    def offer_start(self, item: StartRun, plan: RunPlan, now_ms: int) -> list[Effect]:
        """A run start planned from its function's configuration: on its way, or waiting for
        its throttle. Its start timeout counts from now."""
        item.flow = plan.flow
        effects: list[Effect] = []
        if plan.start_timeout_ms:
            effects.append(AddTimer(self._start_timeout(item, now_ms + plan.start_timeout_ms)))
        if plan.throttle is None:
            return [*effects, *self._start(item, now_ms)]
        key, gcra = plan.throttle
        queue = f"throttle:{key}"
        if not self._waiting.has_queue(queue):
            admitted, tat = gcra.admit(self._tats.get(key), now_ms)
            if admitted:
                return [*effects, PutThrottle(key, tat), *self._start(item, now_ms)]
        waiting = Waiting(
            item_id=_start_item_id(item.run_id),
            queue=queue,
            order_ms=now_ms - plan.flow.priority_ms,
            seq=self._seq(),
            # Without its function's record: the executor reads it when the run is created, as
            # a sync while the start waits may change or remove the function.
            record=DELIVERABLE_CODEC.encode(msgspec.structs.replace(item, function=None)),
            throttle_key=key,
            emission_ms=gcra.emission_ms,
            capacity=gcra.capacity,
        )
        return [*effects, StartWaiting(waiting, item.run_id, plan.flow.fn_id)]

    def offer_call(self, item: Call, encoded: bytes, now_ms: int) -> list[Effect]:
        """A call of a planned run: delivered with a lease on its slots, or waiting for them."""
        assert item.flow is not None
        lease = lease_id(item.run_id, item.target, item.seq, item.attempt)
        if lease in self._leases:
            # Delivered again (a crash upstream): it goes on with the lease it has.
            return [Deliver(item, encoded)]
        if lease in self._waiting:
            return []
        slots = item.flow.slots
        queue = _slots_queue(slots)
        if not self._waiting.has_queue(queue) and self._fits(slots):
            return [*self._take(lease, item, now_ms), Deliver(item, encoded)]
        waiting = Waiting(
            item_id=lease,
            queue=queue,
            order_ms=now_ms - item.flow.priority_ms,
            seq=self._seq(),
            record=encoded,
            slots=slots,
        )
        return [StartWaiting(waiting, item.run_id, item.flow.fn_id)]

    def offer_resume(self, item: Resume, now_ms: int) -> list[Effect]:
        """A resume of a planned run, on its way at once: with the lease of the call after it
        when its slots have room and nothing waits for them, else without."""
        return self._maybe_leased(item, resume_lease_id(item.run_id, item.step_hash), now_ms)

    def cancel(self, run_id: str) -> list[Effect]:
        """A cancelled run's waiting calls will never be useful; a run start still waiting is
        delivered first, so that the run exists to be cancelled and shows why it ended."""
        effects: list[Effect] = []
        for item_id in sorted(self._by_run.get(run_id, ())):
            waiting = self._waiting.get(item_id)
            if waiting is None:
                continue
            if waiting.throttle_key:
                effects.append(Deliver(DELIVERABLE_CODEC.decode(waiting.record), waiting.record))
            effects.append(StopWaiting(item_id, waiting.queue, run_id, served=False))
        return effects

    def release(self, lease: str) -> list[Effect]:
        """A call's outcome is stored: its lease frees its slots (once, however often told)."""
        return [FreeLease(lease)] if lease in self._leases else []

    def next_step(self, now_ms: int) -> list[Effect]:
        """The next thing flow control lets happen now: an unreleased lease expires, or one
        waiting item goes (queues served in turn). Nothing: the round is over."""
        expired = self._next_expired(now_ms)
        if expired is not None:
            return [FreeLease(expired, expired=True)]
        for queue, item_id, waiting in self._waiting.heads():
            effects = self._admission(queue, item_id, waiting, now_ms)
            if effects:
                return effects
        return []

    def next_wake(self, now_ms: int) -> int | None:
        """When waiting items may next be admitted without a record arriving: a throttle's next
        slot, or the earliest lease expiry (None: only when a record arrives)."""
        times = []
        for _, _, waiting in self._waiting.heads():
            if waiting.throttle_key:
                gcra = Gcra(waiting.emission_ms, waiting.capacity)
                times.append(gcra.next_at(self._tats.get(waiting.throttle_key), now_ms))
        if self._waiting and self._expiry:
            times.append(self._expiry[0][0])
        return min(times) if times else None

    # --- applying what was done ---------------------------------------------------------------

    def apply(self, effect: Effect) -> None:
        """Record an effect the scheduler has carried out."""
        match effect:
            case HoldLease(lease=lease):
                self._hold(lease)
            case FreeLease(lease_id=lease):
                self._free(lease)
            case StartWaiting(waiting=waiting, run_id=run_id):
                self._remember_waiting(waiting, run_id)
            case StopWaiting(item_id=item_id, queue=queue, run_id=run_id, served=served):
                if served:
                    self._waiting.pop(queue)
                else:
                    self._waiting.remove(item_id)
                ids = self._by_run.get(run_id)
                if ids is not None:
                    ids.discard(item_id)
                    if not ids:
                        del self._by_run[run_id]
            case PutThrottle(key=key, tat=tat):
                self._tats[key] = tat
            case Deliver() | AddTimer() | CancelTimer():
                pass  # nothing of this partition's state changes

    # --- the parts ----------------------------------------------------------------------------

    def _seq(self) -> int:
        self._next_seq += 1
        return self._next_seq

    def _fits(self, slots: list[Slot]) -> bool:
        return all(len(self._held.get(slot.key, ())) < slot.limit for slot in slots)

    def _room(self, slots: list[Slot]) -> bool:
        """Whether a lease on `slots` may be taken ahead of the queue: they have room and
        nothing waits for them (a run with no slots is not gated, and takes none)."""
        return (
            bool(slots) and not self._waiting.has_queue(_slots_queue(slots)) and self._fits(slots)
        )

    def _start(self, item: StartRun, now_ms: int) -> list[Effect]:
        """A run start on its way: with the lease of the run's first call when its slots have
        room and nothing waits for them, else without (as a run with no slots, which nothing
        gates)."""
        return self._maybe_leased(item, lease_id(item.run_id, None, 0, 0), now_ms)

    def _maybe_leased(self, item: StartRun | Resume, lease: str, now_ms: int) -> list[Effect]:
        """`item` delivered now, with `lease` when it holds it already (delivered again) or
        its slots have room for it, else without."""
        assert item.flow is not None
        effects: list[Effect] = []
        if lease not in self._leases:
            if not self._room(item.flow.slots):
                item.leased = False
                return [Deliver(item, DELIVERABLE_CODEC.encode(item))]
            effects = self._take(lease, item, now_ms)
        item.leased = True
        return [*effects, Deliver(item, DELIVERABLE_CODEC.encode(item))]

    def _take(self, lease: str, item: Call | StartRun | Resume, now_ms: int) -> list[Effect]:
        assert item.flow is not None
        record = Lease(
            lease_id=lease,
            slots=[slot.key for slot in item.flow.slots],
            expires_ms=now_ms + self._lease_ms,
        )
        effects: list[Effect] = [HoldLease(record)]
        first = isinstance(item, StartRun) or (
            isinstance(item, Call) and item.target is None and item.seq == 0 and item.attempt == 0
        )
        if item.flow.start_timeout and first:
            # The run's first call starts: its start timeout no longer applies.
            effects.append(CancelTimer(start_timer_id(item.run_id)))
        return effects

    def _start_timeout(self, item: StartRun, at_ms: int) -> Timer:
        cancel = CancelRun(
            account_id=item.account_id,
            run_id=item.run_id,
            reason="the run exceeded its start timeout",
        )
        return Timer(
            timer_id=start_timer_id(item.run_id),
            partition=self.partition,
            fire_ms=at_ms,
            record=DELIVERABLE_CODEC.encode(cancel),
        )

    def _admission(self, queue: str, item_id: str, waiting: Waiting, now_ms: int) -> list[Effect]:
        """What letting the head of `queue` go takes, or nothing while it must wait. It stops
        waiting only once delivered: should a write or the publish fail, it stays at the head of
        its queue (holding the lease it took) for the next round."""
        effects: list[Effect] = []
        item = DELIVERABLE_CODEC.decode(waiting.record)
        if waiting.throttle_key:
            gcra = Gcra(waiting.emission_ms, waiting.capacity)
            admitted, tat = gcra.admit(self._tats.get(waiting.throttle_key), now_ms)
            if not admitted:
                return []
            assert isinstance(item, StartRun)
            effects += [PutThrottle(waiting.throttle_key, tat), *self._start(item, now_ms)]
        else:
            if item_id not in self._leases:
                if not self._fits(waiting.slots):
                    return []
                assert isinstance(item, Call)
                effects.extend(self._take(item_id, item, now_ms))
            effects.append(Deliver(item, waiting.record))
        return [*effects, StopWaiting(item_id, queue, item.run_id, served=True)]

    def _next_expired(self, now_ms: int) -> str | None:
        while self._expiry and self._expiry[0][0] <= now_ms:
            expires_ms, lease = self._expiry[0]
            found = self._leases.get(lease)
            if found is not None and found.expires_ms == expires_ms:
                return lease  # its entry goes once the lease is freed
            heapq.heappop(self._expiry)
        return None

    def _hold(self, lease: Lease) -> None:
        self._leases[lease.lease_id] = lease
        for key in lease.slots:
            self._held[key].add(lease.lease_id)
        heapq.heappush(self._expiry, (lease.expires_ms, lease.lease_id))

    def _free(self, lease_id: str) -> None:
        lease = self._leases.pop(lease_id, None)
        if lease is None:
            return
        for key in lease.slots:
            holders = self._held.get(key)
            if holders is not None:
                holders.discard(lease_id)
                if not holders:
                    del self._held[key]

    def _remember_waiting(self, waiting: Waiting, run_id: str) -> None:
        self._waiting.push(waiting.queue, waiting.item_id, waiting.order_ms, waiting.seq, waiting)
        self._by_run[run_id].add(waiting.item_id)
