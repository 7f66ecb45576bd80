"""The executor's fast path, driven through the executor's and the scheduler's record handlers
on the in-process log, SQLite stores and a fake clock, with the official Python SDK served
in-process: consecutive steps of a run are called without the `schedule`/`work` round trip
under the run's one concurrency lease, which it gives back when it sleeps, ends or reaches the
chain's bound; a crash between a stored outcome and the call made after it resumes through the
scheduler, and no stored step runs again."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any, cast

import fastapi
import httpx
import inngest
import inngest.fast_api
import pytest
from headrace.services.executor.service import Executor
from headrace.services.scheduler.service import Scheduler

from headrace.adapters.inproc.log import InProcLog
from headrace.core.clock import FakeClock
from headrace.flow.fast_path import DEFAULT_BOUND, ChainBound
from headrace.messages.records import (
    SCHEDULE_CODEC,
    WORK_CODEC,
    Call,
    Enqueue,
    StartRun,
    WorkRecord,
)
from headrace.messages.state import FunctionRecord, HistoryEntry, RunState
from headrace.messages.topics import Topics
from headrace.ports.log import LogRecord
from headrace.ports.stores import Stores
from headrace.protocol.driver import AppDriver

APP_URL = "http://app.test/api/inngest"
ACCOUNT = "acct"


class Crash(Exception):
    """The executor stops here (its process dies): nothing after this point is done."""


class HistoryWriteFailed(Exception):
    """The store refused a history entry."""


class CrashingStores:
    """The real stores, whose process dies right after the run write numbered
    `crash_after_saves`: the transition is stored, none of its effects made, and the next call
    not sent. The completion of step `held_history` is written once `history_gate` opens; that
    of `failing_history` fails once. `writes` says in which order the run writes ("save") and
    the steps' completions ("completed <step>") were made."""

    def __init__(self, inner: Stores) -> None:
        self._inner = inner
        self.crash_after_saves: int | None = None
        self.saves = 0
        self.held_history: str | None = None
        self.history_gate = asyncio.Event()
        self.failing_history: str | None = None
        self.writes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def save_run(self, run: RunState, memos: dict[str, bytes] | None = None) -> None:
        await self._inner.save_run(run, memos)
        self.saves += 1
        self.writes.append("save")
        if self.saves == self.crash_after_saves:
            self.crash_after_saves = None
            raise Crash

    async def append_history(self, entry: HistoryEntry) -> None:
        if entry.kind == "step.completed":
            if entry.step_name == self.failing_history:
                self.failing_history = None
                raise HistoryWriteFailed
            if entry.step_name == self.held_history:
                try:
                    # Opened by the next step's body: an executor that waits for this write
                    # before the next call never opens it.
                    async with asyncio.timeout(10):
                        await self.history_gate.wait()
                except TimeoutError:
                    raise AssertionError("the next call waited for the history write") from None
            self.writes.append(f"completed {entry.step_name}")
        await self._inner.append_history(entry)


