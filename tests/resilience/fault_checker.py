"""The fault schedule's checker (issue 16): reads the history the app wrote down (every call
with its arrival and answer, every step execution, with monotonic times: `fault_records`) and
the Event API clients' (every acknowledged event, the test's and the app's), and counts what
broke a promise. Every count but `in_flight_duplicates` must be 0. It also reports how loaded
the app was (`AppRecords.load`), to tell an engine's fault from an app's congestion."""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from fault_records import AppRecords
from fault_workload import CHILD_STEP, GO, HASH, LIMIT, MAIN_STEPS, START, Ack, EventLog, sleep_s
from workload import Executions, Request, check_given_steps_never_ran_again

from headrace.testing.dev import EngineHandle

# Timers are kept in whole milliseconds of the wall clock: a wake up to this much before the
# sleep's end, measured on the app's monotonic clock, is rounding, not an early wake.
ROUNDING_S = 0.005
SETTLE_S = 600.0
INVOKED = "inngest/function.invoked"  # how long every run has to end once the faults are over


@dataclass
class Findings:
    runs: int = 0
    runs_lost: list[Any] = field(default_factory=list)  # an event with no run, or never ended
    runs_twice: list[Any] = field(default_factory=list)  # an event with more than one run
    wrong_outputs: list[Any] = field(default_factory=list)
    stored_steps_run_again: list[Any] = field(default_factory=list)
    in_flight_duplicates: int = 0
    early_wakes: list[Any] = field(default_factory=list)
    stale_wait_matches: list[Any] = field(default_factory=list)
    limit_violations: list[Any] = field(default_factory=list)
    not_retried: list[Any] = field(default_factory=list)  # the flaky step never failed
    children_unfinished: list[Any] = field(default_factory=list)
    concurrency_peak: int = 0
    runs_ended_s: float = 0.0  # when the last run had ended, after t0
    app_load: dict[str, Any] = field(default_factory=dict)  # AppRecords.load

    def counts(self) -> dict[str, int]:
        return {
            "runs_lost": len(self.runs_lost),
            "runs_twice": len(self.runs_twice),
            "wrong_outputs": len(self.wrong_outputs),
            "stored_steps_run_again": len(self.stored_steps_run_again),
            "in_flight_duplicates": self.in_flight_duplicates,
            "early_wakes": len(self.early_wakes),
            "stale_wait_matches": len(self.stale_wait_matches),
            "limit_violations": len(self.limit_violations),
            "not_retried": len(self.not_retried),
            "children_unfinished": len(self.children_unfinished),
        }

    def details(self, limit: int = 10) -> dict[str, Any]:
        kinds = ("runs_lost", "runs_twice", "wrong_outputs", "stored_steps_run_again")
        kinds += ("early_wakes", "stale_wait_matches", "limit_violations", "not_retried")
        kinds += ("children_unfinished",)
        return {kind: getattr(self, kind)[:limit] for kind in kinds if getattr(self, kind)}


async def _flaky_attempt_failed(engine: EngineHandle, run_id: str) -> bool:
    """Whether the engine recorded a failed call that carried the flaky step's first attempt: a
    call that timed out before the app ran its body (a congested app, a cut) counts as an
    attempt, as in Inngest, so the attempt the app then sees is a retry, and succeeds. The step
    is called by its hash, or run inside a discovery call (a run-level error)."""
    history = await engine.history(run_id)
    return any(
        (h.kind == "step.errored" and h.step_hash == HASH["flaky"]) or h.kind == "run.errored"
        for h in history
    )


def _data(memo: Any) -> Any:
    """A memo as the SDK is handed it: `{"data": output}` for a step's output."""
    return memo.get("data") if isinstance(memo, dict) and "data" in memo else memo


