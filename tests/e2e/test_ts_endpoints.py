"""Durable Endpoints (npm `inngest` 4.x `inngest.endpoint`) on headrace, in both modes (`dev`
and `distributed`, from conftest): the app runs the handler in its own HTTP request and
checkpoints it to `POST /v1/checkpoint` (creating the run) and `/v1/checkpoint/{run_id}/steps`;
a step that fails hands the run to the engine, which calls the endpoint to go on, while the
client follows a redirect to the run's output. Step bodies are counted in the app
(tests/ts/endpoints.mjs)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from headrace.core.ids import new_ulid
from headrace.core.jsonutil import loads
from headrace.messages.state import RunState
from headrace.protocol.accounts import DEFAULT_ACCOUNT
from headrace.testing.cluster import TEST_DASHBOARD_TOKEN
from headrace.testing.dev import (
    FIRST_BACKOFF_MAX_S,
    TEST_ENDPOINT_TIMEOUT_S,
    EngineHandle,
    eventually,
)
from headrace.testing.ts_app import TsApp, fetch_with_stream


@pytest.fixture
def app(dev: EngineHandle) -> Iterator[TsApp]:
    served = TsApp(
        dev.url,
        "endpoints",
        [],
        major="4",
        env={"HEADRACE_TS_ENDPOINTS": "steps,flaky,nap,signal,streamed"},
    )
    served.start()
    yield served
    served.stop()


def _endpoint(app: TsApp, name: str) -> str:
    return f"http://127.0.0.1:{app.port}/endpoint/{name}"


async def _step_errored(dev: EngineHandle, app: TsApp, slug: str, step: str) -> bool:
    """Whether a step of the endpoint function `slug`'s run has errored, once there is one."""
    origin = f"http://127.0.0.1:{app.port}"
    for fn in await dev.stores.list_functions(DEFAULT_ACCOUNT):
        if fn.name == slug and fn.config["steps"]["step"]["runtime"]["url"] == origin:
            for run in await dev.stores.list_runs(DEFAULT_ACCOUNT, fn_id=fn.fn_id):
                history = await dev.history(run.run_id)
                if any(h.kind == "step.errored" and h.step_name == step for h in history):
                    return True
    return False


async def _only_run(dev: EngineHandle, app: TsApp, slug: str) -> RunState:
    """The one run of the endpoint function `slug` ("GET /endpoint/steps") of this app."""
    origin = f"http://127.0.0.1:{app.port}"
    fns = [
        fn
        for fn in await dev.stores.list_functions(DEFAULT_ACCOUNT)
        if fn.name == slug and fn.config["steps"]["step"]["runtime"]["url"] == origin
    ]
    assert len(fns) == 1, fns
    [run] = await dev.stores.list_runs(DEFAULT_ACCOUNT, fn_id=fns[0].fn_id)
    return run


