"""What one applied work record produces: state to write, then records to publish."""

from __future__ import annotations

from dataclasses import dataclass, field

from headrace.messages.model import Pause
from headrace.messages.records import Enqueue, EventsRecord
from headrace.messages.state import HistoryEntry


@dataclass
class Transition:
    """Effects in the order they are made durable: history, pauses, run state with memos, then
    the records for `schedule` and `events` (the outbox)."""

    memos: dict[str, bytes] = field(default_factory=dict)
    schedule: list[Enqueue] = field(default_factory=list)
    events: list[EventsRecord] = field(default_factory=list)
    pauses_put: list[Pause] = field(default_factory=list)
    pauses_deleted: list[str] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)
