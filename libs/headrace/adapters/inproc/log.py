"""An in-process log with partitions, offsets, consumer groups and explicit commits.

It keeps the guarantees of headrace.ports.log. With a Database it is durable too: records and
committed offsets live in SQLite, so `headrace dev` stopped and started again loses nothing that
was published and not yet consumed. Each record carries the time it was appended, as a Kafka
record does, so a record delivered again (after a restart, say) is the same record.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from headrace.adapters.sqlite.database import Database
from headrace.core.clock import Clock, SystemClock
from headrace.messages.topics import partition_for
from headrace.ports.log import LogRecord, Outgoing, PartitionsCallback

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_records (topic TEXT, partition INTEGER, offset INTEGER, key TEXT,
    value BLOB, headers BLOB, ts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (topic, partition, offset));
CREATE TABLE IF NOT EXISTS log_offsets (topic TEXT, grp TEXT, partition INTEGER, offset INTEGER,
    PRIMARY KEY (topic, grp, partition));
"""


def _migrate(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)
    # A state directory from before records had a time: its records keep 0, "not known".
    columns = {row[1] for row in conn.execute("PRAGMA table_info(log_records)")}
    if "ts" not in columns:
        conn.execute("ALTER TABLE log_records ADD COLUMN ts INTEGER NOT NULL DEFAULT 0")


@dataclass
class _Partition:
    base: int = 0  # offset of records[0]
    records: list[LogRecord] = field(default_factory=list)

    @property
    def end(self) -> int:
        return self.base + len(self.records)


@dataclass
class _Group:
    committed: dict[int, int] = field(default_factory=dict)
    members: list[InProcConsumer] = field(default_factory=list)


