"""Run-start flow controls (debounce, idempotency, singleton) and cron triggers, end to end."""

from __future__ import annotations

import collections
import datetime
from pathlib import Path
from typing import Any

import httpx
import inngest
import pytest

from headrace.messages.state import ENDED, RunState
from headrace.testing.dev import DevHandle, eventually, fake_clock, start_dev
from headrace.testing.sdk_app import ServedApp, make_client


async def _runs(
    dev: DevHandle, fn_id: str, count: int, timeout: float = 20, step_s: float = 0.25
) -> list[RunState]:
    """At least `count` runs of the function, oldest first, the engine's time passing."""

    async def probe() -> list[RunState] | None:
        runs = await dev.runs_of_function(fn_id)
        return runs if len(runs) >= count else None

    what = f"{count} run(s) of {fn_id}"
    runs = await dev.passing(probe, step_s=step_s, timeout=timeout, what=what)
    return sorted(runs, key=lambda r: r.run_id)


def _data(run: RunState) -> dict[str, Any]:
    data = run.events[0].get("data")
    assert isinstance(data, dict)
    return data


@pytest.mark.fake_clock
async def test_a_debounce_starts_one_run_with_the_last_event_per_key(dev: DevHandle) -> None:
    client = make_client(dev.url, "debounce-app")

    @client.create_function(
        fn_id="debounced",
        debounce=inngest.Debounce(period=datetime.timedelta(seconds=1), key="event.data.who"),
        trigger=inngest.TriggerEvent(event="test/debounce"),
    )
    async def debounced(ctx: inngest.Context) -> int:
        return int(ctx.event.data["n"])

    with ServedApp(client, [debounced]) as app:
        await dev.sync(app.url, "debounce-app")
        ids = await dev.send(
            *({"name": "test/debounce", "data": {"who": w, "n": n}} for n, w in enumerate("abab"))
        )
        runs = await _runs(dev, "debounce-app-debounced", 2)
        ended = [await dev.finished(r.run_id) for r in runs]
        # One period later no other run has started.
        await dev.let_pass(1.5, step_s=0.5)
        assert len(await dev.runs_of_function("debounce-app-debounced")) == 2

    assert sorted((_data(r)["who"], r.output) for r in ended) == [("a", 2), ("b", 3)]
    assert sorted(r.event_ids[0] for r in ended) == sorted(ids[2:])
    assert await dev.stores.runs_for_event(ids[0]) == []


@pytest.mark.fake_clock
async def test_a_debounce_timeout_caps_the_delay_since_the_first_event(dev: DevHandle) -> None:
    client = make_client(dev.url, "debounce-timeout-app")

    @client.create_function(
        fn_id="capped",
        debounce=inngest.Debounce(
            period=datetime.timedelta(seconds=2), timeout=datetime.timedelta(seconds=3)
        ),
        trigger=inngest.TriggerEvent(event="test/debounce-capped"),
    )
    async def capped(ctx: inngest.Context) -> int:
        return int(ctx.event.data["n"])

    with ServedApp(client, [capped]) as app:
        await dev.sync(app.url, "debounce-timeout-app")
        # An event every 0.5 s for 6 s: the period alone would never let a run start before
        # the last one; the timeout starts one about 3 s after the first.
        ids = []
        for n in range(13):
            [event_id] = await dev.send({"name": "test/debounce-capped", "data": {"n": n}})
            ids.append(event_id)
            await eventually(lambda e=event_id: _debounced(dev, e), what=f"event {n} debounced")
            await dev.advance(0.5)
        # Linked at start, created by the executor: wait until it exists.
        await dev.finished(await dev.run_of_event(ids[-1], step_s=0.25), step_s=0.25)
        runs = await dev.runs_of_function("debounce-timeout-app-capped")

    started = sorted(_data(r)["n"] for r in runs)
    assert started[-1] == 12 and started[0] < 12, "no run while events kept coming"
    assert len(started) <= 4, started  # one per 3 s at most, then one after the last event


async def _debounced(dev: DevHandle, event_id: str) -> bool:
    """The runner has taken the event: it is the debounce's buffered one, or started a run."""
    for partition in range(dev.partitions):
        if any(event_id in b.event_ids for b in await dev.stores.batches_for_partition(partition)):
            return True
    return bool(await dev.stores.runs_for_event(event_id))


