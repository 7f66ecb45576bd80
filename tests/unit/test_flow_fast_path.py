"""The fast path's decision alone: after a call's outcome is stored, the run's next call is made
at once only when it is the one call of the transition, due now, a first attempt, under the
run's lease, with no priority rule, within the chain's bound."""

from __future__ import annotations

from typing import Any

from headrace.services.scheduler.service import LEASE_MARGIN_MS, lease_ms

from headrace.flow.fast_path import DEFAULT_BOUND, Chain, ChainBound, next_call
from headrace.messages.flow import RunFlow, Slot
from headrace.messages.records import Call, Enqueue, Resume
from headrace.messages.state import RunState

NOW = 1_700_000_000_000
BOUND = ChainBound(max_calls=3, max_ms=1_000)
LEASE = "r1:lease::0:0"


def _run(status: str = "running", flow: RunFlow | None = None) -> RunState:
    run = RunState(run_id="r1", account_id="acct", fn_id="fn", app_id="app", events=[])
    run.status = status
    run.flow = flow if flow is not None else RunFlow(fn_id="fn", slots=[Slot("fn:acct:fn", 1)])
    return run


def _call(
    target: str | None = None, *, attempt: int = 0, at_ms: int = 0, run: str = "r1"
) -> Enqueue:
    item = Call(account_id="acct", run_id=run, target=target, attempt=attempt)
    return Enqueue(timer_id=f"{run}:call:{target}:{attempt}", item=item, at_ms=at_ms)


def _decide(
    schedule: list[Enqueue],
    *,
    run: RunState | None = None,
    chain: Chain | None = None,
    config: dict[str, Any] | None = None,
    now_ms: int = NOW,
) -> Call | None:
    return next_call(
        schedule,
        run or _run(),
        chain or Chain(lease=LEASE, began_ms=NOW, calls=1),
        config or {},
        BOUND,
        now_ms,
    ).call


def test_the_one_call_due_now_of_a_run_holding_its_lease_is_made_inline() -> None:
    step = _call("s1")
    assert _decide([step]) is step.item
    assert _decide([_call(at_ms=NOW)]) is not None


def test_a_run_that_ended_sleeps_or_waits_goes_back_to_the_scheduler() -> None:
    assert _decide([], run=_run("completed")) is None
    assert _decide([]) is None
    nap = Enqueue(timer_id="r1:nap", item=Resume(account_id="acct", run_id="r1", step_hash="h"))
    assert _decide([nap]) is None


def test_a_parallel_fan_out_goes_back_to_the_scheduler() -> None:
    assert _decide([_call("s1"), _call("s2")]) is None


def test_a_call_beside_a_timer_is_made_inline_and_the_timer_left_to_the_scheduler() -> None:
    step = _call("s1")
    nap = Enqueue(
        timer_id="r1:nap",
        item=Resume(account_id="acct", run_id="r1", step_hash="h"),
        at_ms=NOW + 5_000,
    )
    assert _decide([nap, step]) is step.item


def test_a_retry_or_a_call_due_later_waits_in_the_scheduler() -> None:
    assert _decide([_call("s1", attempt=1)]) is None
    assert _decide([_call("s1", at_ms=NOW + 1)]) is None


def test_a_call_of_another_run_is_not_made_inline() -> None:
    assert _decide([_call("s1", run="r2")]) is None


def test_a_run_without_a_lease_gets_one_from_the_scheduler_unless_it_is_not_gated() -> None:
    unleased = Chain(lease=None, began_ms=NOW, calls=1)
    assert _decide([_call("s1")], chain=unleased) is None
    ungated = _run()
    ungated.flow = None
    assert _decide([_call("s1")], run=ungated, chain=unleased) is not None


def test_a_function_with_a_priority_rule_goes_through_the_scheduler_at_every_step() -> None:
    assert _decide([_call("s1")], config={"priority": {"run": "event.data.p"}}) is None
    assert _decide([_call("s1")], config={"priority": {}}) is not None


def test_a_chain_at_its_bound_in_calls_or_in_time_goes_back_to_the_queue() -> None:
    chain = Chain(lease=LEASE, began_ms=NOW, calls=1)
    assert _decide([_call("s1")], chain=chain.longer()) is not None
    assert _decide([_call("s1")], chain=chain.longer().longer()) is None
    assert _decide([_call("s1")], now_ms=NOW + 999) is not None
    assert _decide([_call("s1", at_ms=NOW + 1_000)], now_ms=NOW + 1_000) is None


def test_a_chain_within_the_default_bound_ends_inside_its_lease_with_time_to_spare() -> None:
    # The last call starts before the bound and lasts at most the call timeout; the lease was
    # taken before the chain began, so half the margin is left for its way to the executor.
    for call_timeout_s in (1.0, 300.0):
        chain_end_ms = DEFAULT_BOUND.max_ms + call_timeout_s * 1000
        assert lease_ms(call_timeout_s) - chain_end_ms >= LEASE_MARGIN_MS / 2


def test_the_decision_says_why_it_gives_the_run_back() -> None:
    decision = next_call(
        [_call("s1")], _run(), Chain(lease=LEASE, began_ms=NOW, calls=3), {}, BOUND, NOW
    )
    assert decision.call is None and decision.why == "the chain reached its bound"
