"""Opcodes are read once, as they come in: an op that cannot be run fails its own step with an
error naming the op and why, and the answer's other ops are applied as usual."""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
import pytest

from headrace.core.jsonutil import loads
from headrace.engine.machine import RunMachine
from headrace.messages.records import Call
from headrace.messages.state import RunState
from headrace.protocol.ops import InvalidOp, Sleep, WaitForEvent, decode_op
from headrace.protocol.response import read_response

NOW = 1_700_000_000_000
SDK = {"x-inngest-sdk": "js:v3"}


def _answer(*ops: dict[str, Any]) -> tuple[RunState, RunMachine]:
    run = RunState(run_id="run", account_id="acct", fn_id="app-fn", app_id="app", events=[])
    ids = itertools.count()
    RunMachine(run, set(), max_attempts=3, now_ms=NOW, new_id=lambda: f"id{next(ids)}").start()
    machine = RunMachine(run, set(), max_attempts=3, now_ms=NOW, new_id=lambda: f"x{next(ids)}")
    outcome = read_response(206, SDK, msgspec.json.encode(list(ops)), NOW)
    assert outcome.error is None
    machine.apply_call(Call(account_id="acct", run_id="run"), outcome, 0)
    return run, machine


@pytest.mark.parametrize(
    ("op", "why"),
    [
        ({"op": "Frobnicate"}, "Frobnicate op 'bad': headrace does not run this opcode"),
        ({"op": "Sleep", "opts": {"duration": "soon"}}, "Sleep op 'bad': invalid date 'soon'"),
        ({"op": "Sleep", "opts": {"duration": 5}}, "got `int` - at `$.opts.duration`"),
        ({"op": "WaitForEvent", "opts": {"timeout": "1h"}}, "needs an event name"),
        ({"op": "WaitForEvent", "opts": {"event": "e", "timeout": "1x"}}, "invalid duration"),
        ({"op": "WaitForEvent", "opts": {"event": "e", "if": "event.data.x =="}}, "line 1"),
        ({"op": "WaitForSignal", "opts": {"signal": ""}}, "needs a signal name"),
        ({"op": "WaitForSignal", "opts": {"signal": "s", "conflict": "merge"}}, "onConflict"),
        ({"op": "InvokeFunction", "opts": {"payload": {}}}, "invoke needs a function_id"),
        ({"op": "InvokeFunction", "opts": {"function_id": "f", "payload": []}}, "$.opts.payload"),
        ({"op": "InvokeFunction", "opts": {"function_id": "f", "timeout": "1y"}}, "invalid"),
        ({"op": "StepPlanned", "opts": {"parallelMode": 1}}, "$.opts.parallelMode"),
    ],
)
def test_an_op_that_cannot_be_run_fails_its_step_with_the_op_and_the_reason(
    op: dict[str, Any], why: str
) -> None:
    run, machine = _answer({"id": "bad", **op}, {"op": "StepRun", "id": "good", "data": 1})
    memo = loads(machine.out.memos["bad"])
    assert memo["error"]["name"] == "InvalidOpcode"
    assert memo["error"]["message"].startswith(f"{op['op']} op 'bad': ")
    assert why in memo["error"]["message"]
    [failed] = [h for h in machine.out.history if h.step_hash == "bad"]
    assert failed.kind == "step.failed"
    # The answer's other ops are applied, and the run goes on: the SDK throws the error.
    assert loads(machine.out.memos["good"]) == {"data": 1}
    assert run.status not in ("failed", "completed")
    assert run.discover_pending


def test_an_op_without_an_opcode_makes_the_answer_unreadable() -> None:
    with pytest.raises(msgspec.ValidationError, match=r"\$\.op"):
        decode_op({"id": "x", "op": 5})
    outcome = read_response(206, SDK, b'[{"op": "StepRun", "id": "a"}, {"id": "b"}]', NOW)
    assert outcome.ops is None
    assert outcome.error is not None and "invalid op" in outcome.error["message"]


def test_options_are_read_as_the_sdks_send_them() -> None:
    legacy_sleep = decode_op({"op": "Sleep", "id": "s", "name": "2h", "opts": None})
    assert isinstance(legacy_sleep, Sleep) and legacy_sleep.until_ms(NOW) == NOW + 7_200_000
    until = decode_op({"op": "Sleep", "id": "s", "opts": {"duration": "2026-01-01T00:00:00Z"}})
    assert isinstance(until, Sleep) and until.until_ms(NOW) == 1_767_225_600_000
    # Python and JS 1.x/2.x name the event in the op's name; JS 3.x in opts.event.
    python = decode_op({"op": "WaitForEvent", "id": "w", "name": "e", "opts": {"timeout": "1m"}})
    assert isinstance(python, WaitForEvent) and (python.event, python.timeout_ms) == ("e", 60_000)
    js = decode_op(
        {"op": "WaitForEvent", "id": "w", "name": "n", "opts": {"event": "e", "if": "true"}}
    )
    assert isinstance(js, WaitForEvent) and (js.event, js.expression) == ("e", "true")
    unknown = decode_op({"op": "Frobnicate", "id": "f", "displayName": "frob"})
    assert isinstance(unknown, InvalidOp) and unknown.display == "frob"