class Engine:
    """A scheduler and an executor owning partition 0 of a one-partition log. The test plays
    the consume loops (`settle`) and the timer wheel (`wake`): timers are kept aside until the
    test says their time has come."""

    def __init__(
        self,
        stores: Stores,
        functions: list[inngest.Function[Any]],
        client: inngest.Inngest,
        *,
        bound: ChainBound = DEFAULT_BOUND,
    ) -> None:
        self.stores = stores
        self.crashing = CrashingStores(stores)
        self.clock = FakeClock()
        self.log = InProcLog(partitions=1, clock=self.clock)
        self.topics = Topics()
        self.scheduler = Scheduler(self.log, self.topics, stores, self.clock, lease_ms=60_000)
        app = fastapi.FastAPI()
        inngest.fast_api.serve(app, client, functions, serve_origin="http://app.test")
        driver = AppDriver(self.clock, transport=httpx.ASGITransport(app=app))
        self.executor = Executor(
            self.log,
            self.topics,
            cast(Stores, self.crashing),
            driver,
            self.clock,
            fast_path=bound,
        )
        self.functions = functions
        self.timers: list[Enqueue] = []
        # Every Call the scheduler delivered to `work` (the round trips).
        self.delivered_calls: list[Call] = []
        self._offsets = {self.topics.schedule: 0, self.topics.work: 0}
        self._schedule = self.log.consumer(self.topics.schedule, "test-scheduler")
        self._work = self.log.consumer(self.topics.work, "test-executor")

    async def start(self) -> None:
        await self._schedule.start()
        await self._work.start()
        await self.scheduler.on_assigned({0})
        await self.executor.on_assigned({0})
        for fn in self.functions:
            config = fn.get_config(APP_URL).main.to_dict()
            assert isinstance(config, dict)
            record = FunctionRecord(
                fn_id=str(config["id"]), account_id=ACCOUNT, app_id="app", name="fn", config=config
            )
            await self.stores.put_function(record)

    async def stop(self) -> None:
        await self.scheduler.on_revoked({0})

    async def begin(
        self, fn: inngest.Function[Any], run_id: str, *, function: FunctionRecord | None = None
    ) -> None:
        """Offer the run's start to the scheduler, as the runner does (with the function's
        record: `function`)."""
        fn_id = str(fn.get_config(APP_URL).main.to_dict()["id"])  # type: ignore[index]
        start = StartRun(
            account_id=ACCOUNT,
            run_id=run_id,
            fn_id=fn_id,
            events=[{"name": "t/go", "data": {}}],
            event_ids=[f"e-{run_id}"],
            function=function,
        )
        await self.scheduler.handle(self._record(Enqueue(timer_id=f"{run_id}:start", item=start)))

    def _record(self, item: Enqueue) -> LogRecord:
        self._offsets[self.topics.schedule] += 1
        offset = self._offsets[self.topics.schedule]
        return LogRecord(self.topics.schedule, 0, offset, ACCOUNT, SCHEDULE_CODEC.encode(item))

    async def settle(self) -> None:
        """Hand every record published to its handler until none is left; timers wait."""
        while True:
            scheduled = await self.pass_schedule()
            work = await self.work()
            for record in work:
                await self.handle_work(record)
            if not scheduled and not work:
                return

    async def pass_schedule(self) -> int:
        """Hand what `schedule` holds to the scheduler, timers aside; how many records."""
        scheduled = await self._schedule.poll(1000, timeout_ms=1)
        for record in scheduled:
            decoded = SCHEDULE_CODEC.decode(record.value)
            if isinstance(decoded, Enqueue) and decoded.at_ms > self.clock.now_ms():
                self.timers.append(decoded)
            else:
                await self.scheduler.handle(record)
        return len(scheduled)

    async def work(self) -> list[LogRecord]:
        """The records on `work` not yet handled."""
        return await self._work.poll(1000, timeout_ms=1)

    async def handle_work(self, record: LogRecord) -> None:
        item: WorkRecord = WORK_CODEC.decode(record.value)
        if isinstance(item, Call):
            self.delivered_calls.append(item)
        await self.executor.handle(record)

    async def wake(self) -> None:
        """Every timer kept aside is due: the wheel hands it to flow control."""
        timers, self.timers = self.timers, []
        for timer in timers:
            await self.clock.advance(max(0, timer.at_ms - self.clock.now_ms()))
            await self.scheduler.handle(self.timer_record(timer))
        await self.settle()

    def timer_record(self, timer: Enqueue) -> LogRecord:
        """A due timer, as the wheel hands it to flow control."""
        return self._record(Enqueue(timer_id=timer.timer_id, item=timer.item))

    def held(self, fn: inngest.Function[Any]) -> int:
        fn_id = fn.get_config(APP_URL).main.to_dict()["id"]  # type: ignore[index]
        return self.scheduler.flow.held(f"fn:{ACCOUNT}:{fn_id}")

    async def run(self, run_id: str) -> RunState:
        run = await self.stores.get_run(run_id)
        assert run is not None
        return run


