"""The WaitForSignal and Gateway (step.fetch) opcodes, without I/O: what the machine makes of a
wait for a signal, and how a fetch op becomes a request and its response a step result."""

from __future__ import annotations

import itertools

import msgspec

from headrace.engine import signals
from headrace.engine.machine import RunMachine
from headrace.messages.model import Pause
from headrace.messages.records import Call, PauseCreated, PauseDeleted, Resume
from headrace.messages.state import RunState
from headrace.protocol import gateway
from headrace.protocol.ops import (
    FetchOpts,
    Gateway,
    InvalidOp,
    Op,
    Outcome,
    WaitForSignal,
    decode_op,
)

NOW = 1_700_000_000_000
YEAR_MS = 365 * 86_400_000


def _machine(run: RunState, memos: set[str] | None = None) -> RunMachine:
    ids = itertools.count()
    return RunMachine(
        run, memos or set(), max_attempts=3, now_ms=NOW, new_id=lambda: f"id{next(ids)}"
    )


def _started() -> RunState:
    run = RunState(run_id="run", account_id="acct", fn_id="app-fn", app_id="app", events=[])
    _machine(run).start()
    return run


def _wait(**opts: object) -> Op:
    return decode_op(
        {
            "op": "WaitForSignal",
            "id": "h1",
            "name": "sig",
            "displayName": "for-signal",
            "opts": opts,
        }
    )


def _discover(machine: RunMachine, op: Op, conflicts: frozenset[str] = frozenset()) -> None:
    call = Call(account_id="acct", run_id="run", seq=0)
    machine.apply_call(call, Outcome(ops=[op]), 0, conflicts)


def test_a_wait_for_a_signal_pauses_under_the_signal_until_its_timeout() -> None:
    run = _started()
    machine = _machine(run)
    _discover(machine, _wait(signal="order-7", timeout="30s", conflict="fail"))

    assert run.planned == {"h1": "signal"}
    [created] = [e for e in machine.out.events if isinstance(e, PauseCreated)]
    pause = created.pause
    assert (pause.pause_id, pause.kind, pause.event_name) == ("run:h1", "signal", "order-7")
    assert pause.expires_ms == NOW + 30_000
    # The timeout settles the step with null, as waitForEvent's does.
    [timeout] = [e for e in machine.out.schedule if isinstance(e.item, Resume)]
    assert timeout.at_ms == NOW + 30_000
    assert timeout.item.memo is None
    [waiting] = [h for h in machine.out.history if h.kind == "step.waiting"]
    assert waiting.output == {"signal": "order-7", "timeout_ms": 30_000}


def test_a_wait_without_a_timeout_waits_a_year() -> None:
    machine = _machine(_started())
    _discover(machine, _wait(signal="s"))
    [created] = [e for e in machine.out.events if isinstance(e, PauseCreated)]
    assert created.pause.expires_ms == NOW + YEAR_MS


def test_the_signal_resumes_the_step_with_its_data_and_drops_the_pause() -> None:
    run = _started()
    _discover(_machine(run), _wait(signal="s", timeout="1m"))
    machine = _machine(run)
    resume = Resume(
        account_id="acct",
        run_id="run",
        step_hash="h1",
        memo=signals.signal_memo("s", {"ok": 1}),
        reason="signal",
    )
    assert machine.is_current_resume(resume)
    machine.apply_resume(resume)

    assert machine.out.memos == {"h1": b'{"data":{"data":{"ok":1},"signal":"s"}}'}
    assert run.planned == {}
    assert any(isinstance(e, PauseDeleted) and e.pause_id == "run:h1" for e in machine.out.events)
    assert [e.item.target for e in machine.out.schedule if isinstance(e.item, Call)] == [None]
    # The timeout arriving later finds the step settled.
    timeout = Resume(account_id="acct", run_id="run", step_hash="h1", memo=None)
    assert not _machine(run, {"h1"}).is_current_resume(timeout)


def test_a_wait_whose_signal_another_run_holds_fails_the_run_at_once() -> None:
    run = _started()
    machine = _machine(run)
    _discover(machine, _wait(signal="s"), frozenset({"h1"}))

    assert run.status == "failed"
    assert run.output == signals.CONFLICT_ERROR
    assert not any(isinstance(e, PauseCreated) for e in machine.out.events)
    assert not [e for e in machine.out.schedule if isinstance(e.item, Call | Resume)]


def test_a_wait_without_a_signal_name_fails_its_step() -> None:
    run = _started()
    machine = _machine(run)
    _discover(machine, _wait(timeout="1m"))
    assert run.status not in ("failed", "completed")
    assert machine.out.memos["h1"].startswith(b'{"error":')
    assert b"needs a signal name" in machine.out.memos["h1"]


