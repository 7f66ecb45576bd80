"""The official TypeScript SDK (npm `inngest`) on headrace, for both majors users run: 3.54 (the
last 3.x) and 4.24, each in dev mode, and the current major in distributed mode too. What the
SDK sees of the engine is the same in both modes (one executor builds and reads every call); the
distributed mode adds the ways the engine's own state travels (Kafka, Cassandra, several
services), which the current major covers: running 3.x there too cost a quarter of this module's
time, the longest of the suite, and tested nothing the other three did not. Each test starts a
Node app (tests/ts/app.mjs) serving functions from tests/ts/functions.mjs; side effects are
counted inside the app (TsApp.counts). Event names carry the app id (`<app id>/memo`), so the
apps of earlier tests, still registered on the cluster a session shares, never take them."""

from __future__ import annotations

import datetime
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import inngest
import pytest

from headrace.messages.state import ENDED, HistoryEntry, RunState
from headrace.testing.cluster import TEST_DASHBOARD_TOKEN
from headrace.testing.dev import FIRST_BACKOFF_MAX_S, EngineHandle, eventually, start_dev
from headrace.testing.sdk_app import ServedApp, free_port, make_client
from headrace.testing.ts_app import MAJORS, TsApp

# Ids as the conftest's modes name them, so `-k dev` picks the dev mode alone.
MAJOR_IDS = [f"ts{m}" for m in MAJORS]
DISTRIBUTED = [pytest.mark.kafka, pytest.mark.cassandra]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Both majors in dev mode and the current one in distributed mode; a test that starts its
    own engine, both majors."""
    if "dev" not in metafunc.fixturenames:
        metafunc.parametrize("major", MAJORS, ids=MAJOR_IDS)
        return
    last = MAJORS[-1]
    metafunc.parametrize(
        ("dev", "major"),
        [pytest.param("dev", m, id=f"dev-{i}") for m, i in zip(MAJORS, MAJOR_IDS, strict=True)]
        + [pytest.param("distributed", last, id=f"distributed-ts{last}", marks=DISTRIBUTED)],
        indirect=["dev"],
    )


@pytest.fixture
def dev(request: pytest.FixtureRequest, engine_in: Callable[[str], EngineHandle]) -> EngineHandle:
    """The conftest's, for the modes chosen above."""
    return engine_in(request.param)


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


async def _retried_once(dev: EngineHandle, run_id: str, step: str) -> RunState:
    """The run, ended, after one retry of `step` on the engine's backoff (a request the engine
    makes has no Retry-After to shorten it): on a fake clock moved past at once when the first
    attempt has errored (no call is in flight as it jumps); in real time, the distributed
    engine's `--retry-interval` (a tenth of a second)."""
    if dev.clock is not None:

        async def errored() -> bool:
            return ("step.errored", step, 0) in _kinds(await dev.history(run_id))

        await eventually(errored, what=f"{step} to error")
        await dev.advance(FIRST_BACKOFF_MAX_S)
        return await dev.finished(run_id, timeout=30)
    return await dev.finished(run_id, timeout=30)


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


