"""Run controls through the API (`/v0/gql` mutations and `/v1`), in both modes: cancel one run,
cancel in bulk, rerun a failed run, replay it from the step that failed."""

from __future__ import annotations

import collections
import datetime
from typing import Any

import httpx
import inngest

from headrace.core.durations import format_iso_ms
from headrace.testing.dev import DevHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client


async def gql(dev: DevHandle, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{dev.url}/v0/gql", json={"query": query, "variables": variables}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def sleeping(dev: DevHandle, run_id: str) -> None:
    async def probe() -> bool:
        return any(h.kind == "step.sleeping" for h in await dev.history(run_id))

    await eventually(probe, what=f"run {run_id} to sleep")


def sleeper(client: inngest.Inngest, event: str) -> inngest.Function[Any]:
    @client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event=event))
    async def fn(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(hours=1))
        return "woke"

    return fn


async def test_cancel_a_sleeping_run_with_cancel_run_and_with_delete(dev: DevHandle) -> None:
    client = make_client(dev.url, "ctl-cancel-app")
    with ServedApp(client, [sleeper(client, "ctl/cancel")]) as app:
        await dev.sync(app.url, "ctl-cancel-app")
        first, second = await dev.send({"name": "ctl/cancel"}, {"name": "ctl/cancel"})
        run_a, run_b = await dev.run_of_event(first), await dev.run_of_event(second)
        await sleeping(dev, run_a)
        await sleeping(dev, run_b)

        body = await gql(dev, "mutation($id: ULID!) { cancelRun(runID: $id) { id } }", id=run_a)
        assert body["data"]["cancelRun"]["id"] == run_a
        async with httpx.AsyncClient() as http:
            response = await http.delete(f"{dev.url}/v1/runs/{run_b}")
            assert response.status_code == 200, response.text
            missing = await http.delete(f"{dev.url}/v1/runs/01JNOSUCHRUN0000000000000A")
        assert missing.status_code == 404
        assert "run not found" in missing.json()["error"]

        for run_id in (run_a, run_b):
            run = await dev.finished(run_id)
            assert run.status == "cancelled"
            assert run.output["name"] == "FunctionCancelledError"
            kinds = [h.kind for h in await dev.history(run_id)]
            assert kinds[-1] == "run.cancelled"


async def test_bulk_cancel_by_function_time_and_expression(dev: DevHandle) -> None:
    client = make_client(dev.url, "ctl-bulk-app")
    with ServedApp(client, [sleeper(client, "ctl/bulk")]) as app:
        await dev.sync(app.url, "ctl-bulk-app")
        ids = await dev.send(
            {"name": "ctl/bulk", "data": {"customer": "acme"}},
            {"name": "ctl/bulk", "data": {"customer": "acme"}},
            {"name": "ctl/bulk", "data": {"customer": "other"}},
        )
        runs = [await dev.run_of_event(event_id) for event_id in ids]
        for run_id in runs:
            await sleeping(dev, run_id)
        now = datetime.datetime.now(datetime.UTC)
        later = (now + datetime.timedelta(hours=1)).isoformat()

        async with httpx.AsyncClient() as http:
            # A window that starts after every run: nothing matches.
            empty = await http.post(
                f"{dev.url}/v1/cancellations",
                json={
                    "app_id": "ctl-bulk-app",
                    "function_id": "sleeper",
                    "started_after": later,
                    "started_before": (now + datetime.timedelta(hours=2)).isoformat(),
                },
            )
            assert empty.status_code == 200, empty.text
            assert empty.json()["data"]["cancelled_run_ids"] == []
            bad = await http.post(
                f"{dev.url}/v1/cancellations",
                json={
                    "app_id": "ctl-bulk-app",
                    "function_id": "sleeper",
                    "started_before": later,
                    "if": "event.data.customer ==",
                },
            )
            assert bad.status_code == 400
            assert "invalid expression" in bad.json()["error"]
            response = await http.post(
                f"{dev.url}/v1/cancellations",
                json={
                    "app_id": "ctl-bulk-app",
                    "function_id": "sleeper",
                    "started_before": later,
                    "if": "event.data.customer == 'acme'",
                },
            )
        assert response.status_code == 200, response.text
        assert sorted(response.json()["data"]["cancelled_run_ids"]) == sorted(runs[:2])
        for run_id in runs[:2]:
            assert (await dev.finished(run_id)).status == "cancelled"
        other = await dev.stores.get_run(runs[2])
        assert other is not None and other.status == "running"

        # The same through GraphQL, by the function's full id and a time window.
        body = await gql(
            dev,
            """mutation($input: CancellationInput!) {
                 createCancellation(input: $input) { cancelledRunIDs } }""",
            input={
                "functionID": "ctl-bulk-app-sleeper",
                "startedAfter": format_iso_ms(other.started_ms - 1),
                "startedBefore": later,
            },
        )
        assert body["data"]["createCancellation"]["cancelledRunIDs"] == [runs[2]]
        assert (await dev.finished(runs[2])).status == "cancelled"


