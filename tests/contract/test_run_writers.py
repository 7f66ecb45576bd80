"""Two executors writing one run, on every store adapter: the hand-over of a partition with the
old owner still writing, and a writer whose state went stale while it worked.

The path of issue 13: an executor read a run, stalled, and then wrote a state computed from that
old read over newer ones (writes were last-write-wins). The run's stack lost a step whose memo
was stored, and the next call, built from that stack, ran the step again. Here the stall is
made deterministic (a write held at a gate), the app is the official Python SDK served
in-process, and the test plays the scheduler: it hands each `work` item the executors publish to
the executor the scenario names.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
from collections.abc import Callable
from typing import Any, cast

import fastapi
import httpx
import inngest
import inngest.fast_api
import msgspec
import pytest
from headrace.services.executor.app_gate import AppGate
from headrace.services.executor.service import Executor
from prometheus_client import REGISTRY

from headrace.adapters.inproc.log import InProcLog
from headrace.core.clock import FakeClock
from headrace.core.errors import Fenced, TransientError
from headrace.messages.records import (
    SCHEDULE_CODEC,
    WORK_CODEC,
    Call,
    CancelRun,
    Enqueue,
    Resume,
    StartRun,
    WorkRecord,
)
from headrace.messages.state import FunctionRecord, HistoryEntry, RunState
from headrace.messages.topics import Topics, partition_for
from headrace.ports.log import LogRecord
from headrace.ports.stores import Stores
from headrace.protocol.driver import AppDriver
from headrace.protocol.ops import Outcome

APP_URL = "http://app.test/api/inngest"
ACCOUNT = "acct"
RUN_ID = "01JRUNFENCE0000000000000000"


class HeldStores:
    """The real stores, with a run write that waits at a gate when asked to: a writer that
    stalls between reading a run and writing it (a paused process, a starved event loop)."""

    def __init__(self, inner: Stores) -> None:
        self._inner = inner
        self.hold = False
        self.reached = asyncio.Event()
        self.release = asyncio.Event()
        self.hold_read = False
        self.read_reached = asyncio.Event()
        self.read_release = asyncio.Event()

    async def get_run_and_memos(self, run_id: str) -> tuple[RunState, dict[str, bytes]] | None:
        await self._held_read()
        return await self._inner.get_run_and_memos(run_id)

    async def get_run_and_memo_keys(self, run_id: str) -> tuple[RunState, set[str]] | None:
        await self._held_read()
        return await self._inner.get_run_and_memo_keys(run_id)

    async def _held_read(self) -> None:
        if self.hold_read:
            self.hold_read = False
            self.read_reached.set()
            await self.read_release.wait()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def save_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> None:
        if self.hold:
            self.hold = False
            self.reached.set()
            await self.release.wait()
        await self._inner.save_run(run, memos)


class MemoCountingStores:
    """The real stores, counting the memos each run write is given and the reads that fetch
    memo values, memo keys, or the run alone."""

    def __init__(self, inner: Stores) -> None:
        self._inner = inner
        self.saved: list[set[str]] = []
        self.value_reads = 0
        self.key_reads = 0
        self.run_reads = 0

    async def get_run(self, run_id: str) -> RunState | None:
        self.run_reads += 1
        return await self._inner.get_run(run_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get_run_and_memos(self, run_id: str) -> tuple[RunState, dict[str, bytes]] | None:
        self.value_reads += 1
        return await self._inner.get_run_and_memos(run_id)

    async def get_run_and_memo_keys(self, run_id: str) -> tuple[RunState, set[str]] | None:
        self.key_reads += 1
        return await self._inner.get_run_and_memo_keys(run_id)

    async def create_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> bool:
        self.saved.append(set(memos or {}))
        return await self._inner.create_run(run, memos)

    async def save_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> None:
        self.saved.append(set(memos or {}))
        await self._inner.save_run(run, memos)


class ConnectingTransport(httpx.ASGITransport):
    """The in-process app, reached as over a network: a request may wait for a connection (held
    here while `connected` is clear), then its headers go out, which is when httpcore calls the
    request's trace hook; the ASGI transport alone has no such moment."""

    def __init__(self, app: Any) -> None:
        super().__init__(app=app)
        self.connected = asyncio.Event()
        self.connected.set()
        self.waiting = asyncio.Event()
        self.requests = 0  # calls sent to the app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if not self.connected.is_set():
            self.waiting.set()
            await self.connected.wait()
        trace = request.extensions.get("trace")
        if trace is not None:
            await trace("http11.send_request_headers.started", {"request": request})
        return await super().handle_async_request(request)


