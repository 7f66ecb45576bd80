"""The scheduler's flow decisions for one partition (`flow.partition.PartitionFlow`) on plain
values: each decision's effects are applied as the scheduler would, with no store and no clock."""

from __future__ import annotations

from headrace.flow.config import RunPlan
from headrace.flow.effects import (
    CancelTimer,
    Deliver,
    Effect,
    FreeLease,
    HoldLease,
    PutThrottle,
    StartWaiting,
    StopWaiting,
)
from headrace.flow.gcra import Gcra
from headrace.flow.partition import PartitionFlow
from headrace.messages.flow import RunFlow, Slot, lease_id, resume_lease_id, start_timer_id
from headrace.messages.records import DELIVERABLE_CODEC, Call, Resume, StartRun
from headrace.messages.state import FunctionRecord

LEASE_MS = 10_000


class Partition:
    """A PartitionFlow whose effects are applied at once, keeping what was delivered."""

    def __init__(self) -> None:
        self.flow = PartitionFlow(0, lease_ms=LEASE_MS)
        self.delivered: list[str] = []
        self.records: list[bytes] = []  # what went to `work`, in order

    def apply(self, effects: list[Effect]) -> list[Effect]:
        for effect in effects:
            if isinstance(effect, Deliver):
                self.delivered.append(effect.item.run_id)
                self.records.append(effect.record)
            self.flow.apply(effect)
        return effects

    def call(
        self,
        run: str,
        slots: list[Slot],
        now: int = 0,
        *,
        priority_ms: int = 0,
        start_timeout: bool = False,
    ) -> list[Effect]:
        run_flow = RunFlow(slots=slots, priority_ms=priority_ms, start_timeout=start_timeout)
        item = Call(account_id="a", run_id=run, flow=run_flow)
        return self.apply(self.flow.offer_call(item, DELIVERABLE_CODEC.encode(item), now))

    def start(
        self,
        run: str,
        gcra: Gcra | None,
        now: int,
        priority_ms: int = 0,
        *,
        slots: list[Slot] | None = None,
        start_timeout_ms: int = 0,
        function: FunctionRecord | None = None,
    ) -> list[Effect]:
        item = StartRun(
            account_id="a", run_id=run, fn_id="f", events=[{}], event_ids=["e"], function=function
        )
        run_flow = RunFlow(
            fn_id="f",
            slots=slots or [],
            priority_ms=priority_ms,
            start_timeout=start_timeout_ms > 0,
        )
        throttle = ("a:f:", gcra) if gcra is not None else None
        plan = RunPlan(run_flow, throttle, start_timeout_ms)
        return self.apply(self.flow.offer_start(item, plan, now))

    def resume(self, run: str, slots: list[Slot], now: int = 0) -> list[Effect]:
        item = Resume(account_id="a", run_id=run, step_hash="nap", flow=RunFlow(slots=slots))
        return self.apply(self.flow.offer_resume(item, now))

    def pump(self, now: int) -> None:
        while effects := self.flow.next_step(now):
            self.apply(effects)


def _lease(run: str) -> str:
    return lease_id(run, None, 0, 0)


SLOT = Slot("fn:a:f", 2)


def test_the_limit_is_respected_and_the_rest_wait() -> None:
    p = Partition()
    for run in ("r1", "r2", "r3"):
        p.call(run, [SLOT])
    assert p.delivered == ["r1", "r2"]
    assert p.flow.held("fn:a:f") == 2 and p.flow.waiting == 1


def test_a_lease_is_stored_before_its_call_is_delivered() -> None:
    effects = Partition().call("r1", [SLOT])
    assert [type(effect) for effect in effects] == [HoldLease, Deliver]


def test_a_call_over_any_of_its_limits_waits() -> None:
    p = Partition()
    p.call("r1", [Slot("account:a", 1)])
    [effect] = p.call("r2", [Slot("fn:a:g", 5), Slot("account:a", 1)])
    assert isinstance(effect, StartWaiting) and p.delivered == ["r1"]


def test_release_frees_a_slot_for_the_next_waiting_call() -> None:
    p = Partition()
    for run in ("r1", "r2", "r3"):
        p.call(run, [SLOT])
    p.apply(p.flow.release(_lease("r1")))
    p.pump(0)
    assert p.delivered == ["r1", "r2", "r3"] and p.flow.waiting == 0


def test_a_repeated_release_frees_nothing() -> None:
    p = Partition()
    p.call("r1", [SLOT])
    assert p.apply(p.flow.release(_lease("r1"))) == [FreeLease(_lease("r1"))]
    assert p.flow.release(_lease("r1")) == []
    assert p.flow.held("fn:a:f") == 0


