"""Retries and failure: a call that failed, a step that raised, a request headrace made for a
step that got no usable answer; each is tried again after a backoff while attempts remain, and
then fails (the run, or the step with its error as its memo)."""

from __future__ import annotations

from headrace.core.backoff import backoff_ms
from headrace.engine.discovery import request_discovery
from headrace.engine.ending import finish
from headrace.engine.machine_state import DISCOVERY, MachineState
from headrace.engine.steps import error_object, step_failed
from headrace.messages.records import Call
from headrace.protocol.ops import Outcome, RequestFailed, StepError


def sdk_attempt(state: MachineState, call: Call) -> int:
    """The attempt the SDK is told (`ctx.attempt`): counted from the last checkpoint, as in
    Inngest, since the SDK takes `max_attempts - 1` for its last attempt."""
    return call.attempt - state.run.budget_from if call.target is None else call.attempt


def call_failed(state: MachineState, call: Call, outcome: Outcome) -> None:
    """A call that got no opcodes back: retry the same call, or fail the run."""
    run = state.run
    error = outcome.error or {}
    target = call.target or DISCOVERY
    spent = sdk_attempt(state, call)
    if outcome.retryable and spent + 1 < state.max_attempts:
        run.attempts[target] = call.attempt + 1
        delay = outcome.retry_after_ms
        if delay is None:
            delay = backoff_ms(spent, state.rng, state.retry_interval_ms)
        state.history(
            "run.errored" if call.target is None else "step.errored",
            step_hash=call.target,
            attempt=call.attempt,
            error=error,
            duration_ms=outcome.duration_ms,
        )
        state.enqueue(
            Call(
                account_id=run.account_id,
                run_id=run.run_id,
                target=call.target,
                attempt=call.attempt + 1,
                seq=call.seq,
            ),
            at_ms=state.now_ms + delay,
            timer_id=f"{run.run_id}:call:{target}:{call.seq}:{call.attempt + 1}",
        )
        return
    # What Inngest's HTTP driver reports as the run's error in its system events.
    if not outcome.retryable:
        run.failure = "NonRetriableError"
    elif outcome.status:
        run.failure = f"invalid status code: {outcome.status}"
    else:
        run.failure = str(error.get("message") or "the app could not be reached")
    finish(state, "failed", error)


def step_error(state: MachineState, op: StepError, call: Call, outcome: Outcome) -> None:
    """The step raised: its call is made again after a backoff, or the step fails."""
    run = state.run
    error = error_object(op.error)
    if outcome.retryable and call.attempt + 1 < state.max_attempts:
        run.planned[op.id] = "step"
        run.step_names[op.id] = op.display
        run.attempts[op.id] = call.attempt + 1
        state.history(
            "step.errored",
            op=op,
            attempt=call.attempt,
            error=error,
            duration_ms=outcome.duration_ms,
        )
        delay = outcome.retry_after_ms
        if delay is None:
            delay = backoff_ms(call.attempt, state.rng, state.retry_interval_ms)
        state.enqueue(
            Call(
                account_id=run.account_id,
                run_id=run.run_id,
                target=op.id,
                attempt=call.attempt + 1,
            ),
            at_ms=state.now_ms + delay,
            timer_id=f"{run.run_id}:call:{op.id}:{call.attempt + 1}",
        )
    else:
        step_failed(state, op, call.attempt, error, outcome.duration_ms)


def request_failed(state: MachineState, op: RequestFailed, outcome: Outcome) -> None:
    """The request headrace made for a step (step.fetch, step.ai.infer) got no usable
    answer. The SDK cannot run such a step when called for it, so it is retried as Inngest
    retries it (by requeueing the call that reported it): the run is called again after a
    backoff, the SDK reports the op again, and headrace makes the request again; when the
    attempts are spent, the error is the step's memo and the SDK throws it."""
    run = state.run
    attempt = run.attempts.get(op.id, 0)
    error = error_object(op.error)
    if attempt + 1 >= state.max_attempts:
        step_failed(state, op, attempt, error, outcome.duration_ms)
        return
    run.attempts[op.id] = attempt + 1
    run.step_names[op.id] = op.display
    state.history(
        "step.errored", op=op, attempt=attempt, error=error, duration_ms=outcome.duration_ms
    )
    delay = backoff_ms(attempt, state.rng, state.retry_interval_ms)
    request_discovery(state, at_ms=state.now_ms + delay)