class Scenario:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores
        self.clock = FakeClock()
        self.log = InProcLog(partitions=4, clock=self.clock)
        self.topics = Topics()
        self.partition = partition_for(ACCOUNT, 4)
        self.executions: collections.Counter[str] = collections.Counter()
        # Step b's body waits for this while it is clear, and says when it began.
        self.b_may_finish = asyncio.Event()
        self.b_may_finish.set()
        self.b_began = asyncio.Event()
        self.client = inngest.Inngest(app_id="fence-app", is_production=False)
        self.fn = self._function()
        app = fastapi.FastAPI()
        inngest.fast_api.serve(app, self.client, [self.fn], serve_origin="http://app.test")
        self.transport = ConnectingTransport(app)
        self._offset = 0
        self._schedule = self.log.consumer(self.topics.schedule, "test-scheduler")

    def _function(self) -> inngest.Function[Any]:
        def body(name: str) -> str:
            self.executions[name] += 1
            return name

        @self.client.create_function(fn_id="steps", trigger=inngest.TriggerEvent(event="t/go"))
        async def steps(ctx: inngest.Context) -> list[str]:
            a = await ctx.step.run("a", lambda: body("a"))
            await ctx.step.sleep("nap", datetime.timedelta(seconds=1))

            async def b_body() -> str:
                self.b_began.set()
                await self.b_may_finish.wait()
                return body("b")

            b = await ctx.step.run("b", b_body)
            await ctx.step.sleep("rest", datetime.timedelta(seconds=1))
            c = await ctx.step.run("c", lambda: body("c"))
            return [a, b, c]

        return steps

    async def start(self) -> None:
        await self._schedule.start()
        config = self.fn.get_config(APP_URL).main.to_dict()
        assert isinstance(config, dict)
        await self.stores.put_function(
            FunctionRecord(
                fn_id=str(config["id"]),
                account_id=ACCOUNT,
                app_id="fence-app",
                name="steps",
                config=config,
            )
        )

    def executor(self, stores: Stores | HeldStores, app_gate: AppGate | None = None) -> Executor:
        driver = AppDriver(self.clock, transport=self.transport)
        return Executor(
            self.log, self.topics, cast(Stores, stores), driver, self.clock, app_gate=app_gate
        )

    def record(self, item: WorkRecord) -> LogRecord:
        """The same work item, as the `work` record of one offset: a record delivered twice
        (to the old owner and again to the new one) keeps its id."""
        self._offset += 1
        return LogRecord(
            self.topics.work, self.partition, self._offset, ACCOUNT, WORK_CODEC.encode(item)
        )

    async def published(self) -> list[WorkRecord]:
        """The work items published to `schedule` since the last look, due or not (the test's
        clock is the scheduler's: a sleep ends when the test says so)."""
        records = await self._schedule.poll(1000, timeout_ms=10)
        items = [SCHEDULE_CODEC.decode(r.value) for r in records]
        return [
            i.item
            for i in items
            if isinstance(i, Enqueue) and isinstance(i.item, StartRun | Call | Resume | CancelRun)
        ]

    async def run_until_quiet(self, executor: Executor) -> None:
        """Deliver every published work item to `executor` until none is left."""
        while items := await self.published():
            for item in items:
                await executor.handle(self.record(item))

    async def run(self) -> RunState:
        run = await self.stores.get_run(RUN_ID)
        assert run is not None
        return run


def _start_item(scenario: Scenario) -> StartRun:
    fn_id = str(scenario.fn.get_config(APP_URL).main.to_dict()["id"])  # type: ignore[index]
    return StartRun(
        account_id=ACCOUNT,
        run_id=RUN_ID,
        fn_id=fn_id,
        events=[{"name": "t/go", "data": {}}],
        event_ids=["e1"],
    )


async def _asleep_in_nap(scenario: Scenario, executor: Executor) -> Resume:
    """Start the run and take it to its first sleep; the sleep's end (a Resume)."""
    await executor.handle(scenario.record(_start_item(scenario)))
    items = await scenario.published()
    while not any(isinstance(i, Resume) for i in items):
        for item in items:
            await executor.handle(scenario.record(item))
        items = await scenario.published()
    (wake,) = [i for i in items if isinstance(i, Resume)]
    return wake


