"""The runner's flow decisions (rate limit, debounce, batching, singleton, idempotency) on plain
values: a `RunnerPartitionFlow` whose effects are applied as the runner would, with no store, no
log and no clock."""

from __future__ import annotations

from typing import Any

from headrace.flow.config import rate_limit
from headrace.flow.idempotency import KEY_SEEN, admit_first, idempotency_key
from headrace.flow.ratelimit import ADMITTED, RATE_LIMITED, SKIPPED, admit_repeat
from headrace.flow.runner_effects import (
    BufferEffect,
    CancelDue,
    CancelHolder,
    DropBuffer,
    ForgetRateLimit,
    KeepBuffer,
    PutRateLimit,
    SetDue,
    StartBuffered,
    TakeSlot,
)
from headrace.flow.runner_partition import RunnerPartitionFlow
from headrace.flow.singleton import SINGLETON_RUNNING, admit_run, singleton_slot
from headrace.messages.model import Batch, Event
from headrace.messages.state import FunctionRecord

MINUTE = 60_000


def _fn(**config: Any) -> FunctionRecord:
    return FunctionRecord(fn_id="f", account_id="a", app_id="app", name="f", config=config)


def _event(event_id: str, **data: Any) -> Event:
    payload = {"name": "shop/order", "data": data}
    return Event(
        internal_id=event_id, account_id="a", name="shop/order", payload=payload, received_ms=0
    )


def _applied(flow: RunnerPartitionFlow, effects: list[Any]) -> list[Any]:
    for effect in effects:
        flow.apply(effect)
    return effects


def _ids(batch: Batch) -> list[str]:
    return batch.event_ids


# --- rate limit -----------------------------------------------------------------------------


def _rate_limited(flow: RunnerPartitionFlow, fn: FunctionRecord, event: Event, now: int) -> bool:
    limit = rate_limit(fn.account_id, fn.fn_id, fn.config, event.payload)
    assert limit is not None
    return RATE_LIMITED in _applied(flow, flow.rate_limit(limit, now))


def test_a_second_event_within_the_rate_window_is_dropped_and_one_after_it_is_not() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(rateLimit={"limit": 1, "period": "1m"})

    assert not _rate_limited(flow, fn, _event("e1"), 0)
    assert _rate_limited(flow, fn, _event("e2"), 30_000)
    assert not _rate_limited(flow, fn, _event("e3"), MINUTE)


def test_an_admitted_event_keeps_its_keys_new_tat_and_a_dropped_one_changes_nothing() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(rateLimit={"limit": 1, "period": "1m"})
    limit = rate_limit("a", "f", fn.config, {})
    assert limit is not None

    assert flow.rate_limit(limit, 0) == [PutRateLimit("a:f:", MINUTE)]
    _applied(flow, flow.rate_limit(limit, 0))
    assert flow.rate_limit(limit, 1_000) == [RATE_LIMITED]


def test_each_rate_limit_key_value_has_its_own_window() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(rateLimit={"limit": 1, "period": "1m", "key": "event.data.user"})

    assert not _rate_limited(flow, fn, _event("e1", user="ann"), 0)
    assert not _rate_limited(flow, fn, _event("e2", user="bob"), 1_000)
    assert _rate_limited(flow, fn, _event("e3", user="ann"), 2_000)


def test_an_event_handled_again_gets_its_first_rate_limit_decision() -> None:
    assert admit_repeat(SKIPPED) == [RATE_LIMITED]
    assert admit_repeat(ADMITTED) == []
    assert admit_repeat(None) == []  # admitted events leave no marker


def test_a_new_owner_keeps_the_tats_still_ahead_and_forgets_the_past_ones() -> None:
    flow, forget = RunnerPartitionFlow.loaded(
        0, buffers=[], tats=[("a:f:old", 500.0), ("a:f:new", 5_000.0)], now_ms=1_000
    )
    assert forget == [ForgetRateLimit("a:f:old")]
    fn = _fn(rateLimit={"limit": 1, "period": "1m", "key": "event.data.user"})
    assert _rate_limited(flow, fn, _event("e1", user="new"), 1_000)
    assert not _rate_limited(flow, fn, _event("e2", user="old"), 1_000)


# --- debounce ---------------------------------------------------------------------------------


def _debounce(flow: RunnerPartitionFlow, fn: FunctionRecord, event: Event, now: int) -> list[Any]:
    return _applied(flow, flow.debounce(fn, event, now, f"gen-{event.internal_id}"))