async def _completed(stores: Stores, run_id: str) -> list[str]:
    """The steps the run's history says completed, in order."""
    history = await stores.list_history(run_id)
    return [h.step_name or "" for h in history if h.kind == "step.completed"]


def _client() -> inngest.Inngest:
    return inngest.Inngest(app_id="app", is_production=False)


def _steps_fn(
    client: inngest.Inngest,
    executed: list[str],
    *,
    limit: int | None = None,
    on_step: Any = None,
) -> inngest.Function[Any]:
    """A function of three steps, each recording `run:step` as it runs."""

    @client.create_function(
        fn_id="steps",
        trigger=inngest.TriggerEvent(event="t/go"),
        concurrency=[inngest.Concurrency(limit=limit)] if limit else None,
    )
    async def steps(ctx: inngest.Context) -> list[str]:
        async def body(name: str) -> str:
            executed.append(f"{ctx.run_id}:{name}")
            if on_step is not None:
                await on_step()
            return name

        return [await ctx.step.run(name, lambda name=name: body(name)) for name in "abc"]

    return steps


async def test_consecutive_steps_take_no_round_trip_through_the_scheduler(stores: Stores) -> None:
    executed: list[str] = []
    client = _client()
    fn = _steps_fn(client, executed)
    engine = Engine(stores, [fn], client)
    await engine.start()
    try:
        await engine.begin(fn, "r1")
        await engine.settle()
        run = await engine.run("r1")
        assert run.status == "completed" and run.output == ["a", "b", "c"]
        assert executed == ["r1:a", "r1:b", "r1:c"]
        # Four calls (one per step, and the last returning), none through the scheduler: the
        # start brought the first call's lease, and the executor kept it to the end.
        assert engine.delivered_calls == []
        assert engine.held(fn) == 0
    finally:
        await engine.stop()


async def test_a_run_keeps_its_slot_across_steps_and_gives_it_back_when_it_sleeps_and_ends(
    stores: Stores,
) -> None:
    """Concurrency 1, two runs: the first makes its steps in a row while the second waits for
    the slot; the slot is free while both sleep and once both have ended."""
    executed: list[str] = []
    client = _client()
    engine: Engine | None = None
    held_during_steps: list[tuple[int, int]] = []

    @client.create_function(
        fn_id="napper",
        trigger=inngest.TriggerEvent(event="t/go"),
        concurrency=[inngest.Concurrency(limit=1)],
    )
    async def napper(ctx: inngest.Context) -> str:
        async def body(name: str) -> str:
            executed.append(f"{ctx.run_id}:{name}")
            assert engine is not None
            held_during_steps.append((engine.held(napper), engine.scheduler.flow.waiting))
            return name

        await ctx.step.run("a", lambda: body("a"))
        await ctx.step.run("b", lambda: body("b"))
        await ctx.step.sleep("nap", datetime.timedelta(seconds=10))
        await ctx.step.run("c", lambda: body("c"))
        return "done"

    engine = Engine(stores, [napper], client)
    await engine.start()
    try:
        await engine.begin(napper, "r1")
        await engine.begin(napper, "r2")
        await engine.settle()
        assert executed == ["r1:a", "r1:b", "r2:a", "r2:b"]
        # r1's start took the slot; r2's went without, and its first call waited for r1 to
        # fall asleep.
        assert [c.run_id for c in engine.delivered_calls] == ["r2"]
        assert held_during_steps == [(1, 0)] * 4
        assert engine.held(napper) == 0  # both asleep
        await engine.wake()
        assert executed[4:] == ["r1:c", "r2:c"]
        # r1's sleep ended first, its resume taking the slot: the executor made the call after
        # it at once. r2's resume found the slot held and went without; its call went through
        # the scheduler and waited for r1's end.
        assert [c.run_id for c in engine.delivered_calls] == ["r2", "r2"]
        assert held_during_steps[4:] == [(1, 0), (1, 0)]
        for run_id in ("r1", "r2"):
            assert (await engine.run(run_id)).status == "completed"
        assert engine.held(napper) == 0
    finally:
        await engine.stop()


