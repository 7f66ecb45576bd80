"""The records of each topic, as tagged unions, and their codec.

Topics:
- `events`: accepted events, and the pauses the runner must index (created by the executor).
- `schedule`: work to do now or at a time (timers), for the scheduler.
- `work`: calls and state changes of runs, for the executor.

Schema evolution: new fields get defaults; tags never change meaning.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

from headrace.messages.flow import RunFlow
from headrace.messages.model import Event, Pause
from headrace.messages.state import FunctionRecord

# --- events ---------------------------------------------------------------------------------


class EventAccepted(msgspec.Struct, tag="event", kw_only=True):
    event: Event


class PauseCreated(msgspec.Struct, tag="pause.created", kw_only=True):
    pause: Pause


class PauseDeleted(msgspec.Struct, tag="pause.deleted", kw_only=True):
    account_id: str
    pause_id: str


class FunctionsChanged(msgspec.Struct, tag="functions.changed", kw_only=True):
    """An app of the account was synced: reload its functions before the next event."""

    account_id: str


class BatchDue(msgspec.Struct, tag="batch.due", kw_only=True):
    """A batch's timeout has passed: start its run with the events it has."""

    account_id: str
    batch_key: str
    batch_id: str


class CronDue(msgspec.Struct, tag="cron.due", kw_only=True):
    """A tick of a function's cron schedule is due: start its run, schedule the next tick."""

    account_id: str
    fn_id: str
    cron: str
    tick_ms: int
    fire_ms: int


EventsRecord = EventAccepted | PauseCreated | PauseDeleted | FunctionsChanged | BatchDue | CronDue

# --- work -----------------------------------------------------------------------------------


class StartRun(msgspec.Struct, tag="start", kw_only=True):
    """Create the run (once) and make its first call."""

    account_id: str
    run_id: str
    fn_id: str
    events: list[dict[str, Any]]
    event_ids: list[str]
    started_by: str = "event"
    # Set by the scheduler when the run passes flow control (None: not yet).
    flow: RunFlow | None = None
    # Reruns and replays (started_by "rerun" / "replay"): the run they repeat. A replay starts
    # with that run's memos up to `replay_from` (a step hash or name; "" = the step that failed).
    original_run_id: str = ""
    replay_from: str = ""
    # Set by the scheduler when the start took the lease of the run's first call (its
    # `lease_id`, seq 0, attempt 0): the executor makes that call itself, at once.
    leased: bool = False
    # The function as the runner matched the event against it, that is as synced at the event's
    # place in the account's stream: the scheduler plans the run and the executor creates it
    # from this record rather than reading it again. None from a start made elsewhere (a rerun,
    # an invoke from the API) and from a runner before this field: they read it.
    function: FunctionRecord | None = None


class Call(msgspec.Struct, tag="call", kw_only=True):
    """Call the app for a run: discovery when `target` is None, else the planned step `target`.

    `seq` is the run's discovery sequence for discovery calls and `attempt` the attempt counter of
    the target; the executor drops a call whose seq or attempt is no longer current, so a call
    repeated after a crash does nothing twice.
    """

    account_id: str
    run_id: str
    target: str | None = None
    attempt: int = 0
    seq: int = 0
    # The run's flow control, stamped by the executor: the scheduler gates the call with it.
    flow: RunFlow | None = None


class Resume(msgspec.Struct, tag="resume", kw_only=True):
    """Settle a step that was waiting (sleep, waitForEvent, invoke) with its memo value."""

    account_id: str
    run_id: str
    step_hash: str
    memo: Any = None
    reason: str = "resume"
    # The run's flow control, stamped by the executor on the resumes it schedules (a sleep's
    # end, a wait's timeout): the scheduler may then give the resume the lease of the call
    # that follows it. None: a resume from elsewhere (an event matched), never leased.
    flow: RunFlow | None = None
    # Set by the scheduler when the resume took that lease (`resume_lease_id`): the executor
    # makes the call that follows the resume itself, at once.
    leased: bool = False


class CancelRun(msgspec.Struct, tag="cancel", kw_only=True):
    account_id: str
    run_id: str
    reason: str = "function cancelled"


class EndpointTimeout(msgspec.Struct, tag="endpoint.timeout", kw_only=True):
    """A Durable Endpoint's request has had `after_ms` to finish its run or hand it over to the
    engine: a run its request still holds then fails (the request died)."""

    account_id: str
    run_id: str
    after_ms: int


WorkRecord = StartRun | Call | Resume | CancelRun | EndpointTimeout

# --- schedule -------------------------------------------------------------------------------


# What the scheduler delivers: work for the executor, or a due batch or cron tick back to the
# runner.
Deliverable = StartRun | Call | Resume | CancelRun | EndpointTimeout | BatchDue | CronDue

# The deliverables that go back to the runner, on `events`.
RUNNER_DUE = (BatchDue, CronDue)


class Enqueue(msgspec.Struct, tag="enqueue", kw_only=True):
    """Deliver `item` at `at_ms` (now if 0): to `work`, or a BatchDue to `events`.
    `timer_id` makes it idempotent."""

    timer_id: str
    item: Deliverable
    at_ms: int = 0


class CancelTimer(msgspec.Struct, tag="timer.cancel", kw_only=True):
    account_id: str
    timer_id: str


class ReleaseLease(msgspec.Struct, tag="lease.release", kw_only=True):
    """A gated call's outcome is stored: free the concurrency slots its lease holds."""

    account_id: str
    lease_id: str


ScheduleRecord = Enqueue | CancelTimer | ReleaseLease


def account_of(record: EventsRecord | WorkRecord | ScheduleRecord) -> str:
    """The account a record belongs to: its key on every topic."""
    match record:
        case EventAccepted(event=event):
            return event.account_id
        case PauseCreated(pause=pause):
            return pause.account_id
        case Enqueue(item=item):
            return item.account_id
        case _:
            return record.account_id


T = TypeVar("T")


class Codec(Generic[T]):
    """Encoder and decoder of one topic's union, reused for speed."""

    def __init__(self, union: Any) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[T] = msgspec.msgpack.Decoder(union)

    def encode(self, record: T) -> bytes:
        return self._encoder.encode(record)

    def decode(self, data: bytes) -> T:
        return self._decoder.decode(data)


EVENTS_CODEC: Codec[EventsRecord] = Codec(EventsRecord)
WORK_CODEC: Codec[WorkRecord] = Codec(WorkRecord)
SCHEDULE_CODEC: Codec[ScheduleRecord] = Codec(ScheduleRecord)
DELIVERABLE_CODEC: Codec[Deliverable] = Codec(Deliverable)
