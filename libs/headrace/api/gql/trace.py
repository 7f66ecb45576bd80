"""A run's trace, built from its history in the shape of Inngest's dev server (inngest/inngest
pkg/coreapi/graph/loaders/trace.go): the run is the root span; each step is a child named by its
id, with its operation (`stepOp`, `stepType`), and its attempts as children of its own when it
took more than one; the attempts at the function's own return are one "Finalization" span.

Views are dicts keyed by the schema's field names. Output ids are "<run id>:<history entry id>",
read back by `span_output`.
"""

from __future__ import annotations

from typing import Any

from headrace.core.durations import format_iso_ms
from headrace.core.jsonutil import dumps_text
from headrace.messages.state import ENDED, HistoryEntry, RunState

View = dict[str, Any]

# History kinds that settle a step; each becomes one child span.
SETTLED = frozenset({"step.completed", "step.failed"})
# A step that began to wait, by the operation it waits in; it settles later with a
# step.completed or step.failed of the same memo key.
_WAIT_OPS = {"step.sleeping": "SLEEP", "step.waiting": "WAIT_FOR_EVENT", "step.invoking": "INVOKE"}
# A step the SDK said it was about to run (a checkpointed StepPlanned): running till it settles.
_PLANNED = "step.planned"
# The function's own return (or a failure of the run from outside it: its function is gone).
_RETURNS = frozenset({"run.completed", "run.failed"})
# Entries whose output id can be read: the settled steps, every failed attempt, the run's end.
READABLE = SETTLED | _RETURNS | {"step.errored", "run.errored", "run.cancelled"}
FINALIZATION = "Finalization"


def time_of(ms: int) -> str | None:
    # 0 stands for "not yet" in RunState and HistoryEntry.
    return format_iso_ms(ms) if ms else None


def output_id(run_id: str, entry_id: str) -> str:
    return f"{run_id}:{entry_id}"


# --- outputs ---


def _error_fields(error: dict[str, Any]) -> View:
    stack = error.get("stack")
    return {
        "message": error["message"],
        "name": error.get("name") if isinstance(error.get("name"), str) else None,
        "stack": stack if isinstance(stack, str) else None,
        # Any JSON: the SDKs serialize an error's cause as an error object of its own.
        "cause": error.get("cause"),
    }


def memo_error(memo: Any) -> View | None:
    """The error of an {"error": {...}} memo; like the SDKs' memo schemas, only an object with
    nothing but "data" and "error" keys, whose error has string name and message, counts."""
    if not isinstance(memo, dict) or not memo.keys() <= {"data", "error"}:
        return None
    error = memo.get("error")
    if not isinstance(error, dict):
        return None
    if not isinstance(error.get("message"), str) or not isinstance(error.get("name"), str):
        return None
    return _error_fields(error)


