"""Topic names and partitioning. Every topic has the same partition count. Records are keyed by
account id, so an account's decisions have one owner and its events keep their order, except a
run's records: on `schedule` they are keyed by the run's flow key (`flow.config.flow_key`: its
function, or its account when a limit is shared across functions), so one owner decides each
limit while an account's functions spread over the schedulers; on `work` by run id (the
scheduler's `_send`), so that one account's runs spread over every executor while each run's
records stay in order (docs/architecture.md)."""

from __future__ import annotations

import functools

import msgspec

from headrace.core.murmur2 import murmur2


class Topics(msgspec.Struct, frozen=True):
    prefix: str = "headrace."

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def schedule(self) -> str:
        return f"{self.prefix}schedule"

    @property
    def work(self) -> str:
        return f"{self.prefix}work"

    def intake(self, name: str) -> str:
        """An intake topic producers publish events to (`headrace ingest --intake-topics`)."""
        return f"{self.prefix}{name}"

    @property
    def dead_letter(self) -> str:
        """Records a service could not handle, with the reason (see runtime/dead_letter.py)."""
        return f"{self.prefix}dead-letter"

    @property
    def realtime(self) -> str:
        """Realtime messages on their way to every ingest's subscribers (realtime/bus.py)."""
        return f"{self.prefix}realtime"

    @property
    def all(self) -> tuple[str, ...]:
        return (self.events, self.schedule, self.work, self.dead_letter, self.realtime)


@functools.lru_cache(maxsize=65536)
def partition_for(key: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2 of the key), so the in-process log agrees with Kafka.

    Cached: murmur2 is pure Python, and most keys are a few account ids.
    """
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
