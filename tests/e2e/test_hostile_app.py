"""Protocol fuzzing of the app side: an app that answers the engine's calls badly (random
bytes, wrong statuses, invalid op lists, huge, endless or slow bodies, no body at all) fails its
run with an error naming the problem, or is retried by the rules and then fails; the engine
keeps serving, and a well-behaved run started alongside completes.

The app is a raw server on loopback (`testing/hostile_app.py`): no SDK answers like this. The
call timeout is short in dev mode (1 s), so the cases that need it run there; the shared
distributed engine runs the others. Dev mode runs on a fake clock, moved past the retry's
backoff; the distributed engine retries a tenth of a second later (`--retry-interval`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headrace.messages.state import ENDED, RunState
from headrace.protocol.response import MAX_ANSWER_BYTES
from headrace.testing.dev import FIRST_BACKOFF_MAX_S, EngineHandle, eventually, start_dev
from headrace.testing.hostile_app import (
    Answer,
    HostileApp,
    endless,
    fixed,
    http_answer,
    silent,
    trickle,
)

CALL_TIMEOUT_S = 1.0
# Every failed run's error message stays short, whatever the app sent.
MAX_MESSAGE_CHARS = 400


@dataclass(frozen=True)
class Case:
    name: str
    answer: Answer
    message: str  # in the failed run's error message
    retried: bool = True  # one retry (the function allows one), then the run fails
    needs_timeout: bool = False  # the short call timeout: dev mode only


def _ops(*ops: Any) -> bytes:
    return http_answer(206, json.dumps(list(ops)).encode())


GARBAGE = bytes(range(256)) * 400  # 100 kB, not UTF-8, not JSON

CASES = [
    Case(
        "bytes-200", fixed(http_answer(200, GARBAGE)), "answered 200 with a body that is not JSON"
    ),
    Case(
        "bytes-206", fixed(http_answer(206, GARBAGE)), "answered 206 with a body that is not JSON"
    ),
    Case(
        "no-sdk-header",
        fixed(http_answer(200, b'"hi"', sdk=False)),
        "answered 200 without an X-Inngest-SDK header",
    ),
    Case("bytes-201", fixed(http_answer(201, GARBAGE)), "invalid streamed response"),
    Case(
        "status-204",
        fixed(http_answer(204, sdk=False)),
        "answered 204 without an X-Inngest-SDK header",
    ),
    Case(
        "redirect-loop",
        fixed(http_answer(302, headers={"location": "/api/inngest?fnId=hostile-redirect-loop"})),
        "invalid status code: 302",
    ),
    Case("teapot", fixed(http_answer(418, b"I'm a teapot")), "invalid status code: 418"),
    Case("bytes-500", fixed(http_answer(500, GARBAGE)), "invalid status code: 500"),
    Case("empty-206", fixed(http_answer(206)), "with no op the engine could act on"),
    Case(
        "unknown-op",
        fixed(_ops({"op": "Frobnicate", "id": "x"})),
        "with no op the engine could act on",
    ),
    Case("missing-id", fixed(_ops({"op": "StepRun", "data": 1})), "a 'StepRun' op without an id"),
    Case(
        "wrong-types",
        fixed(_ops({"op": 5, "id": ["x"]})),
        "answered 206 with an invalid op: Expected `str`, got `int` - at `$.op`",
    ),
    Case(
        "duplicate-ids",
        fixed(_ops({"op": "StepRun", "id": "a", "data": 1}, {"op": "StepRun", "id": "a"})),
        "with no op the engine could act on",
    ),
    Case(
        "thousands-of-ops",
        fixed(_ops(*({"op": "StepPlanned", "id": f"s{i}"} for i in range(5000)))),
        "exceeded the step limit of 1000 steps: the app answered 5000 ops at once",
        retried=False,
    ),
    Case(
        "huge-body",
        fixed(http_answer(200, b'"' + b"x" * MAX_ANSWER_BYTES + b'"')),
        f"answered 200 with a body larger than {MAX_ANSWER_BYTES} bytes",
    ),
    Case("endless-body", endless(206), f"larger than {MAX_ANSWER_BYTES} bytes"),
    Case(
        "never-starts",
        silent(),
        f"the app did not answer within {CALL_TIMEOUT_S:g} s",
        needs_timeout=True,
    ),
    Case(
        "byte-per-tick",
        trickle(http_answer(200, b'"' + b"x" * 40 + b'"'), 0.05),
        f"the app did not answer within {CALL_TIMEOUT_S:g} s",
        needs_timeout=True,
    ),
]


async def _register(
    engine: EngineHandle, app: HostileApp, app_id: str, fns: dict[str, int]
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{engine.url}/fn/register", json=app.register_body(app_id, fns))
    assert response.status_code == 200, response.text

    async def synced() -> bool:
        return await engine.stores.get_app(engine.account, app_id) is not None

    await eventually(synced, what=f"app {app_id} synced")


async def _run(engine: EngineHandle, fn_id: str, timeout: float = 30) -> RunState:
    [event_id] = await engine.send({"name": fn_id, "data": {}})
    return await engine.finished(await engine.run_of_event(event_id), timeout=timeout)


async def _first_call_done(engine: EngineHandle, fn_id: str) -> str:
    """The run of an event sent to `fn_id`, once its first call has failed (or the run ended)."""
    [event_id] = await engine.send({"name": fn_id, "data": {}})
    run_id = await engine.run_of_event(event_id)

    async def done() -> bool:
        run = await engine.stores.get_run(run_id)
        if run is not None and run.status in ENDED:
            return True
        return any(h.kind == "run.errored" for h in await engine.history(run_id))

    await eventually(done, timeout=30, what=f"the first call of {fn_id} to fail")
    return run_id


@pytest.mark.fake_clock
@pytest.mark.dev_settings(call_timeout_s=CALL_TIMEOUT_S)
async def test_hostile_answers_fail_their_runs_with_the_reason_and_others_complete(
    dev: EngineHandle,
) -> None:
    engine = dev
    cases = [c for c in CASES if engine.mode == "dev" or not c.needs_timeout]
    # The cases that never answer in time are another app's: an app that does not answer is
    # sent fewer calls at once (services/executor/app_gate.py), so this app's other calls would
    # wait for their turn behind them, and fail after the call timeout, as they should; the fake
    # clock moving past the backoff would end such a wait at once.
    app, hanging = HostileApp(), HostileApp()
    for case in cases:
        (hanging if case.needs_timeout else app).answers[f"hostile-{case.name}"] = case.answer
    app.answers["hostile-fine"] = fixed(http_answer(200, b'"fine"'))
    async with app.serving(), hanging.serving():
        await _register(engine, app, "hostile", {fn: 1 for fn in app.answers})
        if hanging.answers:
            await _register(engine, hanging, "hostile-hanging", {fn: 1 for fn in hanging.answers})
        # All at once, beside a well-behaved function: one bad app's calls hold up no one.
        fns = [*app.answers, *hanging.answers]
        run_ids = await asyncio.gather(*(_first_call_done(engine, fn) for fn in fns))
        if engine.clock is not None:
            # Every first call is over: no lease runs out as the clock moves past the backoff,
            # in steps, so that the retries come spread over its jitter as in real time.
            await engine.let_pass(FIRST_BACKOFF_MAX_S, step_s=5)
        runs = await asyncio.gather(*(engine.finished(run_id, 30) for run_id in run_ids))
        after = await _run(engine, "hostile-fine")

    by_fn = {run.fn_id: run for run in runs}
    assert by_fn["hostile-fine"].status == "completed" and by_fn["hostile-fine"].output == "fine"
    assert after.status == "completed"
    for case in cases:
        run = by_fn[f"hostile-{case.name}"]
        assert run.status == "failed", case.name
        message = run.output["message"]
        assert case.message in message, (case.name, message)
        assert len(message) <= MAX_MESSAGE_CHARS, (case.name, len(message))
        calls = (hanging if case.needs_timeout else app).calls[f"hostile-{case.name}"]
        assert calls >= 2 if case.retried else calls == 1, (case.name, calls)
        kinds = [h.kind for h in await engine.history(run.run_id)]
        assert ("run.errored" in kinds) == case.retried, (case.name, kinds)


# --- property-based: random answers, each run must end with a clear reason -----------------

_OPS = ["StepRun", "StepError", "StepFailed", "StepPlanned", "Sleep", "WaitForEvent"]
_OPS += ["InvokeFunction", "RunComplete", "None", "DiscoveryRequest", "Frobnicate"]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
_OP = st.fixed_dictionaries(
    {},
    optional={
        "op": st.sampled_from(_OPS) | st.integers(),
        "id": st.text(max_size=3) | st.integers(),
        "data": _JSON,
        "error": _JSON,
        # No duration, event or function: a valid wait would hold the run for its default time.
        "opts": st.none() | st.dictionaries(st.sampled_from(["x", "if", "input"]), _JSON),
    },
)
_BODY = (
    st.binary(max_size=300)
    | _JSON.map(lambda v: json.dumps(v).encode())
    | st.lists(_OP, max_size=5).map(lambda v: json.dumps(v).encode())
)


@pytest.fixture(scope="module")
async def fuzzed() -> AsyncIterator[tuple[EngineHandle, HostileApp]]:
    """One dev engine and one app for every example: the engine must keep serving."""
    engine = await start_dev(None, call_timeout_s=CALL_TIMEOUT_S)
    app = HostileApp()
    app.answers["fuzz-fine"] = fixed(http_answer(200, b'"fine"'))
    async with app.serving():
        await _register(engine, app, "fuzz", {"fuzz-fn": 0, "fuzz-fine": 0})
        yield engine, app
    await engine.stop()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(status=st.sampled_from([200, 201, 206, 400, 500]), body=_BODY, sdk=st.booleans())
async def test_any_answer_ends_the_run_with_a_result_or_a_short_reason(
    fuzzed: tuple[EngineHandle, HostileApp], status: int, body: bytes, sdk: bool
) -> None:
    engine, app = fuzzed
    app.answers["fuzz-fn"] = fixed(http_answer(status, body, sdk=sdk))
    run = await _run(engine, "fuzz-fn", timeout=10)
    if run.status == "completed":
        # Only an SDK's 2xx can end a run well: its JSON is the output (or a RunComplete's).
        assert sdk and status in (200, 201, 206), (status, body)
        return
    assert run.status == "failed", run.status
    assert isinstance(run.output, dict) and isinstance(run.output.get("message"), str), run.output
    if status in (200, 201) or not sdk:
        # The engine's own reason (not an error object the app sent): present and short.
        assert 0 < len(run.output["message"]) <= MAX_MESSAGE_CHARS, run.output
