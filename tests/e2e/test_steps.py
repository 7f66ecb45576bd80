"""Step primitives end to end: an official `inngest` SDK app over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import collections
import datetime
import itertools
from pathlib import Path

import inngest
import pytest

from headrace.testing.dev import DevHandle, fake_clock, start_dev
from headrace.testing.sdk_app import ServedApp, make_client


@pytest.mark.fake_clock
async def test_a_step_that_succeeded_never_runs_again_when_a_later_step_is_retried(
    dev: DevHandle,
) -> None:
    calls: collections.Counter[str] = collections.Counter()
    client = make_client(dev.url, "memo-app")

    @client.create_function(fn_id="memo", trigger=inngest.TriggerEvent(event="test/memo"))
    async def memo(ctx: inngest.Context) -> list[str]:
        async def first() -> str:
            calls["first"] += 1
            return "one"

        async def flaky() -> str:
            calls["flaky"] += 1
            if calls["flaky"] < 3:
                raise RuntimeError(f"flaky attempt {calls['flaky']}")
            return "two"

        return [await ctx.step.run("first", first), await ctx.step.run("flaky", flaky)]

    with ServedApp(client, [memo]) as app:
        await dev.sync(app.url, "memo-app")
        [event_id] = await dev.send({"name": "test/memo", "data": {}})
        run = await dev.finished(await dev.run_of_event(event_id), step_s=5)

    assert run.status == "completed"
    assert run.output == ["one", "two"]
    assert calls == {"first": 1, "flaky": 3}
    kinds = [(h.kind, h.step_name, h.attempt) for h in await dev.history(run.run_id)]
    assert ("step.errored", "flaky", 0) in kinds
    assert ("step.errored", "flaky", 1) in kinds
    assert ("step.completed", "flaky", 2) in kinds


async def test_steps_run_in_order_and_the_run_returns_their_outputs(dev: DevHandle) -> None:
    client = make_client(dev.url, "seq-app")

    @client.create_function(fn_id="pipeline", trigger=inngest.TriggerEvent(event="test/seq"))
    async def pipeline(ctx: inngest.Context) -> dict[str, object]:
        async def double(x: int) -> int:
            return x * 2

        total = 0
        for i in range(5):
            total += await ctx.step.run(f"double-{i}", double, i)
        return {"total": total, "input": ctx.event.data["n"]}

    with ServedApp(client, [pipeline]) as app:
        await dev.sync(app.url, "seq-app")
        [event_id] = await dev.send({"name": "test/seq", "data": {"n": 7}})
        run = await dev.finished(await dev.run_of_event(event_id))

    assert run.status == "completed"
    assert run.output == {"total": 20, "input": 7}
    names = [h.step_name for h in await dev.history(run.run_id) if h.kind == "step.completed"]
    assert names == [f"double-{i}" for i in range(5)]


async def test_parallel_steps_wait_mode_runs_each_once(dev: DevHandle) -> None:
    calls: collections.Counter[str] = collections.Counter()
    client = make_client(dev.url, "par-app")

    @client.create_function(fn_id="fan-out", trigger=inngest.TriggerEvent(event="test/par"))
    async def fan_out(ctx: inngest.Context) -> list[int]:
        def make(i: int):  # type: ignore[no-untyped-def]
            async def work() -> int:
                calls[f"w{i}"] += 1
                await asyncio.sleep(0.05)
                return i * i

            return lambda: ctx.step.run(f"square-{i}", work)

        results = await ctx.group.parallel(tuple(make(i) for i in range(4)))

        async def total() -> int:
            calls["total"] += 1
            return sum(results)

        return [*results, await ctx.step.run("total", total)]

    with ServedApp(client, [fan_out]) as app:
        await dev.sync(app.url, "par-app")
        [event_id] = await dev.send({"name": "test/par"})
        run = await dev.finished(await dev.run_of_event(event_id))

    assert run.status == "completed"
    assert run.output == [0, 1, 4, 9, 14]
    assert calls == {"w0": 1, "w1": 1, "w2": 1, "w3": 1, "total": 1}


async def test_parallel_steps_race_mode_continues_after_the_first(dev: DevHandle) -> None:
    calls: collections.Counter[str] = collections.Counter()
    client = make_client(dev.url, "race-app")

    @client.create_function(fn_id="race", trigger=inngest.TriggerEvent(event="test/race"))
    async def race(ctx: inngest.Context) -> object:
        async def fast() -> str:
            calls["fast"] += 1
            return "fast"

        async def slow() -> str:
            calls["slow"] += 1
            await asyncio.sleep(1.0)
            return "slow"

        winners = await ctx.group.parallel(
            (lambda: ctx.step.run("fast", fast), lambda: ctx.step.run("slow", slow)),
            parallel_mode=inngest.ParallelMode.RACE,
        )

        async def after() -> str:
            calls["after"] += 1
            return "after"

        return [*winners, await ctx.step.run("after", after)]

    with ServedApp(client, [race]) as app:
        await dev.sync(app.url, "race-app")
        [event_id] = await dev.send({"name": "test/race"})
        run = await dev.finished(await dev.run_of_event(event_id))

    assert run.status == "completed"
    assert calls == {"fast": 1, "slow": 1, "after": 1}
    assert run.output[-1] == "after"
    completed = [h.step_name for h in await dev.history(run.run_id) if h.kind == "step.completed"]
    # Race mode: the run went on as soon as the fast step settled, before the slow one.
    assert completed.index("fast") < completed.index("slow")


@pytest.mark.fake_clock
async def test_sleep_then_continue(dev: DevHandle) -> None:
    client = make_client(dev.url, "sleep-app")

    @client.create_function(fn_id="napper", trigger=inngest.TriggerEvent(event="test/sleep"))
    async def napper(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        until = datetime.datetime.fromtimestamp(dev.now_ms() / 1000 + 0.5, datetime.UTC)
        await ctx.step.sleep_until("nap-until", until)
        return "rested"

    with ServedApp(client, [napper]) as app:
        await dev.sync(app.url, "sleep-app")
        [event_id] = await dev.send({"name": "test/sleep"})
        run = await dev.finished(await dev.run_of_event(event_id), step_s=0.25)

    assert run.status == "completed"
    assert run.output == "rested"
    assert run.ended_ms - run.started_ms >= 1400
    kinds = [h.kind for h in await dev.history(run.run_id)]
    assert kinds.count("step.sleeping") == 2


async def test_a_failed_step_is_retried_on_inngests_backoff_schedule(tmp_path: Path) -> None:
    """On a fake clock the schedule needs no shrinking: 15 s then 30 s, each plus up to 30 s of
    jitter (Inngest's pkg/backoff), passed in a moment."""
    dev = await start_dev(tmp_path / "state", clock=fake_clock())
    client = make_client(dev.url, "backoff-app")
    tries: list[int] = []

    @client.create_function(fn_id="flaky", trigger=inngest.TriggerEvent(event="test/backoff"))
    async def flaky(ctx: inngest.Context) -> int:
        async def attempt() -> int:
            tries.append(dev.now_ms())
            if len(tries) < 3:
                raise RuntimeError(f"attempt {len(tries)}")
            return len(tries)

        return await ctx.step.run("flaky", attempt)

    try:
        with ServedApp(client, [flaky]) as app:
            await dev.sync(app.url, "backoff-app")
            [event_id] = await dev.send({"name": "test/backoff", "data": {}})
            run = await dev.finished(await dev.run_of_event(event_id), step_s=2)
    finally:
        await dev.stop()

    assert (run.status, run.output) == ("completed", 3)
    gaps = [later - earlier for earlier, later in itertools.pairwise(tries)]
    assert 15_000 <= gaps[0] <= 15_000 + 30_000 + 20_000, gaps
    assert 30_000 <= gaps[1] <= 30_000 + 30_000 + 20_000, gaps