async def _runs_of(client: httpx.AsyncClient, url: str, event_id: str) -> list[dict[str, Any]]:
    """The runs of an event, through the API."""
    response = await client.get(f"{url}/v1/events/{event_id}/runs")
    assert response.status_code == 200, (event_id, response.status_code, response.text)
    return list(response.json()["data"])


async def check(
    engine: EngineHandle,
    events: EventLog,
    records: AppRecords,
    *,
    t0: float,
    call_timeout_s: float,
) -> Findings:
    """`events` is the test's Event API client; `records` what the app wrote, read again here
    once every run has ended (or its time is up)."""
    found = Findings()
    starts = events.of(START)
    found.runs = len(starts)
    event_runs: dict[str, list[str]] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        deadline = time.monotonic() + SETTLE_S
        for event_id in starts:
            runs = await _runs_of(client, engine.url, event_id)
            while not runs and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                runs = await _runs_of(client, engine.url, event_id)
            event_runs[event_id] = [r["run_id"] for r in runs]
    ended: dict[str, Any] = {}
    for run_id in (runs[0] for runs in event_runs.values() if runs):
        try:
            # Once the time is up, each run is looked at once.
            run = await engine.finished(run_id, timeout=max(deadline - time.monotonic(), 0))
        except AssertionError:
            found.runs_lost.append({"run": run_id, "why": "never ended"})
            continue
        if run.status != "completed":
            found.runs_lost.append({"run": run_id, "status": run.status, "output": run.output})
            continue
        ended[run_id] = run.output
    found.runs_ended_s = round(time.monotonic() - t0, 1)

    records.refresh()
    found.app_load = records.load(call_timeout_s)
    requests, executions = records.requests, records.executions
    acks = {**records.acks, **events.acks}
    calls_of = requests.of
    runs_at_app: dict[str, set[str]] = collections.defaultdict(set)  # key -> main runs
    children: dict[str, set[str]] = collections.defaultdict(set)  # key -> child runs
    for run_id, calls in calls_of.items():
        if key := _key(calls, START):
            runs_at_app[key].add(run_id)
        elif key := _key(calls, INVOKED):
            children[key].add(run_id)
    for event_id, runs in event_runs.items():
        key = starts[event_id].data["key"]
        if not runs:
            found.runs_lost.append({"event": event_id, "key": key, "at_app": runs_at_app[key]})
        elif len(runs) > 1 or len(runs_at_app[key]) > 1:
            found.runs_twice.append({"event": event_id, "runs": runs, "at_app": runs_at_app[key]})

    for run_id, output in ended.items():
        calls = sorted(calls_of[run_id], key=lambda r: r.arrived)
        child_runs = children[str(_key(calls, START))]
        _check_outputs(found, run_id, output, calls, child_runs, executions)
        _check_sleep(found, run_id, calls)
        _check_wait(found, run_id, output, calls, acks)
        if records.flaky_failed[run_id] == 0 and not await _flaky_attempt_failed(engine, run_id):
            found.not_retried.append(run_id)
    child_runs = set()
    for run_id in sorted(r for runs in children.values() for r in runs):
        child = await engine.stores.get_run(run_id)
        if child is not None and child.status == "completed":
            child_runs.add(run_id)
        else:  # a child the app saw whose run never completed (a parent lost, or an extra)
            found.children_unfinished.append({"run": run_id, "status": child and child.status})

    for runs, steps in ((list(ended), MAIN_STEPS), (sorted(child_runs), (CHILD_STEP,))):
        try:
            verdict = await check_given_steps_never_ran_again(
                engine, runs, executions, requests, t0=t0, steps=steps
            )
        except AssertionError as error:  # a step not stored, or stored but never run
            found.wrong_outputs.append({"steps": steps, "error": str(error)})
            continue
        found.stored_steps_run_again += verdict.violations
        found.in_flight_duplicates += verdict.extra_executions
    _check_limit(found, executions, child_runs, t0)
    return found