def test_waiting_calls_go_by_priority_then_enqueue_time() -> None:
    p = Partition()
    p.call("holder", [Slot("fn:a:f", 1)])
    p.call("early", [Slot("fn:a:f", 1)], now=100)
    p.call("late", [Slot("fn:a:f", 1)], now=200)
    p.call("urgent", [Slot("fn:a:f", 1)], now=300, priority_ms=1_000)
    for run in ("holder", "urgent", "early"):
        p.apply(p.flow.release(_lease(run)))
        p.pump(400)
    assert p.delivered == ["holder", "urgent", "early", "late"]


def test_queues_are_served_round_robin() -> None:
    p = Partition()
    shared = Slot("account:a", 1)
    p.call("holder", [shared])
    for run in ("b1", "b2", "b3"):
        p.call(run, [Slot("fn:a:busy", 10), shared])
    p.call("q1", [Slot("fn:a:quiet", 10), shared], now=1)
    for run in ("holder", "b1", "q1"):
        p.apply(p.flow.release(_lease(run)))
        p.pump(10)
    assert p.delivered == ["holder", "b1", "q1", "b2"]


def test_an_unreleased_lease_expires_and_lets_the_queue_move() -> None:
    p = Partition()
    for run in ("r1", "r2", "r3"):
        p.call(run, [SLOT])
    assert p.flow.next_wake(LEASE_MS - 1) == LEASE_MS  # the earliest expiry
    p.pump(LEASE_MS - 1)
    assert p.delivered == ["r1", "r2"]
    assert p.flow.next_step(LEASE_MS) == [FreeLease(_lease("r1"), expired=True)]
    p.pump(LEASE_MS)
    # r1 and r2 expired together; r3 holds the only lease.
    assert p.delivered == ["r1", "r2", "r3"] and p.flow.held("fn:a:f") == 1


def test_a_call_delivered_again_keeps_its_lease() -> None:
    p = Partition()
    p.call("r1", [Slot("fn:a:f", 1)])
    [effect] = p.call("r1", [Slot("fn:a:f", 1)])
    assert isinstance(effect, Deliver)
    assert p.flow.held("fn:a:f") == 1 and p.delivered == ["r1", "r1"]


def test_a_waiting_call_offered_again_waits_once() -> None:
    p = Partition()
    p.call("r1", [Slot("fn:a:f", 1)])
    p.call("r2", [Slot("fn:a:f", 1)])
    assert p.call("r2", [Slot("fn:a:f", 1)]) == [] and p.flow.waiting == 1


def test_the_first_call_cancels_the_start_timeout() -> None:
    effects = Partition().call("r1", [SLOT], start_timeout=True)
    assert CancelTimer(start_timer_id("r1")) in effects


def test_a_throttle_paces_starts_by_its_gcra() -> None:
    p = Partition()
    gcra = Gcra.throttle(1, 10_000, 0)
    p.start("r1", gcra, now=0)
    [effect] = p.start("r2", gcra, now=0)
    assert isinstance(effect, StartWaiting) and p.delivered == ["r1"]
    assert p.flow.next_wake(0) == 10_000
    p.pump(9_999)
    assert p.delivered == ["r1"]
    assert isinstance(p.flow.next_step(10_000)[0], PutThrottle)
    p.pump(10_000)
    assert p.delivered == ["r1", "r2"]


def test_a_start_keeps_its_function_s_record_unless_it_waits_for_its_throttle() -> None:
    """The runner's record of the function goes with a start delivered at once (the executor
    creates the run from it, unread); a start that waits goes without it, so the run is created
    from the function as synced when it goes, which a sync meanwhile may have changed."""
    p = Partition()
    gcra = Gcra.throttle(1, 10_000, 0)
    fn = FunctionRecord(fn_id="f", account_id="a", app_id="app", name="f", config={})
    p.start("r1", gcra, now=0, function=fn)
    p.start("r2", gcra, now=0, function=fn)
    p.pump(10_000)
    assert p.delivered == ["r1", "r2"]
    starts = [DELIVERABLE_CODEC.decode(record) for record in p.records]
    assert [(s.run_id, s.function) for s in starts if isinstance(s, StartRun)] == [
        ("r1", fn),
        ("r2", None),
    ]


