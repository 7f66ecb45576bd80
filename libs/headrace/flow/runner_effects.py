"""What the runner's flow decisions (rate limit, debounce, batching, singleton, idempotency) ask
of the runner, in the order it must be done.

The runner makes each state effect durable first (BatchStore, FlowStore) and then applies it to
the partition's state (`RunnerPartitionFlow.apply`), so a write that fails leaves the state as
the stores have it and the record is handled again.
"""

from __future__ import annotations

from dataclasses import dataclass

from headrace.messages.model import Batch


@dataclass(frozen=True)
class Skip:
    """Start nothing for this event (or run); `reason` is for the log."""

    reason: str


@dataclass(frozen=True)
class PutRateLimit:
    """An event admitted by a rate limit: its key's new TAT."""

    key: str
    tat: float


@dataclass(frozen=True)
class ForgetRateLimit:
    """A TAT already past: the same as a key never seen, so it need not be kept."""

    key: str


@dataclass(frozen=True)
class SetDue:
    """A scheduler timer that brings the buffer's `BatchDue` back at `at_ms`."""

    batch: Batch
    at_ms: int


@dataclass(frozen=True)
class CancelDue:
    """The due timer of a buffer superseded by a newer generation."""

    batch: Batch


@dataclass(frozen=True)
class KeepBuffer:
    """Open or replace a buffer (a batch or a debounce) under its key."""

    batch: Batch


@dataclass(frozen=True)
class StartBuffered:
    """Start the run of a full or due buffer; its id is the run's."""

    batch: Batch


@dataclass(frozen=True)
class DropBuffer:
    batch_key: str


@dataclass(frozen=True)
class CancelHolder:
    """Cancel the run holding a singleton slot (`cancel` mode)."""

    run_id: str


@dataclass(frozen=True)
class TakeSlot:
    """Give the singleton slot held by `holder` (ended, or cancelled) to the new run."""

    slot: str
    holder: str


BufferEffect = SetDue | CancelDue | KeepBuffer | StartBuffered | DropBuffer
RateLimitEffect = Skip | PutRateLimit | ForgetRateLimit
SingletonEffect = Skip | CancelHolder | TakeSlot
