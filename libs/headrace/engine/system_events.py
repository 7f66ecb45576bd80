"""The events headrace itself emits (protocol §7)."""

from __future__ import annotations

from typing import Any

from headrace.messages.state import RunState

FINISHED = "inngest/function.finished"
FAILED = "inngest/function.failed"
CANCELLED = "inngest/function.cancelled"
INVOKED = "inngest/function.invoked"
CRON = "inngest/scheduled.timer"


def finish_error(run: RunState) -> dict[str, Any]:
    """The error object of a run that failed, as the finished and failed events carry it."""
    error = run.output if isinstance(run.output, dict) else {}
    name = error.get("name") if isinstance(error.get("name"), str) else "Error"
    message = error.get("message") if isinstance(error.get("message"), str) else str(run.output)
    out = {"error": run.failure or f"{name}: {message}", "name": name, "message": message}
    if isinstance(error.get("stack"), str):
        out["stack"] = error["stack"]
    return out


def correlation_of(run: RunState) -> str | None:
    """The invoke correlation id of a run started by `step.invoke`, if it was."""
    if not run.events:
        return None
    meta = (run.events[0].get("data") or {}).get("_inngest")
    if isinstance(meta, dict) and isinstance(meta.get("correlation_id"), str):
        return str(meta["correlation_id"])
    return None


def end_events(run: RunState, now_ms: int) -> list[dict[str, Any]]:
    """`function.finished`, plus `function.failed` or `function.cancelled` for runs that did not
    complete. Their ids derive from the run id, so emitting them again changes nothing."""
    base: dict[str, Any] = {
        "function_id": run.fn_id,
        "run_id": run.run_id,
        "event": run.events[0] if run.events else {},
        "events": run.events,
    }
    finished = dict(base)
    if run.status == "completed":
        finished["result"] = run.output
    else:
        finished["error"] = finish_error(run)
    correlation = correlation_of(run)
    if correlation is not None:
        finished["correlation_id"] = correlation
    finished["_inngest"] = {"status": run.status}
    events = [{"name": FINISHED, "id": f"{run.run_id}:finished", "data": finished, "ts": now_ms}]
    if run.status == "failed":
        failed = {**base, "error": finish_error(run)}
        events.append({"name": FAILED, "id": run.run_id, "data": failed, "ts": now_ms})
    elif run.status == "cancelled":
        cancelled = {**base, "error": finish_error(run)}
        events.append({"name": CANCELLED, "id": run.run_id, "data": cancelled, "ts": now_ms})
    return events
