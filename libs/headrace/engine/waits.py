"""Steps that wait (step.sleep, step.waitForEvent, step.waitForSignal, and step.invoke through
`begin_wait`): each has a timer that settles it at its deadline, most a pause that a matching
event settles before; and their resumption, by the timer or the match."""

from __future__ import annotations

from typing import Any

from headrace.engine import signals
from headrace.engine.discovery import ready_to_discover, request_discovery
from headrace.engine.ending import finish
from headrace.engine.machine_state import PAUSED, MachineState
from headrace.engine.steps import step_failed
from headrace.expressions import ExpressionError, compile_expression, substitute_event
from headrace.messages.flow import schedule_key
from headrace.messages.model import Pause, PauseKind
from headrace.messages.records import Call, PauseCreated, Resume
from headrace.messages.state import StepKind
from headrace.protocol.ops import Op, Sleep, WaitForEvent, WaitForSignal, invalid_error

MAX_SLEEP_MS = 366 * 86_400_000


def sleep(state: MachineState, op: Sleep) -> None:
    if op.id in state.run.planned:
        return
    until = min(op.until_ms(state.now_ms), state.now_ms + MAX_SLEEP_MS)
    begin_wait(state, op, "sleep", "step.sleeping", {"until": until}, until, None, "sleep")


def wait_for_event(state: MachineState, op: WaitForEvent, call: Call) -> None:
    if op.id in state.run.planned:
        return
    expression = op.expression
    if expression is not None:
        # Read against the run's trigger: only here can the expression be checked.
        try:
            expression = substitute_event(
                expression, state.run.events[0] if state.run.events else {}
            )
            compile_expression(expression)
        except ExpressionError as err:
            error = invalid_error(op.opcode, op.display, str(err))
            step_failed(state, op, call.attempt, error, 0)
            return
    expires = state.now_ms + op.timeout_ms
    detail = {"event": op.event, "if": expression, "timeout_ms": op.timeout_ms}
    begin_wait(state, op, "wait", "step.waiting", detail, expires, None, "timeout")
    add_pause(state, new_pause(state, op, "wait", op.event, expression, expires))


def wait_for_signal(state: MachineState, op: WaitForSignal) -> None:
    if op.id in state.run.planned:
        return
    if op.id in state.signal_conflicts:
        # Inngest fails the run at once, without retries (executor.go: ErrSignalConflict
        # is among the errors that "fail early").
        state.run.failure = signals.CONFLICT_ERROR["message"]
        finish(state, "failed", dict(signals.CONFLICT_ERROR))
        return
    expires = op.expires_ms(state.now_ms)
    detail = {"signal": op.signal, "timeout_ms": expires - state.now_ms}
    begin_wait(state, op, "signal", "step.waiting", detail, expires, None, "timeout")
    add_pause(state, new_pause(state, op, "signal", op.signal, None, expires))


def begin_wait(
    state: MachineState,
    op: Op,
    kind: StepKind,
    history_kind: str,
    detail: Any,
    until_ms: int,
    timeout_memo: Any,
    reason: str,
) -> None:
    """The step now waits; at `until_ms` it settles with `timeout_memo` unless something
    settled it before (a matching event, the invoked run's end)."""
    run = state.run
    run.planned[op.id] = kind
    run.step_names[op.id] = op.display
    run.wait_started_ms[op.id] = state.now_ms
    state.history(history_kind, op=op, output=detail)
    state.enqueue(
        Resume(
            account_id=run.account_id,
            run_id=run.run_id,
            step_hash=op.id,
            memo=timeout_memo,
            reason=reason,
        ),
        at_ms=until_ms,
        timer_id=f"{run.run_id}:resume:{op.id}",
    )


def new_pause(
    state: MachineState,
    op: Op,
    kind: PauseKind,
    event_name: str,
    expression: str | None,
    expires_ms: int,
    correlation_id: str | None = None,
) -> Pause:
    run = state.run
    return Pause(
        pause_id=state.pause_id(op.id),
        account_id=run.account_id,
        run_id=run.run_id,
        fn_id=run.fn_id,
        kind=kind,
        event_name=event_name,
        expression=expression,
        step_hash=op.id,
        correlation_id=correlation_id,
        expires_ms=expires_ms,
        since_ms=state.call_sent_ms if kind == "wait" else 0,
        flow_key=schedule_key(run.account_id, run.flow),
    )


def add_pause(state: MachineState, pause: Pause) -> None:
    state.out.pauses_put.append(pause)
    state.out.events.append(PauseCreated(pause=pause))


def resume_wait(state: MachineState, resume: Resume) -> None:
    """A waiting step settles: its timer fired, or an event matched its pause."""
    if state.run.planned.get(resume.step_hash) in PAUSED:
        state.delete_pause(resume.step_hash)
    memo = resume.memo
    failed = isinstance(memo, dict) and set(memo) == {"error"}
    state.history(
        "step.failed" if failed else "step.completed",
        step_hash=resume.step_hash,
        output=memo,
    )
    state.settle(resume.step_hash, memo, state.run.step_names.get(resume.step_hash, ""))
    if ready_to_discover(state):
        request_discovery(state)