async def test_an_old_owner_that_writes_after_the_new_owner_moved_the_run_on_writes_nothing(
    stores: Stores,
) -> None:
    """The old owner of the partition reads the run to end its sleep, and stalls; the new owner
    takes the same record, and the run goes on to its end. When the old owner writes at last,
    its write is refused and it finds the run written by a newer owner: it drops the record,
    writing and calling nothing. Before fencing, its state overwrote the newer one, the stack
    lost step b, and the next call ran b a second time."""
    scenario = Scenario(stores)
    await scenario.start()
    held = HeldStores(stores)
    old, new = scenario.executor(held), scenario.executor(stores)
    await old.on_assigned({scenario.partition})
    wake = await _asleep_in_nap(scenario, old)
    assert scenario.executions == {"a": 1}

    # The partition moves while the old owner is still handling the sleep's end.
    await new.on_assigned({scenario.partition})
    held.hold = True
    stalled = asyncio.create_task(old.handle(scenario.record(wake)))
    await held.reached.wait()
    await new.handle(scenario.record(wake))
    await scenario.run_until_quiet(new)
    finished = await scenario.run()
    assert finished.status == "completed"
    assert scenario.executions == {"a": 1, "b": 1, "c": 1}

    held.release.set()
    with pytest.raises(Fenced):
        await stalled
    assert await scenario.published() == []
    assert await scenario.run() == finished
    assert scenario.executions == {"a": 1, "b": 1, "c": 1}


async def test_a_writer_whose_read_went_stale_decides_again_from_the_state_that_won(
    stores: Stores,
) -> None:
    """The new owner reads the run to end its sleep, and stalls; the old owner, not yet aware
    of the hand-over, ends the same sleep first. The new owner's write conflicts, so it reads
    again, finds the sleep over, and changes nothing; the run goes on from the state that won,
    each step run once."""
    scenario = Scenario(stores)
    await scenario.start()
    held = HeldStores(stores)
    old, new = scenario.executor(stores), scenario.executor(held)
    await old.on_assigned({scenario.partition})
    wake = await _asleep_in_nap(scenario, old)
    asleep = await scenario.run()
    await new.on_assigned({scenario.partition})

    held.hold = True
    stalled = asyncio.create_task(new.handle(scenario.record(wake)))
    await held.reached.wait()
    await old.handle(scenario.record(wake))  # ends the sleep, asks for the next call
    held.release.set()
    await stalled
    # The sleep's end was written once: by the old owner, and not again by the new one.
    awake = await scenario.run()
    assert awake.version == asleep.version + 1 and awake.owner_epoch == asleep.owner_epoch
    await scenario.run_until_quiet(new)
    finished = await scenario.run()
    assert finished.status == "completed" and finished.output == ["a", "b", "c"]
    assert finished.owner_epoch > asleep.owner_epoch
    assert scenario.executions == {"a": 1, "b": 1, "c": 1}


async def _the_call_after_the_nap(scenario: Scenario, executor: Executor) -> tuple[Resume, Call]:
    """Take the run to its first sleep and end it; the sleep's end, and the discovery call it
    asks for (not sent yet: the one that runs b)."""
    wake = await _asleep_in_nap(scenario, executor)
    await executor.handle(scenario.record(wake))
    (call,) = await scenario.published()
    assert isinstance(call, Call)
    return wake, call


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("the condition never held")


async def test_a_call_repeated_while_its_outcome_waits_to_be_applied_is_not_sent_again(
    stores: Stores,
) -> None:
    """The path issue 13 found under kills: a record repeated after a crash made a second
    Call of the same step, and the executor handled it after the app had answered the first
    but before that answer was applied. It read the run as it was before the answer, found the
    call current, and sent it again: step b ran twice, and the repeat (queued in the executor)
    reached the app after the next call had handed it b's stored output. Here the run's lock is
    held by another record while the app answers, so the repeat gets the lock first."""
    scenario = Scenario(stores)
    await scenario.start()
    held = HeldStores(stores)
    executor = scenario.executor(held)
    await executor.on_assigned({scenario.partition})
    wake, call = await _the_call_after_the_nap(scenario, executor)

    scenario.b_may_finish.clear()
    first = asyncio.create_task(executor.handle(scenario.record(call)))
    await scenario.b_began.wait()
    # Another record of the run (the sleep's end, repeated) takes the lock and stalls in it.
    held.hold_read = True
    other = asyncio.create_task(executor.handle(scenario.record(wake)))
    await held.read_reached.wait()
    repeat = asyncio.create_task(executor.handle(scenario.record(call)))
    await _until(lambda: executor._runs.locks.contenders(RUN_ID) == 2)
    scenario.b_may_finish.set()  # the app answers the first call; its outcome waits for the lock
    await _until(lambda: executor._runs.locks.contenders(RUN_ID) == 3)
    held.read_release.set()
    await asyncio.gather(first, other, repeat)

    assert scenario.executions == {"a": 1, "b": 1}
    await scenario.run_until_quiet(executor)
    finished = await scenario.run()
    assert finished.status == "completed" and finished.output == ["a", "b", "c"]
    assert scenario.executions == {"a": 1, "b": 1, "c": 1}