def test_a_debounce_is_due_one_period_after_its_event() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(debounce={"period": "5s"})

    [due, keep] = _debounce(flow, fn, _event("e1"), 1_000)

    assert isinstance(due, SetDue) and due.at_ms == 6_000
    assert isinstance(keep, KeepBuffer) and keep.batch.batch_id == "gen-e1"
    assert _ids(keep.batch) == ["e1"]


def test_a_later_event_pushes_the_debounce_timer_out_and_cancels_the_previous_one() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(debounce={"period": "5s"})
    _debounce(flow, fn, _event("e1"), 1_000)

    [due, keep, cancel] = _debounce(flow, fn, _event("e2"), 4_000)

    assert isinstance(due, SetDue) and due.at_ms == 9_000
    assert isinstance(keep, KeepBuffer) and _ids(keep.batch) == ["e2"]  # the last event only
    assert isinstance(cancel, CancelDue) and cancel.batch.batch_id == "gen-e1"
    assert flow.due(keep.batch.batch_key, "gen-e1") == []  # the superseded timer does nothing


def test_a_debounce_timer_is_not_pushed_past_its_timeout_since_the_first_event() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(debounce={"period": "5s", "timeout": "12s"})
    _debounce(flow, fn, _event("e1"), 0)
    _debounce(flow, fn, _event("e2"), 4_000)

    [due, keep, _] = _debounce(flow, fn, _event("e3"), 8_000)

    assert isinstance(due, SetDue) and due.at_ms == 12_000  # not 13_000
    assert isinstance(keep, KeepBuffer) and keep.batch.opened_ms == 0


def test_a_due_debounce_starts_its_run_with_the_last_event_and_the_next_opens_anew() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(debounce={"period": "5s"})
    _debounce(flow, fn, _event("e1"), 0)
    [_, keep, _] = _debounce(flow, fn, _event("e2"), 1_000)

    [start, drop] = _applied(flow, flow.due(keep.batch.batch_key, "gen-e2"))

    assert isinstance(start, StartBuffered) and _ids(start.batch) == ["e2"]
    assert drop == DropBuffer(keep.batch.batch_key)
    [due, _] = _debounce(flow, fn, _event("e3"), 9_000)
    assert isinstance(due, SetDue) and due.at_ms == 14_000


def test_each_debounce_key_value_debounces_alone() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(debounce={"period": "5s", "key": "event.data.user"})
    _debounce(flow, fn, _event("e1", user="ann"), 0)

    effects = _debounce(flow, fn, _event("e2", user="bob"), 1_000)

    assert not any(isinstance(e, CancelDue) for e in effects)


def test_the_current_debounce_event_handled_again_changes_nothing() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(debounce={"period": "5s"})
    _debounce(flow, fn, _event("e1"), 0)
    assert flow.debounce(fn, _event("e1"), 2_000, "other") == []


# --- batching ---------------------------------------------------------------------------------


def _batch(flow: RunnerPartitionFlow, fn: FunctionRecord, event: Event, now: int) -> list[Any]:
    effects = flow.batch(fn, event, now, f"batch-{event.internal_id}")
    assert effects is not None
    return _applied(flow, effects)


def _started(effects: list[BufferEffect]) -> list[list[str]]:
    return [_ids(e.batch) for e in effects if isinstance(e, StartBuffered)]


def test_a_batch_opens_due_at_its_timeout_and_collects_events() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(batchEvents={"maxSize": 3, "timeout": "10s"})

    [due, keep] = _batch(flow, fn, _event("e1"), 1_000)
    [keep2] = _batch(flow, fn, _event("e2"), 2_000)

    assert isinstance(due, SetDue) and due.at_ms == 11_000
    assert isinstance(keep, KeepBuffer) and _ids(keep.batch) == ["e1"]
    assert isinstance(keep2, KeepBuffer) and _ids(keep2.batch) == ["e1", "e2"]
    assert keep2.batch.batch_id == "batch-e1"


def test_a_batch_is_flushed_when_it_reaches_max_size() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(batchEvents={"maxSize": 2, "timeout": "10s"})
    _batch(flow, fn, _event("e1"), 0)

    effects = _batch(flow, fn, _event("e2"), 1_000)

    assert _started(effects) == [["e1", "e2"]]
    assert isinstance(effects[-1], DropBuffer)
    assert flow.due(effects[-1].batch_key, "batch-e1") == []  # its timer then does nothing
    [due, _] = _batch(flow, fn, _event("e3"), 2_000)  # the next event opens a new batch
    assert isinstance(due, SetDue) and due.batch.batch_id == "batch-e3"


