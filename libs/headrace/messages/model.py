"""Domain values carried by records and kept by the stores."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

PauseKind = Literal["wait", "invoke", "cancel", "signal"]


class Pause(msgspec.Struct, frozen=True, kw_only=True):
    """Something a run waits for: an event (waitForEvent), an invoked run's end, a cancel event,
    or a signal (waitForSignal: `event_name` is the signal; found by the signal API through its
    key, engine/signals.py, never matched against events).

    The id is natural: `<run>:<step hash>` for waits and invokes, `<run>:cancel:<n>` for cancelOn,
    so creating it twice is harmless.
    """

    pause_id: str
    account_id: str
    run_id: str
    fn_id: str
    kind: PauseKind
    event_name: str
    expression: str | None = None
    step_hash: str | None = None
    correlation_id: str | None = None
    expires_ms: int
    # When it began: no event received before matches it (a restarted runner re-reads events
    # older than the pauses it loads). A wait began when the call that declared it was sent,
    # and the runner also matches the events it handled between then and the pause's
    # announcement when the announcement comes (docs/waits.md); a cancelOn when the run's
    # trigger was received. 0: always (an invoke's, which only its callee's end can match).
    since_ms: int = 0


# Event names Inngest reserves for the events the engine itself emits (function finished,
# invoked, cron ticks); clients list events with or without them.
INTERNAL_PREFIX = "inngest/"


class Event(msgspec.Struct, kw_only=True):
    """An accepted event: the user's payload plus what headrace assigned to it."""

    internal_id: str
    account_id: str
    name: str
    payload: dict[str, Any]
    received_ms: int
    # One per acceptance: a send retried with the same id seed stores the event again (as
    # Inngest does) under a new receipt, while the log record of one acceptance stays idempotent.
    receipt_id: str = ""


class EventHead(msgspec.Struct, kw_only=True):
    """An event's stored record read without its payload (msgspec skips the field): what a
    list of events shows, without decoding megabytes of data per row."""

    internal_id: str
    account_id: str
    name: str
    received_ms: int


class Batch(msgspec.Struct, kw_only=True):
    """Events collected for one batched function (and key) until the batch is full or due.

    `batch_id` is the id of the run the batch will start, so starting it twice starts one run.
    """

    batch_key: str
    batch_id: str
    account_id: str
    fn_id: str
    events: list[dict[str, Any]] = []
    event_ids: list[str] = []
    opened_ms: int = 0
