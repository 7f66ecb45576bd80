"""The workload of the resilience tests: a function with steps, a sleep and a wait, whose step
bodies record every execution, so a step that ran twice can be counted and placed in time."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import datetime
import itertools
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import inngest

from headrace.testing.dev import EngineHandle

START = "resilience/start"
GO = "resilience/go"
STEPS = ("a", "b", "c")


# The arrival (time.monotonic()) of the request the app is serving, set by `serving`: the step
# body that runs in it reads it, so an execution knows which call ran it.
_arrival: contextvars.ContextVar[float | None] = contextvars.ContextVar("arrival", default=None)


@dataclass(frozen=True)
class Execution:
    token: str
    started: float  # time.monotonic() in the app when the step body began
    # When the request it ran in arrived (time.monotonic()), when `Requests` listens.
    request: float | None = None
    ended: float = 0.0  # when the body returned


@dataclass(frozen=True)
class Request:
    """A call the app received: when, for which run, and the steps it gave as memoized."""

    arrived: float  # time.monotonic() in the app
    run_id: str
    step_id: str  # ctx.step_id: "step" for a discovery call, else the step hash asked for
    attempt: int
    memos: Mapping[str, Any]  # the body's `steps`: memoized outputs by step hash
    event: Mapping[str, Any] = field(default_factory=dict)  # the run's trigger event


def parse_call(headers: Mapping[str, str], body: bytes, arrived: float) -> Request | None:
    """The call of a run a request carries, or None (a sync, an introspection, no JSON)."""
    try:
        payload = json.loads(body) if body else None
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    ctx = payload.get("ctx") or {}
    run_id = headers.get("x-run-id") or ctx.get("run_id")
    if not run_id:
        return None
    return Request(
        arrived,
        run_id,
        str(ctx.get("step_id", "")),
        int(ctx.get("attempt", 0)),
        dict(payload.get("steps") or {}),
        payload.get("event") or {},
    )


def serving(call: Request) -> None:
    """The step bodies run from here on (this task and the tasks it starts) ran in `call`."""
    _arrival.set(call.arrived)


@dataclass
class Requests:
    """Every call of a run the app received, in order of arrival: pass `record` to `ServedApp`
    as `on_request`."""

    of: dict[str, list[Request]] = field(default_factory=lambda: collections.defaultdict(list))

    def record(self, headers: dict[str, str], body: bytes) -> None:
        call = parse_call(headers, body, time.monotonic())
        if call is not None:
            serving(call)
            self.of[call.run_id].append(call)


@dataclass
class Executions:
    """Every execution of every step body: (run id, step) -> executions, in order."""

    of: dict[tuple[str, str], list[Execution]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )
    in_flight: int = 0
    # Told of each execution as it ends, with its run id and step (an app that writes them down).
    on_execution: Callable[[str, str, Execution], None] | None = None

    async def run(
        self,
        run_id: str,
        step: str,
        seconds: float = 0.1,
        body: Callable[[], Awaitable[str]] | None = None,
    ) -> str:
        """A step body that takes a while, so a kill can catch calls in flight; its output is
        a random token, or what `body` returns."""
        started = time.monotonic()
        self.in_flight += 1
        try:
            await asyncio.sleep(seconds)
            token = f"{step}:{uuid.uuid4().hex}" if body is None else await body()
            execution = Execution(token, started, _arrival.get(), time.monotonic())
            self.of[(run_id, step)].append(execution)
            if self.on_execution is not None:
                self.on_execution(run_id, step, execution)
            return token
        finally:
            self.in_flight -= 1

    def twice(self) -> dict[tuple[str, str], int]:
        return {k: len(v) for k, v in self.of.items() if len(v) > 1}


def durable_function(client: inngest.Inngest, executions: Executions) -> inngest.Function[object]:
    """Steps, a sleep of 1-3 s and a wait for `GO` with the run's `n` (30 s timeout)."""

    @client.create_function(fn_id="durable", trigger=inngest.TriggerEvent(event=START), retries=20)
    async def durable(ctx: inngest.Context) -> list[object]:
        n = ctx.event.data["n"]
        a = await ctx.step.run("a", lambda: executions.run(ctx.run_id, "a"))
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1 + int(n) % 3))
        b = await ctx.step.run("b", lambda: executions.run(ctx.run_id, "b"))
        go = await ctx.step.wait_for_event(
            "go", event=GO, if_exp=f"async.data.n == {n}", timeout=datetime.timedelta(seconds=30)
        )
        c = await ctx.step.run("c", lambda: executions.run(ctx.run_id, "c"))
        return [a, b, go is not None, c]

    return durable


async def start_runs(engine: EngineHandle, runs: int) -> list[str]:
    """Send `runs` START events (n = 0..runs-1); their event ids."""
    event_ids: list[str] = []
    for chunk in range(0, runs, 100):
        last = min(chunk + 100, runs)
        event_ids += await engine.send(
            *({"name": START, "data": {"n": n}} for n in range(chunk, last))
        )
    return event_ids


