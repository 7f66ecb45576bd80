"""The official TypeScript SDK (npm `inngest`) on headrace in both modes (`dev` and
`distributed`, from conftest), for both majors users run: 3.54 (the last 3.x) and 4.24. Each test
starts a Node app (tests/ts/app.mjs) serving functions from tests/ts/functions.mjs; side effects
are counted inside the app (TsApp.counts). Event names carry the app id (`<app id>/memo`), so the
apps of earlier tests, still registered on the cluster a session shares, never take them."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import inngest
import pytest

from headrace.messages.state import ENDED, HistoryEntry, RunState
from headrace.testing.dev import EngineHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client
from headrace.testing.ts_app import MAJORS, TsApp


# Ids without "dev" in them, so `-k dev` picks the dev mode alone.
@pytest.fixture(params=MAJORS, ids=[f"ts{m}" for m in MAJORS])
def major(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def serve(dev: EngineHandle, major: str) -> Iterator[list[TsApp]]:
    """The apps a test starts; their output is printed when the test fails."""
    apps: list[TsApp] = []
    yield apps
    for app in apps:
        app.stop()


async def _start(
    dev: EngineHandle, apps: list[TsApp], major: str, app_id: str, functions: list[str]
) -> TsApp:
    app = TsApp(dev.url, f"{app_id}-v{major}", functions, major=major)
    apps.append(app.start())
    try:
        await dev.sync(app.url, app.app_id)
    except Exception:
        print(app.log())
        raise
    return app


def _event(app: TsApp, name: str, **data: Any) -> dict[str, Any]:
    return {"name": f"{app.app_id}/{name}", "data": data}


async def _reached(dev: EngineHandle, run_id: str, kind: str) -> bool:
    return any(h.kind == kind for h in await dev.history(run_id))


def _kinds(history: list[HistoryEntry]) -> list[tuple[str, str | None, int]]:
    return [(h.kind, h.step_name, h.attempt) for h in history]


async def test_a_step_that_succeeded_is_not_run_again_when_a_later_step_is_retried(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-memo", ["memo"])
    [event_id] = await dev.send(_event(app, "memo"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    # Memos arrive unwrapped: numbers add up, as in the app's own run.
    assert run.output == {"first": 1, "flaky": 41, "total": 42}
    assert app.counts() == {"first": 1, "flaky": 3}
    # The first call let the SDK choose (-1): 3.x picks V1, 4.x V2, kept for the run.
    chosen = {"3": 1, "4": 2}[major]
    assert run.req_version == chosen
    calls = app.calls()
    assert [c["req_version"] for c in calls] == ["-1"] + [str(chosen)] * (len(calls) - 1)
    assert {c["step_id"] for c in calls} <= {"step", *run.stack}
    assert "no longer supported" not in app.log()
    kinds = _kinds(await dev.history(run.run_id))
    assert ("step.errored", "flaky", 0) in kinds
    assert ("step.errored", "flaky", 1) in kinds
    assert ("step.completed", "flaky", 2) in kinds


async def test_parallel_steps_with_promise_all_each_run_once_and_sum(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-par", ["parallel"])
    [event_id] = await dev.send(_event(app, "parallel"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    assert run.output == {"parts": [10, 20, 30], "sum": 60}
    assert app.counts() == {"part-1": 1, "part-2": 1, "part-3": 1, "sum": 1}


async def test_sleep_and_sleep_until(dev: EngineHandle, serve: list[TsApp], major: str) -> None:
    app = await _start(dev, serve, major, "ts-sleep", ["sleep"])
    until_ms = int(time.time() * 1000) + 2500
    until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(until_ms / 1000))
    until += f".{until_ms % 1000:03d}Z"
    [event_id] = await dev.send(_event(app, "sleep", until=until))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    assert run.output["slept_ms"] >= 1000
    assert run.ended_ms >= until_ms
    assert app.counts() == {"after": 1}
    sleeps = [h.step_name for h in await dev.history(run.run_id) if h.kind == "step.sleeping"]
    assert sleeps == ["nap", "until"]


async def test_wait_for_event_is_fulfilled_by_the_matching_event(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-wait", ["wait"])
    [event_id] = await dev.send(_event(app, "wait", order=7))
    run_id = await dev.run_of_event(event_id)

    async def waiting() -> bool:
        return any(h.kind == "step.waiting" for h in await dev.history(run_id))

    await eventually(waiting, what="the run to wait")
    await dev.send(_event(app, "approved", order=8, by="mallory"))
    await dev.send(_event(app, "approved", order=7, by="ann"))
    run = await dev.finished(run_id, timeout=30)

    assert run.status == "completed", app.log()
    assert run.output == {"by": "ann", "order": 7}


async def test_invoke_returns_the_invoked_functions_result(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-invoke", ["invoke"])
    [event_id] = await dev.send(_event(app, "invoke", n=21))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    assert run.output == {"child": {"doubled": 42}, "plus_one": 43}


async def test_non_retriable_error_fails_the_run_at_once(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-fatal", ["fatal"])
    [event_id] = await dev.send(_event(app, "fatal"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "failed", app.log()
    assert app.counts() == {"boom": 1}
    assert "no point in retrying" in str(run.output)
    [failed] = [h for h in await dev.history(run.run_id) if h.kind == "step.failed"]
    assert (failed.step_name, failed.attempt) == ("boom", 0)
    assert "no point in retrying" in failed.output["error"]["message"]
    # The error's name is the SDK's: 4.x keeps "NonRetriableError", 3.x serializes it as
    # "Error"; either way the app said not to retry (X-Inngest-No-Retry).
    assert run.failure == "NonRetriableError"


@pytest.mark.parametrize(
    ("function", "counted"), [("retry-once", "always-fails"), ("retry-once-body", "body")]
)
async def test_retries_1_gives_two_attempts(
    dev: EngineHandle, serve: list[TsApp], major: str, function: str, counted: str
) -> None:
    app = await _start(dev, serve, major, "ts-retry", [function])
    [event_id] = await dev.send(_event(app, function))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "failed", app.log()
    assert app.counts() == {counted: 2}
    assert "broken, attempt 2" in str(run.output)


async def test_cancel_on_cancels_the_matching_run_while_it_sleeps(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-cancel", ["cancellable"])
    first, other = await dev.send(
        _event(app, "cancellable", id="c-1"), _event(app, "cancellable", id="c-2")
    )
    run_id, other_id = await dev.run_of_event(first), await dev.run_of_event(other)
    for run in (run_id, other_id):
        await eventually(lambda r=run: _reached(dev, r, "step.sleeping"), what="the runs to sleep")

    await dev.send(_event(app, "cancel", id="c-1"))
    run = await dev.finished(run_id, timeout=30)

    assert run.status == "cancelled", app.log()
    # The other run's id did not match: it sleeps on.
    still = await dev.stores.get_run(other_id)
    assert still is not None and still.status == "running"
    assert app.counts() == {"before": 2}
    await dev.send(_event(app, "cancel", id="c-2"))
    assert (await dev.finished(other_id, timeout=30)).status == "cancelled"
    assert app.counts() == {"before": 2}  # no "after": neither run woke up


async def test_a_failure_handler_runs_with_the_failed_runs_error(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-onfail", ["with-handler"])
    [event_id] = await dev.send(_event(app, "with-handler", order=9))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)
    assert run.status == "failed", app.log()

    async def handled() -> RunState | None:
        runs = await dev.runs_of_function(f"{app.app_id}-with-handler-failure")
        return runs[0] if runs and runs[0].status in ENDED else None

    handler = await eventually(handled, timeout=30, what="the failure handler's run")
    assert handler.status == "completed", app.log()
    assert handler.output["message"] == "card declined"
    assert handler.output["original"] == {"order": 9}
    assert handler.output["handler_event"] == "inngest/function.failed"
    assert app.counts() == {"charge": 1, "handler": 1}


async def test_invoke_of_a_failing_function_fails_the_callers_step(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-invoke-fails", ["invoke-fails"])
    [event_id] = await dev.send(_event(app, "invoke-fails"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    # The invoke step threw in the caller, with the callee's error.
    assert "callee broke" in run.output["caught"], run.output
    [callee] = await dev.runs_of_function(f"{app.app_id}-broken-callee")
    assert (await dev.finished(callee.run_id)).status == "failed"


async def test_invoke_of_a_function_that_does_not_exist_fails_the_callers_step_at_once(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-invoke-missing", ["invoke-missing"])
    [event_id] = await dev.send(_event(app, "invoke-missing"))
    # Well before the invoke's timeout (a year by default): the caller is told at once.
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    missing = f"could not find function with ID: {app.app_id}-no-such-fn"
    assert run.output == {"caught": missing}, run.output
    [settled] = [h for h in await dev.history(run.run_id) if h.step_name == "call-missing"][-1:]
    assert settled.kind == "step.failed"


_TRACE = """
query ($runId: String!) {
  run(runID: $runId) {
    trace(preview: true) {
      status outputID
      childrenSpans { name stepType attempts status outputID childrenSpans { name status } }
    }
  }
}
"""
_OUTPUT = """
query ($id: String!) { runTraceSpanOutputByID(outputID: $id) { data error { name message } } }
"""
_STREAM = """
{ stream(query: {limit: 50, includeInternalEvents: false}) { id runs { id function { name } } } }
"""


async def _gql(dev: EngineHandle, query: str, **variables: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{dev.url}/v0/gql", json={"query": query, "variables": variables}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def test_graphql_shows_the_run_as_the_inngest_js_suite_reads_it(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    """What the inngest-js suite's helpers query (docs/inngest-js-suite.md): the event's run in
    the stream, each step's span with its type and attempts, and the run's result."""
    app = await _start(dev, serve, major, "ts-gql", ["memo"])
    [event_id] = await dev.send(_event(app, "memo"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)
    assert run.status == "completed", app.log()

    stream = (await _gql(dev, _STREAM))["stream"]
    [item] = [i for i in stream if i["id"] == event_id]
    assert item["runs"] == [{"id": run.run_id, "function": {"name": "memo"}}]

    trace = (await _gql(dev, _TRACE, runId=run.run_id))["run"]["trace"]
    spans = {s["name"]: s for s in trace["childrenSpans"]}
    assert (spans["first"]["stepType"], spans["first"]["attempts"]) == ("RUN", 0)
    # "flaky" threw twice, then returned: three attempts, the last one settled it.
    flaky = spans["flaky"]
    assert (flaky["stepType"], flaky["status"], flaky["attempts"]) == ("RUN", "COMPLETED", 2)
    assert [(a["name"], a["status"]) for a in flaky["childrenSpans"]] == [
        ("Attempt 0", "FAILED"),
        ("Attempt 1", "FAILED"),
        ("Attempt 2", "COMPLETED"),
    ]
    flaky_output = (await _gql(dev, _OUTPUT, id=flaky["outputID"]))["runTraceSpanOutputByID"]
    assert flaky_output == {"data": "41", "error": None}
    assert (spans["Finalization"]["stepType"], spans["Finalization"]["status"]) == (
        "FINALIZATION",
        "COMPLETED",
    )
    assert trace["status"] == "COMPLETED"
    result = (await _gql(dev, _OUTPUT, id=trace["outputID"]))["runTraceSpanOutputByID"]
    assert json.loads(result["data"]) == {"first": 1, "flaky": 41, "total": 42}


async def test_dev_lists_each_function_with_its_triggers_and_steps(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-dev-info", ["invoke"])
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{dev.url}/dev")

    assert response.status_code == 200
    listed = {f["id"]: f for f in response.json()["functions"]}
    parent = listed[f"{app.app_id}-parent"]
    assert (parent["name"], parent["slug"]) == ("parent", f"{app.app_id}-parent")
    assert parent["triggers"] == [{"event": f"{app.app_id}/invoke"}]
    [step] = parent["steps"]
    assert (step["id"], step["name"]) == ("step", "step")
    assert step["uri"].startswith(app.url)
    assert f"fnId={app.app_id}-parent" in step["uri"] and "stepId=step" in step["uri"]


async def test_wait_for_event_that_times_out_gives_null(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-wait-timeout", ["wait-times-out"])
    [event_id] = await dev.send(_event(app, "wait-times-out"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    assert run.output == {"approval": None}
    assert run.ended_ms - run.started_ms >= 1000
    assert await _reached(dev, run.run_id, "step.waiting")


async def test_a_sleep_survives_a_restart_of_the_engine(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-restart", ["napper"])
    [event_id] = await dev.send(_event(app, "napper", nap="3s"))
    run_id = await dev.run_of_event(event_id)
    await eventually(lambda: _reached(dev, run_id, "step.sleeping"), what="the run to sleep")

    await _still_asleep(dev, run_id)
    await dev.restart()
    # Generous: after a restart of the cluster its consumer groups rebalance as members rejoin
    # one by one, which took up to ~45 s on a loaded 2-core machine.
    run = await dev.finished(run_id, timeout=120)

    assert run.status == "completed", app.log()
    here = f"ts@{app.port}"
    assert run.output == f"{here}->{here}"
    # The step before the restart kept its output: it ran once.
    assert app.counts() == {f"before@{app.port}": 1, f"after@{app.port}": 1}


async def test_a_wait_survives_a_restart_of_the_engine(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-restart-wait", ["wait"])
    [event_id] = await dev.send(_event(app, "wait", order=3))
    run_id = await dev.run_of_event(event_id)
    await eventually(lambda: _reached(dev, run_id, "step.waiting"), what="the run to wait")

    await dev.restart()
    await dev.send(_event(app, "approved", order=3, by="ann"))
    run = await dev.finished(run_id, timeout=120)  # as in the test above

    assert run.status == "completed", app.log()
    assert run.output == {"by": "ann", "order": 3}


async def _still_asleep(dev: EngineHandle, run_id: str) -> None:
    """The run's sleep ("nap") has not ended: what the test does now happens while it sleeps.
    Otherwise the test would show nothing, so it fails."""
    history = await dev.history(run_id)
    woke = any(h.kind == "step.completed" and h.step_name == "nap" for h in history)
    assert not woke, "the sleep ended too soon for this test: make it longer"


async def _move_while_asleep(
    dev: EngineHandle, run_id: str, new: TsApp, stop_old: Callable[[], None]
) -> None:
    """Sync `new` under the same app id while the run sleeps, then stop the old app."""
    await dev.sync(new.url, new.app_id)
    stop_old()
    await _still_asleep(dev, run_id)


async def test_an_app_moved_to_a_new_url_finishes_its_sleeping_run_there(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    old = await _start(dev, serve, major, "ts-move", ["napper"])
    [event_id] = await dev.send(_event(old, "napper", nap="4s"))
    run_id = await dev.run_of_event(event_id)
    await eventually(lambda: _reached(dev, run_id, "step.sleeping"), what="the run to sleep")

    new = TsApp(dev.url, old.app_id, ["napper"], major=major)
    serve.append(new.start())
    await _move_while_asleep(dev, run_id, new, old.stop)
    run = await dev.finished(run_id, timeout=30)

    assert run.status == "completed", new.log()
    assert run.output == f"ts@{old.port}->ts@{new.port}"
    assert new.counts() == {f"after@{new.port}": 1}


async def test_a_sleeping_run_moves_from_a_python_app_to_a_typescript_one(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    """The same app id, served first with the Python SDK, then with the TypeScript one: both
    SDKs name a step by the sha1 of its id, so the memo of a step run by Python is the one the
    TypeScript function finds, and its sleep is the same step."""
    app_id = f"ts-from-py-v{major}"
    client = make_client(dev.url, app_id)
    ran: list[str] = []

    @client.create_function(fn_id="napper", trigger=inngest.TriggerEvent(event=f"{app_id}/napper"))
    async def napper(ctx: inngest.Context) -> str:
        async def before() -> str:
            ran.append("before@py")
            return "py"

        async def after() -> str:
            ran.append("after@py")
            return "py"

        first = await ctx.step.run("before", before)
        await ctx.step.sleep("nap", datetime.timedelta(seconds=4))
        return f"{first}->{await ctx.step.run('after', after)}"

    py_app = ServedApp(client, [napper]).start()
    try:
        await dev.sync(py_app.url, app_id)
        [event_id] = await dev.send({"name": f"{app_id}/napper", "data": {}})
        run_id = await dev.run_of_event(event_id)
        await eventually(lambda: _reached(dev, run_id, "step.sleeping"), what="the run to sleep")

        ts_app = TsApp(dev.url, app_id, ["napper"], major=major)
        serve.append(ts_app.start())
        await _move_while_asleep(dev, run_id, ts_app, py_app.stop)
    finally:
        py_app.stop()
    run = await dev.finished(run_id, timeout=30)

    assert run.status == "completed", ts_app.log()
    assert run.output == f"py->ts@{ts_app.port}"
    assert ran == ["before@py"]
    assert ts_app.counts() == {f"after@{ts_app.port}": 1}
