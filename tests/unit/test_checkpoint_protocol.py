"""Reading the 4.x SDK's async checkpoint body and the call its `qi_id` names."""

from __future__ import annotations

import pytest

from headrace.core.errors import InputError
from headrace.core.jsonutil import canonical
from headrace.messages.records import Call
from headrace.protocol.checkpoint import Dispatch, queue_item_id, read_checkpoint


def _body(**fields: object) -> bytes:
    body: dict[str, object] = {
        "run_id": "r1",
        "fn_id": "app-fn",
        "qi_id": "1:7:3:0:",
        "steps": [{"op": "StepRun", "id": "h1", "data": 1}],
        "ts": 1,
    }
    body.update(fields)
    return canonical(body)


def test_the_qi_id_names_the_call_it_was_given_in_and_who_made_it() -> None:
    for call in (
        Call(account_id="", run_id="r1", seq=3),
        Call(account_id="", run_id="r1", target="ab12", attempt=2),
    ):
        _, _, named = read_checkpoint("r1", _body(qi_id=queue_item_id(call, 1, 7)))
        assert named == Dispatch(call, partition=1, epoch=7)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"not json", "not a checkpoint"),
        (canonical({"run_id": "r1"}), "not a checkpoint"),
        (_body(steps=[{"id": "h1"}]), "not a checkpoint"),
        (_body(run_id="r2"), "not the URL's"),
        (_body(qi_id="garbage"), "does not name a call"),
        (_body(qi_id="3:0:"), "does not name a call"),
        (_body(qi_id=""), "does not name a call"),
        (_body(steps=[{"op": "Sleep", "id": "h1"}]), "cannot checkpoint"),
        (_body(steps=[{"op": "StepRun", "data": 1}]), "needs its id"),
    ],
)
def test_a_body_that_is_not_a_checkpoint_is_refused(body: bytes, why: str) -> None:
    with pytest.raises(InputError, match=why) as err:
        read_checkpoint("r1", body)
    assert err.value.status == 400


def test_a_steps_duration_comes_from_its_timing_whatever_its_shape() -> None:
    for timing, ms in ({"a": 1, "b": 7_500_000}, 7), ("soon", 0), ({"b": -1}, 0), (None, 0):
        _, steps, _ = read_checkpoint(
            "r1", _body(steps=[{"op": "StepRun", "id": "h1", "data": 1, "timing": timing}])
        )
        assert steps[0].duration_ms == ms
