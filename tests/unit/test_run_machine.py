"""The run state machine, without I/O: which records each outcome produces."""

from __future__ import annotations

import itertools
import random

from headrace.engine.machine import RunMachine
from headrace.messages.records import (
    Call,
    EndpointTimeout,
    Enqueue,
    EventAccepted,
    PauseCreated,
    Resume,
)
from headrace.messages.state import RunState
from headrace.protocol.ops import Op, Outcome, decode_op

NOW = 1_700_000_000_000
HOUR = 3_600_000


def _op(**fields: object) -> Op:
    """An op as an app sends it, read as the engine reads it."""
    return decode_op(fields)


def _machine(run: RunState, memos: set[str] | None = None, max_attempts: int = 3) -> RunMachine:
    ids = itertools.count()
    return RunMachine(
        run,
        memos or set(),
        max_attempts=max_attempts,
        now_ms=NOW,
        new_id=lambda: f"id{next(ids):04d}",
        rng=random.Random(1),
    )


def _run() -> RunState:
    return RunState(
        run_id="run",
        account_id="acct",
        fn_id="app-fn",
        app_id="app",
        events=[{"name": "e", "data": {"order": 7}}],
    )


def _calls(machine: RunMachine) -> list[tuple[str | None, int, int, int]]:
    return [
        (e.item.target, e.item.attempt, e.item.seq, e.at_ms)
        for e in machine.out.schedule
        if isinstance(e.item, Call)
    ]


def _started() -> RunState:
    run = _run()
    machine = _machine(run)
    machine.start()
    assert _calls(machine) == [(None, 0, 0, 0)]
    return run


def test_a_step_result_is_memoized_and_discovery_follows() -> None:
    run = _started()
    machine = _machine(run)
    call = Call(account_id="acct", run_id="run", seq=0)
    assert machine.is_current_call(call)
    machine.apply_call(call, Outcome(ops=[_op(op="StepRun", id="h1", data=5)]), stack_len_at_call=0)
    assert machine.out.memos == {"h1": b'{"data":5}'}
    assert run.stack == ["h1"]
    assert _calls(machine) == [(None, 0, 1, 0)]
    # The same discovery delivered again is stale now.
    assert not _machine(run, {"h1"}).is_current_call(call)


def test_a_step_s_input_from_the_sdk_goes_into_its_history() -> None:
    machine = _machine(_started())
    call = Call(account_id="acct", run_id="run", seq=0)
    op = _op(op="StepRun", id="h1", data=5, opts={"input": [{"order": 7}]})
    machine.apply_call(call, Outcome(ops=[op]), stack_len_at_call=0)
    [completed] = [h for h in machine.out.history if h.kind == "step.completed"]
    assert completed.input == [{"order": 7}]


def test_parallel_steps_discover_only_when_all_have_settled_in_wait_mode() -> None:
    run = _started()
    machine = _machine(run)
    planned = [_op(op="StepPlanned", id="a"), _op(op="StepPlanned", id="b")]
    machine.apply_call(Call(account_id="acct", run_id="run"), Outcome(ops=planned), 0)
    assert run.disable_immediate
    assert sorted(_calls(machine)) == [("a", 0, 0, 0), ("b", 0, 0, 0)]

    first = _machine(run)
    first.apply_call(
        Call(account_id="acct", run_id="run", target="a"),
        Outcome(ops=[_op(op="StepRun", id="a", data=1)]),
        len(run.stack),
    )
    assert _calls(first) == []
    second = _machine(run, {"a"})
    second.apply_call(
        Call(account_id="acct", run_id="run", target="b"),
        Outcome(ops=[_op(op="StepRun", id="b", data=2)]),
        len(run.stack),
    )
    assert _calls(second) == [(None, 0, 1, 0)]


