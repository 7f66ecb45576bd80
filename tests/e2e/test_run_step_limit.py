"""The per-run step limit, as an official `inngest` SDK app meets it in each mode: a loop of
`step.run` past the limit fails its run with Inngest's error, and the app is not called for
the step beyond it. The engine runs with a limit of 4 (`--max-steps`); the default, Inngest's
1,000, is checked in tests/unit/test_step_limit.py."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import inngest
import pytest
from own_engine import own_engine

from headrace.testing.dev import EngineHandle
from headrace.testing.sdk_app import ServedApp, make_client

LIMIT = 4


@pytest.fixture(
    params=["dev", pytest.param("distributed", marks=[pytest.mark.kafka, pytest.mark.cassandra])]
)
async def limited(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineHandle]:
    engine = await own_engine(
        request, tmp_path, "steps", dev={"max_steps": LIMIT}, env={"HEADRACE_MAX_STEPS": str(LIMIT)}
    )
    yield engine
    await engine.stop()


async def test_a_run_past_the_step_limit_fails_with_inngest_s_error(
    limited: EngineHandle,
) -> None:
    ran: collections.Counter[str] = collections.Counter()
    client = make_client(limited.url, "step-limit-app")

    @client.create_function(fn_id="loop", trigger=inngest.TriggerEvent(event="limit/loop"))
    async def loop(ctx: inngest.Context) -> str:
        for i in range(10):

            async def work(n: int = i) -> int:
                ran[f"step-{n}"] += 1
                return n

            await ctx.step.run(f"step-{i}", work)
        return "done"

    with ServedApp(client, [loop]) as app:
        await limited.sync(app.url, "step-limit-app")
        [event_id] = await limited.send({"name": "limit/loop", "data": {}})
        run = await limited.finished(await limited.run_of_event(event_id))
        async with httpx.AsyncClient(base_url=limited.url) as http:
            shown = (await http.get(f"/v1/runs/{run.run_id}")).json()["data"]

    overflowed = {
        "name": "InngestErrFunctionOverflowed",
        "message": f"The function run exceeded the step limit of {LIMIT} steps.",
    }
    assert shown["status"] == "Failed"
    assert shown["output"] == overflowed
    # Each step up to the limit ran once; none beyond it.
    assert ran == {f"step-{n}": 1 for n in range(LIMIT)}
    history = await limited.history(run.run_id)
    completed = [h.step_name for h in history if h.kind == "step.completed"]
    assert completed == [f"step-{n}" for n in range(LIMIT)]
    assert (history[-1].kind, history[-1].error) == ("run.failed", overflowed)
    [failed] = await limited.stores.list_events("default", name="inngest/function.failed")
    assert failed.payload["data"]["error"] == {"error": "function has too many steps", **overflowed}
