"""The scheduler's flow gate on a fake clock and SQLite stores: leases and waiting calls survive a
restart (a new owner of the partition), a call delivered again keeps its lease, a lost release
heals when the lease expires, a delivery that fails is tried again, a throttled start waits
for its turn, and a start that arrived on another partition than its flow key's goes there."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from headrace.services.scheduler.flow import FlowGate
from headrace.services.scheduler.wheel import TimerWheel

from headrace.adapters.kafka.errors import KafkaUnavailable
from headrace.adapters.sqlite.stores import SqliteStores
from headrace.core.clock import FakeClock
from headrace.messages.flow import RunFlow, Slot, lease_id
from headrace.messages.records import DELIVERABLE_CODEC, Call, CancelRun, Deliverable, StartRun
from headrace.messages.state import FunctionRecord, Timer
from headrace.messages.topics import partition_for

LEASE_MS = 10_000
PARTITIONS = 8
SLOTS = [Slot("fn:acct:f", 2)]


class Harness:
    def __init__(self, stores: SqliteStores, clock: FakeClock, partitions: int = 1) -> None:
        self.sent: list[Deliverable] = []
        self.forwarded: list[tuple[str, str]] = []  # (run id, key)
        self.kafka_down = False
        wheel = TimerWheel(stores, clock, self._fire)
        self.gate = FlowGate(
            stores,
            clock,
            wheel,
            self._send,
            self._forward,
            lease_ms=LEASE_MS,
            partitions=partitions,
        )

    async def _forward(self, item: StartRun, key: str) -> None:
        self.forwarded.append((item.run_id, key))

    async def _send(self, item: Deliverable, encoded: bytes) -> None:
        if self.kafka_down:
            raise KafkaUnavailable("the broker does not answer")
        self.sent.append(DELIVERABLE_CODEC.decode(encoded))

    async def _fire(self, timer: Timer) -> None:
        raise AssertionError("no timer fires in these tests")

    async def call(self, run: str, attempt: int = 0, partition: int = 0) -> None:
        item = Call(account_id="acct", run_id=run, attempt=attempt, flow=RunFlow(slots=SLOTS))
        await self.gate.offer(partition, item, DELIVERABLE_CODEC.encode(item))

    def runs_sent(self) -> list[str]:
        return [item.run_id for item in self.sent]


def _lease(run: str, attempt: int = 0) -> str:
    return lease_id(run, None, 0, attempt)


async def test_calls_over_the_limit_wait_and_go_in_order_as_leases_are_released(
    stores: SqliteStores,
) -> None:
    h = Harness(stores, FakeClock())
    for run in ("r1", "r2", "r3", "r4"):
        await h.call(run)
    assert h.runs_sent() == ["r1", "r2"] and h.gate.waiting == 2
    await h.gate.release(0, _lease("r2"))
    assert h.runs_sent() == ["r1", "r2", "r3"]
    await h.gate.release(0, _lease("r2"))  # a repeated release frees nothing more
    assert h.gate.held("fn:acct:f") == 2 and h.gate.waiting == 1


async def test_a_new_owner_keeps_the_leases_and_the_waiting_calls(stores: SqliteStores) -> None:
    clock = FakeClock()
    first = Harness(stores, clock)
    await first.gate.own({0})
    for run in ("r1", "r2", "r3"):
        await first.call(run)
    assert first.runs_sent() == ["r1", "r2"]

    # The owner crashes; another instance takes the partition over from the stores.
    second = Harness(stores, clock)
    await second.gate.own({0})
    assert second.gate.held("fn:acct:f") == 2 and second.gate.waiting == 1
    assert second.sent == []
    # r1's call is delivered again (its executor crashed): it keeps its lease, r3 still waits.
    await second.call("r1")
    assert second.runs_sent() == ["r1"] and second.gate.waiting == 1
    await second.gate.release(0, _lease("r1"))
    assert second.runs_sent() == ["r1", "r3"]


async def test_a_waiting_call_whose_delivery_fails_goes_on_the_next_admit(
    stores: SqliteStores,
) -> None:
    h = Harness(stores, FakeClock())
    for run in ("r1", "r2", "r3"):
        await h.call(run)
    h.kafka_down = True
    with pytest.raises(KafkaUnavailable):
        await h.gate.release(0, _lease("r1"))
    # r3 took the freed slot but could not leave: it keeps its place and its lease.
    assert h.gate.waiting == 1 and h.gate.held("fn:acct:f") == 2
    h.kafka_down = False
    await h.gate.admit()
    assert h.runs_sent() == ["r1", "r2", "r3"]
    assert h.gate.waiting == 0 and h.gate.held("fn:acct:f") == 2
    # The same holds for a new owner: nothing waits twice, no lease is taken twice.
    other = Harness(stores, FakeClock())
    await other.gate.own({0})
    assert other.gate.waiting == 0 and other.gate.held("fn:acct:f") == 2


async def test_a_lease_never_released_expires_and_lets_the_queue_move(
    stores: SqliteStores,
) -> None:
    clock = FakeClock()
    h = Harness(stores, clock)
    for run in ("r1", "r2", "r3"):
        await h.call(run)
    await clock.advance(LEASE_MS - 1)
    assert await h.gate.admit() == clock.now_ms() + 1  # the earliest expiry
    assert h.runs_sent() == ["r1", "r2"]
    await clock.advance(1)
    await h.gate.admit()
    assert h.runs_sent() == ["r1", "r2", "r3"]


async def test_a_throttled_start_waits_for_its_turn(stores: SqliteStores) -> None:
    clock = FakeClock()
    await stores.put_function(
        FunctionRecord(
            fn_id="f",
            account_id="acct",
            app_id="app",
            name="f",
            config={"throttle": {"limit": 1, "period": "10s", "burst": 0}},
        )
    )
    h = Harness(stores, clock)
    for run in ("r1", "r2"):
        start = StartRun(account_id="acct", run_id=run, fn_id="f", events=[{}], event_ids=["e"])
        await h.gate.offer(0, start, DELIVERABLE_CODEC.encode(start))
    assert h.runs_sent() == ["r1"]
    sent = h.sent[0]
    assert isinstance(sent, StartRun) and sent.flow is not None
    assert sent.flow.slots == [Slot("fn:acct:f", 1000)]  # the default limit
    await clock.advance(9_999)
    await h.gate.admit()
    assert h.runs_sent() == ["r1"]
    await clock.advance(1)
    await h.gate.admit()
    assert h.runs_sent() == ["r1", "r2"]


class SlowHarness(Harness):
    """Its delivery of the run `slow` waits until `go_on` is set; `delivered` tells of each."""

    def __init__(self, stores: SqliteStores, clock: FakeClock) -> None:
        super().__init__(stores, clock)
        self.slow_began, self.go_on = asyncio.Event(), asyncio.Event()
        self.delivered: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def _send(self, item: Deliverable, encoded: bytes) -> None:
        if item.run_id == "slow":
            self.slow_began.set()
            await self.go_on.wait()
        await super()._send(item, encoded)
        self.delivered[item.run_id].set()


async def test_a_partition_held_up_by_a_slow_delivery_does_not_hold_up_another(
    stores: SqliteStores,
) -> None:
    """The scheduler handles its partitions at once (runtime/consume.py); the gate's lock is a
    partition's, so neither another partition's records nor its admissions wait for this one."""
    clock = FakeClock()
    h = SlowHarness(stores, clock)
    await h.gate.own({0, 1})  # partition 0 first in line for admissions
    for run in ("r1", "r2", "r3"):
        await h.call(run, partition=1)
    slow = CancelRun(account_id="other", run_id="slow")
    held_up = asyncio.create_task(h.gate.offer(0, slow, DELIVERABLE_CODEC.encode(slow)))
    await asyncio.wait_for(h.slow_began.wait(), 5)

    await asyncio.wait_for(h.gate.release(1, _lease("r1")), 5)  # a record of partition 1
    assert h.runs_sent() == ["r1", "r2", "r3"]
    await h.call("r4", partition=1)
    await clock.advance(LEASE_MS)  # r2's and r3's leases expire, unreleased
    admitting = asyncio.create_task(h.gate.admit())
    await asyncio.wait_for(h.delivered["r4"].wait(), 5)  # partition 1's admission
    assert not held_up.done() and not admitting.done()

    h.go_on.set()
    await asyncio.wait_for(asyncio.gather(held_up, admitting), 5)
    assert h.runs_sent() == ["r1", "r2", "r3", "r4", "slow"]


@pytest.mark.parametrize(
    ("concurrency", "key"),
    [
        (None, "acct:f"),
        ([{"limit": 5}], "acct:f"),
        ([{"limit": 5, "key": "event.data.user"}], "acct:f"),
        ([{"limit": 5}, {"limit": 50, "scope": "account", "key": "'all'"}], "acct"),
        ([{"limit": 5, "scope": "env", "key": "event.data.user"}], "acct"),
    ],
)
async def test_a_start_is_planned_where_its_flow_key_goes_and_forwarded_from_elsewhere(
    stores: SqliteStores, concurrency: list[dict[str, object]] | None, key: str
) -> None:
    """A function that shares no limit with others has its runs' flow decided by its own key's
    owner, so one account's functions spread over the scheduler's partitions; a limit shared
    across the account keeps the account's owner. A start published under another key (by an
    older runner, or before the configuration changed) is forwarded, unplanned, to its own."""
    config = {} if concurrency is None else {"concurrency": concurrency}
    await stores.put_function(
        FunctionRecord(fn_id="f", account_id="acct", app_id="app", name="f", config=config)
    )
    h = Harness(stores, FakeClock(), partitions=PARTITIONS)
    home = partition_for(key, PARTITIONS)
    elsewhere = next(p for p in range(PARTITIONS) if p != home)
    start = StartRun(
        account_id="acct", run_id="r1", fn_id="f", events=[{"data": {}}], event_ids=["e"]
    )
    await h.gate.offer(elsewhere, start, DELIVERABLE_CODEC.encode(start))
    assert h.forwarded == [("r1", key)] and h.sent == [] and h.gate.waiting == 0
    await h.gate.offer(home, start, DELIVERABLE_CODEC.encode(start))
    [sent] = h.sent
    assert isinstance(sent, StartRun) and sent.flow is not None and sent.flow.key == key
    assert h.forwarded == [("r1", key)]
