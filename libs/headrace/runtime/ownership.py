"""Which partitions of `work` this executor owns, and the epoch of each ownership.

Kafka gives a partition to one member of the group at a time, but a member that stalls past its
session timeout (a paused process, a starved event loop) learns that it lost its partitions only
at its next heartbeat, and until then it would go on acting for them beside the new owner. So
each time this executor is given a partition it takes the partition's next epoch from the store
(a compare-and-set counter shared by every executor), and stamps every run it writes with it. A
run stamped with a newer epoch than the one held here was written by a newer owner: this
executor has lost the partition, and drops the record without writing or calling anything.
With version-checked run writes (RunStore.save_run), an old owner can neither overwrite what
the new owner wrote nor write at all once the new owner has written the run.

A run stamped with a newer epoch is taken for a sign of a newer owner only while the store's
counter agrees (it is past this executor's epoch): a counter that expired (it is rewritten at
every assignment, and lives five years) or was lost starts again at 1, and must not fence the
rightful owner out of the runs stamped before.
"""

from __future__ import annotations

from headrace.core.clock import Clock
from headrace.ports.stores import KeyStore

# Rewritten at every assignment; Cassandra refuses expiry dates past 2038.
_EPOCH_TTL_MS = 5 * 365 * 86_400_000


class Ownership:
    def __init__(self, keys: KeyStore, clock: Clock, group: str = "executor") -> None:
        self._keys = keys
        self._clock = clock
        self._group = group
        self._epochs: dict[int, int] = {}

    def epoch(self, partition: int) -> int | None:
        """The epoch of this executor's ownership of `partition`; None when it owns it not."""
        return self._epochs.get(partition)

    async def on_assigned(self, partitions: set[int]) -> None:
        for partition in sorted(partitions):
            self._epochs[partition] = await self._next_epoch(partition)

    async def on_revoked(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._epochs.pop(partition, None)

    async def superseded(self, partition: int, epoch: int) -> bool:
        """Whether a newer owner of `partition` than the one of `epoch` has taken it."""
        found = await self._keys.claim(
            self._key(partition), str(epoch), _EPOCH_TTL_MS, self._clock.now_ms()
        )
        return found is not None and int(found) > epoch

    def _key(self, partition: int) -> str:
        return f"epoch:{self._group}:{partition}"

    async def _next_epoch(self, partition: int) -> int:
        key = self._key(partition)
        while True:
            now = self._clock.now_ms()
            found = await self._keys.claim(key, "1", _EPOCH_TTL_MS, now)
            if found is None:
                return 1
            following = int(found) + 1
            if await self._keys.swap(key, found, str(following), _EPOCH_TTL_MS, now):
                return following
