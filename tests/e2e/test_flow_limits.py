"""Scheduler-side flow control end to end, measured at the app: concurrency (limits, keys, what
holds a slot), throttle, rate limit, priority, timeouts, and the checks at sync."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from collections import defaultdict
from typing import Any

import httpx
import inngest
import pytest

from headrace.messages.flow import finish_timer_id, start_timer_id
from headrace.messages.state import RunState
from headrace.testing.dev import DevHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client

LIMIT = 3
RUNS = 200


class Gauge:
    """Steps executing now, counted inside the step bodies (the app's own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now: defaultdict[str, int] = defaultdict(int)
        self.peak: defaultdict[str, int] = defaultdict(int)

    def enter(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self.now[key] += 1
                self.peak[key] = max(self.peak[key], self.now[key])

    def leave(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self.now[key] -= 1

    async def hold(self, key: str, until: int, at_most: float) -> None:
        """Stay inside until `until` steps have been in at once, so a limit the engine allows is
        reached whatever the timing; later steps go straight through."""
        deadline = time.monotonic() + at_most
        while self.peak[key] < until and time.monotonic() < deadline:
            await asyncio.sleep(0.002)


def _set(flag: threading.Event) -> Any:
    async def probe() -> bool:
        return flag.is_set()

    return probe


async def _runs(
    dev: DevHandle, event_ids: list[str], timeout: float, step_s: float | None = None
) -> list[RunState]:
    """Every event's run, once all have ended; `step_s` as for `dev.finished`."""
    deadline = time.monotonic() + timeout
    runs = []
    for event_id in event_ids:
        left = max(deadline - time.monotonic(), 0.1)
        run_id = await dev.run_of_event(event_id, left, step_s=step_s)
        runs.append(await dev.finished(run_id, left, step_s=step_s))
    return runs


async def test_a_concurrency_limit_bounds_the_steps_executing_at_once(dev: DevHandle) -> None:
    client = make_client(dev.url, "conc-app")
    gauge = Gauge()

    @client.create_function(
        fn_id="limited",
        concurrency=[inngest.Concurrency(limit=LIMIT)],
        trigger=inngest.TriggerEvent(event="test/conc"),
    )
    async def limited(ctx: inngest.Context) -> int:
        async def work(i: int) -> int:
            gauge.enter("all")
            try:
                await gauge.hold("all", until=LIMIT, at_most=1.0)
            finally:
                gauge.leave("all")
            return i

        return sum([await ctx.step.run(f"s{i}", work, i) for i in range(2)])

    with ServedApp(client, [limited]) as app:
        await dev.sync(app.url, "conc-app")
        ids = await dev.send(*({"name": "test/conc", "data": {"n": n}} for n in range(200)))
        runs = await _runs(dev, ids, timeout=300)

    assert [r.status for r in runs] == ["completed"] * 200
    assert all(r.output == 1 for r in runs)
    assert gauge.peak["all"] == 3


async def test_a_keyed_limit_gives_each_key_its_own_queue(dev: DevHandle) -> None:
    client = make_client(dev.url, "keyed-app")
    gauge = Gauge()

    @client.create_function(
        fn_id="per-customer",
        concurrency=[inngest.Concurrency(limit=1, key="event.data.customer")],
        trigger=inngest.TriggerEvent(event="test/keyed"),
    )
    async def per_customer(ctx: inngest.Context) -> None:
        customer = ctx.event.data["customer"]

        async def work() -> None:
            gauge.enter("all", str(customer))
            try:
                await asyncio.sleep(0.2)
            finally:
                gauge.leave("all", str(customer))

        await ctx.step.run("work", work)

    with ServedApp(client, [per_customer]) as app:
        await dev.sync(app.url, "keyed-app")
        events = [{"name": "test/keyed", "data": {"customer": c}} for c in "abababab"]
        runs = await _runs(dev, await dev.send(*events), timeout=30)

    assert {r.status for r in runs} == {"completed"}
    assert gauge.peak["a"] == 1 and gauge.peak["b"] == 1
    assert gauge.peak["all"] == 2


async def test_a_sleeping_run_holds_no_slot(dev: DevHandle) -> None:
    """The sleep is longer than the test, so the other run cannot be let in by its end: it
    finishes while the first run provably sleeps, which is then cancelled."""
    client = make_client(dev.url, "sleep-slot-app")

    @client.create_function(
        fn_id="one-at-a-time",
        concurrency=[inngest.Concurrency(limit=1)],
        trigger=inngest.TriggerEvent(event="test/sleep-slot"),
    )
    async def one_at_a_time(ctx: inngest.Context) -> str:
        await ctx.step.run("before", lambda: None)
        if ctx.event.data["sleep"]:
            await ctx.step.sleep("nap", datetime.timedelta(hours=1))
        await ctx.step.run("after", lambda: None)
        return "done"

    with ServedApp(client, [one_at_a_time]) as app:
        await dev.sync(app.url, "sleep-slot-app")
        [sleeper_event] = await dev.send({"name": "test/sleep-slot", "data": {"sleep": True}})
        sleeper = await dev.run_of_event(sleeper_event)

        async def sleeping() -> bool:
            return any(h.kind == "step.sleeping" for h in await dev.history(sleeper))

        await eventually(sleeping, what="the first run to sleep")
        [other_event] = await dev.send({"name": "test/sleep-slot", "data": {"sleep": False}})
        other = await dev.finished(await dev.run_of_event(other_event), timeout=60)
        sleeper_state = await dev.stores.get_run(sleeper)
        sleeper_kinds = [h.kind for h in await dev.history(sleeper)]
        async with httpx.AsyncClient() as http:
            cancelled = await http.delete(f"{dev.url}/v1/runs/{sleeper}")
        assert cancelled.status_code == 200, cancelled.text
        await dev.finished(sleeper)

    assert other.status == "completed"
    assert sleeper_state is not None and sleeper_state.status == "running"
    assert sleeper_kinds[-1] == "step.sleeping"


async def _sentinel(dev: DevHandle, app_url: str) -> None:
    """The runner handles an account's events in order: once the run of an event sent last
    exists, every event before it has been decided."""
    [event_id] = await dev.send({"name": "test/rl-sentinel", "data": {}})
    await dev.run_of_event(event_id, timeout=30)


async def test_a_rate_limit_skips_the_events_over_it(dev: DevHandle) -> None:
    client = make_client(dev.url, "ratelimit-app")

    @client.create_function(
        fn_id="per-user",
        rate_limit=inngest.RateLimit(
            limit=1, period=datetime.timedelta(hours=1), key="event.data.user"
        ),
        trigger=inngest.TriggerEvent(event="test/rl-user"),
    )
    async def per_user(ctx: inngest.Context) -> None:
        return None

    @client.create_function(
        fn_id="burst",
        # Inngest's GCRA: a tenth of the limit plus one at once, then one per period / limit.
        rate_limit=inngest.RateLimit(limit=20, period=datetime.timedelta(hours=1)),
        trigger=inngest.TriggerEvent(event="test/rl-burst"),
    )
    async def burst(ctx: inngest.Context) -> None:
        return None

    @client.create_function(
        fn_id="sentinel", trigger=inngest.TriggerEvent(event="test/rl-sentinel")
    )
    async def sentinel(ctx: inngest.Context) -> None:
        return None

    with ServedApp(client, [per_user, burst, sentinel]) as app:
        await dev.sync(app.url, "ratelimit-app")
        user_ids = await dev.send(
            *({"name": "test/rl-user", "data": {"user": u}} for u in ["u1", "u2", "u3"] * 10)
        )
        burst_ids = await dev.send(*({"name": "test/rl-burst", "data": {}} for _ in range(30)))
        await _sentinel(dev, app.url)
        user_runs = [await dev.stores.runs_for_event(e) for e in user_ids]
        burst_runs = [await dev.stores.runs_for_event(e) for e in burst_ids]

    assert [len(r) for r in user_runs] == [1, 1, 1] + [0] * 27
    assert [len(r) for r in burst_runs] == [1, 1, 1] + [0] * 27


@pytest.mark.fake_clock
async def test_a_throttle_starts_runs_at_its_configured_rate(dev: DevHandle) -> None:
    client = make_client(dev.url, "throttle-app")
    started: list[float] = []

    @client.create_function(
        fn_id="paced",
        throttle=inngest.Throttle(limit=2, period=datetime.timedelta(seconds=2), burst=0),
        trigger=inngest.TriggerEvent(event="test/throttle"),
    )
    async def paced(ctx: inngest.Context) -> None:
        started.append(time.monotonic())

    with ServedApp(client, [paced]) as app:
        await dev.sync(app.url, "throttle-app")
        sent_ms = dev.now_ms()
        ids = await dev.send(*({"name": "test/throttle", "data": {"n": n}} for n in range(8)))
        runs = await _runs(dev, ids, timeout=30, step_s=0.2)

    assert {r.status for r in runs} == {"completed"}
    # limit 2 per 2 s, no burst: two at once, then one every second (period / limit). A run
    # starts some hops after the scheduler admits it, and a hop can be slow (the first run of
    # an app warms caches), so starts are bounded below by the admissions, counted from the
    # send (no admission precedes it), not from the first start; and above from the first
    # start, since the engine may take a while to reach the first event.
    emission_ms = 1000
    starts = sorted(run.started_ms for run in runs)
    for k, at in enumerate(starts):
        assert at - sent_ms >= max(k - 1, 0) * emission_ms, (k, at - sent_ms)
    assert starts[-1] - starts[0] <= (6 + 2) * emission_ms, starts[-1] - starts[0]
    assert len(started) == 8


async def test_priority_orders_the_runs_waiting_for_a_slot(dev: DevHandle) -> None:
    client = make_client(dev.url, "priority-app")
    order: list[int] = []
    blocking = threading.Event()

    @client.create_function(
        fn_id="ranked",
        concurrency=[inngest.Concurrency(limit=1)],
        priority=inngest.Priority(run="event.data.priority"),
        trigger=inngest.TriggerEvent(event="test/priority"),
    )
    async def ranked(ctx: inngest.Context) -> None:
        async def record() -> None:
            if ctx.event.data.get("block"):
                blocking.set()
                await asyncio.sleep(1.5)
            else:
                order.append(int(ctx.event.data["priority"]))

        await ctx.step.run("record", record)

    with ServedApp(client, [ranked]) as app:
        await dev.sync(app.url, "priority-app")
        [blocker] = await dev.send({"name": "test/priority", "data": {"priority": 0, "block": 1}})
        await eventually(_set(blocking), what="the blocker to run")
        priorities = [0, 100, -100, 600, 50, -600]
        ids = await dev.send(
            *({"name": "test/priority", "data": {"priority": p}} for p in priorities)
        )
        await _runs(dev, [blocker, *ids], timeout=30)

    assert order == sorted(priorities, reverse=True)


@pytest.mark.fake_clock
async def test_a_start_timeout_cancels_a_run_that_waited_too_long(dev: DevHandle) -> None:
    client = make_client(dev.url, "start-timeout-app")
    ran: list[str] = []
    blocking = threading.Event()
    # The first run holds the one slot until the second has been cancelled.
    release = threading.Event()

    @client.create_function(
        fn_id="impatient",
        concurrency=[inngest.Concurrency(limit=1)],
        timeouts=inngest.Timeouts(start=datetime.timedelta(seconds=1)),
        trigger=inngest.TriggerEvent(event="test/start-timeout"),
    )
    async def impatient(ctx: inngest.Context) -> None:
        async def work() -> None:
            ran.append(ctx.event.data["name"])
            blocking.set()
            while ctx.event.data["hold"] and not release.wait(0):
                await asyncio.sleep(0.01)

        await ctx.step.run("work", work)

    with ServedApp(client, [impatient]) as app:
        await dev.sync(app.url, "start-timeout-app")
        [first] = await dev.send(
            {"name": "test/start-timeout", "data": {"name": "first", "hold": True}}
        )
        await eventually(_set(blocking), what="the first to run")
        [second] = await dev.send(
            {"name": "test/start-timeout", "data": {"name": "second", "hold": False}}
        )
        try:
            late = await dev.finished(await dev.run_of_event(second), timeout=20, step_s=0.25)
        finally:
            release.set()
        done = await dev.finished(await dev.run_of_event(first), timeout=20)

    assert done.status == "completed"
    assert late.status == "cancelled" and "start timeout" in late.failure
    assert ran == ["first"]


@pytest.mark.fake_clock
async def test_a_finish_timeout_cancels_a_run_that_runs_too_long(dev: DevHandle) -> None:
    client = make_client(dev.url, "finish-timeout-app")

    @client.create_function(
        fn_id="slow",
        timeouts=inngest.Timeouts(finish=datetime.timedelta(seconds=1)),
        trigger=inngest.TriggerEvent(event="test/finish-timeout"),
    )
    async def slow(ctx: inngest.Context) -> str:
        await ctx.step.run("begin", lambda: None)
        await ctx.step.sleep("long", datetime.timedelta(seconds=30))
        return "never"

    with ServedApp(client, [slow]) as app:
        await dev.sync(app.url, "finish-timeout-app")
        [event_id] = await dev.send({"name": "test/finish-timeout", "data": {}})
        run = await dev.finished(await dev.run_of_event(event_id), timeout=20, step_s=0.25)

    assert run.status == "cancelled" and "finish timeout" in run.failure
    assert 1_000 <= run.ended_ms - run.started_ms < 30_000


async def test_a_run_that_ends_in_time_leaves_no_timeout_timer_behind(dev: DevHandle) -> None:
    client = make_client(dev.url, "timeout-cleanup-app")
    hour = datetime.timedelta(hours=1)

    @client.create_function(
        fn_id="quick",
        timeouts=inngest.Timeouts(start=hour, finish=hour),
        trigger=inngest.TriggerEvent(event="test/timeout-cleanup"),
    )
    async def quick(ctx: inngest.Context) -> str:
        return await ctx.step.run("work", lambda: "done")

    with ServedApp(client, [quick]) as app:
        await dev.sync(app.url, "timeout-cleanup-app")
        [event_id] = await dev.send({"name": "test/timeout-cleanup", "data": {}})
        run = await dev.finished(await dev.run_of_event(event_id))
    timeouts = {start_timer_id(run.run_id), finish_timer_id(run.run_id)}

    async def cancelled() -> bool:
        later = int(time.time() * 1000) + 2 * 3_600_000
        return not timeouts & await dev.timer_ids(later)

    assert run.status == "completed"
    await eventually(cancelled, what="the ended run's timeout timers to be cancelled")


def _register_body(**config: Any) -> dict[str, Any]:
    url = "http://127.0.0.1:1/api/inngest?fnId=flow-bad-fn"
    return {
        "url": "http://127.0.0.1:1/api/inngest",
        "appName": "flow-bad-app",
        "functions": [
            {
                "id": "flow-bad-fn",
                "name": "fn",
                "triggers": [{"event": "x"}],
                "steps": {"step": {"id": "step", "runtime": {"type": "http", "url": url}}},
                **config,
            }
        ],
    }


@pytest.mark.parametrize(
    ("config", "field", "problem"),
    [
        ({"concurrency": [{"limit": 1}] * 3}, "concurrency", "at most 2"),
        ({"concurrency": [{"limit": 0}]}, "concurrency[0].limit", "1 to 100000"),
        ({"concurrency": [{"limit": 5, "scope": "account"}]}, "concurrency[0].key", "required"),
        ({"concurrency": [{"limit": 5, "key": "event.data."}]}, "concurrency[0].key", "compile"),
        ({"priority": {"run": "event.data.p +"}}, "priority.run", "compile"),
        ({"throttle": {"limit": 1, "period": "10d"}}, "throttle.period", "1s to 604800s"),
        ({"rateLimit": {"limit": 1, "period": "500ms"}}, "rateLimit.period", "1s to 86400s"),
        ({"rateLimit": {"limit": 0, "period": "1m"}}, "rateLimit.limit", "integer from 1"),
        ({"timeouts": {"finish": "soon"}}, "timeouts.finish", "invalid duration"),
    ],
)
async def test_sync_refuses_bad_flow_control_naming_function_and_field(
    dev: DevHandle, config: dict[str, Any], field: str, problem: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{dev.url}/fn/register", json=_register_body(**config))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith(f"function 'flow-bad-fn': {field}: "), error
    assert problem in error, error