async def test_without_the_fast_path_the_runs_take_turns_at_every_step(stores: Stores) -> None:
    """The same limit with chains of one call: each step goes through the scheduler, whose fair
    queue hands the slot to the other run at every step."""
    executed: list[str] = []
    client = _client()
    fn = _steps_fn(client, executed, limit=1)
    engine = Engine(stores, [fn], client, bound=ChainBound(max_calls=0))
    await engine.start()
    try:
        await engine.begin(fn, "r1")
        await engine.begin(fn, "r2")
        await engine.settle()
        assert executed == ["r1:a", "r2:a", "r1:b", "r2:b", "r1:c", "r2:c"]
        assert len(engine.delivered_calls) == 8
        assert engine.held(fn) == 0
    finally:
        await engine.stop()


async def test_a_crash_between_a_stored_outcome_and_the_next_call_resumes_through_the_scheduler(
    stores: Stores,
) -> None:
    """The executor dies after storing step a's outcome, before making the next call itself:
    nothing of the slow path was published. The record handled again (by the next owner) finds
    the transition stored and publishes it; the run goes on through the scheduler, a never
    runs again, and the lease is given back."""
    executed: list[str] = []
    client = _client()
    fn = _steps_fn(client, executed, limit=1)
    engine = Engine(stores, [fn], client)
    await engine.start()
    try:
        await engine.begin(fn, "r1")
        (start,) = await engine.work()
        # The start creates the run and makes its first call (a runs); a's outcome is the first
        # save of the run, and the executor dies right after it.
        engine.crashing.crash_after_saves = 1
        with pytest.raises(Crash):
            await engine.handle_work(start)
        assert executed == ["r1:a"]
        assert len((await engine.run("r1")).stack) == 1 and engine.held(fn) == 1
        assert await engine.pass_schedule() == 0  # nothing of the slow path published

        await engine.handle_work(start)  # the same record, handled again
        await engine.settle()
        run = await engine.run("r1")
        assert run.status == "completed" and run.output == ["a", "b", "c"]
        assert executed == ["r1:a", "r1:b", "r1:c"]
        # The call after a went through the scheduler, the rest inline again.
        assert [c.seq for c in engine.delivered_calls] == [1]
        assert engine.held(fn) == 0
    finally:
        await engine.stop()


async def test_a_step_s_history_is_written_beside_the_next_call_and_before_the_next_write(
    stores: Stores,
) -> None:
    """The fast path makes the next call without waiting for the history of the outcome it
    has just stored; that history is durable before the run is written again."""
    executed: list[str] = []
    engine: Engine | None = None

    async def on_step() -> None:
        assert engine is not None
        engine.crashing.writes.append(f"body {executed[-1]}")
        if executed[-1] == "r1:b":
            engine.crashing.history_gate.set()

    client = _client()
    fn = _steps_fn(client, executed, on_step=on_step)
    engine = Engine(stores, [fn], client)
    engine.crashing.held_history = "a"
    await engine.start()
    try:
        await engine.begin(fn, "r1")
        await engine.settle()
        run = await engine.run("r1")
        assert run.status == "completed" and executed == ["r1:a", "r1:b", "r1:c"]
        # b ran while a's completion waited to be written; b's outcome was stored after it.
        assert engine.crashing.writes[:5] == [
            "body r1:a",
            "save",
            "body r1:b",
            "completed a",
            "save",
        ]
        assert await _completed(stores, "r1") == ["a", "b", "c"]
    finally:
        await engine.stop()