def test_a_wait_op_takes_onconflict_and_dates() -> None:
    wait = _wait(signal="s", timeout="2026-01-01T00:00:00Z")
    assert isinstance(wait, WaitForSignal)
    assert wait.expires_ms(NOW) == 1_767_225_600_000
    assert not wait.replace
    replace = _wait(signal="s", conflict="replace")
    assert isinstance(replace, WaitForSignal) and replace.replace
    merge = _wait(signal="s", conflict="merge")
    assert isinstance(merge, InvalidOp) and "onConflict" in merge.reason
    soon = _wait(signal="s", timeout="soon")
    assert isinstance(soon, InvalidOp) and "invalid date 'soon'" in soon.reason


def test_a_fetch_op_becomes_the_request_it_names() -> None:
    request = gateway.build_fetch(
        FetchOpts(
            url="http://api.test/x?q=1", method="post", headers={"x-token": "t"}, body="a=b&c=d"
        )
    )
    assert request == gateway.FetchRequest(
        method="POST", url="http://api.test/x?q=1", headers={"x-token": "t"}, body=b"a=b&c=d"
    )
    bare = gateway.build_fetch(FetchOpts(url="https://api.test/"))
    assert isinstance(bare, gateway.FetchRequest)
    assert (bare.method, bare.body, bare.headers) == ("GET", None, {})
    assert "http(s) url" in str(gateway.build_fetch(FetchOpts(url="file:///etc/passwd")))
    trace = gateway.build_fetch(FetchOpts(url="http://a/", method="TRACE"))
    assert "cannot make a TRACE" in str(trace)


def test_a_response_becomes_a_step_result_the_sdk_reads_as_a_response() -> None:
    op = Gateway(id="h2", displayName="step.fetch: api.test", userland={"id": "f"})
    done = gateway.fetched_op(
        op,
        "http://api.test/x",
        404,
        [("content-type", "text/plain"), ("set-cookie", "a=1"), ("set-cookie", "b=2")],
        b"not here",
    )
    assert (done.opcode, done.id, done.display) == ("StepRun", "h2", "f")
    assert done.data == {
        "url": "http://api.test/x",
        "headers": {"content-type": "text/plain", "set-cookie": "a=1,b=2"},
        "body": "not here",
        "status_code": 404,
    }
    failed = gateway.failed_op(op, "ConnectError: refused")
    assert failed.opcode == "headrace:RequestFailed"
    assert failed.error == {
        "name": "GatewayError",
        "message": "Error making gateway request: ConnectError: refused",
    }


def test_a_failed_request_is_retried_by_calling_the_run_again_then_fails_the_step() -> None:
    """The SDK cannot run a fetch step when called for it: the retry is a discovery call after
    a backoff, which reports the op again; the last attempt's error is the step's memo."""
    run = _started()
    failed = gateway.failed_op(Gateway(id="h3", userland={"id": "f"}), "timeout")
    for attempt in range(3):
        machine = _machine(run)
        call = Call(account_id="acct", run_id="run", seq=attempt)
        assert machine.is_current_call(call)
        machine.apply_call(call, Outcome(ops=[failed]), 0)
        if attempt < 2:
            [retry] = [e for e in machine.out.schedule if isinstance(e.item, Call)]
            assert (retry.item.target, retry.item.seq) == (None, attempt + 1)
            assert retry.at_ms > NOW
            [errored] = [h for h in machine.out.history if h.kind == "step.errored"]
            assert (errored.step_name, errored.attempt) == ("f", attempt)
            assert machine.out.memos == {}
    assert machine.out.memos["h3"] == (
        b'{"error":{"message":"Error making gateway request: timeout","name":"GatewayError"}}'
    )
    [failed_entry] = [h for h in machine.out.history if h.kind == "step.failed"]
    assert failed_entry.attempt == 2


def test_a_claimed_wait_holds_its_signal_until_its_pause_or_its_run_says_it_is_over() -> None:
    """The pure decision a second wait for a held signal makes (engine/signals.py)."""
    holder = signals.pause_id("run", "h1")
    pause = Pause(
        pause_id=holder,
        account_id="acct",
        run_id="run",
        fn_id="app-fn",
        kind="signal",
        event_name="s",
        step_hash="h1",
        expires_ms=NOW + 1000,
    )
    running = RunState(run_id="run", account_id="acct", fn_id="app-fn", app_id="app", events=[])
    settled = msgspec.structs.replace(running, stack=["h1"])
    ended = msgspec.structs.replace(running, status="failed")
    # A pause written decides, until it expires.
    assert signals.wait_holds(holder, pause, running, NOW)
    assert not signals.wait_holds(holder, pause, running, NOW + 1000)
    # No pause yet: its run is about to write it (claimed before the commit) ...
    assert signals.wait_holds(holder, None, running, NOW)
    # ... unless the run settled the step (resumed, timed out), ended, or is gone.
    assert not signals.wait_holds(holder, None, settled, NOW)
    assert not signals.wait_holds(holder, None, ended, NOW)
    assert not signals.wait_holds(holder, None, None, NOW)
