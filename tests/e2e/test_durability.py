"""Durability: runs survive a restart of `headrace dev` and a move of their app to a new URL."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import inngest
import pytest

from headrace.testing.dev import TEST_RETRY_INTERVAL_S, DevHandle, eventually, start_dev
from headrace.testing.sdk_app import ServedApp, free_port, make_client


async def _gql_run(url: str, run_id: str) -> dict[str, object] | None:
    query = "query($id: String!) { run(runID: $id) { status output } }"
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/v0/gql", json={"query": query, "variables": {"id": run_id}}
        )
    data = response.json().get("data") or {}
    run = data.get("run")
    return run if isinstance(run, dict) else None


async def _event_run(url: str, event_id: str) -> str | None:
    query = "query($id: ID!) { event(query: {eventId: $id}) { functionRuns { id } } }"
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{url}/v0/gql", json={"query": query, "variables": {"id": event_id}}
        )
    event = (response.json().get("data") or {}).get("event") or {}
    runs = event.get("functionRuns") or []
    return str(runs[0]["id"]) if runs else None


def _start_headrace(port: int, state_dir: Path, log_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "headrace",
            "dev",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--retry-interval",
            str(TEST_RETRY_INTERVAL_S),
        ],
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


async def _healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{url}/health")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_a_sleep_and_a_wait_survive_a_restart_of_headrace_dev(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client = make_client(url, "restart-app")
    side_effects: list[str] = []

    @client.create_function(fn_id="sleeper", trigger=inngest.TriggerEvent(event="test/sleeper"))
    async def sleeper(ctx: inngest.Context) -> str:
        async def before() -> str:
            side_effects.append("sleeper.before")
            return "b"

        await ctx.step.run("before", before)
        await ctx.step.sleep("nap", datetime.timedelta(seconds=4))
        return "woke up"

    @client.create_function(fn_id="waiter", trigger=inngest.TriggerEvent(event="test/waiter"))
    async def waiter(ctx: inngest.Context) -> object:
        async def before() -> str:
            side_effects.append("waiter.before")
            return "b"

        await ctx.step.run("before", before)
        event = await ctx.step.wait_for_event(
            "go", event="test/go", timeout=datetime.timedelta(minutes=5)
        )
        return None if event is None else event.data

    log_path = tmp_path / "headrace.log"
    process = _start_headrace(port, tmp_path / "state", log_path)
    try:
        await eventually(lambda: _healthy(url), what="headrace dev to start")
        with ServedApp(client, [sleeper, waiter]) as app:
            async with httpx.AsyncClient() as http:
                await http.put(
                    app.url, json={"url": app.url}, headers={"x-inngest-server-kind": "dev"}
                )
            ids = await client.send(
                [inngest.Event(name="test/sleeper"), inngest.Event(name="test/waiter")]
            )
            sleep_run = await eventually(lambda: _event_run(url, ids[0]), what="sleeper run")
            wait_run = await eventually(lambda: _event_run(url, ids[1]), what="waiter run")
            await eventually(
                lambda: _side_effects_done(side_effects), what="first steps of both runs"
            )
            await asyncio.sleep(0.5)

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            process = _start_headrace(port, tmp_path / "state", log_path)
            await eventually(lambda: _healthy(url), what="headrace dev to start again")

            await client.send(inngest.Event(name="test/go", data={"ok": True}))
            for run_id, expected in ((sleep_run, "woke up"), (wait_run, {"ok": True})):
                run = await eventually(
                    lambda r=run_id: _completed(url, r), timeout=30, what=f"run {run_id}"
                )
                assert run["status"] == "COMPLETED"
                assert run["output"] is not None
                assert json.loads(str(run["output"])) == expected
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert sorted(side_effects) == ["sleeper.before", "waiter.before"]


async def _side_effects_done(side_effects: list[str]) -> bool:
    return len(side_effects) >= 2


async def _completed(url: str, run_id: str) -> dict[str, object] | None:
    run = await _gql_run(url, run_id)
    return run if run is not None and run["status"] != "RUNNING" else None


# On a fake clock, the run wakes only once its app is at the new URL (in real time it would
# find the old one gone if it woke first, and retry after the engine's backoff).
@pytest.mark.fake_clock
async def test_an_app_moved_to_a_new_url_finishes_its_sleeping_run_there(dev: DevHandle) -> None:
    where: list[str] = []

    def build(port_label: str) -> tuple[inngest.Inngest, inngest.Function[object]]:
        client = make_client(dev.url, "moving-app")

        @client.create_function(fn_id="mover", trigger=inngest.TriggerEvent(event="test/move"))
        async def mover(ctx: inngest.Context) -> str:
            async def before() -> str:
                where.append(f"before@{port_label}")
                return port_label

            first = await ctx.step.run("before", before)
            await ctx.step.sleep("nap", datetime.timedelta(seconds=2))

            async def after() -> str:
                where.append(f"after@{port_label}")
                return port_label

            return f"{first}->{await ctx.step.run('after', after)}"

        return client, mover

    old_client, old_fn = build("old")
    old_app = ServedApp(old_client, [old_fn]).start()
    await dev.sync(old_app.url, "moving-app")
    [event_id] = await dev.send({"name": "test/move"})
    run_id = await dev.run_of_event(event_id)
    await eventually(lambda: _has_sleep(dev, run_id), what="the run to sleep")
    old_app.stop()

    new_client, new_fn = build("new")
    with ServedApp(new_client, [new_fn]) as new_app:
        await dev.sync(new_app.url, "moving-app")
        run = await dev.finished(run_id, step_s=0.5)

    assert run.status == "completed"
    assert run.output == "old->new"
    assert where == ["before@old", "after@new"]


@pytest.mark.fake_clock
async def test_a_function_missing_from_a_resync_is_archived(dev: DevHandle) -> None:
    first = make_client(dev.url, "shrinking-app")

    @first.create_function(fn_id="doomed", trigger=inngest.TriggerEvent(event="test/doomed-fn"))
    async def doomed(ctx: inngest.Context) -> str:
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1))
        return "finished"

    @first.create_function(fn_id="stays", trigger=inngest.TriggerEvent(event="test/stays"))
    async def stays(ctx: inngest.Context) -> str:
        return "here"

    with ServedApp(first, [doomed, stays]) as app:
        await dev.sync(app.url, "shrinking-app")
        [event_id] = await dev.send({"name": "test/doomed-fn"})
        run_id = await dev.run_of_event(event_id)
        await eventually(lambda: _has_sleep(dev, run_id), what="the run to sleep")

    second = make_client(dev.url, "shrinking-app")

    @second.create_function(fn_id="stays", trigger=inngest.TriggerEvent(event="test/stays"))
    async def stays_again(ctx: inngest.Context) -> str:
        return "here"

    with ServedApp(second, [stays_again]) as app:
        await dev.sync(app.url, "shrinking-app")
        run = await dev.finished(run_id, step_s=0.5)
        [late_event] = await dev.send({"name": "test/doomed-fn"})
        [stays_event] = await dev.send({"name": "test/stays"})
        stays_run = await dev.finished(await dev.run_of_event(stays_event))
        assert await dev.stores.runs_for_event(late_event) == []

    assert run.status == "failed"
    assert run.output["name"] == "FunctionArchived"
    assert "removed from its app" in run.output["message"]
    assert stays_run.status == "completed"


async def _has_sleep(dev: DevHandle, run_id: str) -> bool:
    return any(h.kind == "step.sleeping" for h in await dev.history(run_id))


async def test_state_persists_in_the_state_dir_across_in_process_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = await start_dev(state)
    client = make_client(first.url, "persist-app")

    @client.create_function(fn_id="quick", trigger=inngest.TriggerEvent(event="test/quick"))
    async def quick(ctx: inngest.Context) -> str:
        return "ok"

    with ServedApp(client, [quick]) as app:
        await first.sync(app.url, "persist-app")
        [event_id] = await first.send({"name": "test/quick"})
        run_id = await first.run_of_event(event_id)
        await first.finished(run_id)
    await first.stop()

    second = await start_dev(state)
    try:
        run = await second.stores.get_run(run_id)
        assert run is not None and run.output == "ok"
        assert await second.stores.get_app("default", "persist-app") is not None
    finally:
        await second.stop()


async def test_headrace_dev_stopped_in_process_frees_its_port_for_a_restart(
    tmp_path: Path,
) -> None:
    first = await start_dev(tmp_path / "state")
    port = int(first.url.rsplit(":", 1)[1])
    # A client holding a keep-alive connection, as an app's SDK does.
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{first.url}/health")).status_code == 200
        await first.stop()
        second = await start_dev(tmp_path / "state", port=port)
        try:
            assert (await client.get(f"{second.url}/health")).status_code == 200
        finally:
            await second.stop()
