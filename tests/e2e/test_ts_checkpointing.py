"""The 4.x TypeScript SDK's checkpointing (on by default) on headrace, in both modes (`dev` and
`distributed`, from conftest), with checkpointing on and explicitly off: with it on, the SDK
runs the steps of one call in a row and POSTs each to `/v1/checkpoint/{run_id}/async`, and the
engine must keep each as a memo that is never run again. Side effects are counted in the app;
the calls the app got (TsApp.calls) tell whether it checkpointed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from headrace.core.jsonutil import loads
from headrace.testing.dev import EngineHandle, eventually
from headrace.testing.ts_app import TsApp


@pytest.fixture(params=["on", "off"], ids=["checkpointing-on", "checkpointing-off"])
def checkpointing(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def serve() -> Iterator[list[TsApp]]:
    apps: list[TsApp] = []
    yield apps
    for app in apps:
        app.stop()


async def _start(
    dev: EngineHandle,
    apps: list[TsApp],
    checkpointing: str,
    app_id: str,
    function: str,
    major: str = "4",
) -> TsApp:
    app = TsApp(
        dev.url,
        f"{app_id}-{checkpointing}",
        [function],
        major=major,
        env={"HEADRACE_TS_CHECKPOINTING": checkpointing},
    )
    apps.append(app.start())
    try:
        await dev.sync(app.url, app.app_id)
    except Exception:
        print(app.log())
        raise
    return app


def _event(app: TsApp, name: str, **data: Any) -> dict[str, Any]:
    return {"name": f"{app.app_id}/{name}", "data": data}


async def test_ten_steps_each_run_once_and_the_output_is_visible_via_the_api(
    dev: EngineHandle, serve: list[TsApp], checkpointing: str
) -> None:
    app = await _start(dev, serve, checkpointing, "ckpt-steps", "steps")
    [event_id] = await dev.send(_event(app, "steps"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=60)

    assert run.status == "completed", app.log()
    assert run.output == {"total": 55}
    assert app.counts() == {f"step-{i}": 1 for i in range(1, 11)}
    # On: one call ran the ten steps, checkpointing each, and ended with RunComplete in its
    # 206. Off: a call per step, and one that returns.
    assert len(app.calls()) == (1 if checkpointing == "on" else 11), app.calls()
    # Each step's memo is stored as {"data": X}, named by the run's stack in step order.
    memos = await dev.stores.get_memos(run.run_id)
    assert sorted(loads(m)["data"] for m in memos.values()) == list(range(1, 11))
    assert all(set(loads(m)) == {"data"} for m in memos.values())
    assert len(run.stack) == 10 and set(run.stack) == set(memos)
    history = await dev.history(run.run_id)
    completed = [h.step_name for h in history if h.kind == "step.completed"]
    assert completed == [f"step-{i}" for i in range(1, 11)]
    async with httpx.AsyncClient(base_url=dev.url) as http:
        response = await http.get(f"/v1/runs/{run.run_id}")
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "Completed"
    assert response.json()["data"]["output"] == {"total": 55}
    assert "checkpoint" not in app.log().lower(), app.log()


async def test_a_checkpointed_step_is_not_run_again_when_a_later_step_is_retried(
    dev: EngineHandle, serve: list[TsApp], checkpointing: str
) -> None:
    app = await _start(dev, serve, checkpointing, "ckpt-memo", "memo")
    [event_id] = await dev.send(_event(app, "memo"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=60)

    assert run.status == "completed", app.log()
    assert run.output == {"first": 1, "flaky": 41, "total": 42}
    assert app.counts() == {"first": 1, "flaky": 3}
    # On: "first" checkpointed in the first call, which answered flaky's error; two retries of
    # flaky; one call that returns. Off: "first" took a call of its own.
    assert len(app.calls()) == (4 if checkpointing == "on" else 5), app.calls()


async def test_checkpointed_steps_survive_a_restart_of_the_engine(
    dev: EngineHandle, serve: list[TsApp], checkpointing: str
) -> None:
    app = await _start(dev, serve, checkpointing, "ckpt-restart", "steps-nap")
    [event_id] = await dev.send(_event(app, "steps-nap", nap="3s"))
    run_id = await dev.run_of_event(event_id)

    async def sleeping() -> bool:
        return any(h.kind == "step.sleeping" for h in await dev.history(run_id))

    await eventually(sleeping, what="the run to sleep")
    # On: the first call ran "one" and "two" (checkpointed) and answered the sleep.
    assert len(app.calls()) == (1 if checkpointing == "on" else 3), app.calls()
    assert app.counts() == {"one": 1, "two": 1}
    await dev.restart()
    # Generous, as in test_ts_sdk.py: a restarted cluster's groups can take ~45 s to settle.
    run = await dev.finished(run_id, timeout=120)

    assert run.status == "completed", app.log()
    assert run.output == {"sum": 6}
    assert app.counts() == {"one": 1, "two": 1, "three": 1}


async def test_a_call_cut_off_by_a_restart_stops_at_its_next_checkpoint(
    dev: EngineHandle, serve: list[TsApp]
) -> None:
    """The engine restarts while the app is inside step "two" of a call that checkpointed "one".
    The engine makes the call again: the repeat has "one" as done, runs "two" and reaches "three".
    The first call, let go on, must not run "three" too: its checkpoint of "two" is refused
    (409) as the call of a former owner, and the SDK stops it."""
    app = await _start(dev, serve, "on", "ckpt-cut", "steps-gated")
    [event_id] = await dev.send(_event(app, "steps-gated"))
    run_id = await dev.run_of_event(event_id)

    async def counted(**expected: int) -> bool:
        counts = app.counts()
        return all(counts.get(k) == n for k, n in expected.items())

    await eventually(lambda: counted(one=1, two=1), what="the first call to be inside two")
    assert len(await dev.stores.get_memos(run_id)) == 1  # "one", checkpointed
    await dev.restart()
    await eventually(lambda: counted(two=2, three=1), timeout=120, what="the repeat in three")

    app.open_gate("two")

    async def first_call_ended() -> bool:
        return app.calls()[0]["ended"] == "True"

    await eventually(first_call_ended, what="the first call to end")
    assert app.counts() == {"one": 1, "two": 2, "three": 1}
    app.open_gate("three")
    run = await dev.finished(run_id, timeout=60)

    assert run.status == "completed", app.log()
    assert run.output == {"sum": 6}
    # "two" was in flight at the fault and ran twice; nothing after it did.
    assert app.counts() == {"one": 1, "two": 2, "three": 1}


@pytest.mark.parametrize("major", ["3", "4"])
async def test_an_error_after_a_checkpoint_gets_every_attempt_configured(
    dev: EngineHandle, serve: list[TsApp], major: str
) -> None:
    """Inngest resets a call's attempts on each checkpoint. 3.x, checkpointing on, checkpoints
    "b" in the retry of the call that ran "a"; the code after "b" then throws in that call and
    the next: with `retries: 2` the third attempt after the checkpoint still runs, and
    succeeds. (4.x answers a step run on a retry with a 206 instead, and the next call starts
    its own count.)"""
    app = await _start(dev, serve, "on", f"ckpt-budget{major}", "budget", major=major)
    [event_id] = await dev.send(_event(app, "budget"))
    run = await dev.finished(await dev.run_of_event(event_id), timeout=60)

    assert run.status == "completed", app.log()
    assert run.output == {"sum": 3, "attempt": 3}
    calls = 4 if major == "3" else 5  # 4.x: the call that answered "b" too
    assert app.counts() == {"a": 1, "before-b": calls, "b": 1, "after-b": 3}
