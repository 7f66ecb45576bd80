"""Reading, deciding and writing one run, as every record of the executor does: under the run's
lock, fenced against a newer owner of the partition, decided again when another writer changed
the run meanwhile, and committed through the outbox."""

from __future__ import annotations

import collections
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from headrace.services.executor.locks import RunLocks
from headrace.services.executor.observe import observe_run_end
from headrace.services.executor.outbox import Outbox

from headrace.core.clock import Clock
from headrace.core.errors import Conflict, Fenced
from headrace.core.ids import new_ulid
from headrace.engine.machine import RunMachine
from headrace.engine.transition import Transition
from headrace.messages.records import Call
from headrace.messages.state import FunctionRecord, RunState
from headrace.obs.metrics import run_started
from headrace.ports.stores import Stores
from headrace.protocol.registration import retries_of
from headrace.runtime.ownership import Ownership

log = structlog.get_logger(__name__)

# A record whose run another writer changed meanwhile is handled again this many times here;
# then the conflict goes to the consume loop, which retries the record with backoff.
CONFLICT_ROUNDS = 5

T = TypeVar("T")


@dataclass(frozen=True)
class Handling:
    """The record being handled: its partition and id (partition:offset), and the epoch of
    this executor's ownership of the partition, stamped on every run it writes."""

    partition: int
    record_id: str
    epoch: int


class RunTransactions:
    def __init__(
        self,
        stores: Stores,
        outbox: Outbox,
        ownership: Ownership,
        clock: Clock,
        *,
        rng: random.Random | None,
        retry_interval_ms: int | None,
        max_steps: int,
    ) -> None:
        self._stores = stores
        self._outbox = outbox
        self._ownership = ownership
        self._clock = clock
        self._rng = rng
        self._retry_interval_ms = retry_interval_ms
        self._max_steps = max_steps
        self.locks = RunLocks()
        # For runs with calls built and not yet sent: how many, and the newest version of the
        # run this executor has read (to build a call) or written since the first was built; a
        # call built from an older version is stale (see calls.py, _check_unchanged).
        self._unsent: collections.Counter[str] = collections.Counter()
        self._written: dict[str, int] = {}

    def machine(self, run: RunState, memo_keys: set[str], fn: FunctionRecord | None) -> RunMachine:
        retries = retries_of(fn.config) if fn is not None else 0
        return RunMachine(
            run,
            memo_keys,
            max_attempts=retries + 1,
            now_ms=self._clock.now_ms(),
            new_id=self._new_id,
            rng=self._rng,
            retry_interval_ms=self._retry_interval_ms,
            max_steps=self._max_steps,
        )

    def _new_id(self) -> str:
        return new_ulid(self._clock.now_ms())

    async def transact(self, run_id: str, step: Callable[[bool], Awaitable[T]]) -> T:
        """Run `step`, a read, a decision and a write of one run, under the run's lock; when
        the write finds the run changed by another writer, read and decide again. `step` is
        told whether this is the first round: only then may it decide from what it knows of
        the run without reading it (the write's condition finds anyone who wrote it since)."""
        for round_ in range(CONFLICT_ROUNDS - 1):
            try:
                async with self.locks.hold(run_id):
                    return await step(round_ == 0)
            except Conflict as conflict:
                log.info("run changed while handled; handling the record again", why=str(conflict))
        async with self.locks.hold(run_id):
            return await step(False)

    async def read(self, run_id: str, h: Handling) -> tuple[RunState, dict[str, bytes]] | None:
        """The run and its memos as stored now, for a call's body; Fenced when a newer owner
        of the partition has written the run (this executor has lost the partition, whether it
        knows yet or not)."""
        found = await self._stores.get_run_and_memos(run_id)
        if found is not None:
            await self._fence(found[0], h)
        return found

    async def read_run(self, run_id: str, h: Handling) -> RunState | None:
        """As `read`, the run alone: all a check of its version needs."""
        run = await self._stores.get_run(run_id)
        if run is not None:
            await self._fence(run, h)
        return run

    async def read_memo_keys(self, run_id: str, h: Handling) -> tuple[RunState, set[str]] | None:
        """As `read`, with the memos' step hashes only: all a decision needs."""
        found = await self._stores.get_run_and_memo_keys(run_id)
        if found is not None:
            await self._fence(found[0], h)
        return found

    async def _fence(self, run: RunState, h: Handling) -> None:
        if run.owner_epoch > h.epoch and await self._ownership.superseded(h.partition, h.epoch):
            raise Fenced(
                f"run {run.run_id} was written by the owner of epoch {run.owner_epoch}; "
                f"this executor holds epoch {h.epoch}"
            )

    async def repeated(self, run: RunState, h: Handling, *, creates: bool = False) -> bool:
        """Whether the run's last transition is this record's: the record is handled again
        after its write's acknowledgement was lost (a store timeout after the write applied) or
        after a crash. Its effects are made again, and counted as its first handling would
        have: the start of the run it `creates`, and the end it made. Counts are at least once
        (a crash after counting, before the offset's commit, counts again), never lost."""
        if run.last_record != h.record_id:
            return False
        await self._outbox.publish(run)
        if creates:
            run_started(run.fn_id)
        if run.ended_by_record == h.record_id:
            observe_run_end(run)
        return True

    async def commit(
        self,
        run: RunState,
        out: Transition,
        h: Handling,
        *,
        create: bool = False,
        release: str | None = None,
        inline: Call | None = None,
    ) -> bool:
        done = await self._outbox.commit(
            run, out, h.record_id, h.epoch, create=create, release=release, inline=inline
        )
        if run.run_id in self._written:
            self._written[run.run_id] = max(self._written[run.run_id], run.version)
        return done

    def call_built(self, run: RunState) -> None:
        """A call of `run` was built from its version as read now, and is to be sent."""
        self._unsent[run.run_id] += 1
        self._written[run.run_id] = max(self._written.get(run.run_id, 0), run.version)

    def call_sent(self, run_id: str) -> None:
        """A call built by `call_built` was sent, or will never be."""
        self._unsent[run_id] -= 1
        if self._unsent[run_id] <= 0:
            del self._unsent[run_id]
            self._written.pop(run_id, None)

    def written_since(self, run: RunState) -> bool:
        """Whether this executor has written `run` since the version given, while a call built
        from it waited to be sent. Writes by other executors are fenced (see ownership.py)."""
        return self._written.get(run.run_id, run.version) > run.version


def gone(fn_id: str, fn: FunctionRecord | None) -> dict[str, str]:
    """The error of a run whose function is not synced, or no longer."""
    if fn is None:
        return {"name": "FunctionNotFound", "message": f"function {fn_id!r} is not synced"}
    return {
        "name": "FunctionArchived",
        "message": f"function {fn_id!r} was removed from its app at the last sync",
    }