async def test_idempotency_starts_one_run_per_key_value(dev: DevHandle) -> None:
    client = make_client(dev.url, "idem-app")

    @client.create_function(
        fn_id="charge",
        idempotency="event.data.order",
        trigger=inngest.TriggerEvent(event="test/charge"),
    )
    async def charge(ctx: inngest.Context) -> str:
        return str(ctx.event.data["order"])

    with ServedApp(client, [charge]) as app:
        await dev.sync(app.url, "idem-app")
        orders = ["o-1", "o-1", "o-2", "o-1", "o-2", "o-3"]
        ids = await dev.send(*({"name": "test/charge", "data": {"order": o}} for o in orders))
        # The last event's run means every earlier one was handled (same partition, in order).
        await dev.finished(await dev.run_of_event(ids[-1]))
        runs = await dev.runs_of_function("idem-app-charge")

    assert sorted(r.event_ids[0] for r in runs) == sorted([ids[0], ids[2], ids[5]])
    for event_id in (ids[1], ids[3], ids[4]):
        assert await dev.stores.runs_for_event(event_id) == []


@pytest.mark.fake_clock
async def test_singleton_skip_starts_no_run_while_one_is_running(dev: DevHandle) -> None:
    client = make_client(dev.url, "single-skip-app")

    @client.create_function(
        fn_id="only-one",
        singleton=inngest.Singleton(mode="skip"),
        trigger=inngest.TriggerEvent(event="test/single-skip"),
    )
    async def only_one(ctx: inngest.Context) -> int:
        if ctx.event.data.get("slow"):
            await ctx.step.sleep("hold", datetime.timedelta(seconds=2))
        return int(ctx.event.data["n"])

    with ServedApp(client, [only_one]) as app:
        await dev.sync(app.url, "single-skip-app")
        [first] = await dev.send({"name": "test/single-skip", "data": {"n": 1, "slow": True}})
        holder = await dev.run_of_event(first)
        [skipped] = await dev.send({"name": "test/single-skip", "data": {"n": 2}})
        assert (await dev.finished(holder, step_s=0.5)).output == 1
        [after] = await dev.send({"name": "test/single-skip", "data": {"n": 3}})
        assert (await dev.finished(await dev.run_of_event(after))).output == 3

    assert await dev.stores.runs_for_event(skipped) == []


async def test_singleton_cancel_replaces_the_running_run(dev: DevHandle) -> None:
    client = make_client(dev.url, "single-cancel-app")
    started: list[int] = []

    @client.create_function(
        fn_id="latest",
        singleton=inngest.Singleton(mode="cancel", key="event.data.user"),
        trigger=inngest.TriggerEvent(event="test/single-cancel"),
    )
    async def latest(ctx: inngest.Context) -> int:
        started.append(int(ctx.event.data["n"]))
        if ctx.event.data.get("slow"):
            await ctx.step.sleep("hold", datetime.timedelta(seconds=60))
        return int(ctx.event.data["n"])

    with ServedApp(client, [latest]) as app:
        await dev.sync(app.url, "single-cancel-app")
        [a1, b1] = await dev.send(
            {"name": "test/single-cancel", "data": {"user": "a", "n": 1, "slow": True}},
            {"name": "test/single-cancel", "data": {"user": "b", "n": 2, "slow": True}},
        )
        first_a, first_b = await dev.run_of_event(a1), await dev.run_of_event(b1)
        await eventually(lambda: _sleeping(dev, first_a), what="the first run to sleep")
        [a2] = await dev.send({"name": "test/single-cancel", "data": {"user": "a", "n": 3}})
        replaced = await dev.finished(first_a)
        replacement = await dev.finished(await dev.run_of_event(a2))
        other = await dev.stores.get_run(first_b)

    assert replaced.status == "cancelled"
    assert replacement.status == "completed" and replacement.output == 3
    # Another key's run is left alone.
    assert other is not None and other.status not in ENDED


async def _sleeping(dev: DevHandle, run_id: str) -> bool:
    return any(h.kind == "step.sleeping" for h in await dev.history(run_id))


def _per_tick(runs: list[RunState]) -> collections.Counter[str]:
    return collections.Counter(str(_data(r)["scheduledAt"]) for r in runs)