async def test_a_step_s_retry_after_delays_its_next_attempt(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    """RetryAfterError thrown in a step: a 206 of its StepError with Retry-After, which the
    retry waits for (instead of Inngest's backoff, 15 s at least)."""
    app = await _start(dev, serve, major, "ts-retry-after", ["retry-after"])
    [event_id] = await dev.send(_event(app, "retry-after"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    assert app.counts() == {"busy": 2}
    assert 2_000 <= run.output["waited_ms"] < 10_000


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


@pytest.mark.fake_clock
async def test_wait_for_event_that_times_out_gives_null(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-wait-timeout", ["wait-times-out"])
    [event_id] = await dev.send(_event(app, "wait-times-out"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30, step_s=0.25)

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


# --- step.waitForSignal and the signal API ---------------------------------------------------


def _signal_name(app: TsApp, label: str) -> str:
    """Signals are unique per account: a name no other test (or earlier session) uses."""
    return f"{app.app_id}-{label}-{time.time_ns()}"


async def _wait_for_signal(dev: EngineHandle, app: TsApp, signal: str, **data: Any) -> str:
    [event_id] = await dev.send(_event(app, "signal-wait", signal=signal, **data))
    run_id = await dev.run_of_event(event_id)
    await eventually(lambda: _reached(dev, run_id, "step.waiting"), what="the run to wait")
    return run_id


async def _send_signal_with_the_sdk(dev: EngineHandle, app: TsApp, signal: str, data: Any) -> Any:
    """The app's own step.sendSignal (the SDK's POST /v1/signals); what the SDK made of the
    answer."""
    [event_id] = await dev.send(_event(app, "signal-send", signal=signal, data=data))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)
    assert run.status == "completed", app.log()
    return run.output


async def test_a_run_waiting_for_a_signal_resumes_with_the_signals_data(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-signal", ["signal-wait", "signal-send"])
    signal = _signal_name(app, "order")
    run_id = await _wait_for_signal(dev, app, signal)

    sent = await _send_signal_with_the_sdk(dev, app, signal, {"approved": True, "by": "ann"})
    run = await dev.finished(run_id, timeout=30)

    assert sent == {"run_id": run_id}
    assert run.status == "completed", app.log()
    assert run.output == {"got": {"signal": signal, "data": {"approved": True, "by": "ann"}}}
    # The wait is gone with the run's step: the same signal again finds no run.
    assert await _send_signal_with_the_sdk(dev, app, signal, 2) == {"run_id": None}


async def test_a_signal_no_run_waits_for_is_answered_404(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-signal-none", ["signal-send"])
    signal = _signal_name(app, "nobody")
    # The SDK reads Inngest's 404 as "no run": sendSignal returns no run id, and does not throw.
    assert await _send_signal_with_the_sdk(dev, app, signal, {"x": 1}) == {"run_id": None}
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{dev.url}/v1/signals", json={"signal": signal})
    assert response.status_code == 404
    assert response.json() == {"error": "No signal found", "status": 404}


@pytest.mark.fake_clock
async def test_a_wait_for_a_signal_times_out_to_null(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-signal-timeout", ["signal-wait", "signal-send"])
    signal = _signal_name(app, "late")
    run_id = await _wait_for_signal(dev, app, signal, timeout="1s")
    run = await dev.finished(run_id, timeout=30, step_s=0.25)

    assert run.status == "completed", app.log()
    assert run.output == {"got": None}
    assert run.ended_ms - run.started_ms >= 1000
    # Too late: the signal finds no run.
    assert await _send_signal_with_the_sdk(dev, app, signal, 1) == {"run_id": None}


async def test_a_second_wait_for_a_held_signal_fails_or_takes_it_over(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    """As in Inngest: a signal is held by one wait; a second wait with onConflict "fail" fails
    its run at once, one with "replace" takes the signal, and the first waits on until its
    timeout."""
    app = await _start(dev, serve, major, "ts-signal-conflict", ["signal-wait", "signal-send"])
    signal = _signal_name(app, "shared")
    first = await _wait_for_signal(dev, app, signal, timeout="3s")
    [event_id] = await dev.send(_event(app, "signal-wait", signal=signal, conflict="fail"))
    failed = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert failed.status == "failed", app.log()
    assert failed.output == {
        "name": "Error",
        "message": "Signal conflict; signal wait already exists for another run",
    }

    replacing = await _wait_for_signal(dev, app, signal, conflict="replace")
    assert await _send_signal_with_the_sdk(dev, app, signal, "to the newest") == {
        "run_id": replacing
    }
    run = await dev.finished(replacing, timeout=30)
    assert run.output == {"got": {"signal": signal, "data": "to the newest"}}
    # The first wait was not resumed: it ends at its timeout.
    assert (await dev.finished(first, timeout=30)).output == {"got": None}


async def test_a_wait_for_a_signal_survives_a_restart_of_the_engine(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-signal-restart", ["signal-wait", "signal-send"])
    signal = _signal_name(app, "durable")
    run_id = await _wait_for_signal(dev, app, signal)

    await dev.restart()
    sent = await _send_signal_with_the_sdk(dev, app, signal, "after the restart")
    run = await dev.finished(run_id, timeout=120)  # as the other restart tests

    assert sent == {"run_id": run_id}
    assert run.output == {"got": {"signal": signal, "data": "after the restart"}}


async def test_bad_signal_requests_get_a_clear_4xx_and_resume_nothing(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-signal-bad", ["signal-wait"])
    signal = _signal_name(app, "guarded")
    run_id = await _wait_for_signal(dev, app, signal)
    bad: list[tuple[bytes, int, str]] = [
        (b'{"signal": "' + signal.encode() + b'"', 400, "invalid signal data"),
        (b'["' + signal.encode() + b'"]', 400, "must be a JSON object"),
        (b'{"data": {"x": 1}}', 400, "signal is required"),
        (b'{"signal": 7}', 400, "signal is required"),
        (b'{"signal": ""}', 400, "signal is required"),
        (
            b'{"signal": "' + signal.encode() + b'", "data": "' + b"x" * (4 << 20) + b'"}',
            413,
            "larger than",
        ),
    ]
    async with httpx.AsyncClient() as http:
        for body, status, message in bad:
            response = await http.post(
                f"{dev.url}/v1/signals", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == status, (body[:60], response.text)
            assert message in response.json()["error"]
        still = await dev.stores.get_run(run_id)
        assert still is not None and still.status == "running"
        assert not any(h.kind == "step.completed" for h in await dev.history(run_id))
        ok = await http.post(f"{dev.url}/v1/signals", json={"signal": signal, "data": 1})
    assert ok.status_code == 200, ok.text
    assert ok.json()["data"] == {"run_id": run_id}
    assert (await dev.finished(run_id, timeout=30)).output == {"got": {"signal": signal, "data": 1}}


# --- step.fetch: the engine makes the request -------------------------------------------------


class _FetchTarget:
    """A local HTTP server step.fetch calls: it records each request and answers 201 with the
    JSON body it got."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                target.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                answer = json.dumps({"got": json.loads(body)}).encode()
                self.send_response(201)
                self.send_header("content-type", "application/json")
                self.send_header("x-served-by", "fetch-target")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def fetch_target() -> Iterator[_FetchTarget]:
    target = _FetchTarget()
    yield target
    target.close()


async def test_step_fetch_is_made_by_the_engine_once_and_memoized(
    dev: EngineHandle, serve: list[TsApp], major: str, fetch_target: _FetchTarget
) -> None:
    app = await _start(dev, serve, major, "ts-fetch", ["fetch"])
    [event_id] = await dev.send(_event(app, "fetch", url=f"{fetch_target.url}/orders?q=1", n=5))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    assert run.output == {"status": 201, "body": {"got": {"n": 5}}, "served_by": "fetch-target"}
    # The step after the fetch failed once and the run was called again: the response came
    # from the memo, the request was made once.
    assert app.counts() == {"after": 2}
    [request] = fetch_target.requests
    assert (request["method"], request["path"]) == ("POST", "/orders?q=1")
    assert request["headers"]["x-token"] == "secret-token"
    assert json.loads(request["body"]) == {"n": 5}
    [completed] = [
        h
        for h in await dev.history(run.run_id)
        if h.kind == "step.completed" and h.step_name == "step.fetch: 127.0.0.1"
    ]
    assert completed.output["data"]["status_code"] == 201


@pytest.mark.fake_clock
async def test_a_step_fetch_that_gets_no_answer_is_retried_then_throws_a_gateway_error(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-fetch-fails", ["fetch-fails"])
    [event_id] = await dev.send(_event(app, "fetch-fails"))
    fetch = "step.fetch: 127.0.0.1"
    run = await _retried_once(dev, await dev.run_of_event(event_id), fetch)

    assert run.status == "completed", app.log()
    assert run.output["caught"].startswith("Error making gateway request: ConnectError"), run.output
    kinds = _kinds(await dev.history(run.run_id))
    assert ("step.errored", fetch, 0) in kinds
    assert ("step.failed", fetch, 1) in kinds


@pytest.mark.fake_clock
async def test_a_step_ai_infer_whose_model_call_fails_is_retried_then_throws(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-ai-fails", ["ai-fails"])
    [event_id] = await dev.send(_event(app, "ai-fails"))
    run = await _retried_once(dev, await dev.run_of_event(event_id), "ask")

    assert run.status == "completed", app.log()
    assert run.output["caught"].startswith("Error making AI request: ConnectError"), run.output
    kinds = _kinds(await dev.history(run.run_id))
    assert ("step.errored", "ask", 0) in kinds
    assert ("step.failed", "ask", 1) in kinds


async def test_an_app_that_streams_its_answers_runs_as_one_that_does_not(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    """Streaming on (3.x `INNGEST_STREAMING=force`, 4.x `=true`): the SDK answers each call
    201 and streams the real status, headers and body after keep-alive bytes."""
    streaming = {"3": "force", "4": "true"}[major]
    app = TsApp(
        dev.url, f"ts-stream-v{major}", ["memo"], major=major, env={"INNGEST_STREAMING": streaming}
    )
    serve.append(app.start())
    await dev.sync(app.url, app.app_id)
    [event_id] = await dev.send(_event(app, "memo"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    assert run.output == {"first": 1, "flaky": 41, "total": 42}
    assert app.counts() == {"first": 1, "flaky": 3}


# --- sync: in band and out of band ----------------------------------------------------------

# An address nothing listens on: an app pointed there cannot register itself.
UNREACHABLE = "http://127.0.0.1:9"


async def _registered(engine: EngineHandle, app: TsApp, fn: str) -> None:
    async def found() -> bool:
        return await engine.stores.get_function(engine.account, f"{app.app_id}-{fn}") is not None

    await eventually(found, what=f"{app.app_id}-{fn} registered", timeout=20)


async def _runs(engine: EngineHandle, app: TsApp, name: str, output: Any) -> None:
    [event_id] = await engine.send(_event(app, name))
    run = await engine.finished(await engine.run_of_event(event_id), timeout=30)
    assert run.status == "completed", app.log()
    assert run.output == output


async def test_headrace_dev_u_syncs_an_app_in_band(tmp_path: Path, major: str) -> None:
    """The app cannot reach headrace: it is registered from its answer to the sync (in band),
    and its runs work, since they need only headrace to reach the app."""
    with TsApp(UNREACHABLE, f"ts-in-band-v{major}", ["parallel"], major=major) as app:
        engine = await start_dev(tmp_path / "state", sdk_urls=[app.url])
        try:
            await _registered(engine, app, "parallel")
            [synced] = await engine.stores.list_apps(engine.account)
            assert synced.url.startswith(app.url)
            assert synced.sdk.startswith("js:v")
            await _runs(engine, app, "parallel", {"parts": [10, 20, 30], "sum": 60})
        finally:
            await engine.stop()


async def test_headrace_dev_u_syncs_an_app_that_refuses_in_band_out_of_band(
    tmp_path: Path, major: str
) -> None:
    """`INNGEST_ALLOW_IN_BAND_SYNC=0`: the SDK registers itself at /fn/register and answers
    `out_of_band`."""
    port = free_port()
    app = TsApp(
        f"http://127.0.0.1:{port}",
        f"ts-out-of-band-v{major}",
        ["parallel"],
        major=major,
        env={"INNGEST_ALLOW_IN_BAND_SYNC": "0"},
    )
    with app:
        engine = await start_dev(tmp_path / "state", port=port, sdk_urls=[app.url])
        try:
            await _registered(engine, app, "parallel")
            await _runs(engine, app, "parallel", {"parts": [10, 20, 30], "sum": 60})
        finally:
            await engine.stop()


async def test_the_dashboards_re_sync_registers_the_app_in_band(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    """First synced out of band (the app registers itself), then served again on its URL with
    one more function and no way to reach headrace: the dashboard's re-sync registers it in
    band."""
    first = await _start(dev, serve, major, "ts-re-sync", ["memo"])
    first.stop()
    again = TsApp(UNREACHABLE, first.app_id, ["memo", "parallel"], major=major, port=first.port)
    serve.append(again.start())
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{dev.url}/dashboard/apps/{first.app_id}/sync",
            headers={"authorization": f"Bearer {TEST_DASHBOARD_TOKEN}"},
        )
    assert response.status_code == 303
    assert "synced" in response.headers["location"], response.headers["location"]
    await _registered(dev, again, "parallel")
    await _runs(dev, again, "parallel", {"parts": [10, 20, 30], "sum": 60})