def test_a_step_error_is_retried_with_backoff_then_memoized_as_failed() -> None:
    run = _started()
    error = {"name": "Boom", "message": "no"}
    machine = _machine(run)
    machine.apply_call(
        Call(account_id="acct", run_id="run"),
        Outcome(ops=[_op(op="StepError", id="s", error=error)]),
        0,
    )
    [(target, attempt, _, at)] = _calls(machine)
    assert (target, attempt) == ("s", 1)
    assert NOW + 15_000 <= at <= NOW + 45_000

    retry = Call(account_id="acct", run_id="run", target="s", attempt=1)
    stale = Call(account_id="acct", run_id="run", target="s", attempt=0)
    assert _machine(run).is_current_call(retry)
    assert not _machine(run).is_current_call(stale)

    last = _machine(run)
    last.apply_call(
        Call(account_id="acct", run_id="run", target="s", attempt=2),
        Outcome(ops=[_op(op="StepError", id="s", error=error)]),
        0,
    )
    assert last.out.memos == {"s": b'{"error":{"message":"no","name":"Boom"}}'}
    assert _calls(last) == [(None, 0, 1, 0)]


def test_an_answer_with_no_op_to_act_on_is_a_failed_call_retried_then_failing_the_run() -> None:
    """An app answering 206 `[]` (or only ops already handled) would leave the run waiting for
    nothing for ever: the call is retried as a failed one, and the run fails with the reason."""
    run = _started()
    machine = _machine(run)
    discovery = Call(account_id="acct", run_id="run", seq=0)
    machine.apply_call(discovery, Outcome(ops=[], status=206), 0)
    [(target, attempt, seq, _)] = _calls(machine)
    assert (target, attempt, seq) == (None, 1, 0)
    retry = Call(account_id="acct", run_id="run", seq=0, attempt=1)
    assert _machine(run).is_current_call(retry)

    last = _machine(run, max_attempts=2)
    last.apply_call(retry, Outcome(ops=[], status=206), 0)
    assert run.status == "failed"
    assert run.output["name"] == "UnexpectedResponse"
    assert "answered 206 with no op the engine could act on" in run.output["message"]


def test_a_step_call_answered_without_its_step_is_retried_then_fails_the_run() -> None:
    run = _started()
    _machine(run).apply_call(
        Call(account_id="acct", run_id="run"), Outcome(ops=[_op(op="StepPlanned", id="s")]), 0
    )
    step_call = Call(account_id="acct", run_id="run", target="s")
    # The step planned again, as a discovery would: nothing settles it or calls it again.
    machine = _machine(run, max_attempts=2)
    machine.apply_call(step_call, Outcome(ops=[_op(op="StepPlanned", id="s")], status=206), 0)
    [(target, attempt, _, _)] = _calls(machine)
    assert (target, attempt) == ("s", 1)

    last = _machine(run, max_attempts=2)
    retry = Call(account_id="acct", run_id="run", target="s", attempt=1)
    assert last.is_current_call(retry)
    last.apply_call(retry, Outcome(ops=[], status=206), 0)
    assert run.status == "failed"
    assert "no op the engine could act on" in run.output["message"]


def test_retry_after_overrides_the_backoff() -> None:
    run = _started()
    machine = _machine(run)
    machine.apply_call(
        Call(account_id="acct", run_id="run"),
        Outcome(error={"name": "E", "message": "busy"}, retry_after_ms=2_000),
        0,
    )
    assert _calls(machine) == [(None, 1, 0, NOW + 2_000)]

    # A StepError in a 206 with Retry-After (the JS SDK's RetryAfterError thrown in a step).
    stepped = _machine(_started())
    stepped.apply_call(
        Call(account_id="acct", run_id="run"),
        Outcome(
            ops=[_op(op="StepError", id="s", error={"name": "E", "message": "busy"})],
            retry_after_ms=2_000,
        ),
        0,
    )
    assert _calls(stepped) == [("s", 1, 0, NOW + 2_000)]