async def test_a_call_whose_run_changed_while_it_waited_for_a_connection_is_not_sent(
    stores: Stores,
) -> None:
    """A call's body is built from the run as stored; the request may then wait for a
    connection (seconds, under load). If the run changed meanwhile (here it was cancelled), the
    request is not sent as built: the call is built again from the run as it is, and a call no
    longer current is dropped. Step b never runs."""
    scenario = Scenario(stores)
    await scenario.start()
    executor = scenario.executor(stores)
    await executor.on_assigned({scenario.partition})
    _, call = await _the_call_after_the_nap(scenario, executor)

    scenario.transport.connected.clear()
    waiting = asyncio.create_task(executor.handle(scenario.record(call)))
    await scenario.transport.waiting.wait()
    cancel = CancelRun(account_id=ACCOUNT, run_id=RUN_ID, reason="the user cancelled it")
    await executor.handle(scenario.record(cancel))
    scenario.transport.connected.set()
    await waiting

    run = await scenario.run()
    assert run.status == "cancelled"
    assert scenario.executions == {"a": 1}
    assert not scenario.b_began.is_set()


async def test_an_outcome_that_comes_back_after_the_run_was_cancelled_is_not_stored(
    stores: Stores,
) -> None:
    """A call's outcome is applied to the run its body was built from, without reading it
    again; the run was cancelled while the app ran step b, so the outcome's write finds the run
    changed, reads it, finds the call no longer current, and stores nothing: the run stays
    as cancelled, without b's output, and nothing more is called."""
    scenario = Scenario(stores)
    await scenario.start()
    executor = scenario.executor(stores)
    await executor.on_assigned({scenario.partition})
    _, call = await _the_call_after_the_nap(scenario, executor)

    scenario.b_may_finish.clear()
    out = asyncio.create_task(executor.handle(scenario.record(call)))
    await scenario.b_began.wait()
    cancel = CancelRun(account_id=ACCOUNT, run_id=RUN_ID, reason="the user cancelled it")
    await executor.handle(scenario.record(cancel))
    cancelled, memos = await scenario.run(), await stores.get_memos(RUN_ID)
    assert cancelled.status == "cancelled"
    requests = scenario.transport.requests
    scenario.b_may_finish.set()
    await out

    assert await scenario.run() == cancelled
    assert await stores.get_memos(RUN_ID) == memos  # a's and the sleep's: b's output is not
    assert scenario.transport.requests == requests
    await scenario.run_until_quiet(executor)
    assert scenario.executions == {"a": 1, "b": 1}


async def test_a_call_that_waited_for_its_app_while_a_newer_owner_ran_it_is_not_sent(
    stores: Stores,
) -> None:
    """A call's body is built, and the call waits for its app's turn (the app has as many calls
    as it takes); meanwhile the partition's newer owner handles the same record and runs the
    step. When the old owner's turn comes it reads the run again before sending, finds it
    written by the newer owner, and sends nothing: step b runs once. (Found by the fault
    schedule: an executor paused past its session, resumed with calls waiting for their turn.)"""
    scenario = Scenario(stores)
    await scenario.start()
    gate = AppGate(scenario.clock, fixed=1)
    old = scenario.executor(stores, gate)
    await old.on_assigned({scenario.partition})
    _, call = await _the_call_after_the_nap(scenario, old)

    slot_taken, slot_freed = asyncio.Event(), asyncio.Event()

    async def another_call() -> Outcome:
        slot_taken.set()
        await slot_freed.wait()
        return Outcome(done=True, status=200)

    holding = asyncio.create_task(gate.call(APP_URL, "other", another_call))
    await slot_taken.wait()
    record = scenario.record(call)
    waiting = asyncio.create_task(old.handle(record))
    for _ in range(20):  # the old owner reads the run, builds the body, and waits its turn
        await asyncio.sleep(0)
    new = scenario.executor(stores)
    await new.on_assigned({scenario.partition})
    await new.handle(record)
    await scenario.run_until_quiet(new)
    assert (await scenario.run()).status == "completed"
    slot_freed.set()
    await holding
    with contextlib.suppress(Fenced):
        await waiting
    assert scenario.executions == {"a": 1, "b": 1, "c": 1}


