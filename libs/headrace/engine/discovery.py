"""Discovery: calling the run's function for its next steps. Only one discovery is queued at a
time. In "wait" mode it runs once every planned step has settled; in "race" mode after each."""

from __future__ import annotations

from headrace.engine.ending import within_step_limit
from headrace.engine.machine_state import DISCOVERY, MachineState
from headrace.messages.records import Call
from headrace.messages.state import ENDED


def ready_to_discover(state: MachineState) -> bool:
    if state.run.status in ENDED:
        return False
    return state.run.race or not state.run.planned


def request_discovery(state: MachineState, at_ms: int = 0) -> None:
    run = state.run
    if run.discover_pending or not within_step_limit(state):
        return
    # Parallelism has ended (or, in race mode, one branch settled): let the SDK run the next
    # lone step.run immediately again, as Inngest does for request version >= 2
    # (executor.maybeResetForceStepPlan).
    if run.req_version >= 2:
        run.disable_immediate = False
    run.discover_pending = True
    run.attempts[DISCOVERY] = 0
    run.budget_from = 0
    state.enqueue(
        Call(account_id=run.account_id, run_id=run.run_id, seq=run.discover_seq),
        at_ms=at_ms,
        timer_id=f"{run.run_id}:discover:{run.discover_seq}",
    )