async def test_rerun_a_failed_run_from_the_start(dev: DevHandle) -> None:
    calls: collections.Counter[str] = collections.Counter()
    client = make_client(dev.url, "ctl-rerun-app")

    @client.create_function(
        fn_id="flaky", retries=0, trigger=inngest.TriggerEvent(event="ctl/rerun")
    )
    async def flaky(ctx: inngest.Context) -> str:
        async def first() -> str:
            calls["first"] += 1
            return "one"

        await ctx.step.run("first", first)
        calls["body"] += 1
        if calls["body"] == 1:
            raise inngest.NonRetriableError("broken the first time")
        return f"fixed {ctx.event.data['n']}"

    with ServedApp(client, [flaky]) as app:
        await dev.sync(app.url, "ctl-rerun-app")
        [event_id] = await dev.send({"name": "ctl/rerun", "data": {"n": 5}})
        original = await dev.finished(await dev.run_of_event(event_id))
        assert original.status == "failed"

        body = await gql(dev, "mutation($id: ULID!) { rerun(runID: $id) }", id=original.run_id)
        new_run_id = body["data"]["rerun"]
        rerun = await dev.finished(new_run_id)

        running = await gql(
            dev, "mutation($id: ULID!) { rerun(runID: $id) }", id="01JNOSUCHRUN0000000000000A"
        )

    assert rerun.status == "completed"
    assert rerun.output == "fixed 5"
    assert rerun.started_by == "rerun"
    assert rerun.original_run_id == original.run_id
    assert rerun.event_ids == original.event_ids
    # From the start: the step ran again.
    assert calls == {"first": 2, "body": 2}
    assert await dev.stores.runs_for_event(event_id) == [original.run_id, new_run_id]
    assert "run not found" in running["errors"][0]["message"]


async def test_replay_a_failed_run_from_the_step_that_failed(dev: DevHandle) -> None:
    calls: collections.Counter[str] = collections.Counter()
    client = make_client(dev.url, "ctl-replay-app")

    @client.create_function(
        fn_id="pipeline", retries=0, trigger=inngest.TriggerEvent(event="ctl/replay")
    )
    async def pipeline(ctx: inngest.Context) -> list[str]:
        def step(name: str, fail_first: bool = False):  # type: ignore[no-untyped-def]
            async def body() -> str:
                calls[name] += 1
                if fail_first and calls[name] == 1:
                    raise RuntimeError(f"{name} broke")
                return f"{name}-{calls[name]}"

            return body

        return [
            await ctx.step.run("fetch", step("fetch")),
            await ctx.step.run("transform", step("transform", fail_first=True)),
            await ctx.step.run("store", step("store")),
        ]

    with ServedApp(client, [pipeline]) as app:
        await dev.sync(app.url, "ctl-replay-app")
        [event_id] = await dev.send({"name": "ctl/replay"})
        original = await dev.finished(await dev.run_of_event(event_id))
        assert original.status == "failed"

        body = await gql(dev, "mutation($id: ULID!) { replayRun(runID: $id) }", id=original.run_id)
        replay = await dev.finished(body["data"]["replayRun"])
        again = await gql(dev, "mutation($id: ULID!) { replayRun(runID: $id) }", id=replay.run_id)

    assert replay.status == "completed"
    # fetch kept its memoized output; transform and what follows ran again.
    assert replay.output == ["fetch-1", "transform-2", "store-1"]
    assert calls == {"fetch": 1, "transform": 2, "store": 1}
    assert replay.started_by == "replay"
    assert replay.original_run_id == original.run_id
    memoized = [h.step_name for h in await dev.history(replay.run_id) if h.kind == "step.memoized"]
    assert memoized == ["fetch"]
    assert "only a failed run can be replayed" in again["errors"][0]["message"]
