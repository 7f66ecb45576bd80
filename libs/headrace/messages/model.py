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
    # The key of its run's records on `schedule` (`messages.flow.schedule_key`), where what it
    # settles goes. "": the account (a pause made before flow keys existed).
    flow_key: str = ""

    @property
    def schedule_key(self) -> str:
        """Where what settles this pause goes on `schedule`: its run's flow key."""
        return self.flow_key or self.account_id


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


# The largest event (its record, msgpack-encoded) an event list carries whole; a larger one's
# payload is left out of lists, so a list never reads megabytes per row (GET /v1/events/{id}
# has it whole).
LISTED_PAYLOAD_BYTES = 64 * 1024
# What a list keeps of a payload it leaves out, when small.
_KEPT_FIELDS = ("id", "ts", "v")
_KEPT_FIELD_BYTES = 1024
_listing_encoder = msgspec.msgpack.Encoder()


class EventListing(msgspec.Struct, kw_only=True):
    """What an event list reads: stored beside the event, its payload whole when small, else
    only the payload's id, ts and v, with `omitted` set. An event's own record decodes as one
    too (payload whole): stores written before listings existed are read that way."""

    internal_id: str
    account_id: str
    name: str
    received_ms: int
    payload: dict[str, Any] = {}
    omitted: bool = False


def listing_of(event: Event, stored_bytes: int) -> EventListing:
    """`stored_bytes`: the size of the event's own record, which bounds its payload's."""
    payload = event.payload
    omitted = stored_bytes > LISTED_PAYLOAD_BYTES
    if omitted:
        payload = {
            key: payload[key]
            for key in _KEPT_FIELDS
            if key in payload and len(_listing_encoder.encode(payload[key])) <= _KEPT_FIELD_BYTES
        }
    return EventListing(
        internal_id=event.internal_id,
        account_id=event.account_id,
        name=event.name,
        received_ms=event.received_ms,
        payload=payload,
        omitted=omitted,
    )


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