async def test_a_request_completes_and_its_run_is_visible_with_its_steps_and_output(
    dev: EngineHandle, app: TsApp
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.get(_endpoint(app, "steps"), params={"n": 3})
    assert response.status_code == 200, (response.text, app.log())
    assert response.json() == {"total": 6}
    assert app.counts() == {"step-1": 1, "step-2": 1, "step-3": 1}

    run = await _only_run(dev, app, "GET /endpoint/steps")
    run = await dev.finished(run.run_id)
    assert run.status == "completed"
    # The output is the response, as the SDK's return op carries it.
    assert run.output["status"] == 200
    assert loads(run.output["body"]) == {"total": 6}
    memos = await dev.stores.get_memos(run.run_id)
    assert sorted(loads(m)["data"] for m in memos.values()) == [1, 2, 3]
    history = await dev.history(run.run_id)
    assert [h.step_name for h in history if h.kind == "step.completed"] == [
        "step-1",
        "step-2",
        "step-3",
    ]
    assert [h.kind for h in history if h.kind.startswith("run.")] == [
        "run.started",
        "run.completed",
    ]
    event = run.events[0]
    assert event["name"] == "inngest/http.request"
    assert (event["data"]["method"], event["data"]["path"]) == ("GET", "/endpoint/steps")
    assert event["data"]["query_params"] == "n=3"
    async with httpx.AsyncClient(base_url=dev.url) as http:
        api = await http.get(f"/v1/runs/{run.run_id}")
        page = await http.get(
            f"/dashboard/runs/{run.run_id}",
            headers={"authorization": f"Bearer {TEST_DASHBOARD_TOKEN}"},
        )
    assert api.status_code == 200
    assert api.json()["data"]["status"] == "Completed"
    assert page.status_code == 200
    assert "GET /endpoint/steps" in page.text and "step-3" in page.text
    # The request went through the app once: the engine never called it.
    assert [c.get("run_id") for c in app.calls()] == [None]


async def test_the_request_s_event_is_stored_and_shown_as_the_run_s_trigger(
    dev: EngineHandle, app: TsApp
) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.get(_endpoint(app, "steps"), params={"n": 1})
    assert response.status_code == 200, (response.text, app.log())
    run = await dev.finished((await _only_run(dev, app, "GET /endpoint/steps")).run_id)
    [event_id] = run.event_ids

    async with httpx.AsyncClient(base_url=dev.url) as http:

        async def listed() -> dict[str, Any] | None:
            found = await http.get("/v1/events", params={"name": "inngest/http.request"})
            mine = [e for e in found.json()["data"] if e["internal_id"] == event_id]
            return mine[0] if mine else None

        event = await eventually(listed, what="the request's event to be listed")
        runs = await http.get(f"/v1/events/{event_id}/runs")
        api_run = await http.get(f"/v1/runs/{run.run_id}")
        query = "query($id: String!) { runTrigger(runID: $id) { eventName IDs } }"
        trigger = await http.post("/v0/gql", json={"query": query, "variables": {"id": run.run_id}})
    assert (event["data"]["path"], event["data"]["query_params"]) == ("/endpoint/steps", "n=1")
    assert [r["run_id"] for r in runs.json()["data"]] == [run.run_id]
    assert api_run.json()["data"]["event_id"] == event_id
    assert trigger.json()["data"]["runTrigger"] == {
        "eventName": "inngest/http.request",
        "IDs": [event_id],
    }


@pytest.mark.fake_clock
async def test_a_step_that_fails_hands_the_run_to_the_engine_which_finishes_it(
    dev: EngineHandle, app: TsApp
) -> None:
    async with httpx.AsyncClient(timeout=60, follow_redirects=True) as http:
        request = asyncio.create_task(http.get(_endpoint(app, "flaky")))
        # The retry of "two" waits the engine's backoff (a checkpoint carries no Retry-After): on
        # a fake clock moved past it once the run has the error; in real time, the distributed
        # engine's `--retry-interval` (a tenth of a second).
        if dev.clock is not None:
            await eventually(lambda: _step_errored(dev, app, "GET /endpoint/flaky", "two"))
            await dev.advance(FIRST_BACKOFF_MAX_S)
        response = await request
    # The SDK answered with a redirect to the run's output, which waited for the run's end.
    assert response.history and response.history[0].status_code == 302, app.log()
    assert str(response.url).startswith(f"{dev.url}/v1/http/runs/")
    assert response.status_code == 200, response.text
    assert response.json() == {"sum": 6}
    # "one" ran in the request and was checkpointed: never again.
    assert app.counts() == {"one": 1, "two": 2, "three": 1}

    run = await dev.finished((await _only_run(dev, app, "GET /endpoint/flaky")).run_id)
    assert run.status == "completed"
    assert loads(run.output["body"]) == {"sum": 6}
    # The engine called the endpoint with the run's id: to retry "two", and on from there.
    engine_calls = [c for c in app.calls() if c.get("run_id")]
    assert engine_calls and {c["run_id"] for c in engine_calls} == {run.run_id}
    history = await dev.history(run.run_id)
    assert [(h.kind, h.step_name) for h in history if h.kind.startswith("step.")] == [
        ("step.completed", "one"),
        ("step.errored", "two"),
        ("step.completed", "two"),
        ("step.completed", "three"),
    ]


async def test_a_sleep_hands_the_run_to_the_engine_which_calls_the_endpoint_after_it(
    dev: EngineHandle, app: TsApp
) -> None:
    async with httpx.AsyncClient(timeout=60, follow_redirects=True) as http:
        response = await http.get(_endpoint(app, "nap"))
    assert response.history and response.history[0].status_code == 302, app.log()
    assert (response.status_code, response.json()) == (200, {"sum": 3})
    assert app.counts() == {"one": 1, "two": 1}
    run = await dev.finished((await _only_run(dev, app, "GET /endpoint/nap")).run_id)
    history = await dev.history(run.run_id)
    kinds = [(h.kind, h.step_name) for h in history if h.kind.startswith("step.")]
    assert kinds == [
        ("step.completed", "one"),
        ("step.sleeping", "nap"),
        ("step.completed", "nap"),
        ("step.completed", "two"),
    ], kinds


async def test_a_wait_for_a_signal_in_the_request_is_resumed_by_the_signal(
    dev: EngineHandle, app: TsApp
) -> None:
    signal = f"endpoint-{new_ulid(int(time.time() * 1000))}"
    async with httpx.AsyncClient(timeout=60, follow_redirects=True) as http:
        request = asyncio.create_task(http.get(_endpoint(app, "signal"), params={"signal": signal}))

        async def waiting() -> RunState | None:
            runs = await dev.stores.list_runs(DEFAULT_ACCOUNT, limit=1000)
            mine = [r for r in runs if r.events and r.events[0]["data"].get("query_params")]
            mine = [r for r in mine if r.events[0]["data"]["query_params"] == f"signal={signal}"]
            if not mine:
                return None
            history = await dev.history(mine[0].run_id)
            return mine[0] if any(h.kind == "step.waiting" for h in history) else None

        run = await eventually(waiting, what="the endpoint's run to wait for its signal")
        sent = await http.post(
            f"{dev.url}/v1/signals", json={"signal": signal, "data": {"ok": True}}
        )
        response = await request
    assert (sent.status_code, sent.json()["data"]["run_id"]) == (200, run.run_id), sent.text
    assert response.history and response.history[0].status_code == 302, app.log()
    assert response.json() == {"one": 1, "got": {"signal": signal, "data": {"ok": True}}}
    assert app.counts() == {"one": 1}


async def test_a_streamed_response_reaches_the_client_through_the_engine_after_a_sleep(
    dev: EngineHandle, app: TsApp
) -> None:
    """The SDK streams to a client asking for server-sent events (`stream.push`); at the sleep
    the run goes on in the engine, and the SDK's client follows its redirect to the engine's
    `/v1/realtime/sse` (with the token of the run's first checkpoint), where the endpoint's
    next call tees the rest (`/v1/realtime/publish/tee`)."""
    events, end = await asyncio.to_thread(fetch_with_stream, _endpoint(app, "streamed"))
    assert end == 'response 200 {"sum":3}', (end, events, app.log())
    # Each call of the endpoint runs its handler again and pushes again: the client gets the
    # first push from the endpoint, then each later call's pushes through the engine.
    pushed = [e["data"] for e in events if e["kind"] == "data"]
    assert pushed[0] == "before the nap" and pushed[-3:] == [
        "before the nap",
        "after the nap",
        "ünïcode ✓",
    ], events
    assert app.counts() == {"one": 1, "two": 1}
    run = await dev.finished((await _only_run(dev, app, "GET /endpoint/streamed")).run_id)
    assert run.status == "completed"
    assert {e["runId"] for e in events if e["kind"] == "metadata"} == {run.run_id}


def _new_run(run_id: str, **overrides: object) -> dict[str, object]:
    """A body of `POST /v1/checkpoint` as 4.24.0 sends it (api/api.js `checkpointNewRun`)."""
    body: dict[str, object] = {
        "run_id": run_id,
        "event": {
            "name": "inngest/http.request",
            "data": {"domain": "http://127.0.0.1:9", "method": "GET", "path": "/x", "fn": ""},
        },
        "steps": [{"op": "StepRun", "id": "a1", "data": 1}],
        "ts": 1,
        "request_version": 2,
        "retries": 3,
    }
    body.update(overrides)
    return body


async def test_bad_checkpoints_get_a_4xx_and_store_nothing(dev: EngineHandle) -> None:
    run_id, other_id = new_ulid(int(time.time() * 1000)), new_ulid(int(time.time() * 1000))
    event = _new_run(run_id)["event"]
    assert isinstance(event, dict)
    bad_bodies: list[object] = [
        {"run_id": run_id},
        _new_run("not-a-ulid"),
        _new_run(run_id, event={**event, "name": "app/other"}),
        _new_run(run_id, event={**event, "data": {**event["data"], "domain": "file:///etc"}}),
        _new_run(run_id, event={**event, "data": {**event["data"], "path": "x"}}),
        _new_run(run_id, retries=99),
        _new_run(run_id, steps=[{"op": "StepRun", "data": 1}]),
        _new_run(run_id, steps="nope"),
    ]
    async with httpx.AsyncClient(base_url=dev.url) as http:
        garbage = await http.post("/v1/checkpoint", content=b"{not json")
        assert garbage.status_code == 400
        for body in bad_bodies:
            response = await http.post("/v1/checkpoint", json=body)
            assert response.status_code == 400, (body, response.text)
            assert "error" in response.json()
        assert await dev.stores.get_run(run_id) is None

        created = await http.post("/v1/checkpoint", json=_new_run(run_id))
        assert created.status_code == 200, created.text
        data = created.json()["data"]
        assert data["run_id"] == run_id and data["token"]
        again = await http.post("/v1/checkpoint", json=_new_run(run_id))
        assert again.status_code == 409

        ids = {"run_id": run_id, "fn_id": data["fn_id"], "app_id": data["app_id"]}
        complete = {"op": "RunComplete", "id": "c", "data": {"status": 200, "body": "1"}}
        unknown = await http.post(
            f"/v1/checkpoint/{other_id}/steps",
            json={**ids, "run_id": other_id, "steps": [complete]},
        )
        assert unknown.status_code == 404
        for body in [
            {**ids, "fn_id": "another", "steps": [complete]},
            {**ids, "run_id": other_id, "steps": [complete]},
            {**ids, "steps": [{"op": "StepRun", "data": 1}]},
        ]:
            response = await http.post(f"/v1/checkpoint/{run_id}/steps", json=body)
            assert response.status_code == 400, (body, response.text)
        run = await dev.stores.get_run(run_id)
        assert run is not None and run.status == "running"
        assert set(await dev.stores.get_memos(run_id)) == {"a1"}

        wrong = await http.get(f"/v1/http/runs/{run_id}/output", params={"token": "x"})
        assert wrong.status_code == 401
        done = await http.post(f"/v1/checkpoint/{run_id}/steps", json={**ids, "steps": [complete]})
        assert done.status_code == 200
        late = await http.post(f"/v1/checkpoint/{run_id}/steps", json={**ids, "steps": [complete]})
        assert late.status_code == 409
        output = await http.get(f"/v1/checkpoint/{run_id}/output", params={"token": data["token"]})
        assert (output.status_code, output.text) == (200, "1")
    run = await dev.finished(run_id)
    assert run.status == "completed" and run.output == {"status": 200, "body": "1"}


async def test_a_run_whose_request_died_fails_at_the_endpoint_timeout(dev: EngineHandle) -> None:
    """The SDK's checkpoints as 4.24.0 posts them: one request finishes its run, the other
    checkpoints a step and dies (nothing ends its run or hands it over). The dead one's run
    fails at the endpoint timeout (TEST_ENDPOINT_TIMEOUT_S here, 1 h by default); the finished
    one's timer is taken off the wheel."""
    now = int(time.time() * 1000)
    finished_id, dead_id = new_ulid(now), new_ulid(now)
    complete = {"op": "RunComplete", "id": "c", "data": {"status": 200, "body": "1"}}
    async with httpx.AsyncClient(base_url=dev.url) as http:
        created = await http.post("/v1/checkpoint", json=_new_run(finished_id, steps=[complete]))
        assert created.status_code == 200, created.text
        started = await http.post("/v1/checkpoint", json=_new_run(dead_id))
        assert started.status_code == 200, started.text
        run = await dev.finished(dead_id, timeout=TEST_ENDPOINT_TIMEOUT_S + 20)
        data = started.json()["data"]
        ids = {"run_id": dead_id, "fn_id": data["fn_id"], "app_id": data["app_id"]}
        late = await http.post(f"/v1/checkpoint/{dead_id}/steps", json={**ids, "steps": [complete]})
        output = await http.get(f"/v1/http/runs/{dead_id}/output", params={"token": data["token"]})
    assert run.status == "failed", run
    assert f"within {int(TEST_ENDPOINT_TIMEOUT_S)} s" in run.failure
    assert run.ended_ms - run.started_ms >= TEST_ENDPOINT_TIMEOUT_S * 1000
    assert set(await dev.stores.get_memos(dead_id)) == {"a1"}
    assert late.status_code == 409
    assert output.status_code == 200 and "neither finished" in output.json()["message"]
    assert (await dev.finished(finished_id)).status == "completed"

    async def cancelled() -> bool:
        later = int(time.time() * 1000) + 3_600_000
        return f"{finished_id}:timeout:endpoint" not in await dev.timer_ids(later)

    await eventually(cancelled, what="the finished run's endpoint timer to be cancelled")
