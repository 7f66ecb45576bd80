"""Resolvers of the GraphQL read API.

Root fields load a run or an event of the request's account and return a view: a dict keyed by
the schema's field names, which graphql-core's default resolver reads. Fields that need another
read (a run's history, an event's runs) have resolvers of their own, so they cost nothing unless
a query asks for them. A run view also carries its RunState under "state", a key the schema does
not expose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLResolveInfo

from headrace.api.context import ApiContext
from headrace.core.durations import format_iso_ms
from headrace.core.jsonutil import dumps_text
from headrace.messages.state import ENDED, HistoryEntry, RunState

View = dict[str, Any]

# History kinds that settle a step; each becomes one child span.
_SETTLED = frozenset({"step.completed", "step.failed"})
# A step that began to wait; it settles later with a step.completed of the same memo key.
_WAITS = frozenset({"step.sleeping", "step.waiting", "step.invoking"})


def _context(info: GraphQLResolveInfo) -> ApiContext:
    context: ApiContext = info.context
    return context


def _time(ms: int) -> str | None:
    # 0 stands for "not yet" in RunState and HistoryEntry.
    return format_iso_ms(ms) if ms else None


def _output_text(run: RunState) -> str | None:
    return dumps_text(run.output) if run.status in ENDED else None


async def _load_run(info: GraphQLResolveInfo, run_id: str) -> RunState:
    context = _context(info)
    run = await context.stores.get_run(run_id)
    if run is None or run.account_id != context.account:
        # An error, not only a null: the inngest-py test helper keeps polling on errors but
        # gives up at once on a run that is null without one.
        raise GraphQLError(f"run not found: {run_id}")
    return run


# --- memos, read the way the SDK reads them ---


def _memo_error(memo: Any) -> View | None:
    """The error of an {"error": {...}} memo; like inngest-py's step Output model, only an object
    with nothing but "data" and "error" keys, whose error has string name and message, counts."""
    if not isinstance(memo, dict) or not memo.keys() <= {"data", "error"}:
        return None
    error = memo.get("error")
    if not isinstance(error, dict):
        return None
    message, name, stack = error.get("message"), error.get("name"), error.get("stack")
    if not isinstance(message, str) or not isinstance(name, str):
        return None
    return {"message": message, "name": name, "stack": stack if isinstance(stack, str) else None}


def _span_output(memo: Any) -> View:
    error = _memo_error(memo)
    if error is not None:
        return {"data": None, "error": error}
    if isinstance(memo, dict) and memo.keys() <= {"data", "error"} and memo.get("error") is None:
        # {"data": X} from step.run or an invoke: the value is X.
        return {"data": dumps_text(memo.get("data")), "error": None}
    # A sleep's null or a wait's event (or any other shape): the memo is the value.
    return {"data": dumps_text(memo), "error": None}


def _output_id(run_id: str, entry_id: str) -> str:
    # History is read per run, so the id names both.
    return f"{run_id}:{entry_id}"


# --- runs ---


def _run_view(run: RunState) -> View:
    return {
        "state": run,
        "id": run.run_id,
        "appID": run.app_id,
        "functionID": run.fn_id,
        "status": run.status.upper(),
        "startedAt": _time(run.started_ms),
        "endedAt": _time(run.ended_ms),
        "triggerIDs": run.event_ids,
        "output": _output_text(run),
    }


def _step_span(run_id: str, entry: HistoryEntry) -> View:
    failed = entry.kind == "step.failed" or _memo_error(entry.output) is not None
    return {
        "spanID": entry.entry_id,
        "name": entry.step_name or entry.step_hash or "",
        "status": "FAILED" if failed else "COMPLETED",
        "isRoot": False,
        "stepID": entry.step_hash,
        "attempts": entry.attempt,
        "startedAt": _time(entry.ts_ms - entry.duration_ms),
        "endedAt": _time(entry.ts_ms),
        "duration": entry.duration_ms,
        "outputID": _output_id(run_id, entry.entry_id),
        "childrenSpans": [],
    }


def _pending_span(entry: HistoryEntry) -> View:
    return {
        "spanID": entry.entry_id,
        "name": entry.step_name or entry.step_hash or "",
        "status": "WAITING",
        "isRoot": False,
        "stepID": entry.step_hash,
        "attempts": entry.attempt,
        "startedAt": _time(entry.ts_ms),
        "endedAt": None,
        "duration": None,
        # Nothing to read until it settles; its settled span has the output.
        "outputID": None,
        "childrenSpans": [],
    }


def trace_spans(run: RunState, history: list[HistoryEntry]) -> list[View]:
    """The run's steps in order: each settled step, then, while the run has not ended, each
    sleep, wait or invoke still pending as a WAITING span, so a client can tell that a run is
    waiting (say, before it sends the event a waitForEvent expects)."""
    spans = [_step_span(run.run_id, e) for e in history if e.kind in _SETTLED]
    if run.status in ENDED:
        return spans  # a wait cut short by the end of its run is not pending any more
    settled = {e.step_hash for e in history if e.kind in _SETTLED}
    pending = [e for e in history if e.kind in _WAITS and e.step_hash not in settled]
    return spans + [_pending_span(e) for e in pending]


async def resolve_run(_root: None, info: GraphQLResolveInfo, runID: str) -> View:
    return _run_view(await _load_run(info, runID))


async def resolve_run_trace(parent: View, info: GraphQLResolveInfo) -> View:
    run: RunState = parent["state"]
    history = await _context(info).stores.list_history(run.run_id)
    return {
        "spanID": run.run_id,
        "name": run.fn_id,
        "status": run.status.upper(),
        "isRoot": True,
        "startedAt": _time(run.started_ms),
        "endedAt": _time(run.ended_ms),
        "duration": run.ended_ms - run.started_ms if run.ended_ms and run.started_ms else None,
        "outputID": None,
        "childrenSpans": trace_spans(run, history),
    }


async def resolve_run_trigger(_root: None, info: GraphQLResolveInfo, runID: str) -> View:
    run = await _load_run(info, runID)
    first: dict[str, Any] = run.events[0] if run.events else {}
    return {
        "eventName": first.get("name"),
        "IDs": run.event_ids,
        "payloads": [dumps_text(event) for event in run.events],
        "timestamp": _time(first.get("ts") or run.started_ms),
    }


async def resolve_span_output(_root: None, info: GraphQLResolveInfo, outputID: str) -> View:
    run_id, _, entry_id = outputID.partition(":")
    run = await _load_run(info, run_id)
    for entry in await _context(info).stores.list_history(run.run_id):
        if entry.entry_id == entry_id and entry.kind in _SETTLED:
            return _span_output(entry.output)
    raise GraphQLError(f"output not found: {outputID}")


# --- events ---


async def resolve_event(_root: None, info: GraphQLResolveInfo, query: dict[str, Any]) -> View:
    context = _context(info)
    event_id: str = query["eventId"]
    event = await context.stores.get_event(event_id)
    if event is None or event.account_id != context.account:
        # As for runs: an error keeps the test helper polling until ingest has stored the event.
        raise GraphQLError(f"event not found: {event_id}")
    return {
        "id": event.internal_id,
        "externalID": event.payload.get("id") or None,
        "name": event.name,
        "createdAt": _time(event.received_ms),
        "raw": dumps_text(event.payload),
    }


async def resolve_event_runs(parent: View, info: GraphQLResolveInfo) -> list[View]:
    stores = _context(info).stores
    run_ids = await stores.runs_for_event(parent["id"])
    runs = await asyncio.gather(*(stores.get_run(run_id) for run_id in run_ids))
    # A run linked to the event but not written yet is left out until it is.
    return [
        {
            "id": run.run_id,
            "functionID": run.fn_id,
            "status": run.status.upper(),
            "startedAt": _time(run.started_ms),
            "finishedAt": _time(run.ended_ms),
            "output": _output_text(run),
        }
        for run in runs
        if run is not None
    ]


RESOLVERS: dict[str, dict[str, Callable[..., Any]]] = {
    "Query": {
        "run": resolve_run,
        "runTrigger": resolve_run_trigger,
        "runTraceSpanOutputByID": resolve_span_output,
        "event": resolve_event,
    },
    "FunctionRunV2": {"trace": resolve_run_trace},
    "Event": {"functionRuns": resolve_event_runs},
}
