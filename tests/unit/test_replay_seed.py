"""What a replay keeps of the run it replays (engine.replay)."""

from __future__ import annotations

from headrace.engine.replay import replay_seed, resolve_step
from headrace.messages.state import HistoryEntry, RunState

MEMOS = {"a": b'{"data":1}', "b": b'{"error":{"name":"E","message":"x"}}', "c": b'{"data":3}'}


def run() -> RunState:
    return RunState(
        run_id="r",
        account_id="acct",
        fn_id="f",
        app_id="app",
        status="failed",
        stack=["a", "b", "c"],
        step_names={"a": "fetch", "b": "transform", "c": "store"},
    )


def entry(kind: str, step_hash: str) -> HistoryEntry:
    return HistoryEntry(
        entry_id=f"{kind}{step_hash}", run_id="r", ts_ms=1, kind=kind, step_hash=step_hash
    )


def test_a_replay_keeps_the_steps_before_the_one_that_failed() -> None:
    history = [
        entry("step.completed", "a"),
        entry("step.failed", "b"),
        entry("step.completed", "c"),
    ]
    seed = replay_seed(run(), MEMOS, history)
    assert seed.stack == ["a"]
    assert seed.memos == {"a": MEMOS["a"]}
    assert seed.step_names == {"a": "fetch"}


def test_a_replay_from_a_named_step_keeps_what_settled_before_it() -> None:
    seed = replay_seed(run(), MEMOS, [], from_step="store")
    assert seed.stack == ["a", "b"]
    assert resolve_step(run(), "c") == "c"
    assert resolve_step(run(), "missing") is None


def test_a_run_that_failed_between_steps_keeps_every_memo() -> None:
    seed = replay_seed(run(), MEMOS, [entry("step.completed", "a")])
    assert seed.stack == ["a", "b", "c"]