class InProcLog:
    def __init__(
        self, partitions: int = 4, db: Database | None = None, clock: Clock | None = None
    ) -> None:
        self._partitions = partitions
        self._db = db
        # Records carry the time they were appended, as Kafka's do.
        self._clock = clock or SystemClock()
        self._topics: dict[str, list[_Partition]] = {}
        self._groups: dict[tuple[str, str], _Group] = {}
        # Swapped and set on every change: a waiter holds the event current when it looked, so
        # no change after that look is missed. (No lock, so cancelling a waiter is always clean.)
        self._changed = asyncio.Event()
        if db is not None:
            db.run_sync(_migrate)
            self._load(db)

    @property
    def partitions(self) -> int:
        return self._partitions

    def _load(self, db: Database) -> None:
        rows = db.run_sync(
            lambda conn: conn.execute(
                "SELECT topic, partition, offset, key, value, headers, ts FROM log_records "
                "ORDER BY topic, partition, offset"
            ).fetchall()
        )
        for topic, partition, offset, key, value, headers, ts in rows:
            part = self._topic(topic)[partition]
            if not part.records:
                part.base = offset
            part.records.append(
                LogRecord(
                    topic,
                    partition,
                    offset,
                    key,
                    value,
                    msgspec.msgpack.decode(headers, type=Any),
                    timestamp_ms=ts,
                )
            )
        for topic, group, partition, offset in db.run_sync(
            lambda conn: conn.execute("SELECT topic, grp, partition, offset FROM log_offsets")
        ):
            self._group(topic, group).committed[partition] = offset
            part = self._topic(topic)[partition]
            if not part.records:
                part.base = max(part.base, offset)

    def _topic(self, topic: str) -> list[_Partition]:
        if topic not in self._topics:
            self._topics[topic] = [_Partition() for _ in range(self._partitions)]
        return self._topics[topic]

    def _group(self, topic: str, group: str) -> _Group:
        return self._groups.setdefault((topic, group), _Group())

    async def publish(
        self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        await self.publish_many(topic, [Outgoing(key, value, tuple(headers))])

    async def publish_many(self, topic: str, records: Sequence[Outgoing]) -> None:
        await self._append(topic, records)

    async def append(
        self, topic: str, key: str, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> LogRecord:
        """`publish`, answering with the record as appended (its partition and offset)."""
        [record] = await self._append(topic, [Outgoing(key, value, tuple(headers))])
        return record

    async def _append(self, topic: str, records: Sequence[Outgoing]) -> list[LogRecord]:
        appended = []
        rows = []
        now = self._clock.now_ms()
        for outgoing in records:
            partition = partition_for(outgoing.key, self._partitions)
            part = self._topic(topic)[partition]
            record = LogRecord(
                topic, partition, part.end, outgoing.key, outgoing.value, outgoing.headers, now
            )
            part.records.append(record)
            appended.append(record)
            rows.append(
                (
                    "INSERT OR REPLACE INTO log_records "
                    "(topic, partition, offset, key, value, headers, ts) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        topic,
                        partition,
                        record.offset,
                        record.key,
                        record.value,
                        msgspec.msgpack.encode(record.headers),
                        now,
                    ),
                )
            )
        if self._db is not None and rows:
            await self._db.transaction(rows)
        self._notify()
        return appended

    def newest(self, topic: str, limit: int) -> list[LogRecord]:
        """The topic's last `limit` records still kept (records every group of the topic has
        committed past are dropped), newest first: by append time, then offset."""
        records = (r for part in self._topic(topic) for r in part.records)
        return heapq.nlargest(limit, records, key=lambda r: (r.timestamp_ms, r.offset))

    def consumer(
        self,
        topic: str,
        group: str,
        *,
        on_assigned: PartitionsCallback | None = None,
        on_revoked: PartitionsCallback | None = None,
    ) -> InProcConsumer:
        return InProcConsumer(self, topic, group, on_assigned, on_revoked)

    def tail(self, topic: str) -> InProcTail:
        return InProcTail(self, topic)

    async def close(self) -> None:
        """Nothing to release: the database belongs to whoever opened it."""

    # --- used by consumers ---

    def _rebalance(self, topic: str, group: str) -> None:
        members = self._group(topic, group).members
        for member in members:
            member._target = set()
        for partition, member in zip(
            range(self._partitions), itertools.cycle(members), strict=False
        ):
            member._target.add(partition)

    def _owned_elsewhere(self, topic: str, group: str, me: InProcConsumer) -> set[int]:
        owned: set[int] = set()
        for member in self._group(topic, group).members:
            if member is not me:
                owned |= member._owned
        return owned

    async def _commit(self, topic: str, group: str, offsets: dict[int, int]) -> None:
        committed = self._group(topic, group).committed
        committed.update(offsets)
        if self._db is not None:
            await self._db.transaction(
                [
                    ("INSERT OR REPLACE INTO log_offsets VALUES (?, ?, ?, ?)", (topic, group, p, o))
                    for p, o in offsets.items()
                ]
            )
        await self._trim(topic)

    async def _trim(self, topic: str) -> None:
        """Drop records every group of the topic has committed past."""
        groups = [g for (t, _), g in self._groups.items() if t == topic]
        for partition in range(self._partitions):
            low = min((g.committed.get(partition, 0) for g in groups), default=0)
            await self._drop_before(topic, partition, low)

    async def expire(self, topic: str, until_ms: int) -> int:
        """Drop the topic's records appended at or before `until_ms` (records from before they
        had a time count as older), as Kafka's `retention.ms` does; how many were dropped."""
        dropped = 0
        for partition, part in enumerate(self._topic(topic)):
            # Appended in time order, so the expired records are a prefix.
            old = next(
                (i for i, r in enumerate(part.records) if r.timestamp_ms > until_ms),
                len(part.records),
            )
            dropped += old
            await self._drop_before(topic, partition, part.base + old)
        return dropped

    async def _drop_before(self, topic: str, partition: int, offset: int) -> None:
        part = self._topic(topic)[partition]
        drop = offset - part.base
        if drop <= 0:
            return
        del part.records[:drop]
        part.base = offset
        if self._db is not None:
            await self._db.execute(
                "DELETE FROM log_records WHERE topic = ? AND partition = ? AND offset < ?",
                (topic, partition, offset),
            )

    def _change_signal(self) -> asyncio.Event:
        return self._changed

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


class InProcConsumer:
    def __init__(
        self,
        log: InProcLog,
        topic: str,
        group: str,
        on_assigned: PartitionsCallback | None,
        on_revoked: PartitionsCallback | None,
    ) -> None:
        self._log = log
        self._topic = topic
        self._group = group
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._target: set[int] = set()
        self._owned: set[int] = set()
        self._positions: dict[int, int] = {}

    async def start(self) -> None:
        self._log._group(self._topic, self._group).members.append(self)
        self._log._rebalance(self._topic, self._group)
        self._log._notify()

    def assignment(self) -> set[int]:
        return set(self._owned)

    async def _sync_assignment(self) -> None:
        lost = self._owned - self._target
        if lost:
            if self._on_revoked is not None:
                await self._on_revoked(lost)
            self._owned -= lost
            for partition in lost:
                self._positions.pop(partition, None)
            self._log._notify()
        # A partition moves only once its previous owner has let it go.
        gained = (
            self._target - self._owned - self._log._owned_elsewhere(self._topic, self._group, self)
        )
        if gained:
            committed = self._log._group(self._topic, self._group).committed
            parts = self._log._topic(self._topic)
            for partition in gained:
                self._positions[partition] = max(committed.get(partition, 0), parts[partition].base)
            # Owned once the hook has run: a hook that raises runs again at the next poll, and
            # no record of the partition is returned before it succeeds (the port's promise).
            if self._on_assigned is not None:
                await self._on_assigned(gained)
            self._owned |= gained

    def _pending(self, max_records: int) -> list[LogRecord]:
        out: list[LogRecord] = []
        parts = self._log._topic(self._topic)
        for partition in sorted(self._owned):
            part = parts[partition]
            # Records expired under a slow consumer are skipped, as Kafka does.
            pos = max(self._positions[partition], part.base)
            if pos >= part.end:
                continue
            take = part.records[pos - part.base : pos - part.base + max_records - len(out)]
            out.extend(take)
            self._positions[partition] = pos + len(take)
            if len(out) >= max_records:
                break
        return out

    async def poll(self, max_records: int, timeout_ms: int) -> list[LogRecord]:
        changed = self._log._change_signal()
        await self._sync_assignment()
        records = self._pending(max_records)
        if records:
            return records
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout_ms / 1000)
        await self._sync_assignment()
        return self._pending(max_records)

    async def lag(self) -> dict[int, int]:
        committed = self._log._group(self._topic, self._group).committed
        parts = self._log._topic(self._topic)
        return {
            p: parts[p].end - max(committed.get(p, 0), parts[p].base) for p in sorted(self._owned)
        }

    async def commit(self, offsets: dict[int, int]) -> None:
        owned = {p: o for p, o in offsets.items() if p in self._owned}
        if owned:
            await self._log._commit(self._topic, self._group, owned)

    async def stop(self) -> None:
        members = self._log._group(self._topic, self._group).members
        if self in members:
            members.remove(self)
        if self._owned and self._on_revoked is not None:
            await self._on_revoked(set(self._owned))
        self._owned.clear()
        self._log._rebalance(self._topic, self._group)
        self._log._notify()


class InProcTail:
    """Every partition from its end at `start`, outside any group."""

    def __init__(self, log: InProcLog, topic: str) -> None:
        self._log = log
        self._topic = topic
        self._positions: list[int] = []

    async def start(self) -> None:
        self._positions = [part.end for part in self._log._topic(self._topic)]

    def _pending(self, max_records: int) -> list[LogRecord]:
        out: list[LogRecord] = []
        for partition, part in enumerate(self._log._topic(self._topic)):
            # Records every group committed past may be dropped under a slow tail: skip them.
            pos = max(self._positions[partition], part.base)
            take = part.records[pos - part.base : pos - part.base + max_records - len(out)]
            out.extend(take)
            self._positions[partition] = pos + len(take)
            if len(out) >= max_records:
                break
        return out

    async def poll(self, max_records: int, timeout_ms: int) -> list[LogRecord]:
        changed = self._log._change_signal()
        records = self._pending(max_records)
        if records:
            return records
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout_ms / 1000)
        return self._pending(max_records)

    async def stop(self) -> None:
        self._positions = []
