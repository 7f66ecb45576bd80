"""Steps the SDK reports while its call goes on (checkpointing), and the runs of Durable
Endpoints, whose own request is the run's first call and reports its steps so."""

from __future__ import annotations

from headrace.engine.ending import finish
from headrace.engine.machine_state import DISCOVERY, MachineState
from headrace.engine.outcomes import apply_call
from headrace.engine.staleness import is_current_call
from headrace.engine.steps import step_completed
from headrace.messages.records import Call, EndpointTimeout
from headrace.protocol.endpoint import endpoint_timer_id
from headrace.protocol.ops import STEP_RUN, Op, Outcome, StepPlanned


def apply_checkpoint(state: MachineState, call: Call, ops: list[Op]) -> None:
    """Steps the SDK reports finished while `call` goes on (async checkpointing): each is
    memoized now, as if the call had answered with it, so it is never run again; the call's
    own answer comes later and is applied then (it may end the run, with RunComplete).
    A checkpointed step restarts the call's retry budget, as Inngest resets the queue
    item's attempts (checkpoint.go `checkpointAsyncSteps`): an error after it gets all the
    attempts configured. A StepPlanned says a step is about to run in the call: its
    history shows it running until it settles (Inngest opens its span then:
    `checkpoint.go` `checkpointAsyncSteps`)."""
    for op in ops:
        if op.id in state.memo_keys:
            continue
        if isinstance(op, STEP_RUN):
            if call.target is None:
                state.run.budget_from = call.attempt
            step_completed(state, op, call.attempt, op.duration_ms)
        elif isinstance(op, StepPlanned):
            state.history("step.planned", op=op, attempt=call.attempt)


def start_endpoint(state: MachineState, timeout_ms: int) -> None:
    """A Durable Endpoint's run, created by its first checkpoint: the endpoint's own request
    is the run's first call (discovery 0, attempt 0, never enqueued), running in the app;
    its checkpoints are that call's (`apply_endpoint_checkpoint`). Its request's event is
    published as any event is, so it is stored and listed as the run's trigger (Inngest
    publishes it too: `checkpoint.go` `CheckpointNewRun`); the endpoint's function has no
    triggers, so it starts nothing."""
    run = state.run
    state.history("run.started")
    run.event_ids = [state.emit_event(run.events[0])]
    run.discover_pending = True
    run.attempts[DISCOVERY] = 0
    timeout = EndpointTimeout(account_id=run.account_id, run_id=run.run_id, after_ms=timeout_ms)
    state.enqueue(
        timeout,
        at_ms=state.now_ms + timeout_ms,
        timer_id=endpoint_timer_id(run.run_id),
    )


def request_call(state: MachineState) -> Call:
    """A Durable Endpoint's own request, as its run's first call."""
    return Call(account_id=state.run.account_id, run_id=state.run.run_id, seq=0, attempt=0)


def request_holds_run(state: MachineState) -> bool:
    """The endpoint's request has neither ended its run nor handed it to the engine."""
    return is_current_call(state, request_call(state))


def time_out_request(state: MachineState, after_ms: int) -> None:
    """The endpoint's request has had its time (EndpointTimeout): the run fails if the
    request still holds it; once handed over, the engine drives it and this is no-op."""
    if not request_holds_run(state):
        return
    message = (
        f"the endpoint's request neither finished its run nor handed it over within "
        f"{after_ms // 1000} s"
    )
    state.run.failure = message
    finish(state, "failed", {"name": "Error", "message": message})


def apply_endpoint_checkpoint(
    state: MachineState, call: Call, ops: list[Op], signal_conflicts: frozenset[str]
) -> None:
    """Finished steps are memoized while the endpoint's request goes on; any other op (the
    return as RunComplete, a step error, a sleep, a wait) is that request's answer, applied
    as a call's 206 is: a step to retry, a timer or a discovery is then the engine's to
    make, by calling the endpoint (Inngest `checkpoint.go` `CheckpointSyncSteps`).
    `signal_conflicts` as for `apply_call`: the request's waits for signals are claimed as
    a call's are."""
    finished = [op for op in ops if isinstance(op, STEP_RUN)]
    answer = [op for op in ops if not isinstance(op, STEP_RUN)]
    apply_checkpoint(state, call, finished)
    if answer:
        apply_call(state, call, Outcome(ops=answer), len(state.run.stack), signal_conflicts)
