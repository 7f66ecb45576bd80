"""Which records still apply to their run. Delivery is at least once, so a call's outcome or a
resume may come again, or after the run moved on; a stale one must change nothing:
- a memo is written once; a record about a step already memoized is stale;
- a discovery call carries the run's discovery sequence; only the current one applies;
- a step call carries its attempt; only the current attempt applies."""

from __future__ import annotations

from headrace.engine.machine_state import DISCOVERY, MachineState
from headrace.messages.records import Call, Resume
from headrace.messages.state import ENDED


def is_current_call(state: MachineState, call: Call) -> bool:
    run = state.run
    if run.status in ENDED:
        return False
    if call.target is None:
        return (
            run.discover_pending
            and call.seq == run.discover_seq
            and call.attempt == run.attempts.get(DISCOVERY, 0)
        )
    return (
        call.target in run.planned
        and call.target not in state.memo_keys
        and run.planned[call.target] == "step"
        and call.attempt == run.attempts.get(call.target, 0)
    )


def is_current_resume(state: MachineState, resume: Resume) -> bool:
    return (
        state.run.status not in ENDED
        and resume.step_hash in state.run.planned
        and resume.step_hash not in state.memo_keys
    )