def test_a_function_error_fails_the_run_after_its_attempts_and_emits_system_events() -> None:
    run = _started()
    machine = _machine(run, max_attempts=1)
    machine.apply_call(
        Call(account_id="acct", run_id="run"),
        Outcome(error={"name": "E", "message": "bad"}, retryable=True),
        0,
    )
    assert run.status == "failed"
    assert run.output == {"name": "E", "message": "bad"}
    names = [r.event.name for r in machine.out.events if isinstance(r, EventAccepted)]
    assert names == ["inngest/function.finished", "inngest/function.failed"]


def test_a_sleep_becomes_a_timer_and_its_wake_up_continues_the_run() -> None:
    run = _started()
    machine = _machine(run)
    machine.apply_call(
        Call(account_id="acct", run_id="run"),
        Outcome(ops=[_op(op="Sleep", id="z", name="z", opts={"duration": "1h"})]),
        0,
    )
    [wake] = machine.out.schedule
    assert isinstance(wake.item, Resume) and wake.at_ms == NOW + 3_600_000
    resumed = _machine(run)
    assert resumed.is_current_resume(wake.item)
    resumed.apply_resume(wake.item)
    assert resumed.out.memos == {"z": b"null"}
    assert _calls(resumed) == [(None, 0, 1, 0)]
    assert not _machine(run, {"z"}).is_current_resume(wake.item)


def test_a_wait_substitutes_the_trigger_event_into_its_expression() -> None:
    run = _started()
    machine = _machine(run)
    opts = {"event": "approved", "if": "async.data.order == event.data.order", "timeout": "1m"}
    machine.apply_call(
        Call(account_id="acct", run_id="run"),
        Outcome(ops=[_op(op="WaitForEvent", id="w", name="approved", opts=opts)]),
        0,
    )
    [created] = [r for r in machine.out.events if isinstance(r, PauseCreated)]
    assert created.pause.expression is not None
    assert "event." not in created.pause.expression and "7" in created.pause.expression
    [timeout] = machine.out.schedule
    assert timeout.at_ms == NOW + 60_000


def test_a_wait_begins_when_the_call_that_declared_it_was_sent() -> None:
    run = _started()
    machine = _machine(run)
    machine.apply_call(
        Call(account_id="acct", run_id="run"),
        Outcome(
            ops=[_op(op="WaitForEvent", id="w", name="approved", opts={"timeout": "1m"})],
            duration_ms=250,
        ),
        0,
    )
    [created] = [r for r in machine.out.events if isinstance(r, PauseCreated)]
    assert created.pause.since_ms == NOW - 250


def test_cancel_ends_the_run_and_forgets_its_waits() -> None:
    run = _started()
    machine = _machine(run)
    machine.apply_call(
        Call(account_id="acct", run_id="run"),
        Outcome(ops=[_op(op="WaitForEvent", id="w", name="x", opts={"timeout": "1h"})]),
        0,
    )
    cancelling = _machine(run)
    cancelling.cancel("function cancelled")
    assert run.status == "cancelled"
    assert cancelling.out.pauses_deleted == ["run:w"]
    names = [r.event.name for r in cancelling.out.events if isinstance(r, EventAccepted)]
    assert names == ["inngest/function.finished", "inngest/function.cancelled"]


def test_immediate_execution_comes_back_after_parallel_steps_for_request_version_2() -> None:
    for version, expected in ((2, False), (1, True)):
        run = _started()
        planned = [_op(op="StepPlanned", id="a"), _op(op="StepPlanned", id="b")]
        _machine(run).apply_call(
            Call(account_id="acct", run_id="run"),
            Outcome(ops=planned, request_version=version),
            0,
        )
        assert run.disable_immediate
        for step in ("a", "b"):
            _machine(run, set(run.stack)).apply_call(
                Call(account_id="acct", run_id="run", target=step),
                Outcome(ops=[_op(op="StepRun", id=step, data=1)], request_version=version),
                len(run.stack),
            )
        assert run.disable_immediate is expected, version


