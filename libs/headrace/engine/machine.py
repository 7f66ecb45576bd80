"""The run state machine: how a run's state changes when a call's outcome or a resume arrives.

`RunMachine` is its face, one method for each event in a run's life; the parts, all pure:
- machine_state: what one application works on, and the records every part makes;
- staleness: which records still apply (delivery is at least once);
- outcomes: a call's outcome, its ops handed to their family's handlers;
- steps, waits, invokes: those families (step.run; sleeps, waits for events and signals;
  step.invoke);
- retries: failed calls, steps and requests tried again, then failed;
- discovery: when the function is called for its next steps;
- ending: how a run ends, and the timeout, limit and cancellation that end it;
- checkpoints: steps reported while a call goes on, and Durable Endpoint runs.
"""

from __future__ import annotations

from typing import Any

from headrace.core.jsonutil import loads
from headrace.engine import checkpoints, ending, outcomes, retries, staleness, waits
from headrace.engine.discovery import request_discovery
from headrace.engine.machine_state import MachineState
from headrace.messages.records import Call, Resume
from headrace.protocol.ops import Op, Outcome


class RunMachine(MachineState):
    """Applies one event in a run's life to its state, collecting the effects in `out`."""

    # --- what is current ---------------------------------------------------------------------

    def is_current_call(self, call: Call) -> bool:
        return staleness.is_current_call(self, call)

    def is_current_resume(self, resume: Resume) -> bool:
        return staleness.is_current_resume(self, resume)

    # --- starting ------------------------------------------------------------------------------

    def start(self) -> None:
        self.history("run.started")
        ending.schedule_finish_timeout(self)
        request_discovery(self)

    def start_endpoint(self, timeout_ms: int) -> None:
        """A Durable Endpoint's run, created by its first checkpoint (checkpoints.py)."""
        checkpoints.start_endpoint(self, timeout_ms)

    def request_call(self) -> Call:
        """A Durable Endpoint's own request, as its run's first call."""
        return checkpoints.request_call(self)

    def request_holds_run(self) -> bool:
        """The endpoint's request has neither ended its run nor handed it to the engine."""
        return checkpoints.request_holds_run(self)

    def time_out_request(self, after_ms: int) -> None:
        """The endpoint's request has had its time (EndpointTimeout)."""
        checkpoints.time_out_request(self, after_ms)

    def seed(self, stack: list[str], memos: dict[str, bytes], names: dict[str, str]) -> None:
        """Give a replay, as it starts, the memos it keeps (engine.replay): the SDK reads them
        as steps already done and skips them."""
        self.run.stack = list(stack)
        self.run.step_names.update(names)
        self.out.memos.update(memos)
        self.memo_keys.update(memos)
        for step_hash in stack:
            self.history("step.memoized", step_hash=step_hash, output=loads(memos[step_hash]))

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
        outcomes.apply_call(self, call, outcome, stack_len_at_call, signal_conflicts)

    def apply_checkpoint(self, call: Call, ops: list[Op]) -> None:
        """Steps the SDK reports finished (or about to run) while `call` goes on."""
        checkpoints.apply_checkpoint(self, call, ops)

    def apply_endpoint_checkpoint(
        self, call: Call, ops: list[Op], signal_conflicts: frozenset[str] = frozenset()
    ) -> None:
        """A checkpoint of a Durable Endpoint's request: its finished steps, and its answer."""
        checkpoints.apply_endpoint_checkpoint(self, call, ops, signal_conflicts)

    def sdk_attempt(self, call: Call) -> int:
        """The attempt the SDK is told (`ctx.attempt`)."""
        return retries.sdk_attempt(self, call)

    # --- resuming and cancelling -----------------------------------------------------------

    def apply_resume(self, resume: Resume) -> None:
        waits.resume_wait(self, resume)

    def fail(self, error: dict[str, Any]) -> None:
        """End the run as failed for a reason outside the app (its function is gone)."""
        ending.fail(self, error)

    def cancel(self, reason: str) -> None:
        ending.cancel(self, reason)
