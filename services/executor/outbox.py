"""Making a transition durable, then making its effects.

Order: the run, with its memos and every effect of the transition (history entries, pauses to
put and delete, records to publish), in one write conditional on the version it was read at;
then the effects, in the order `publish` gives. A transition that loses the race for the run
writes nothing and raises `Conflict`. A record repeated after a crash finds its own id as the
run's last record and makes the effects again; every effect is idempotent (history and pauses
by id, records downstream).

The fast path (`calls.py`) makes a run's next call itself: the transition is stored whole, the
next call's Enqueue and the release of the lease the run keeps with it, but those two are not
published. Should the executor stop before the call's outcome is stored, the record handled
again finds the transition and publishes them all: the slow path takes over. The transition's
history is written while that call is made, not before it (a store's round trip off every
step's time), and is durable before the run's next write (which replaces the entries in its
outbox) and before the record's handling ends: a write that fails fails the handling, and the
record handled again writes the entries again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Set as AbstractSet

from headrace.engine.transition import Transition
from headrace.messages.flow import finish_timer_id, schedule_key, start_timer_id
from headrace.messages.records import (
    EVENTS_CODEC,
    SCHEDULE_CODEC,
    Call,
    CancelTimer,
    PauseDeleted,
    ReleaseLease,
    Resume,
    ScheduleRecord,
)
from headrace.messages.state import ENDED, HistoryEntry, RunState
from headrace.messages.topics import Topics, partition_for
from headrace.ports.log import Log
from headrace.ports.stores import Stores
from headrace.protocol.endpoint import endpoint_timer_id


class Outbox:
    def __init__(self, log: Log, topics: Topics, stores: Stores) -> None:
        self._log = log
        self._topics = topics
        self._stores = stores
        # By run: the history write of its last transition, when made beside the next call.
        self._history_writes: dict[str, asyncio.Task[None]] = {}

    async def commit(
        self,
        run: RunState,
        out: Transition,
        record_id: str,
        epoch: int,
        *,
        create: bool = False,
        release: str | None = None,
        inline: Call | None = None,
    ) -> bool:
        """Write the transition of `run` made by handling record `record_id` as the partition's
        owner of `epoch`, then make its effects. `release`: the lease of the call whose outcome
        this is, freed once it is stored. `inline`: the call of the transition the executor
        makes itself (the fast path): stored, but neither it nor the release is published.
        False when `create` found the run existing (nothing is written then); raises Conflict
        when the run changed since it was read."""
        await self.history_written(run.run_id)
        if run.status in ENDED:
            await self._forget_pauses(run, out)
        run.last_record = record_id
        if run.status in ENDED and not run.ended_by_record:
            run.ended_by_record = record_id
        run.owner_epoch = epoch
        schedule: list[ScheduleRecord] = []
        kept: list[ScheduleRecord] = []
        for record in out.schedule:
            if isinstance(record.item, Call | Resume):
                record.item.flow = run.flow
            schedule.append(record)
            if inline is not None and record.item is inline:
                kept.append(record)
        if release is not None:
            schedule.append(ReleaseLease(account_id=run.account_id, lease_id=release))
            if inline is not None:
                kept.append(schedule[-1])
        if run.status in ENDED and run.flow is not None:
            # An ended run's timeouts would only fire into nothing: take them off the wheel.
            for wanted, timer_id in (
                (run.flow.start_timeout, start_timer_id(run.run_id)),
                (run.flow.finish_timeout_ms > 0, finish_timer_id(run.run_id)),
            ):
                if wanted:
                    schedule.append(CancelTimer(account_id=run.account_id, timer_id=timer_id))
        if run.status in ENDED and run.output_token:
            # A Durable Endpoint's run (the only kind with an output token): its request's
            # timeout would fire into nothing too.
            timer_id = endpoint_timer_id(run.run_id)
            schedule.append(CancelTimer(account_id=run.account_id, timer_id=timer_id))
        run.outbox = [(self._topics.schedule, SCHEDULE_CODEC.encode(r)) for r in schedule] + [
            (self._topics.events, EVENTS_CODEC.encode(r)) for r in out.events
        ]
        run.outbox_history = list(out.history)
        run.outbox_pauses = list(out.pauses_put)
        run.outbox_unpauses = list(out.pauses_deleted)
        if create:
            if not await self._stores.create_run(run, out.memos):
                return False
        else:
            await self._stores.save_run(run, out.memos)
        await self.publish(
            run,
            kept={SCHEDULE_CODEC.encode(record) for record in kept},
            history_beside=inline is not None,
        )
        return True

    async def _forget_pauses(self, run: RunState, out: Transition) -> None:
        """An ended run leaves no pause behind (its cancelOn pauses included)."""
        for pause in await self._stores.pauses_for_run(run.run_id):
            if pause.pause_id not in out.pauses_deleted:
                out.pauses_deleted.append(pause.pause_id)
                out.events.append(PauseDeleted(account_id=run.account_id, pause_id=pause.pause_id))

    async def publish(
        self,
        run: RunState,
        *,
        kept: AbstractSet[bytes] = frozenset(),
        history_beside: bool = False,
    ) -> None:
        """Make the effects of the run's last transition, but for the `schedule` records in
        `kept` (the fast path's, see `commit`). History comes as early as it can, as
        readers look for it once the run is written, except after a new pause's announcement:
        a client that reads "step.waiting" and sends the event at once must find the pause
        announced ahead of its event on the account's partition of the events topic, or the
        runner would not match it. `history_beside`: the history is written in the background,
        beside the call the fast path makes next (see `history_written`)."""
        await self.history_written(run.run_id)
        announces_pauses = bool(run.outbox_pauses)
        if not announces_pauses:
            if history_beside:
                # A copy: the next transition replaces the run's list while the write is made.
                entries = list(run.outbox_history)
                self._history_writes[run.run_id] = asyncio.create_task(
                    self._append_history(entries)
                )
            else:
                await self._append_history(run.outbox_history)
        partition = partition_for(run.account_id, self._log.partitions)
        for pause in run.outbox_pauses:
            await self._stores.put_pause(pause, partition)
        for pause_id in run.outbox_unpauses:
            await self._stores.delete_pause(pause_id)
        if run.status in ENDED:
            await self._stores.retain_run(run)
        for topic, value in run.outbox:
            if topic == self._topics.events:
                await self._log.publish(topic, run.account_id, value)
        if announces_pauses:
            await self._append_history(run.outbox_history)
        key = schedule_key(run.account_id, run.flow)
        for topic, value in run.outbox:
            if topic != self._topics.events and value not in kept:
                await self._log.publish(topic, key, value)

    async def history_written(self, run_id: str) -> None:
        """Wait for the history write of the run's last transition that `publish` left
        running, if any, and raise its error."""
        task = self._history_writes.get(run_id)
        if task is None:
            return
        try:
            # Shielded: an awaiter cancelled (a shutdown) leaves the write to the others.
            await asyncio.shield(task)
        finally:
            if task.done() and self._history_writes.get(run_id) is task:
                del self._history_writes[run_id]

    async def _append_history(self, entries: list[HistoryEntry]) -> None:
        for entry in entries:
            await self._stores.append_history(entry)

    async def release(self, account_id: str, key: str, lease_id: str) -> None:
        """Free a lease outside a transition: its call was stale (its outcome already stored).
        `key`: the run's on `schedule` (`messages.flow.schedule_key`), where its leases are."""
        record = ReleaseLease(account_id=account_id, lease_id=lease_id)
        await self._log.publish(self._topics.schedule, key, SCHEDULE_CODEC.encode(record))