def test_the_request_version_is_learned_once_from_a_generator_response() -> None:
    run = _started()
    assert run.req_version == -1
    call = Call(account_id="acct", run_id="run")
    # An error answer does not fix the version: the next call lets the SDK choose again.
    _machine(run).apply_call(call, Outcome(error={"message": "x"}, request_version=1), 0)
    assert run.req_version == -1
    run = _started()
    planned = [_op(op="StepPlanned", id="a")]
    _machine(run).apply_call(call, Outcome(ops=planned, request_version=1), 0)
    assert run.req_version == 1
    # Later answers do not change it (Inngest's executor stores it only while unknown).
    step = Call(account_id="acct", run_id="run", target="a")
    _machine(run).apply_call(step, Outcome(ops=[_op(op="StepRun", id="a")], request_version=2), 0)
    assert run.req_version == 1


def test_the_legacy_step_op_is_stored_as_it_came() -> None:
    run = _started()
    machine = _machine(run)
    call = Call(account_id="acct", run_id="run", seq=0)
    ops = [_op(op="Step", id="old", data={"data": 5}), _op(op="StepRun", id="new", data=5)]
    machine.apply_call(call, Outcome(ops=ops), stack_len_at_call=0)
    assert machine.out.memos == {"old": b'{"data":5}', "new": b'{"data":5}'}


def test_a_checkpointed_step_is_memoized_while_its_call_goes_on() -> None:
    run = _started()
    call = Call(account_id="acct", run_id="run", seq=0)
    machine = _machine(run)
    machine.apply_checkpoint(
        call,
        [
            _op(op="StepPlanned", id="h2"),
            _op(op="StepRun", id="h1", data={"n": 5}, timing={"a": 1, "b": 7_500_000}),
        ],
    )
    assert machine.out.memos == {"h1": b'{"data":{"n":5}}'}
    assert run.stack == ["h1"]
    history = [(h.kind, h.step_hash, h.duration_ms) for h in machine.out.history]
    # The planned step is in the history (the trace shows it running), and nothing else.
    assert history == [("step.planned", "h2", 0), ("step.completed", "h1", 7)]
    assert run.planned == {}
    # No call is queued: the running call goes on, and stays current.
    assert _calls(machine) == []
    assert machine.is_current_call(call)

    # A step checkpointed twice (the SDK retried its POST) is stored once.
    again = _machine(run, {"h1"})
    again.apply_checkpoint(call, [_op(op="StepRun", id="h1", data={"n": 6})])
    assert again.out.memos == {} and run.stack == ["h1"]

    # The call's answer, RunComplete in a 206, ends the run with its output.
    answered = _machine(run, {"h1"})
    complete = _op(op="RunComplete", id="c", data={"total": 5})
    answered.apply_call(call, Outcome(ops=[complete]), stack_len_at_call=0)
    assert (run.status, run.output, run.stack) == ("completed", {"total": 5}, ["h1"])


def test_a_checkpoint_restarts_the_retry_budget_of_its_call() -> None:
    """As Inngest resets a queue item's attempts on each checkpoint: the SDK (3.x checkpoints
    on retries too) checkpoints a step in attempt 1, then throws; the function still gets all
    three attempts after it, each told to the SDK as counted from the checkpoint."""
    run = _started()
    error = Outcome(error={"name": "E", "message": "later"}, retryable=True)
    first = _machine(run)
    first.apply_call(Call(account_id="acct", run_id="run"), error, 0)
    retry = Call(account_id="acct", run_id="run", attempt=1)
    checkpointed = _machine(run)
    assert checkpointed.sdk_attempt(retry) == 1
    checkpointed.apply_checkpoint(retry, [_op(op="StepRun", id="h1", data=1)])
    assert checkpointed.sdk_attempt(retry) == 0
    memos = set(checkpointed.out.memos)
    for attempt in (1, 2):
        machine = _machine(run, memos)
        call = Call(account_id="acct", run_id="run", attempt=attempt)
        assert machine.is_current_call(call)
        machine.apply_call(call, error, 1)
        assert run.status == "running"
        [(target, next_attempt, _seq, _at)] = _calls(machine)
        assert (target, next_attempt) == (None, attempt + 1)
        assert machine.sdk_attempt(Call(account_id="acct", run_id="run", attempt=attempt + 1)) == (
            attempt
        )
    last = _machine(run, memos)
    last.apply_call(Call(account_id="acct", run_id="run", attempt=3), error, 1)
    assert run.status == "failed" and _calls(last) == []