@pytest.mark.fake_clock
async def test_a_cron_schedule_fires_once_per_tick_until_a_sync_removes_it(
    dev: DevHandle,
) -> None:
    client = make_client(dev.url, "cron-app")

    @client.create_function(fn_id="tick", trigger=inngest.TriggerCron(cron="* * * * * *"))
    async def tick(ctx: inngest.Context) -> str:
        return str(ctx.event.name)

    @client.create_function(fn_id="other", trigger=inngest.TriggerEvent(event="test/cron-other"))
    async def other(ctx: inngest.Context) -> None:
        return None

    with ServedApp(client, [tick, other]) as app:
        await dev.sync(app.url, "cron-app")
        runs = await _runs(dev, "cron-app-tick", 4)
    # A sync of the app without the function ends its schedule.
    with ServedApp(client, [other], port=app.port) as smaller:
        await _resync(dev, smaller.url)
        await eventually(lambda: _archived(dev, "cron-app-tick"), what="the function archived")
        settled = len(await dev.runs_of_function("cron-app-tick"))
        await dev.let_pass(2.5, step_s=0.5)
        after = await dev.runs_of_function("cron-app-tick")

    assert all(count == 1 for count in _per_tick(runs).values()), _per_tick(runs)
    assert runs[0].events[0]["name"] == "inngest/scheduled.timer"
    assert _data(runs[0])["cron"] == "* * * * * *"
    # At most the tick already on its way when the sync landed.
    assert len(after) <= settled + 1


async def test_a_cron_schedule_keeps_firing_once_per_tick_across_a_restart(tmp_path: Path) -> None:
    clock = fake_clock()
    first = await start_dev(tmp_path / "state", clock=clock)
    client = make_client(first.url, "cron-restart-app")

    @client.create_function(fn_id="tick", trigger=inngest.TriggerCron(cron="* * * * * *"))
    async def tick(ctx: inngest.Context) -> None:
        return None

    with ServedApp(client, [tick]) as app:
        try:
            await first.sync(app.url, "cron-restart-app")
            before = len(await _runs(first, "cron-restart-app-tick", 2))
        finally:
            await first.stop()
        stopped_ms = clock.now_ms()
        await clock.advance(3_000)
        # The same state; the app calls nothing on the engine, so a new port is fine.
        second = await start_dev(tmp_path / "state", clock=clock)
        restarted_ms = clock.now_ms()
        try:
            runs = await _runs(second, "cron-restart-app-tick", before + 3)
        finally:
            await second.stop()

    per_tick = _per_tick(runs)
    assert all(count == 1 for count in per_tick.values()), per_tick
    ticks = [_tick_ms(t) for t in per_tick]
    # The tick pending at the stop fires once, late; the ones missed after it are not replayed.
    missed = [t for t in ticks if stopped_ms + 1000 < t < restarted_ms - 1000]
    assert missed == [], missed
    assert any(t > restarted_ms for t in ticks)


def _tick_ms(rfc3339: str) -> int:
    return int(datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


async def _archived(dev: DevHandle, fn_id: str) -> bool:
    fn = await dev.stores.get_function(dev.account, fn_id)
    return fn is not None and fn.archived


async def _resync(dev: DevHandle, app_url: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.put(
            app_url, json={"url": app_url}, headers={"x-inngest-server-kind": "dev"}
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"debounce": {"period": "8d"}}, "debounce.period: must be 1s to 604800s"),
        ({"idempotency": "event.data.id =="}, "idempotency: does not compile"),
        ({"singleton": {"mode": "queue"}}, "singleton.mode: must be 'skip' or 'cancel'"),
        ({"triggers": [{"cron": "TZ=Nowhere/Town 0 9 * * *"}]}, "unknown time zone"),
        ({"triggers": [{"cron": "0 25 * * *"}]}, "triggers[0].cron: '0 25 * * *' is not a valid"),
    ],
)
async def test_a_sync_with_bad_flow_control_is_refused(
    dev: DevHandle, config: dict[str, Any], message: str
) -> None:
    fn = {
        "id": "bad-flow-app-fn",
        "name": "fn",
        "triggers": [{"event": "test/bad-flow"}],
        "steps": {
            "step": {
                "id": "step",
                "name": "step",
                "runtime": {"type": "http", "url": "http://127.0.0.1:1/api/inngest?fnId=x"},
            }
        },
        **config,
    }
    body = {"url": "http://127.0.0.1:1/api/inngest", "appName": "bad-flow-app", "functions": [fn]}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{dev.url}/fn/register", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "function 'bad-flow-app-fn'" in error and message in error
    assert await dev.stores.get_app(dev.account, "bad-flow-app") is None
