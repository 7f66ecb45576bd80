"""The log port: keyed records on partitioned topics, consumed by groups with explicit commits.

Guarantees every adapter gives:
- `publish` returns only once the record is durable (acknowledged); records with the same key go
  to the same partition and keep their order there. `publish_many` does the same for several
  records at once (cheaper per record); when it raises, any of them may have been written.
- A topic's partitions are split between the members of a consumer group; each partition has at
  most one member at a time. When the split changes, `on_revoked` runs before a member loses
  partitions and `on_assigned` before it reads from new ones.
- A member reads from the group's committed offset of each partition it is given (from the
  start when nothing was committed), so records not committed are delivered again: delivery is
  at least once, and consumers make their effects idempotent.
- `commit` stores, per partition, the offset of the next record to read.
- A `tail` belongs to no group and commits nothing: it reads every partition of its topic from
  the end as of `start`, so it gets each record appended after `start` returned, once, and none
  from before; every tail of a topic gets them all (fan-out). A stopped tail is forgotten: what
  it missed is not delivered again (at most once).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import msgspec

# The largest record a log takes: a run's start carries its trigger events (up to 3 MB each; a
# batch carries several). The Kafka adapter sets its topics' limit to this; the dev intake
# refuses larger bodies before they reach the log.
MAX_RECORD_BYTES = 32 * 1024 * 1024


class LogRecord(msgspec.Struct, frozen=True):
    topic: str
    partition: int
    offset: int
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    # When the record was appended (Kafka's record timestamp, the in-process log's clock); 0 for
    # a record an older in-process log wrote without one.
    timestamp_ms: int = 0


class Outgoing(msgspec.Struct, frozen=True):
    """A record to publish."""

    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


# What a consumer does with a record; raising means it is not done (see runtime/consume.py).
Handler = Callable[[LogRecord], Awaitable[None]]
# Handles records together; returns, per record in order, None when it is done or the error that
# rejects it for good (the record is dead-lettered). Raising means none of them is done.
BatchHandler = Callable[[Sequence[LogRecord]], Awaitable[Sequence[Exception | None]]]
PartitionsCallback = Callable[[set[int]], Awaitable[None]]


class Consumer(Protocol):
    async def start(self) -> None:
        """Join the group. Assignment callbacks run from inside `poll`."""
        ...

    async def poll(self, max_records: int, timeout_ms: int) -> list[LogRecord]:
        """Records from the assigned partitions, in offset order per partition."""
        ...

    async def commit(self, offsets: dict[int, int]) -> None:
        """Commit `partition -> next offset to read` for partitions this member still owns."""
        ...

    def assignment(self) -> set[int]: ...

    async def lag(self) -> dict[int, int]:
        """Per partition this member owns: how many records follow the group's committed
        offset (the partition's end offset minus the committed one; the whole partition when
        nothing was committed)."""
        ...

    async def stop(self) -> None:
        """Leave the group (its partitions go to the other members)."""
        ...


class Tail(Protocol):
    async def start(self) -> None:
        """Take every partition at its end offset; records appended from now on are read."""
        ...

    async def poll(self, max_records: int, timeout_ms: int) -> list[LogRecord]:
        """Records appended since `start`, in offset order per partition."""
        ...

    async def stop(self) -> None: ...


class Log(Protocol):
    @property
    def partitions(self) -> int:
        """The partition count of every topic."""
        ...

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Append a record; durable when this returns."""
        ...

    async def publish_many(self, topic: str, records: Sequence[Outgoing]) -> None:
        """Append the records, each placed by its key as `publish` would; all durable when
        this returns, and the records of one key in the order given."""
        ...

    def consumer(
        self,
        topic: str,
        group: str,
        *,
        on_assigned: PartitionsCallback | None = None,
        on_revoked: PartitionsCallback | None = None,
    ) -> Consumer: ...

    def tail(self, topic: str) -> Tail:
        """A reader of every partition of `topic` from its end, outside any group."""
        ...

    async def close(self) -> None: ...
