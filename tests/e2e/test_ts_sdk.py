"""The official TypeScript SDK (npm `inngest`) on `headrace dev`, for both majors users run:
3.54 (the last 3.x) and 4.24. Each test starts a Node app (tests/ts/app.mjs) serving functions
from tests/ts/functions.mjs; side effects are counted inside the app (TsApp.counts)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from headrace.messages.state import HistoryEntry
from headrace.testing.dev import EngineHandle, eventually, start_dev
from headrace.testing.ts_app import MAJORS, TsApp


@pytest.fixture
async def dev(tmp_path: Path) -> AsyncIterator[EngineHandle]:
    handle = await start_dev(tmp_path / "state")
    yield handle
    await handle.stop()


@pytest.fixture(params=MAJORS, ids=[f"dev-ts{m}" for m in MAJORS])
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


def _kinds(history: list[HistoryEntry]) -> list[tuple[str, str | None, int]]:
    return [(h.kind, h.step_name, h.attempt) for h in history]


async def test_a_step_that_succeeded_is_not_run_again_when_a_later_step_is_retried(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-memo", ["memo"])
    [event_id] = await dev.send({"name": "ts/memo", "data": {}})
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
    [event_id] = await dev.send({"name": "ts/parallel", "data": {}})
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    assert run.output == {"parts": [10, 20, 30], "sum": 60}
    assert app.counts() == {"part-1": 1, "part-2": 1, "part-3": 1, "sum": 1}


async def test_sleep_and_sleep_until(dev: EngineHandle, serve: list[TsApp], major: str) -> None:
    app = await _start(dev, serve, major, "ts-sleep", ["sleep"])
    until_ms = int(time.time() * 1000) + 2500
    until = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(until_ms / 1000))
    until += f".{until_ms % 1000:03d}Z"
    [event_id] = await dev.send({"name": "ts/sleep", "data": {"until": until}})
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
    [event_id] = await dev.send({"name": "ts/wait", "data": {"order": 7}})
    run_id = await dev.run_of_event(event_id)

    async def waiting() -> bool:
        return any(h.kind == "step.waiting" for h in await dev.history(run_id))

    await eventually(waiting, what="the run to wait")
    await dev.send({"name": "ts/approved", "data": {"order": 8, "by": "mallory"}})
    await dev.send({"name": "ts/approved", "data": {"order": 7, "by": "ann"}})
    run = await dev.finished(run_id, timeout=30)

    assert run.status == "completed", app.log()
    assert run.output == {"by": "ann", "order": 7}


async def test_invoke_returns_the_invoked_functions_result(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-invoke", ["invoke"])
    [event_id] = await dev.send({"name": "ts/invoke", "data": {"n": 21}})
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "completed", app.log()
    assert run.output == {"child": {"doubled": 42}, "plus_one": 43}


async def test_non_retriable_error_fails_the_run_at_once(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    app = await _start(dev, serve, major, "ts-fatal", ["fatal"])
    [event_id] = await dev.send({"name": "ts/fatal", "data": {}})
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
    [event_id] = await dev.send({"name": f"ts/{function}", "data": {}})
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    assert run.status == "failed", app.log()
    assert app.counts() == {counted: 2}
    assert "broken, attempt 2" in str(run.output)