def _attempt_error(error: Any) -> View:
    """A failed attempt's or run's error as the app reported it, whatever its shape."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return _error_fields(error)
    return {"message": dumps_text(error), "name": None, "stack": None, "cause": None}


def _memo_output(memo: Any) -> View:
    error = memo_error(memo)
    if error is not None:
        return {"data": None, "error": error}
    if isinstance(memo, dict) and memo.keys() <= {"data", "error"} and memo.get("error") is None:
        # {"data": X} from step.run or an invoke: the value is X.
        return {"data": dumps_text(memo.get("data")), "error": None}
    # A sleep's null or a wait's event (or any other shape): the memo is the value.
    return {"data": dumps_text(memo), "error": None}


def span_output(entry: HistoryEntry) -> View:
    """What `runTraceSpanOutputByID` answers for a READABLE entry."""
    if entry.kind in SETTLED:
        return _memo_output(entry.output)
    if entry.kind == "run.completed":
        return {"data": dumps_text(entry.output), "error": None}
    return {"data": None, "error": _attempt_error(entry.error)}


# --- spans ---


def _span(run_id: str, entry: HistoryEntry, name: str, op: str | None, status: str) -> View:
    return {
        "spanID": entry.entry_id,
        "name": name,
        "status": status,
        "isRoot": False,
        "stepID": entry.step_hash,
        "stepOp": op,
        "stepType": op or "",
        "attempts": entry.attempt,
        "startedAt": time_of(entry.ts_ms - entry.duration_ms),
        "endedAt": time_of(entry.ts_ms),
        "duration": entry.duration_ms,
        "outputID": output_id(run_id, entry.entry_id),
        "childrenSpans": [],
    }


def _entry_status(entry: HistoryEntry) -> str:
    if entry.kind in ("step.failed", "step.errored", "run.failed", "run.errored"):
        return "FAILED"
    return "FAILED" if memo_error(entry.output) is not None else "COMPLETED"


def _with_attempts(span: View, run_id: str, attempts: list[HistoryEntry]) -> View:
    """A span that took several attempts lists them (in order) as its children, as Inngest's
    does; it starts when the first began."""
    if len(attempts) < 2:
        return span
    span["startedAt"] = time_of(attempts[0].ts_ms - attempts[0].duration_ms)
    span["childrenSpans"] = [
        _span(run_id, a, f"Attempt {n}", span["stepOp"], _entry_status(a))
        for n, a in enumerate(attempts)
    ]
    # The type of the attempts is their step's: a FINALIZATION attempt is one too.
    for child in span["childrenSpans"]:
        child["stepType"] = span["stepType"]
    return span


def _pending_span(entry: HistoryEntry, op: str, status: str) -> View:
    return {
        "spanID": entry.entry_id,
        "name": entry.step_name or entry.step_hash or "",
        "status": status,
        "isRoot": False,
        "stepID": entry.step_hash,
        "stepOp": op,
        "stepType": op,
        "attempts": entry.attempt,
        "startedAt": time_of(entry.ts_ms),
        "endedAt": None,
        "duration": None,
        # Nothing to read until it settles; its settled span has the output.
        "outputID": None,
        "childrenSpans": [],
    }


def _finalization(run_id: str, attempts: list[HistoryEntry], end: HistoryEntry) -> View:
    span = _span(run_id, end, FINALIZATION, None, _entry_status(end))
    span["stepType"] = FINALIZATION.upper()
    span["stepID"] = None
    return _with_attempts(span, run_id, [*attempts, end])


def trace_spans(run: RunState, history: list[HistoryEntry]) -> list[View]:
    """The run's steps in the order they settled, then, while the run has not ended, each sleep,
    wait or invoke still pending as a WAITING span (so a client can tell that a run waits, say
    before it sends the event a waitForEvent expects) and each step planned in a checkpoint but
    not settled as a RUNNING one, and last the Finalization span once the function has
    returned."""
    ops: dict[str, str] = {}  # memo key -> the operation it waited in
    failed_attempts: dict[str | None, list[HistoryEntry]] = {}  # memo key (None: the function)
    spans: list[View] = []
    for entry in history:
        if entry.kind in _WAIT_OPS and entry.step_hash:
            ops[entry.step_hash] = _WAIT_OPS[entry.kind]
        elif entry.kind in ("step.errored", "run.errored"):
            failed_attempts.setdefault(entry.step_hash, []).append(entry)
        elif entry.kind in SETTLED:
            key = entry.step_hash or ""
            op = ops.get(key, "RUN")
            name = entry.step_name or key
            span = _span(run.run_id, entry, name, op, _entry_status(entry))
            attempts = [*failed_attempts.pop(entry.step_hash, []), entry]
            spans.append(_with_attempts(span, run.run_id, attempts))
        elif entry.kind in _RETURNS:
            spans.append(_finalization(run.run_id, failed_attempts.pop(None, []), entry))
    if run.status in ENDED:
        return spans  # a wait cut short by the end of its run is not pending any more
    settled = {e.step_hash for e in history if e.kind in SETTLED}
    pending = [e for e in history if e.kind in _WAIT_OPS and e.step_hash not in settled]
    # A step planned again (a retry of its call said so once more) is one span.
    planned = {e.step_hash: e for e in history if e.kind == _PLANNED and e.step_hash not in settled}
    return (
        spans
        + [_pending_span(e, _WAIT_OPS[e.kind], "WAITING") for e in pending]
        + [_pending_span(e, "RUN", "RUNNING") for e in planned.values()]
    )


def root_span(run: RunState, history: list[HistoryEntry]) -> View:
    """The run as the root span; once it has ended, its outputID reads its result or error."""
    end = next((e for e in reversed(history) if e.kind in _RETURNS | {"run.cancelled"}), None)
    return {
        "spanID": run.run_id,
        "name": run.fn_id,
        "status": run.status.upper(),
        "isRoot": True,
        "stepID": None,
        "stepOp": None,
        "stepType": "",
        "attempts": None,
        "startedAt": time_of(run.started_ms),
        "endedAt": time_of(run.ended_ms),
        "duration": run.ended_ms - run.started_ms if run.ended_ms and run.started_ms else None,
        "outputID": output_id(run.run_id, end.entry_id) if end and run.status in ENDED else None,
        "childrenSpans": trace_spans(run, history),
    }
