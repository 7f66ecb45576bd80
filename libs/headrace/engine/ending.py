"""How a run ends (completed, failed or cancelled), and the limits that end it: the finish
timeout, the step limit, a cancellation, a failure from outside the app."""

from __future__ import annotations

from typing import Any, Literal

from headrace.engine import step_limit, system_events
from headrace.engine.machine_state import PAUSED, MachineState
from headrace.messages.flow import finish_timer_id
from headrace.messages.records import CancelRun
from headrace.messages.state import ENDED

EndStatus = Literal["completed", "failed", "cancelled"]


def finish(state: MachineState, status: EndStatus, output: Any) -> None:
    """End the run: its pauses are deleted, and its end is recorded and announced."""
    run = state.run
    run.status = status
    run.output = output
    run.ended_ms = state.now_ms
    run.discover_pending = False
    for step_hash, kind in run.planned.items():
        if kind in PAUSED:
            state.delete_pause(step_hash)
    run.planned = {}
    run.wait_started_ms = {}
    if status == "completed":
        state.history("run.completed", output=output)
    else:
        state.history(f"run.{status}", error=output)
    for event in system_events.end_events(run, state.now_ms):
        state.emit_event(event)


def schedule_finish_timeout(state: MachineState) -> None:
    """A run whose function has a finish timeout is cancelled when it runs out."""
    flow = state.run.flow
    if flow is None or not flow.finish_timeout_ms:
        return
    # Counted from the run's start, as its `started_ms` says.
    cancel_run = CancelRun(
        account_id=state.run.account_id,
        run_id=state.run.run_id,
        reason="the run exceeded its finish timeout",
    )
    state.enqueue(
        cancel_run,
        at_ms=state.now_ms + flow.finish_timeout_ms,
        timer_id=finish_timer_id(state.run.run_id),
    )


def within_step_limit(state: MachineState) -> bool:
    """Whether the run may call its app again; a run whose settled steps (every kind, as
    Inngest counts the outputs it saved) reached the limit fails instead. Checked where a
    call is asked for, as Inngest checks before each call it makes."""
    if len(state.run.stack) < state.max_steps:
        return True
    state.run.failure = step_limit.FAILURE
    finish(state, "failed", step_limit.overflow_error(state.max_steps))
    return False


def fail(state: MachineState, error: dict[str, Any]) -> None:
    """End the run as failed for a reason outside the app (its function is gone)."""
    if state.run.status not in ENDED:
        finish(state, "failed", error)


def cancel(state: MachineState, reason: str) -> None:
    if state.run.status in ENDED:
        return
    state.run.failure = reason
    finish(state, "cancelled", {"name": "FunctionCancelledError", "message": reason})
