"""The run state machine: how a run's state changes when a call's outcome or a resume arrives.

Rules that keep at-least-once delivery from repeating visible work:
- A memo is written once; a record about a step that is already memoized is stale.
- Discovery calls carry the run's discovery sequence; only the current one is applied.
- A step call carries its attempt; only the current attempt is applied.
- Only one discovery is queued at a time. In "wait" mode discovery runs once every planned
  step has settled; in "race" mode after each.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Literal

from headrace.core.backoff import backoff_ms
from headrace.core.jsonutil import canonical, loads
from headrace.engine import signals, step_limit, system_events
from headrace.engine.transition import Transition
from headrace.expressions import ExpressionError, compile_expression, substitute_event
from headrace.messages.flow import finish_timer_id
from headrace.messages.model import Event, Pause, PauseKind
from headrace.messages.records import (
    Call,
    CancelRun,
    EndpointTimeout,
    EventAccepted,
    PauseCreated,
    PauseDeleted,
    Resume,
    WorkRecord,
)
from headrace.messages.records import Enqueue as EnqueueRecord
from headrace.messages.state import ENDED, HistoryEntry, RunState, StepKind
from headrace.protocol.endpoint import endpoint_timer_id
from headrace.protocol.ops import (
    STEP_RUN,
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

MAX_SLEEP_MS = 366 * 86_400_000
DISCOVERY = ""
EndStatus = Literal["completed", "failed", "cancelled"]
# The kinds of waiting step that have a pause, deleted when the step settles or the run ends.
_PAUSED = frozenset({"wait", "invoke", "signal"})
INVOKE_TIMEOUT = {
    "error": {
        "name": "InngestInvokeTimeoutError",
        "message": "Timed out waiting for invoked function to complete",
    }
}


class RunMachine:
    """Applies one event in a run's life to its state, collecting the effects in `out`."""

    def __init__(
        self,
        run: RunState,
        memo_keys: set[str],
        *,
        max_attempts: int,
        now_ms: int,
        new_id: Callable[[], str],
        rng: random.Random | None = None,
        backoff_scale: float = 1.0,
        max_steps: int = step_limit.DEFAULT_MAX_STEPS,
    ) -> None:
        self.run = run
        self.memo_keys = set(memo_keys)
        self.max_attempts = max_attempts
        self.now_ms = now_ms
        self.new_id = new_id
        self.rng = rng
        self.backoff_scale = backoff_scale
        self.max_steps = max_steps
        self._signal_conflicts: frozenset[str] = frozenset()
        # When the call being applied was sent: the moment the waits it declares began.
        self._call_sent_ms = now_ms
        self.out = Transition()

    # --- what is current ---------------------------------------------------------------------

    def is_current_call(self, call: Call) -> bool:
        if self.run.status in ENDED:
            return False
        if call.target is None:
            return (
                self.run.discover_pending
                and call.seq == self.run.discover_seq
                and call.attempt == self.run.attempts.get(DISCOVERY, 0)
            )
        return (
            call.target in self.run.planned
            and call.target not in self.memo_keys
            and self.run.planned[call.target] == "step"
            and call.attempt == self.run.attempts.get(call.target, 0)
        )

    def is_current_resume(self, resume: Resume) -> bool:
        return (
            self.run.status not in ENDED
            and resume.step_hash in self.run.planned
            and resume.step_hash not in self.memo_keys
        )

    # --- starting ------------------------------------------------------------------------------

    def start(self) -> None:
        self._history("run.started")
        if self.run.flow is not None and self.run.flow.finish_timeout_ms:
            # Counted from the run's start, as its `started_ms` says.
            cancel = CancelRun(
                account_id=self.run.account_id,
                run_id=self.run.run_id,
                reason="the run exceeded its finish timeout",
            )
            self._enqueue(
                cancel,
                at_ms=self.now_ms + self.run.flow.finish_timeout_ms,
                timer_id=finish_timer_id(self.run.run_id),
            )
        self._request_discovery()

    def start_endpoint(self, timeout_ms: int) -> None:
        """A Durable Endpoint's run, created by its first checkpoint: the endpoint's own request
        is the run's first call (discovery 0, attempt 0, never enqueued), running in the app;
        its checkpoints are that call's (`apply_endpoint_checkpoint`). Its request's event is
        published as any event is, so it is stored and listed as the run's trigger (Inngest
        publishes it too: `checkpoint.go` `CheckpointNewRun`); the endpoint's function has no
        triggers, so it starts nothing."""
        self._history("run.started")
        self.run.event_ids = [self._emit_event(self.run.events[0])]
        self.run.discover_pending = True
        self.run.attempts[DISCOVERY] = 0
        timeout = EndpointTimeout(
            account_id=self.run.account_id, run_id=self.run.run_id, after_ms=timeout_ms
        )
        self._enqueue(
            timeout,
            at_ms=self.now_ms + timeout_ms,
            timer_id=endpoint_timer_id(self.run.run_id),
        )

    def request_call(self) -> Call:
        """A Durable Endpoint's own request, as its run's first call."""
        return Call(account_id=self.run.account_id, run_id=self.run.run_id, seq=0, attempt=0)

    def request_holds_run(self) -> bool:
        """The endpoint's request has neither ended its run nor handed it to the engine."""
        return self.is_current_call(self.request_call())

    def time_out_request(self, after_ms: int) -> None:
        """The endpoint's request has had its time (EndpointTimeout): the run fails if the
        request still holds it; once handed over, the engine drives it and this is no-op."""
        if not self.request_holds_run():
            return
        message = (
            f"the endpoint's request neither finished its run nor handed it over within "
            f"{after_ms // 1000} s"
        )
        self.run.failure = message
        self._finish("failed", {"name": "Error", "message": message})

    def seed(self, stack: list[str], memos: dict[str, bytes], names: dict[str, str]) -> None:
        """Give a replay, as it starts, the memos it keeps (engine.replay): the SDK reads them
        as steps already done and skips them."""
        self.run.stack = list(stack)
        self.run.step_names.update(names)
        self.out.memos.update(memos)
        self.memo_keys.update(memos)
        for step_hash in stack:
            self._history("step.memoized", step_hash=step_hash, output=loads(memos[step_hash]))

    # --- applying a call's outcome -------------------------------------------------------------

    def apply_call(
        self,
        call: Call,
        outcome: Outcome,
        stack_len_at_call: int,
        signal_conflicts: frozenset[str] = frozenset(),
    ) -> None:
        """`signal_conflicts`: the WaitForSignal ops (by id) whose signal the executor found
        held by another run's wait; their run fails, as in Inngest."""
        self._signal_conflicts = signal_conflicts
        self._call_sent_ms = self.now_ms - outcome.duration_ms
        self._learn_request_version(outcome)
        if outcome.error is not None:
            self._call_failed(call, outcome)
            return
        if call.target is None:
            self.run.discover_pending = False
            self.run.discover_seq += 1
        if outcome.done:
            self._finish("completed", outcome.result)
        else:
            self._apply_ops(call, outcome.ops or [], outcome)
        if self.run.status in ENDED:
            return
        grew = len(self.run.stack) > stack_len_at_call
        if grew and self._ready_to_discover():
            self._request_discovery()
        if self.run.status not in ENDED and self._left_idle(call):
            self._answer_without_a_move(call, outcome)

    def apply_checkpoint(self, call: Call, ops: list[Op]) -> None:
        """Steps the SDK reports finished while `call` goes on (async checkpointing): each is
        memoized now, as if the call had answered with it, so it is never run again; the call's
        own answer comes later and is applied then (it may end the run, with RunComplete).
        A checkpointed step restarts the call's retry budget, as Inngest resets the queue
        item's attempts (checkpoint.go `checkpointAsyncSteps`): an error after it gets all the
        attempts configured. A StepPlanned says a step is about to run in the call: its
        history shows it running until it settles (Inngest opens its span then:
        `checkpoint.go` `checkpointAsyncSteps`)."""
        for op in ops:
            if op.id in self.memo_keys:
                continue
            if isinstance(op, STEP_RUN):
                if call.target is None:
                    self.run.budget_from = call.attempt
                self._step_completed(op, call.attempt, op.duration_ms)
            elif isinstance(op, StepPlanned):
                self._history("step.planned", op=op, attempt=call.attempt)

    def _step_completed(self, op: StepRun | LegacyStep, attempt: int, duration_ms: int) -> None:
        memo = _step_memo(op)
        self._history(
            "step.completed", op=op, attempt=attempt, output=memo, duration_ms=duration_ms
        )
        self._settle(op.id, memo, op.display)

    def apply_endpoint_checkpoint(
        self, call: Call, ops: list[Op], signal_conflicts: frozenset[str] = frozenset()
    ) -> None:
        """Finished steps are memoized while the endpoint's request goes on; any other op (the
        return as RunComplete, a step error, a sleep, a wait) is that request's answer, applied
        as a call's 206 is: a step to retry, a timer or a discovery is then the engine's to
        make, by calling the endpoint (Inngest `checkpoint.go` `CheckpointSyncSteps`).
        `signal_conflicts` as for `apply_call`: the request's waits for signals are claimed as
        a call's are."""
        finished = [op for op in ops if isinstance(op, STEP_RUN)]
        answer = [op for op in ops if not isinstance(op, STEP_RUN)]
        self.apply_checkpoint(call, finished)
        if answer:
            self.apply_call(call, Outcome(ops=answer), len(self.run.stack), signal_conflicts)

    def _learn_request_version(self, outcome: Outcome) -> None:
        """Keep the execution version the SDK chose at the run's first generator response, and
        send it on every later call (header and body). Until then the run's version is -1, which
        lets the SDK choose; a 0 would pin a JS 3.x app to its legacy executor, which reads memos
        unwrapped, and a 4.x app rejects it. Inngest stores it only while unknown, from a 206
        (executor.HandleGeneratorResponse), so one run never changes version halfway."""
        if self.run.req_version == -1 and outcome.ops is not None:
            version = outcome.request_version
            if version is not None and version >= 0:
                self.run.req_version = version

    def sdk_attempt(self, call: Call) -> int:
        """The attempt the SDK is told (`ctx.attempt`): counted from the last checkpoint, as in
        Inngest, since the SDK takes `max_attempts - 1` for its last attempt."""
        return call.attempt - self.run.budget_from if call.target is None else call.attempt

    def _call_failed(self, call: Call, outcome: Outcome) -> None:
        """A call that got no opcodes back: retry the same call, or fail the run."""
        error = outcome.error or {}
        target = call.target or DISCOVERY
        spent = self.sdk_attempt(call)
        if outcome.retryable and spent + 1 < self.max_attempts:
            self.run.attempts[target] = call.attempt + 1
            delay = outcome.retry_after_ms
            if delay is None:
                delay = backoff_ms(spent, self.rng, self.backoff_scale)
            self._history(
                "run.errored" if call.target is None else "step.errored",
                step_hash=call.target,
                attempt=call.attempt,
                error=error,
                duration_ms=outcome.duration_ms,
            )
            self._enqueue(
                Call(
                    account_id=self.run.account_id,
                    run_id=self.run.run_id,
                    target=call.target,
                    attempt=call.attempt + 1,
                    seq=call.seq,
                ),
                at_ms=self.now_ms + delay,
                timer_id=f"{self.run.run_id}:call:{target}:{call.seq}:{call.attempt + 1}",
            )
            return
        # What Inngest's HTTP driver reports as the run's error in its system events.
        if not outcome.retryable:
            self.run.failure = "NonRetriableError"
        elif outcome.status:
            self.run.failure = f"invalid status code: {outcome.status}"
        else:
            self.run.failure = str(error.get("message") or "the app could not be reached")
        self._finish("failed", error)

    def _left_idle(self, call: Call) -> bool:
        """Whether the call's answer left the run with nothing to do next: no discovery, no
        step or wait planned (after a discovery), or its own step neither settled nor called
        again (after a step's call). Only an answer with no op the engine could act on does
        that (`[]`, or ops already handled); nothing would ever call the app again."""
        if call.target is None:
            return not self.run.discover_pending and not self.run.planned
        return (
            self.run.planned.get(call.target) == "step"
            and self.run.attempts.get(call.target, 0) == call.attempt
        )

    def _answer_without_a_move(self, call: Call, outcome: Outcome) -> None:
        """Such an answer is a failed call, retried by the rules: the same call again (its
        discovery current again), then the run fails with the reason."""
        if call.target is None:
            self.run.discover_pending = True
            self.run.discover_seq -= 1
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
        self._call_failed(call, problem)

    def _apply_ops(self, call: Call, ops: list[Op], outcome: Outcome) -> None:
        if len(ops) > 1:
            self.run.disable_immediate = True
        for op in ops:
            if self.run.status in ENDED:
                return  # a signal conflict failed the run
            if op.id in self.memo_keys:
                continue
            match op:
                case StepRun() | LegacyStep():
                    self._step_completed(op, call.attempt, outcome.duration_ms)
                case StepError():
                    self._step_error(op, call, outcome)
                case StepFailed():
                    self._step_failed(op, call.attempt, op.error, outcome.duration_ms)
                case RequestFailed():
                    self._request_failed(op, outcome)
                case StepPlanned():
                    self._plan_step(op)
                case Sleep():
                    self._sleep(op)
                case WaitForEvent():
                    self._wait_for_event(op, call)
                case WaitForSignal():
                    self._wait_for_signal(op)
                case InvokeFunction():
                    self._invoke(op)
                case RunComplete():
                    self._finish("completed", op.data)
                    return
                case DiscoveryRequest() | NoOp():
                    if self._ready_to_discover():
                        self._request_discovery()
                case InvalidOp():
                    self._step_failed(op, call.attempt, op.error, outcome.duration_ms)
                case _:
                    # AIGateway and Gateway: the executor made their requests, and put the
                    # result in their place; one left here was never asked for.
                    reason = "the engine made no request for it"
                    error = invalid_error(op.opcode, op.display, reason)
                    self._step_failed(op, call.attempt, error, outcome.duration_ms)

    def _step_error(self, op: StepError, call: Call, outcome: Outcome) -> None:
        error = _error_object(op.error)
        if outcome.retryable and call.attempt + 1 < self.max_attempts:
            self.run.planned[op.id] = "step"
            self.run.step_names[op.id] = op.display
            self.run.attempts[op.id] = call.attempt + 1
            self._history(
                "step.errored",
                op=op,
                attempt=call.attempt,
                error=error,
                duration_ms=outcome.duration_ms,
            )
            delay = outcome.retry_after_ms
            if delay is None:
                delay = backoff_ms(call.attempt, self.rng, self.backoff_scale)
            self._enqueue(
                Call(
                    account_id=self.run.account_id,
                    run_id=self.run.run_id,
                    target=op.id,
                    attempt=call.attempt + 1,
                ),
                at_ms=self.now_ms + delay,
                timer_id=f"{self.run.run_id}:call:{op.id}:{call.attempt + 1}",
            )
        else:
            self._step_failed(op, call.attempt, error, outcome.duration_ms)

    def _request_failed(self, op: RequestFailed, outcome: Outcome) -> None:
        """The request headrace made for a step (step.fetch, step.ai.infer) got no usable
        answer. The SDK cannot run such a step when called for it, so it is retried as Inngest
        retries it (by requeueing the call that reported it): the run is called again after a
        backoff, the SDK reports the op again, and headrace makes the request again; when the
        attempts are spent, the error is the step's memo and the SDK throws it."""
        attempt = self.run.attempts.get(op.id, 0)
        error = _error_object(op.error)
        if attempt + 1 >= self.max_attempts:
            self._step_failed(op, attempt, error, outcome.duration_ms)
            return
        self.run.attempts[op.id] = attempt + 1
        self.run.step_names[op.id] = op.display
        self._history(
            "step.errored", op=op, attempt=attempt, error=error, duration_ms=outcome.duration_ms
        )
        self._request_discovery(
            at_ms=self.now_ms + backoff_ms(attempt, self.rng, self.backoff_scale)
        )

    def _step_failed(self, op: Op, attempt: int, error: Any, duration_ms: int) -> None:
        memo = {"error": _error_object(error)}
        self._history("step.failed", op=op, attempt=attempt, output=memo, duration_ms=duration_ms)
        self._settle(op.id, memo, op.display)

    def _plan_step(self, op: StepPlanned) -> None:
        if op.id in self.run.planned or not self._within_step_limit():
            return
        if op.race:
            self.run.race = True
        self.run.planned[op.id] = "step"
        self.run.step_names[op.id] = op.display
        self.run.attempts[op.id] = 0
        self._enqueue(
            Call(account_id=self.run.account_id, run_id=self.run.run_id, target=op.id),
            at_ms=0,
            timer_id=f"{self.run.run_id}:call:{op.id}:0",
        )

    def _sleep(self, op: Sleep) -> None:
        if op.id in self.run.planned:
            return
        until = min(op.until_ms(self.now_ms), self.now_ms + MAX_SLEEP_MS)
        self._begin_wait(op, "sleep", "step.sleeping", {"until": until}, until, None, "sleep")

    def _wait_for_event(self, op: WaitForEvent, call: Call) -> None:
        if op.id in self.run.planned:
            return
        expression = op.expression
        if expression is not None:
            # Read against the run's trigger: only here can the expression be checked.
            try:
                expression = substitute_event(
                    expression, self.run.events[0] if self.run.events else {}
                )
                compile_expression(expression)
            except ExpressionError as err:
                error = invalid_error(op.opcode, op.display, str(err))
                self._step_failed(op, call.attempt, error, 0)
                return
        expires = self.now_ms + op.timeout_ms
        detail = {"event": op.event, "if": expression, "timeout_ms": op.timeout_ms}
        self._begin_wait(op, "wait", "step.waiting", detail, expires, None, "timeout")
        self._add_pause(self._pause(op, "wait", op.event, expression, expires))

    def _wait_for_signal(self, op: WaitForSignal) -> None:
        if op.id in self.run.planned:
            return
        if op.id in self._signal_conflicts:
            # Inngest fails the run at once, without retries (executor.go: ErrSignalConflict
            # is among the errors that "fail early").
            self.run.failure = signals.CONFLICT_ERROR["message"]
            self._finish("failed", dict(signals.CONFLICT_ERROR))
            return
        expires = op.expires_ms(self.now_ms)
        detail = {"signal": op.signal, "timeout_ms": expires - self.now_ms}
        self._begin_wait(op, "signal", "step.waiting", detail, expires, None, "timeout")
        self._add_pause(self._pause(op, "signal", op.signal, None, expires))

    def _invoke(self, op: InvokeFunction) -> None:
        if op.id in self.run.planned:
            return
        function_id = op.opts.function_id
        payload = op.opts.payload
        correlation = f"{self.run.run_id}.{op.id}"
        expires = self.now_ms + op.timeout_ms
        detail = {"function_id": function_id, "correlation_id": correlation}
        self._begin_wait(op, "invoke", "step.invoking", detail, expires, INVOKE_TIMEOUT, "timeout")
        expression = f"async.data.correlation_id == {_cel_string(correlation)}"
        self._add_pause(
            self._pause(op, "invoke", system_events.FINISHED, expression, expires, correlation)
        )
        data = payload.data if payload is not None and payload.data is not None else {}
        invoked: dict[str, Any] = {
            "name": system_events.INVOKED,
            "id": correlation,
            "ts": self.now_ms,
            "data": {
                **data,
                "_inngest": {
                    "fn_id": function_id,
                    "correlation_id": correlation,
                    "expire": expires,
                    "source_fn_id": self.run.fn_id,
                    "source_run_id": self.run.run_id,
                },
            },
        }
        if payload is not None and payload.user is not None:
            invoked["user"] = payload.user
        self._emit_event(invoked)

    # --- resuming and cancelling -----------------------------------------------------------

    def apply_resume(self, resume: Resume) -> None:
        kind = self.run.planned.get(resume.step_hash)
        if kind in _PAUSED:
            pause_id = f"{self.run.run_id}:{resume.step_hash}"
            self.out.pauses_deleted.append(pause_id)
            self.out.events.append(PauseDeleted(account_id=self.run.account_id, pause_id=pause_id))
        memo = resume.memo
        failed = isinstance(memo, dict) and set(memo) == {"error"}
        self._history(
            "step.failed" if failed else "step.completed",
            step_hash=resume.step_hash,
            output=memo,
        )
        self._settle(resume.step_hash, memo, self.run.step_names.get(resume.step_hash, ""))
        if self._ready_to_discover():
            self._request_discovery()

    def fail(self, error: dict[str, Any]) -> None:
        """End the run as failed for a reason outside the app (its function is gone)."""
        if self.run.status not in ENDED:
            self._finish("failed", error)

    def cancel(self, reason: str) -> None:
        if self.run.status in ENDED:
            return
        self.run.failure = reason
        self._finish("cancelled", {"name": "FunctionCancelledError", "message": reason})

    # --- helpers ------------------------------------------------------------------------------

    def _settle(self, step_hash: str, memo: Any, display: str) -> None:
        self.out.memos[step_hash] = canonical(memo)
        self.memo_keys.add(step_hash)
        self.run.stack.append(step_hash)
        self.run.planned.pop(step_hash, None)
        self.run.attempts.pop(step_hash, None)
        self.run.wait_started_ms.pop(step_hash, None)
        if display:
            self.run.step_names.setdefault(step_hash, display)

    def _begin_wait(
        self,
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
        self.run.planned[op.id] = kind
        self.run.step_names[op.id] = op.display
        self.run.wait_started_ms[op.id] = self.now_ms
        self._history(history_kind, op=op, output=detail)
        self._enqueue(
            Resume(
                account_id=self.run.account_id,
                run_id=self.run.run_id,
                step_hash=op.id,
                memo=timeout_memo,
                reason=reason,
            ),
            at_ms=until_ms,
            timer_id=f"{self.run.run_id}:resume:{op.id}",
        )

    def _pause(
        self,
        op: Op,
        kind: PauseKind,
        event_name: str,
        expression: str | None,
        expires_ms: int,
        correlation_id: str | None = None,
    ) -> Pause:
        return Pause(
            pause_id=f"{self.run.run_id}:{op.id}",
            account_id=self.run.account_id,
            run_id=self.run.run_id,
            fn_id=self.run.fn_id,
            kind=kind,
            event_name=event_name,
            expression=expression,
            step_hash=op.id,
            correlation_id=correlation_id,
            expires_ms=expires_ms,
            since_ms=self._call_sent_ms if kind == "wait" else 0,
        )

    def _add_pause(self, pause: Pause) -> None:
        self.out.pauses_put.append(pause)
        self.out.events.append(PauseCreated(pause=pause))

    def _ready_to_discover(self) -> bool:
        if self.run.status in ENDED:
            return False
        return self.run.race or not self.run.planned

    def _request_discovery(self, at_ms: int = 0) -> None:
        if self.run.discover_pending or not self._within_step_limit():
            return
        # Parallelism has ended (or, in race mode, one branch settled): let the SDK run the next
        # lone step.run immediately again, as Inngest does for request version >= 2
        # (executor.maybeResetForceStepPlan).
        if self.run.req_version >= 2:
            self.run.disable_immediate = False
        self.run.discover_pending = True
        self.run.attempts[DISCOVERY] = 0
        self.run.budget_from = 0
        self._enqueue(
            Call(account_id=self.run.account_id, run_id=self.run.run_id, seq=self.run.discover_seq),
            at_ms=at_ms,
            timer_id=f"{self.run.run_id}:discover:{self.run.discover_seq}",
        )

    def _within_step_limit(self) -> bool:
        """Whether the run may call its app again; a run whose settled steps (every kind, as
        Inngest counts the outputs it saved) reached the limit fails instead. Checked where a
        call is asked for, as Inngest checks before each call it makes."""
        if len(self.run.stack) < self.max_steps:
            return True
        self.run.failure = step_limit.FAILURE
        self._finish("failed", step_limit.overflow_error(self.max_steps))
        return False

    def _finish(self, status: EndStatus, output: Any) -> None:
        self.run.status = status
        self.run.output = output
        self.run.ended_ms = self.now_ms
        self.run.discover_pending = False
        for step_hash, kind in self.run.planned.items():
            if kind in _PAUSED:
                pause_id = f"{self.run.run_id}:{step_hash}"
                self.out.pauses_deleted.append(pause_id)
                self.out.events.append(
                    PauseDeleted(account_id=self.run.account_id, pause_id=pause_id)
                )
        self.run.planned = {}
        self.run.wait_started_ms = {}
        if status == "completed":
            self._history("run.completed", output=output)
        else:
            self._history(f"run.{status}", error=output)
        for event in system_events.end_events(self.run, self.now_ms):
            self._emit_event(event)

    def _emit_event(self, payload: dict[str, Any]) -> str:
        """Publish an event the run makes; its internal id."""
        internal_id = self.new_id()
        self.out.events.append(
            EventAccepted(
                event=Event(
                    internal_id=internal_id,
                    account_id=self.run.account_id,
                    name=payload["name"],
                    payload=payload,
                    received_ms=self.now_ms,
                )
            )
        )
        return internal_id

    def _enqueue(self, item: WorkRecord, *, at_ms: int, timer_id: str) -> None:
        self.out.schedule.append(EnqueueRecord(timer_id=timer_id, item=item, at_ms=at_ms))

    def _history(
        self,
        kind: str,
        *,
        op: Op | None = None,
        step_hash: str | None = None,
        attempt: int = 0,
        output: Any = None,
        error: Any = None,
        duration_ms: int = 0,
    ) -> None:
        step = op.id if op is not None else step_hash
        name = op.display if op is not None else (self.run.step_names.get(step) if step else None)
        self.out.history.append(
            HistoryEntry(
                entry_id=self.new_id(),
                run_id=self.run.run_id,
                ts_ms=self.now_ms,
                kind=kind,
                step_hash=step,
                step_name=name,
                attempt=attempt,
                duration_ms=duration_ms,
                output=output,
                error=error,
                input=op.input if op is not None else None,
            )
        )


def _step_memo(op: StepRun | LegacyStep) -> Any:
    """What a finished step stores, as Inngest does (state/opcode.go `Output`): StepRun's data
    wrapped as {"data": ...}, so the SDK tells data from an error; the legacy `Step` op (JS's V0
    executor) sends its data already wrapped, and it is stored as it came."""
    if isinstance(op, LegacyStep):
        return op.data
    return {"data": op.data}


def _error_object(error: Any) -> dict[str, Any]:
    """A memo error must have string name and message, or the SDK reads it as data."""
    if isinstance(error, dict):
        name = error.get("name")
        message = error.get("message")
        out = dict(error)
        out["name"] = name if isinstance(name, str) else "Error"
        out["message"] = message if isinstance(message, str) else str(error)
        return out
    return {"name": "Error", "message": str(error)}


def _cel_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