class KilledBeforeHistory:
    """The real stores, with a writer killed once as it writes a transition's history: right
    after the first entry of a completed step, before the rest of the transition's effects."""

    def __init__(self, inner: Stores) -> None:
        self._inner = inner
        self.killed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def append_history(self, entry: HistoryEntry) -> None:
        await self._inner.append_history(entry)
        if not self.killed and entry.kind == "step.completed":
            self.killed = True
            raise ConnectionError("killed right after the first history entry of a step")


async def test_a_writer_killed_between_the_run_and_its_history_leaves_a_history_that_agrees(
    stores: Stores,
) -> None:
    """Issue 16, item 12: the history is written after the run with its memos (the outbox
    holds the entries, in the same write), so the record handled again after the kill writes
    the entries of the transition that was stored, never an output the run did not use."""
    scenario = Scenario(stores)
    await scenario.start()
    killed = KilledBeforeHistory(stores)
    first = scenario.executor(killed)
    await first.on_assigned({scenario.partition})
    await first.handle(scenario.record(_start_item(scenario)))
    [call] = await scenario.published()
    record = scenario.record(call)
    with pytest.raises(ConnectionError):
        await first.handle(record)
    assert killed.killed
    # A new process owns the partition and gets the record again, as Kafka redelivers it.
    second = scenario.executor(stores)
    await second.on_assigned({scenario.partition})
    await second.handle(record)
    await scenario.run_until_quiet(second)
    for _ in range(2):  # the two sleeps end when the test's scheduler says so
        await scenario.clock.advance(1000)
        await scenario.run_until_quiet(second)
    finished = await scenario.run()
    assert finished.status == "completed" and finished.output == ["a", "b", "c"]
    memos = await stores.get_memos(RUN_ID)
    completed = [h for h in await stores.list_history(RUN_ID) if h.kind == "step.completed"]
    assert completed and all(h.step_hash in memos for h in completed)
    for entry in completed:
        assert entry.output == msgspec.json.decode(memos[entry.step_hash or ""])
    assert len({h.step_hash for h in completed}) == len(completed)
    assert scenario.executions == {"a": 1, "b": 1, "c": 1}


class LostAckStores:
    """The real stores, where every run write that applies is then reported failed: a
    Cassandra write that timed out after the replica applied it (the soak saw 14 such `CAS
    operation timed out` in one second). The consume loop handles the record again. A write
    whose condition fails is answered as such (its answer is the condition's, not a timeout)."""

    def __init__(self, inner: Stores) -> None:
        self._inner = inner
        self.lost = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def create_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> bool:
        if not await self._inner.create_run(run, memos):
            return False
        self.lost += 1
        raise TransientError("write timed out (applied)")

    async def save_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> None:
        await self._inner.save_run(run, memos)
        self.lost += 1
        raise TransientError("write timed out (applied)")