def test_a_waiting_item_stops_waiting_only_after_it_is_delivered() -> None:
    p = Partition()
    for run in ("r1", "r2"):
        p.call(run, [Slot("fn:a:f", 1)])
    p.apply(p.flow.release(_lease("r1")))
    effects = p.flow.next_step(0)
    assert [type(effect) for effect in effects] == [HoldLease, Deliver, StopWaiting]
    # The lease is stored but the publish fails: the call holds it and still waits.
    p.flow.apply(effects[0])
    assert p.flow.waiting == 1
    assert [type(effect) for effect in p.flow.next_step(0)] == [Deliver, StopWaiting]


def test_a_cancelled_run_stops_waiting_and_a_waiting_start_is_delivered_first() -> None:
    p = Partition()
    gcra = Gcra.throttle(1, 10_000, 0)
    p.start("r1", gcra, now=0)
    p.start("r2", gcra, now=0)
    effects = p.apply(p.flow.cancel("r2"))
    assert [type(effect) for effect in effects] == [Deliver, StopWaiting]
    assert p.delivered == ["r1", "r2"] and p.flow.waiting == 0
    assert not p.flow.start_waits("r2")


def _leased(effects: list[Effect]) -> list[bool]:
    """Whether each run start or resume delivered by these effects took a lease."""
    return [
        e.item.leased
        for e in effects
        if isinstance(e, Deliver) and isinstance(e.item, StartRun | Resume)
    ]


def test_a_start_whose_slots_have_room_takes_its_first_calls_lease() -> None:
    p = Partition()
    one = Slot("fn:a:f", 1)
    effects = p.start("r1", None, now=0, slots=[one], start_timeout_ms=5_000)
    assert _leased(effects) == [True] and p.flow.held("fn:a:f") == 1
    # Its first call, should it come through the scheduler (after an executor's crash), goes
    # with that lease; it takes no second one.
    assert [type(effect) for effect in p.call("r1", [one])] == [Deliver]
    # The first call is admitted with the start: the start timeout no longer applies.
    assert CancelTimer(start_timer_id("r1")) in effects


def test_a_start_whose_slots_are_full_or_waited_for_goes_without_a_lease() -> None:
    p = Partition()
    one = Slot("fn:a:f", 1)
    p.call("r1", [one])
    assert _leased(p.start("r2", None, now=0, slots=[one])) == [False]
    p.call("r3", [one])  # waits
    # Room under a higher limit, but a call waits for the slot: it goes first.
    assert _leased(p.start("r4", None, now=0, slots=[Slot("fn:a:f", 2)])) == [False]
    assert p.flow.held("fn:a:f") == 1


def test_a_throttled_start_takes_its_lease_when_the_throttle_lets_it_go() -> None:
    p = Partition()
    gcra = Gcra.throttle(1, 10_000, 0)
    one = Slot("fn:a:f", 1)
    p.start("r1", gcra, now=0, slots=[one])
    p.apply(p.flow.release(_lease("r1")))
    p.start("r2", gcra, now=0, slots=[one])
    effects = p.flow.next_step(10_000)
    assert [type(effect) for effect in effects] == [PutThrottle, HoldLease, Deliver, StopWaiting]
    assert _leased(effects) == [True]


def test_a_resume_whose_slots_have_room_takes_the_lease_of_the_call_after_it() -> None:
    p = Partition()
    one = Slot("fn:a:f", 1)
    effects = p.resume("r1", [one])
    assert _leased(effects) == [True] and p.flow.held("fn:a:f") == 1
    # Delivered again (the scheduler crashed before its timer's firing was done): it goes
    # with the lease it holds, taking no second one.
    assert [type(effect) for effect in p.resume("r1", [one])] == [Deliver]
    assert _leased(p.resume("r1", [one])) == [True] and p.flow.held("fn:a:f") == 1
    p.apply(p.flow.release(resume_lease_id("r1", "nap")))
    assert p.flow.held("fn:a:f") == 0


def test_a_resume_goes_at_once_without_a_lease_when_its_slots_are_full_or_waited_for() -> None:
    p = Partition()
    one = Slot("fn:a:f", 1)
    p.call("r1", [one])
    assert _leased(p.resume("r2", [one])) == [False]
    p.call("r3", [one])  # waits
    # Room under a higher limit, but a call waits for the slot: it goes first.
    assert _leased(p.resume("r4", [Slot("fn:a:f", 2)])) == [False]
    # A run with no slots is not gated: nothing to lease.
    assert _leased(p.resume("r5", [])) == [False]
    assert p.flow.held("fn:a:f") == 1 and p.delivered == ["r1", "r2", "r4", "r5"]