@contextlib.asynccontextmanager
async def offering_go(engine: EngineHandle, runs: int) -> AsyncIterator[None]:
    """A wait matches only events sent once it exists, so offer every run its GO event every
    few seconds while the block runs. The Event API refuses events while Kafka is away (it
    cannot make them durable): those rounds are simply sent again."""
    stop = asyncio.Event()

    async def keep_sending() -> None:
        while not stop.is_set():
            with contextlib.suppress(AssertionError, httpx.HTTPError):
                for chunk in range(0, runs, 100):
                    last = min(chunk + 100, runs)
                    events = ({"name": GO, "data": {"n": n}} for n in range(chunk, last))
                    await engine.send(*events)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 3)

    sender = asyncio.create_task(keep_sending())
    try:
        yield
    finally:
        stop.set()
        await sender


async def all_completed(engine: EngineHandle, event_ids: list[str]) -> list[str]:
    """The run of each event, once every one has completed (each must)."""
    run_ids = [await engine.run_of_event(e, timeout=120) for e in event_ids]
    for run_id in run_ids:
        run = await engine.finished(run_id, timeout=180)
        assert run.status == "completed", (run_id, run.status, run.output)
    return run_ids


async def check_no_stored_step_ran_again(
    engine: EngineHandle, run_ids: list[str], executions: Executions
) -> None:
    """Each step's stored output comes from one of its executions, and no step ran again once
    its run had moved on: every execution of a step began before the first execution of the
    next one. A step in flight at a kill may run twice, but only at its own stage (both
    executions were asked for before its output was stored); a memo lost or ignored would make
    it run again at a later call, after the sleep or the wait, and this finds that."""
    for run_id in run_ids:
        stored = {
            h.step_name: h.output["data"]
            for h in await engine.history(run_id)
            if h.kind == "step.completed" and h.step_name in STEPS
        }
        assert set(stored) == set(STEPS), (run_id, stored)
        for step, token in stored.items():
            assert token in [e.token for e in executions.of[(run_id, step)]], (run_id, step)
        for step, following in itertools.pairwise(STEPS):
            last_start = max(e.started for e in executions.of[(run_id, step)])
            next_start = min(e.started for e in executions.of[(run_id, following)])
            assert last_start < next_start, (run_id, step, "ran again after", following)


@dataclass
class Verdict:
    """What `check_given_steps_never_ran_again` found: in-flight duplicates are allowed (a
    step asked for twice before its output reached the app); violations are not."""

    # One entry per step that ran more than once before it was given; "extra" counts them.
    in_flight_duplicates: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def extra_executions(self) -> int:
        return sum(d["extra"] for d in self.in_flight_duplicates)


async def check_given_steps_never_ran_again(
    engine: EngineHandle,
    run_ids: list[str],
    executions: Executions,
    requests: Requests,
    *,
    t0: float = 0.0,
    steps: tuple[str, ...] = STEPS,
) -> Verdict:
    """Each run stored every step, each stored output comes from one of the step's
    executions, and no step ran again once the app had been handed its output.

    `given(S)` is the earliest arrival of a call of the run whose memos include S's hash (from
    the run's history). An execution of S whose body started after `given(S)` is a violation:
    the engine had stored S and shown it to the app, and then asked for it again. Executions
    beyond the first that started before `given(S)` are in-flight duplicates (a call lost at a
    kill and asked for again), counted, not failed. Times in the verdict are seconds after
    `t0` (time.monotonic()); an execution is given as (arrival of its call, start)."""
    verdict = Verdict()

    def at(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 3)

    for run_id in run_ids:
        history = await engine.history(run_id)
        completed = [h for h in history if h.kind == "step.completed" and h.step_name in steps]
        hashes = {h.step_name: h.step_hash for h in completed}
        assert set(hashes) == set(steps), (run_id, hashes)
        for entry in completed:
            tokens = [e.token for e in executions.of[(run_id, entry.step_name)]]
            assert entry.output["data"] in tokens, (run_id, entry.step_name, "stored, not run")
        calls = requests.of[run_id]
        names = {h.step_hash: h.step_name for h in history if h.step_hash and h.step_name}
        for step in steps:
            step_hash = hashes[step]
            given = min((r.arrived for r in calls if step_hash in r.memos), default=None)
            ran = sorted(executions.of[(run_id, step)], key=lambda e: e.started)
            before = [e for e in ran if given is None or e.started < given]
            if len(before) > 1:
                verdict.in_flight_duplicates.append(
                    {
                        "run": run_id,
                        "step": step,
                        "extra": len(before) - 1,
                        "given": at(given),
                        "executions": [(at(e.request), at(e.started)) for e in before],
                    }
                )
            for again in ran[len(before) :]:
                verdict.violations.append(
                    {
                        "run": run_id,
                        "step": step,
                        "given": at(given),
                        "started": at(again.started),
                        "request": at(again.request),
                        "executions": [(at(e.request), at(e.started)) for e in ran],
                        "calls": [
                            {
                                "at": at(r.arrived),
                                "step_id": names.get(r.step_id, r.step_id),
                                "attempt": r.attempt,
                                "memos": sorted(names.get(h, h[:8]) for h in r.memos),
                            }
                            for r in calls
                        ],
                    }
                )
    return verdict