def _counted(metric: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(metric, labels) or 0.0


async def test_a_run_whose_writes_lost_their_acknowledgements_is_counted_started_and_ended(
    stores: Stores,
) -> None:
    """Each write of the run is applied and reported failed, so each record is handled twice,
    the second time finding its own transition stored and making its effects. The run ends,
    each step ran once, and the metrics count it started once and ended once: before, the
    repeat made the effects but skipped the counts, and the soak reported a run as never ended
    (runs started minus runs ended) that the executor had completed."""
    scenario = Scenario(stores)
    await scenario.start()
    lossy = LostAckStores(stores)
    executor = scenario.executor(lossy)
    await executor.on_assigned({scenario.partition})
    fn_id = _start_item(scenario).fn_id
    started = _counted("headrace_runs_started_total", {"function": fn_id})
    ended = _counted("headrace_runs_ended_total", {"function": fn_id, "status": "completed"})

    async def handle_as_the_loop_does(item: WorkRecord) -> None:
        record = scenario.record(item)
        with pytest.raises(TransientError):
            await executor.handle(record)
        await executor.handle(record)

    await handle_as_the_loop_does(_start_item(scenario))
    while items := await scenario.published():
        for item in items:
            await handle_as_the_loop_does(item)

    assert (await scenario.run()).status == "completed"
    assert scenario.executions == {"a": 1, "b": 1, "c": 1}
    assert lossy.lost >= 6  # the start, each step's outcome, each sleep's end
    assert _counted("headrace_runs_started_total", {"function": fn_id}) == started + 1
    assert (
        _counted("headrace_runs_ended_total", {"function": fn_id, "status": "completed"})
        == ended + 1
    )


class LateAppliedStores:
    """The real stores, where the first write of a step's outcome times out unapplied and is
    applied when the run is next written: a Cassandra lightweight transaction accepted before
    the node went away is committed by the next one on the row, which then finds its condition
    false. A read in between does not see it. (The fault schedule's seed 2288946035: a Cassandra
    restart left nine runs that never ended.)"""

    def __init__(self, inner: Stores) -> None:
        self._inner = inner
        self._held: tuple[RunState, dict[str, bytes] | None] | None = None
        self.held = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def save_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> None:
        if memos and not self.held:
            self.held += 1
            copy = msgspec.msgpack.decode(msgspec.msgpack.encode(run), type=RunState)
            self._held = (copy, dict(memos))
            raise TransientError("write timed out (not applied yet)")
        if self._held is not None:
            (held_run, held_memos), self._held = self._held, None
            await self._inner.save_run(held_run, held_memos)
        await self._inner.save_run(run, memos)


async def test_a_step_outcome_whose_write_applied_late_still_moves_the_run_on(
    stores: Stores,
) -> None:
    """The record handled again reads the run without the late write, calls the app again (a
    step in flight at a fault runs twice: allowed) and finds, when it writes, the first handling's
    transition stored: it makes that transition's effects, and the run goes on. Before, it took
    the stored outcome for a stale call's and dropped the record, and the run never ended."""
    scenario = Scenario(stores)
    await scenario.start()
    late = LateAppliedStores(stores)
    executor = scenario.executor(late)
    await executor.on_assigned({scenario.partition})

    async def handle_as_the_loop_does(item: WorkRecord) -> None:
        record = scenario.record(item)
        try:
            await executor.handle(record)
        except TransientError:
            await executor.handle(record)

    await handle_as_the_loop_does(_start_item(scenario))
    while items := await scenario.published():
        for item in items:
            await handle_as_the_loop_does(item)

    assert late.held == 1
    assert (await scenario.run()).status == "completed"
    assert scenario.executions["a"] == 2 and scenario.executions["b"] == 1
    assert scenario.executions["c"] == 1


async def test_each_write_of_a_run_brings_only_new_memos_and_only_a_call_reads_their_values(
    stores: Stores,
) -> None:
    """Memo I/O per step stays flat as a run grows: a transition writes the memo it settles,
    never the earlier ones again, and only the first call of a chain reads the memos' values
    (deciding a resume reads their keys at most). A call's outcome is applied to
    the run its body was built from, unread (the run's conditional write finds any other
    writer), and a call made on the fast path after an outcome was stored is built from the
    run as that write left it, with the memos the executor had plus the one it stored."""
    scenario = Scenario(stores)
    await scenario.start()
    counting = MemoCountingStores(stores)
    executor = scenario.executor(cast(Stores, counting))
    await executor.on_assigned({scenario.partition})

    async def deliver() -> None:
        while items := await scenario.published():
            for item in items:
                await executor.handle(scenario.record(item))

    await executor.handle(scenario.record(_start_item(scenario)))
    await deliver()
    for _ in range(2):  # the two sleeps end when the test's scheduler says so
        await scenario.clock.advance(1000)
        await deliver()
    assert (await scenario.run()).status == "completed"
    written = [key for memos in counting.saved for key in memos]
    assert len(written) == len(set(written))
    assert set(written) == set(await stores.get_memos(RUN_ID))
    # Three chains of two calls each: a and the sleep after it, b and the sleep, c and the
    # run's end. Values are read by the first call of each.
    assert scenario.transport.requests == 6
    assert counting.value_reads == 3
    # Keys are read to decide the two resumes; neither the start (its creation's condition
    # finds a run that exists) nor an outcome reads the run.
    assert counting.key_reads == 2
    assert counting.run_reads == 0
