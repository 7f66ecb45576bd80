"""A call's outcome applied to its run: the run's end, its failure, or its ops, each handed to
the part of the machine that handles its family (steps, waits, invokes, retries)."""

from __future__ import annotations

from headrace.engine.discovery import ready_to_discover, request_discovery
from headrace.engine.ending import finish
from headrace.engine.invokes import invoke
from headrace.engine.machine_state import MachineState
from headrace.engine.retries import call_failed, request_failed, step_error
from headrace.engine.steps import plan_step, step_completed, step_failed
from headrace.engine.waits import sleep, wait_for_event, wait_for_signal
from headrace.messages.records import Call
from headrace.messages.state import ENDED
from headrace.protocol.ops import (
    DiscoveryRequest,
    InvalidOp,
    InvokeFunction,
    LegacyStep,
    NoOp,
    Op,
    Outcome,
    RequestFailed,
    RunComplete,
    Sleep,
    StepError,
    StepFailed,
    StepPlanned,
    StepRun,
    WaitForEvent,
    WaitForSignal,
    invalid_error,
)


def apply_call(
    state: MachineState,
    call: Call,
    outcome: Outcome,
    stack_len_at_call: int,
    signal_conflicts: frozenset[str],
) -> None:
    state.signal_conflicts = signal_conflicts
    state.call_sent_ms = state.now_ms - outcome.duration_ms
    _learn_request_version(state, outcome)
    run = state.run
    if outcome.error is not None:
        call_failed(state, call, outcome)
        return
    if call.target is None:
        run.discover_pending = False
        run.discover_seq += 1
    if outcome.done:
        finish(state, "completed", outcome.result)
    else:
        _apply_ops(state, call, outcome.ops or [], outcome)
    if run.status in ENDED:
        return
    grew = len(run.stack) > stack_len_at_call
    if grew and ready_to_discover(state):
        request_discovery(state)
    if run.status not in ENDED and _left_idle(state, call):
        _answer_without_a_move(state, call, outcome)


def _learn_request_version(state: MachineState, outcome: Outcome) -> None:
    """Keep the execution version the SDK chose at the run's first generator response, and
    send it on every later call (header and body). Until then the run's version is -1, which
    lets the SDK choose; a 0 would pin a JS 3.x app to its legacy executor, which reads memos
    unwrapped, and a 4.x app rejects it. Inngest stores it only while unknown, from a 206
    (executor.HandleGeneratorResponse), so one run never changes version halfway."""
    if state.run.req_version == -1 and outcome.ops is not None:
        version = outcome.request_version
        if version is not None and version >= 0:
            state.run.req_version = version


def _apply_ops(state: MachineState, call: Call, ops: list[Op], outcome: Outcome) -> None:
    if len(ops) > 1:
        state.run.disable_immediate = True
    for op in ops:
        if state.run.status in ENDED:
            return  # a signal conflict failed the run
        if op.id in state.memo_keys:
            continue
        match op:
            case StepRun() | LegacyStep():
                step_completed(state, op, call.attempt, outcome.duration_ms)
            case StepError():
                step_error(state, op, call, outcome)
            case StepFailed():
                step_failed(state, op, call.attempt, op.error, outcome.duration_ms)
            case RequestFailed():
                request_failed(state, op, outcome)
            case StepPlanned():
                plan_step(state, op)
            case Sleep():
                sleep(state, op)
            case WaitForEvent():
                wait_for_event(state, op, call)
            case WaitForSignal():
                wait_for_signal(state, op)
            case InvokeFunction():
                invoke(state, op)
            case RunComplete():
                finish(state, "completed", op.data)
                return
            case DiscoveryRequest() | NoOp():
                if ready_to_discover(state):
                    request_discovery(state)
            case InvalidOp():
                step_failed(state, op, call.attempt, op.error, outcome.duration_ms)
            case _:
                # AIGateway and Gateway: the executor made their requests, and put the
                # result in their place; one left here was never asked for.
                reason = "the engine made no request for it"
                error = invalid_error(op.opcode, op.display, reason)
                step_failed(state, op, call.attempt, error, outcome.duration_ms)


def _left_idle(state: MachineState, call: Call) -> bool:
    """Whether the call's answer left the run with nothing to do next: no discovery, no
    step or wait planned (after a discovery), or its own step neither settled nor called
    again (after a step's call). Only an answer with no op the engine could act on does
    that (`[]`, or ops already handled); nothing would ever call the app again."""
    run = state.run
    if call.target is None:
        return not run.discover_pending and not run.planned
    return (
        run.planned.get(call.target) == "step" and run.attempts.get(call.target, 0) == call.attempt
    )


def _answer_without_a_move(state: MachineState, call: Call, outcome: Outcome) -> None:
    """Such an answer is a failed call, retried by the rules: the same call again (its
    discovery current again), then the run fails with the reason."""
    if call.target is None:
        state.run.discover_pending = True
        state.run.discover_seq -= 1
    problem = Outcome(
        error={
            "name": "UnexpectedResponse",
            "message": f"the app answered {outcome.status or 206} with no op the engine "
            "could act on (none, or only ops already handled)",
        },
        status=outcome.status,
        retryable=outcome.retryable,
        retry_after_ms=outcome.retry_after_ms,
        duration_ms=outcome.duration_ms,
    )
    call_failed(state, call, problem)
