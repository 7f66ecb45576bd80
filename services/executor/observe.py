"""What the executor reports about calls and runs: span names and attributes, metrics, spans of
waits and of the run itself. Kept apart so the executor reads as the protocol it drives."""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span, StatusCode

from headrace.engine.transition import Transition
from headrace.messages.records import Call
from headrace.messages.state import RunState
from headrace.obs import metrics
from headrace.obs.tracing import record_run_span
from headrace.protocol.ops import STEP_RUN, Outcome, StepError, StepFailed

# The ops by which an app reports that it ran a step inline (during a discovery call).
_RAN_STEP = (*STEP_RUN, StepError, StepFailed)


def run_attributes(run: RunState) -> dict[str, Any]:
    return {
        "headrace.account_id": run.account_id,
        "headrace.function_id": run.fn_id,
        "headrace.app_id": run.app_id,
    }


def call_attributes(run: RunState, item: Call) -> dict[str, Any]:
    attributes = {**run_attributes(run), "headrace.attempt": item.attempt}
    if item.target is not None:
        attributes["headrace.step.hash"] = item.target
        attributes["headrace.step.name"] = run.step_names.get(item.target, "")
    return attributes


def call_outcome(out: Transition | None) -> str:
    """completed (a step or the function returned), errored (will be retried), failed (no
    retries left), or planned (the app only reported what to run, sleep or wait for next)."""
    kinds = {entry.kind for entry in out.history} if out is not None else set()
    if kinds & {"step.errored", "run.errored"}:
        return "errored"
    if kinds & {"step.failed", "run.failed"}:
        return "failed"
    if kinds & {"step.completed", "run.completed"}:
        return "completed"
    return "planned"


def observe_call(
    span: Span, run: RunState, item: Call, outcome: Outcome, out: Transition | None
) -> None:
    """Name the call's span for what ran (a step, or discovery only), and record its metrics."""
    result = call_outcome(out)
    inline = next((op for op in outcome.ops or [] if isinstance(op, _RAN_STEP)), None)
    is_step = item.target is not None or inline is not None
    if item.target is None and inline is not None:
        span.set_attribute("headrace.step.hash", inline.id)
        span.set_attribute("headrace.step.name", inline.display)
    span.update_name("step" if is_step else "discovery")
    span.set_attribute("headrace.step.outcome", result)
    if result in ("errored", "failed"):
        span.set_status(StatusCode.ERROR, result)
    metrics.observe_step(
        run.fn_id, "step" if is_step else "discovery", result, outcome.duration_ms / 1000
    )
    if outcome.error is not None:
        metrics.app_http_error(run.app_id, str(outcome.status) if outcome.status else "transport")


def observe_wait(run: RunState, step_hash: str, kind: str, since_ms: int, now_ms: int) -> None:
    """A sleep, waitForEvent or invoke has ended: record its span, from when it began."""
    record_run_span(
        kind,
        run.run_id,
        {
            **run_attributes(run),
            "headrace.step.hash": step_hash,
            "headrace.step.name": run.step_names.get(step_hash, ""),
        },
        since_ms,
        now_ms,
    )


def observe_run_end(run: RunState) -> None:
    """The run has ended: count it, and record its root span over its whole life."""
    metrics.run_ended(run.fn_id, run.status)
    record_run_span(
        "run",
        run.run_id,
        {**run_attributes(run), "headrace.run.status": run.status},
        run.started_ms,
        run.ended_ms,
        root=True,
    )
