"""Steps run by the app (step.run): planned, then settled with their data or their error."""

from __future__ import annotations

from typing import Any

from headrace.engine.ending import within_step_limit
from headrace.engine.machine_state import MachineState
from headrace.messages.records import Call
from headrace.protocol.ops import LegacyStep, Op, StepPlanned, StepRun


def plan_step(state: MachineState, op: StepPlanned) -> None:
    """The app asks for a step to run: the step's own call is queued."""
    run = state.run
    if op.id in run.planned or not within_step_limit(state):
        return
    if op.race:
        run.race = True
    run.planned[op.id] = "step"
    run.step_names[op.id] = op.display
    run.attempts[op.id] = 0
    state.enqueue(
        Call(account_id=run.account_id, run_id=run.run_id, target=op.id),
        at_ms=0,
        timer_id=f"{run.run_id}:call:{op.id}:0",
    )


def step_completed(
    state: MachineState, op: StepRun | LegacyStep, attempt: int, duration_ms: int
) -> None:
    memo = step_memo(op)
    state.history("step.completed", op=op, attempt=attempt, output=memo, duration_ms=duration_ms)
    state.settle(op.id, memo, op.display)


def step_failed(state: MachineState, op: Op, attempt: int, error: Any, duration_ms: int) -> None:
    """The step failed for good: its error is its memo, which the SDK throws."""
    memo = {"error": error_object(error)}
    state.history("step.failed", op=op, attempt=attempt, output=memo, duration_ms=duration_ms)
    state.settle(op.id, memo, op.display)


def error_object(error: Any) -> dict[str, Any]:
    """A memo error must have string name and message, or the SDK reads it as data."""
    if isinstance(error, dict):
        name = error.get("name")
        message = error.get("message")
        out = dict(error)
        out["name"] = name if isinstance(name, str) else "Error"
        out["message"] = message if isinstance(message, str) else str(error)
        return out
    return {"name": "Error", "message": str(error)}


def step_memo(op: StepRun | LegacyStep) -> Any:
    """What a finished step stores, as Inngest does (state/opcode.go `Output`): StepRun's data
    wrapped as {"data": ...}, so the SDK tells data from an error; the legacy `Step` op (JS's V0
    executor) sends its data already wrapped, and it is stored as it came."""
    if isinstance(op, LegacyStep):
        return op.data
    return {"data": op.data}
