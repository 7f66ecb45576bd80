"""The state the stores keep: apps, functions, runs and their history."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from headrace.messages.flow import RunFlow
from headrace.messages.model import Pause

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
ENDED: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
StepKind = Literal["step", "sleep", "wait", "invoke", "signal"]


class AppRecord(msgspec.Struct, kw_only=True):
    """A synced app. Apps are identified by id, not URL: a sync from a new URL moves the app."""

    app_id: str
    account_id: str
    url: str
    sdk: str = ""
    framework: str = ""
    synced_ms: int = 0
    function_ids: list[str] = []


class FunctionRecord(msgspec.Struct, kw_only=True):
    fn_id: str
    account_id: str
    app_id: str
    name: str
    config: dict[str, Any]
    archived: bool = False
    updated_ms: int = 0


class RunState(msgspec.Struct, kw_only=True):
    """One run as the executor sees it. Memos are kept apart (see RunStore)."""

    run_id: str
    account_id: str
    fn_id: str
    app_id: str
    status: RunStatus = "running"
    events: list[dict[str, Any]] = []
    event_ids: list[str] = []
    started_ms: int = 0
    ended_ms: int = 0
    output: Any = None
    # Why a failed run failed, in Inngest's words ("invalid status code: 500").
    failure: str = ""
    # Memo keys in completion order (the SDK's ctx.stack).
    stack: list[str] = []
    # Steps started and not settled yet: hash -> kind.
    planned: dict[str, StepKind] = {}
    step_names: dict[str, str] = {}
    # Attempt counter per call target; "" is discovery.
    attempts: dict[str, int] = {}
    # The discovery attempt the retry budget counts from: the attempt of the call whose steps
    # were last checkpointed, as Inngest resets a call's attempts on each checkpoint.
    budget_from: int = 0
    discover_seq: int = 0
    discover_pending: bool = False
    race: bool = False
    disable_immediate: bool = False
    req_version: int = -1
    # The stored state this one was read from: 0 before the run is created, then 1, 2, ... A
    # write succeeds only while the store still holds this version (see RunStore.save_run).
    version: int = 0
    # The ownership epoch of the executor that last wrote the run (see runtime/ownership.py):
    # an executor holding an older epoch of the run's partition has lost it, and must not act.
    owner_epoch: int = 0
    # The id of the last work record applied, and the effects of that transition outside the
    # run's own row: made after the row is written, and made again by a record repeated after a
    # crash (each is idempotent). A transition that loses the race for the row makes none.
    last_record: str = ""
    # The record whose transition ended the run: its repeat after a lost acknowledgement counts
    # the end (metrics, the run's root span), which only that record's first handling would.
    ended_by_record: str = ""
    outbox: list[tuple[str, bytes]] = []  # (topic, record) to publish
    outbox_history: list[HistoryEntry] = []
    outbox_pauses: list[Pause] = []
    outbox_unpauses: list[str] = []  # pause ids to delete
    # When each waiting step (sleep, waitForEvent, invoke) began to wait: its span's start.
    wait_started_ms: dict[str, int] = {}
    # Flow control decided at the run's start; stamped on each Call the run enqueues.
    flow: RunFlow | None = None
    # "event", or "rerun" / "replay" (then `original_run_id` names the run it repeats).
    started_by: str = "event"
    original_run_id: str = ""
    # A Durable Endpoint's run: the token its redirect shows to read the output with.
    output_token: str = ""


class HistoryEntry(msgspec.Struct, kw_only=True):
    """One line of a run's timeline. Entry ids are ULIDs, so ids sort by time.

    Kinds:
    - run.started; run.errored (a function-level attempt failed and will be retried, `error`);
      run.completed (`output`), run.failed (`error`), run.cancelled (`error`).
    - step.completed: a step settled with a value: `output` is the memo as the SDK reads it
      ({"data": ...} for step.run, null for a sleep, the event or null for a wait, {"data"} or
      {"error"} for an invoke).
    - step.errored: an attempt of a step failed and will be retried (`error`, `attempt`).
    - step.failed: a step failed for good; `output` is its memo {"error": ...}.
    - step.sleeping (`output` = {"until": ms}), step.waiting (`output` = {"event", "if",
      "timeout_ms"}, or {"signal", "timeout_ms"} for a waitForSignal), step.invoking
      (`output` = {"function_id", "correlation_id"}): a step began to wait; it ends with a
      step.completed entry.
    - step.planned: a checkpoint said the step is about to run in its call (StepPlanned); it
      ends with a step.completed or step.failed entry.
    - step.memoized: a replay started with this step's memo (`output`) from the run it replays.
    `step_name` is the user-facing step id; `step_hash` the memo key; `input` the arguments of a
    step.run as the SDK reports them (the JS SDK's `opts.input`; the Python SDK sends none).
    """

    entry_id: str
    run_id: str
    ts_ms: int
    kind: str
    step_hash: str | None = None
    step_name: str | None = None
    attempt: int = 0
    duration_ms: int = 0
    output: Any = None
    error: Any = None
    input: Any = None


def with_last_transition(stored: list[HistoryEntry], run: RunState | None) -> list[HistoryEntry]:
    """A run's history as readers must see it: the entries appended so far, plus those of its
    last transition, which the run's own row holds from its write on and which are appended only
    after it (executor/outbox.py). So whoever reads a run and then its history finds every entry
    of the state it read, e.g. `run.cancelled` once the run reads cancelled. Ordered by id."""
    if run is None or not run.outbox_history:
        return stored
    merged = {entry.entry_id: entry for entry in stored}
    for entry in run.outbox_history:
        merged.setdefault(entry.entry_id, entry)
    return [merged[entry_id] for entry_id in sorted(merged)]


class Timer(msgspec.Struct, frozen=True, kw_only=True):
    timer_id: str
    partition: int
    fire_ms: int
    record: bytes