def test_a_batch_is_flushed_at_its_timeout_with_what_it_holds() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(batchEvents={"maxSize": 100, "timeout": "10s"})
    [due, _] = _batch(flow, fn, _event("e1"), 0)
    _batch(flow, fn, _event("e2"), 1_000)

    effects = _applied(flow, flow.due(due.batch.batch_key, due.batch.batch_id))

    assert _started(effects) == [["e1", "e2"]]


def test_a_batch_key_keeps_a_batch_per_value() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(batchEvents={"maxSize": 2, "timeout": "10s", "key": "event.data.user"})
    _batch(flow, fn, _event("e1", user="ann"), 0)
    assert _started(_batch(flow, fn, _event("e2", user="bob"), 1)) == []
    assert _started(_batch(flow, fn, _event("e3", user="ann"), 2)) == [["e1", "e3"]]


def test_an_event_the_batch_condition_leaves_out_is_not_batched() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(batchEvents={"maxSize": 2, "timeout": "10s", "if": "event.data.total > 100"})
    assert flow.batch(fn, _event("small", total=5), 0, "b") is None
    assert flow.batch(fn, _event("big", total=500), 0, "b") is not None


def test_an_event_in_its_batch_already_is_not_added_twice() -> None:
    flow = RunnerPartitionFlow(0)
    fn = _fn(batchEvents={"maxSize": 2, "timeout": "10s"})
    _batch(flow, fn, _event("e1"), 0)
    [keep] = _batch(flow, fn, _event("e1"), 1)
    assert isinstance(keep, KeepBuffer) and _ids(keep.batch) == ["e1"]


def test_a_new_owner_finds_the_open_batches() -> None:
    opened = Batch(batch_key="a:f:", batch_id="b1", account_id="a", fn_id="f", event_ids=["e1"])
    flow, _ = RunnerPartitionFlow.loaded(0, buffers=[opened], tats=[], now_ms=0)
    assert flow.buffer("a:f:") == opened
    assert _started(flow.due("a:f:", "b1")) == [["e1"]]


# --- singleton --------------------------------------------------------------------------------


def test_a_run_takes_a_free_singleton_slot() -> None:
    fn = _fn(singleton={"mode": "skip"})
    assert admit_run(fn, "slot", "r2", None, None) == []
    assert admit_run(fn, "slot", "r2", "r2", "running") == []  # its own claim, handled again


def test_skip_mode_drops_the_new_run_while_the_holder_runs() -> None:
    fn = _fn(singleton={"mode": "skip"})
    assert admit_run(fn, "slot", "r2", "r1", "running") == [SINGLETON_RUNNING]
    # A holder not in the run store yet is on its way to the executor: running.
    assert admit_run(fn, "slot", "r2", "r1", None) == [SINGLETON_RUNNING]


def test_cancel_mode_cancels_the_running_holder_and_takes_its_slot() -> None:
    fn = _fn(singleton={"mode": "cancel"})
    assert admit_run(fn, "slot", "r2", "r1", "running") == [
        CancelHolder("r1"),
        TakeSlot("slot", "r1"),
    ]


def test_a_slot_whose_holder_ended_is_taken_over_in_either_mode() -> None:
    for mode in ("skip", "cancel"):
        for status in ("completed", "failed", "cancelled"):
            fn = _fn(singleton={"mode": mode})
            assert admit_run(fn, "slot", "r2", "r1", status) == [TakeSlot("slot", "r1")]


def test_a_singleton_slot_per_key_value_and_none_when_the_key_is_false() -> None:
    fn = _fn(singleton={"mode": "skip", "key": "event.data.user"})
    assert singleton_slot(fn, {"data": {"user": "ann"}}) == "singleton:a:f:ann"
    assert singleton_slot(_fn(singleton={"mode": "skip"}), {}) == "singleton:a:f:"
    assert singleton_slot(_fn(singleton={"key": "event.data.on"}), {"data": {"on": False}}) is None
    assert singleton_slot(_fn(), {}) is None


# --- idempotency ------------------------------------------------------------------------------


def test_an_idempotency_key_repeated_by_another_event_is_dropped() -> None:
    fn = _fn(idempotency="event.data.order")
    first, second = _event("e1", order="A"), _event("e2", order="A")
    assert idempotency_key(fn, first) == idempotency_key(fn, second) == "idempotency:a:f:A"

    assert admit_first(first, None) == []  # its claim was taken
    assert admit_first(second, "e1") == [KEY_SEEN]
    assert admit_first(first, "e1") == []  # the first event handled again goes on


def test_no_idempotency_without_an_expression_or_a_key_value() -> None:
    assert idempotency_key(_fn(), _event("e1")) is None
    assert idempotency_key(_fn(idempotency="event.data.missing.field"), _event("e1")) is None