def _key(calls: list[Request], name: str) -> str | None:
    """The workload key of a run whose trigger event is `name`."""
    if not calls or calls[0].event.get("name") != name:
        return None
    return str(calls[0].event.get("data", {}).get("key"))


def _check_outputs(
    found: Findings,
    run_id: str,
    output: Any,
    calls: list[Request],
    child_runs: set[str],
    executions: Executions,
) -> None:
    """The output holds, for each step, the one value the app was ever handed for it, which
    is the output of one of the step's executions."""
    handed: dict[str, set[str]] = collections.defaultdict(set)
    for call in calls:
        for step in (*MAIN_STEPS, "child"):
            if HASH[step] in call.memos:
                handed[step].add(repr(_data(call.memos[HASH[step]])))
    problems = []
    for step in (*MAIN_STEPS, "child"):
        value = output.get(step) if isinstance(output, dict) else None
        if handed[step] != {repr(value)}:
            problems.append({"step": step, "output": value, "handed": sorted(handed[step])})
        if step in MAIN_STEPS and value not in [e.token for e in executions.of[(run_id, step)]]:
            problems.append({"step": step, "output": value, "why": "no execution returned it"})
    child_tokens = {e.token for r in child_runs for e in executions.of[(r, CHILD_STEP)]}
    if isinstance(output, dict) and output.get("child") not in child_tokens:
        problems.append({"step": "child", "output": output.get("child"), "why": "not run"})
    if problems:
        found.wrong_outputs.append({"run": run_id, "problems": problems})


def _check_sleep(found: Findings, run_id: str, calls: list[Request]) -> None:
    """The first call that shows the sleep done arrived at least its duration after the first
    call that returned it (the first with `flaky` stored and the sleep not)."""
    declared = next(
        (c for c in calls if HASH["flaky"] in c.memos and HASH["nap"] not in c.memos), None
    )
    woke = next((c for c in calls if HASH["nap"] in c.memos), None)
    if declared is None or woke is None:
        found.early_wakes.append({"run": run_id, "why": "sleep not seen", "calls": len(calls)})
        return
    duration = sleep_s(int(calls[0].event["data"]["n"]))
    slept = woke.arrived - declared.arrived
    if slept < duration - ROUNDING_S:
        found.early_wakes.append({"run": run_id, "slept": round(slept, 3), "sleep": duration})


def _check_wait(
    found: Findings, run_id: str, output: Any, calls: list[Request], acks: dict[str, Ack]
) -> None:
    """The wait was matched by a "real" GO, never by the run's "early" one (acknowledged
    before the wait was declared) nor any event acknowledged before the first call that
    declared it arrived."""
    go = output.get("go") if isinstance(output, dict) else None
    declared = next(
        (c.arrived for c in calls if HASH["early"] in c.memos and HASH["go"] not in c.memos),
        None,
    )
    ack = acks.get(go["id"]) if isinstance(go, dict) else None
    if (
        ack is None
        or ack.name != GO
        or go.get("phase") != "real"
        or declared is None
        or ack.acked < declared
    ):
        found.stale_wait_matches.append({"run": run_id, "go": go, "acked_known": ack is not None})


def _check_limit(found: Findings, executions: Executions, child_runs: set[str], t0: float) -> None:
    """At no moment did the app run the limited step for more than LIMIT runs at once (two
    executions of one run's step, an in-flight duplicate, count once)."""
    marks = []
    for run_id in child_runs:
        for e in executions.of[(run_id, CHILD_STEP)]:
            marks += [(e.started, 1, run_id), (e.ended, -1, run_id)]
    running: collections.Counter[str] = collections.Counter()
    for at, change, run_id in sorted(marks, key=lambda m: (m[0], m[1])):
        running[run_id] += change
        if running[run_id] == 0:
            del running[run_id]
        found.concurrency_peak = max(found.concurrency_peak, len(running))
        if len(running) > LIMIT:
            found.limit_violations.append({"at": round(at - t0, 3), "runs": sorted(running)})