async def test_a_failed_history_write_fails_the_record_and_its_retry_writes_it(
    stores: Stores,
) -> None:
    """A history write made beside the next call fails: the record's handling fails before
    the next outcome is stored, and the record handled again writes the history of the
    transition stored. The call made beside the failed write is made again, as a call in
    flight at a crash is: b runs twice, a once."""
    executed: list[str] = []
    client = _client()
    fn = _steps_fn(client, executed)
    engine = Engine(stores, [fn], client)
    engine.crashing.failing_history = "a"
    await engine.start()
    try:
        await engine.begin(fn, "r1")
        (start,) = await engine.work()
        with pytest.raises(HistoryWriteFailed):
            await engine.handle_work(start)
        assert executed == ["r1:a", "r1:b"]
        assert len((await engine.run("r1")).stack) == 1  # b's outcome was not stored
        await engine.handle_work(start)  # the same record, handled again
        await engine.settle()
        run = await engine.run("r1")
        assert run.status == "completed" and run.output == ["a", "b", "c"]
        assert executed == ["r1:a", "r1:b", "r1:b", "r1:c"]
        assert await _completed(stores, "r1") == ["a", "b", "c"]
    finally:
        await engine.stop()


async def test_a_start_with_its_function_s_record_is_planned_and_created_without_reading_it(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner's start carries the function it matched the event against: neither the
    scheduler nor the executor reads it again, and the chain of calls after the start uses it
    too. A start made elsewhere (a rerun, an invoke from the API) carries none: both read it."""
    executed: list[str] = []
    client = _client()
    fn = _steps_fn(client, executed, limit=1)
    engine = Engine(stores, [fn], client)
    await engine.start()
    [record] = await stores.list_functions(ACCOUNT)
    read = stores.get_function
    reads: list[str] = []

    async def counted(account_id: str, fn_id: str) -> FunctionRecord | None:
        reads.append(fn_id)
        return await read(account_id, fn_id)

    monkeypatch.setattr(stores, "get_function", counted)
    try:
        await engine.begin(fn, "r1", function=record)
        await engine.settle()
        assert (await engine.run("r1")).status == "completed"
        assert reads == []
        await engine.begin(fn, "r2")
        await engine.settle()
        assert (await engine.run("r2")).status == "completed"
        assert reads == [record.fn_id, record.fn_id]
        assert executed == ["r1:a", "r1:b", "r1:c", "r2:a", "r2:b", "r2:c"]
    finally:
        await engine.stop()


async def test_the_bound_in_calls_returns_a_long_run_to_the_queue(stores: Stores) -> None:
    executed: list[str] = []
    client = _client()
    fn = _steps_fn(client, executed, limit=1)
    engine = Engine(stores, [fn], client, bound=ChainBound(max_calls=2))
    await engine.start()
    try:
        await engine.begin(fn, "r1")
        await engine.settle()
        assert executed == ["r1:a", "r1:b", "r1:c"]
        # Two calls in a row from the start (a, b: the SDK runs one step per call), then the
        # call that runs c through the scheduler, and the last one after it.
        assert [c.seq for c in engine.delivered_calls] == [2]
        assert engine.held(fn) == 0
    finally:
        await engine.stop()


async def test_a_run_back_in_the_queue_lets_a_waiting_run_have_the_slot(stores: Stores) -> None:
    executed: list[str] = []
    client = _client()
    fn = _steps_fn(client, executed, limit=1)
    engine = Engine(stores, [fn], client, bound=ChainBound(max_calls=1))
    await engine.start()
    try:
        await engine.begin(fn, "r1")
        await engine.begin(fn, "r2")
        await engine.settle()
        assert executed.index("r2:a") < executed.index("r1:c")
        assert engine.held(fn) == 0
    finally:
        await engine.stop()


async def test_the_bound_in_time_returns_a_long_run_to_the_queue(stores: Stores) -> None:
    executed: list[str] = []
    client = _client()
    engine: Engine | None = None

    async def slow_step() -> None:
        assert engine is not None
        await engine.clock.advance(3_000)

    fn = _steps_fn(client, executed, on_step=slow_step)
    engine = Engine(stores, [fn], client, bound=ChainBound(max_ms=5_000))
    await engine.start()
    try:
        await engine.begin(fn, "r1")
        await engine.settle()
        assert executed == ["r1:a", "r1:b", "r1:c"]
        # a and b in the start's chain (6 s), then c and the end in the next one.
        assert [c.seq for c in engine.delivered_calls] == [2]
        assert (await engine.run("r1")).status == "completed"
    finally:
        await engine.stop()


def _napper(client: inngest.Inngest, executed: list[str], after: str) -> inngest.Function[Any]:
    """Step a, a sleep, then the steps named in `after`: in parallel when there are several
    (the call after the sleep then asks for them all)."""

    @client.create_function(
        fn_id="napper",
        trigger=inngest.TriggerEvent(event="t/go"),
        concurrency=[inngest.Concurrency(limit=1)],
    )
    async def napper(ctx: inngest.Context) -> str:
        async def body(name: str) -> str:
            executed.append(f"{ctx.run_id}:{name}")
            return name

        await ctx.step.run("a", lambda: body("a"))
        await ctx.step.sleep("nap", datetime.timedelta(seconds=10))
        steps = tuple(lambda name=name: ctx.step.run(name, lambda: body(name)) for name in after)
        if len(steps) == 1:
            await steps[0]()
        else:
            await ctx.group.parallel(steps)
        return "done"

    return napper


async def test_a_resumed_run_gives_its_slot_back_however_its_chain_ends(stores: Stores) -> None:
    """The resume after the sleep takes the run's slot and the executor makes the next call
    itself; that call asks for two steps in parallel (the chain ends there), and the slot is
    given back, to be taken by the steps' own calls in turn. A resume delivered again once the
    run has moved on (a timer fired twice around a scheduler's crash) takes the slot and frees
    it."""
    executed: list[str] = []
    client = _client()
    fn = _napper(client, executed, "pq")
    engine = Engine(stores, [fn], client)
    await engine.start()
    try:
        await engine.begin(fn, "r1")
        await engine.settle()
        assert executed == ["r1:a"] and engine.held(fn) == 0
        (timer,) = engine.timers
        await engine.wake()
        assert sorted(executed) == ["r1:a", "r1:p", "r1:q"]
        assert (await engine.run("r1")).status == "completed"
        # The call after the resume was made inline; the parallel steps' came through the
        # scheduler.
        assert [c.target is not None for c in engine.delivered_calls] == [True, True]
        assert engine.held(fn) == 0
        engine.timers = [timer]
        await engine.wake()
        assert engine.held(fn) == 0 and len(executed) == 3
    finally:
        await engine.stop()


async def test_a_crash_after_a_resume_is_stored_goes_on_through_the_scheduler(
    stores: Stores,
) -> None:
    """The executor dies after storing the sleep's end, before the call after it: the resume
    handled again publishes what it stored (that call, the release of its lease), and the run
    goes on through the scheduler; a never runs again, and the slot is given back."""
    executed: list[str] = []
    client = _client()
    fn = _napper(client, executed, "b")
    engine = Engine(stores, [fn], client)
    await engine.start()
    try:
        await engine.begin(fn, "r1")
        await engine.settle()
        (timer,) = engine.timers
        saves = engine.crashing.saves
        engine.crashing.crash_after_saves = saves + 1
        await engine.clock.advance(max(0, timer.at_ms - engine.clock.now_ms()))
        await engine.scheduler.handle(engine.timer_record(timer))
        (resume,) = await engine.work()
        with pytest.raises(Crash):
            await engine.handle_work(resume)
        assert engine.held(fn) == 1
        await engine.handle_work(resume)  # the same record, handled again
        await engine.settle()
        run = await engine.run("r1")
        assert run.status == "completed" and executed == ["r1:a", "r1:b"]
        assert [c.target for c in engine.delivered_calls] == [None]
        assert engine.held(fn) == 0
    finally:
        await engine.stop()