def test_an_endpoint_s_request_is_its_run_s_first_call_until_it_hands_the_run_over() -> None:
    """A Durable Endpoint: finished steps are memoized while the request goes on; a sleep ends
    the request's part, and the engine goes on from the sleep's end."""
    run = _run()
    machine = _machine(run)
    machine.start_endpoint(HOUR)
    request = Call(account_id="acct", run_id="run", seq=0)
    machine.apply_endpoint_checkpoint(request, [_op(op="StepRun", id="h1", data=1)])
    assert machine.out.memos == {"h1": b'{"data":1}'}
    assert _calls(machine) == [] and machine.is_current_call(request)
    assert [h.kind for h in machine.out.history] == ["run.started", "step.completed"]

    handed = _machine(run, {"h1"})
    handed.apply_endpoint_checkpoint(
        request,
        [_op(op="StepRun", id="h2", data=2), _op(op="Sleep", id="s", name="1s", opts={})],
    )
    assert handed.out.memos == {"h2": b'{"data":2}'}
    assert run.planned == {"s": "sleep"}
    assert not handed.is_current_call(request)
    assert _calls(handed) == []  # the wake-up is a Resume; the discovery follows it


def test_an_endpoint_s_return_ends_its_run() -> None:
    run = _run()
    machine = _machine(run)
    machine.start_endpoint(HOUR)
    request = Call(account_id="acct", run_id="run", seq=0)
    response = {"status": 200, "headers": {}, "body": "{}"}
    machine.apply_endpoint_checkpoint(request, [_op(op="RunComplete", id="c", data=response)])
    assert (run.status, run.output) == ("completed", response)


def test_an_endpoint_s_run_stores_its_request_s_event_and_times_its_request_out() -> None:
    """The request's event is published as the run's trigger; a timer fails the run at the
    timeout if the request still holds it then (it died without a checkpoint to end it)."""
    run = _run()
    machine = _machine(run)
    machine.start_endpoint(HOUR)
    [accepted] = [e for e in machine.out.events if isinstance(e, EventAccepted)]
    assert accepted.event.payload == run.events[0]
    assert run.event_ids == [accepted.event.internal_id]
    [timer] = [e for e in machine.out.schedule if isinstance(e, Enqueue)]
    assert isinstance(timer.item, EndpointTimeout) and timer.at_ms == NOW + HOUR
    assert timer.timer_id == "run:timeout:endpoint"

    request = machine.request_call()
    machine.apply_endpoint_checkpoint(request, [_op(op="StepRun", id="h1", data=1)])
    late = _machine(run, {"h1"})
    assert late.request_holds_run()
    late.time_out_request(HOUR)
    assert run.status == "failed" and "within 3600 s" in run.failure
    assert [h.kind for h in late.out.history] == ["run.failed"]


def test_an_endpoint_s_timeout_leaves_a_run_the_engine_has_taken_over() -> None:
    run = _run()
    machine = _machine(run)
    machine.start_endpoint(HOUR)
    machine.apply_endpoint_checkpoint(
        machine.request_call(), [_op(op="Sleep", id="s", name="1s", opts={})]
    )
    late = _machine(run)
    assert not late.request_holds_run()
    late.time_out_request(HOUR)
    assert run.status == "running" and late.out.history == []
