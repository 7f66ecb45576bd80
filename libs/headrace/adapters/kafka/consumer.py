"""One member of a consumer group on one topic, over aiokafka.

How the port's guarantees map onto Kafka's group protocol:
- aiokafka runs the protocol (joins, heartbeats, rebalances) in a background task and reports
  to a ConsumerRebalanceListener. The port runs the hooks from inside `poll`, as Kafka's Java
  client does, so a service never takes new records while its hooks run (the consume loop's
  `drain` relies on that). So the listener only queues each change for `poll`; for a
  revocation it also waits until `poll` (or `stop`) has run `on_revoked`, which holds the
  rebalance, and thus the next owner, until the old owner has committed. A member that does not
  poll within the rebalance timeout is dropped from the group, as in Kafka.
- aiokafka's protocol is eager: a rebalance takes every partition away and then hands them out
  again. So each rebalance runs `on_revoked` and then `on_assigned` for all of a member's
  partitions, also those it keeps; services reload those like any other.
- Partitions the group assigns stay paused until `on_assigned` has run: no record of a
  partition is returned before its hook.
- `commit` goes only to partitions the member owns (assigned, and `on_revoked` not finished).
  A commit the broker refuses because the group has moved on is dropped with a warning: its
  records will be delivered again to the next owner, which at-least-once delivery allows.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, IllegalStateError

from headrace.adapters.kafka.errors import translating
from headrace.adapters.kafka.security import KafkaSecurity, start_client
from headrace.ports.log import MAX_RECORD_BYTES, LogRecord, PartitionsCallback

if TYPE_CHECKING:
    from headrace.adapters.kafka.log import KafkaLog

log = structlog.get_logger(__name__)

# How much longer than its timeout a poll lets aiokafka take before giving up on the fetch:
# aiokafka's own timeout does not cover waiting for a rebalance to end.
_FETCH_GRACE_S = 0.05


@dataclass(frozen=True)
class GroupSettings:
    bootstrap_servers: str
    client_id: str
    # A member that stops heartbeating for this long (a crash) loses its partitions.
    session_timeout_ms: int
    heartbeat_interval_ms: int
    # How long the group waits for its members to hand over in a rebalance: to reach `poll`
    # and run `on_revoked` (drain in-flight records and commit).
    rebalance_timeout_ms: int
    security: KafkaSecurity


class _Listener(ConsumerRebalanceListener):
    """aiokafka's rebalance events, forwarded to the member (runs in aiokafka's group task)."""

    def __init__(self, member: KafkaConsumer) -> None:
        self._member = member

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._member._revocation_requested({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # No waiting here: aiokafka does not heartbeat until this returns.
        self._member._assignment_received({tp.partition for tp in assigned})


class KafkaConsumer:
    def __init__(
        self,
        log: KafkaLog,
        topic: str,
        group_id: str,
        settings: GroupSettings,
        *,
        on_assigned: PartitionsCallback | None,
        on_revoked: PartitionsCallback | None,
    ) -> None:
        self._log = log
        self._topic = topic
        self._kafka_topic = log.topic_name(topic)
        self._group_id = group_id
        self._settings = settings
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self._consumer: AIOKafkaConsumer | None = None
        self._owned: set[int] = set()  # on_assigned has run, on_revoked has not finished
        # The group's committed offset per owned partition, as last committed or read (lag).
        self._committed: dict[int, int] = {}
        self._unannounced: set[int] = set()  # assigned by the group, paused until on_assigned
        self._revocations: list[tuple[set[int], asyncio.Future[None]]] = []
        self._changed = asyncio.Event()  # wakes a poll when the listener queued a change
        self._hooks = asyncio.Lock()  # held while a hook runs, so hooks never overlap
        self._stop_lock = asyncio.Lock()
        self._stopping = False
        self._stopped = False

    @translating
    async def start(self) -> None:
        """Join the group in the background; `poll` returns records once partitions arrive.

        Not waiting for the first assignment here is deliberate: a second member's join
        needs the first member to hand over from inside its `poll`, so a caller that starts
        members one after another would otherwise wait out the rebalance timeout.
        """
        if self._consumer is not None or self._stopping:
            raise RuntimeError("a consumer can be started once")
        await self._log.ensure_topics([self._topic])
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=self._settings.client_id,
            group_id=self._group_id,
            enable_auto_commit=False,  # offsets move only through commit()
            auto_offset_reset="earliest",  # a group with no committed offset reads it all
            isolation_level="read_committed",  # never see records of aborted transactions
            max_partition_fetch_bytes=MAX_RECORD_BYTES,
            session_timeout_ms=self._settings.session_timeout_ms,
            heartbeat_interval_ms=self._settings.heartbeat_interval_ms,
            rebalance_timeout_ms=self._settings.rebalance_timeout_ms,
            # A JoinGroup request waits at the broker for up to the rebalance timeout.
            request_timeout_ms=max(40_000, self._settings.rebalance_timeout_ms + 5_000),
            **self._settings.security.client_options(),
        )
        try:
            await start_client(consumer, self._settings.bootstrap_servers, self._settings.security)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        consumer.subscribe([self._kafka_topic], listener=_Listener(self))

    def assignment(self) -> set[int]:
        return set(self._owned)

    @translating
    async def poll(self, max_records: int, timeout_ms: int) -> list[LogRecord]:
        """Run the hooks of pending group changes, then return records of owned partitions.

        An exception from a hook propagates, and the hook runs again at the next poll; until
        it succeeds, a revocation holds the rebalance and an assignment stays paused.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000
        consumer = self._consumer
        if consumer is None and not self._stopping:
            raise RuntimeError("poll before start")
        while consumer is not None and not self._stopping:
            self._changed.clear()
            await self._run_hooks()
            records = await self._fetch(consumer, max_records, deadline - loop.time())
            if records or (loop.time() >= deadline and not self._changed.is_set()):
                return records
        # Stopped: behave like an idle log instead of letting a polling loop spin.
        await asyncio.sleep(max(deadline - loop.time(), 0))
        return []

    @translating
    async def commit(self, offsets: dict[int, int]) -> None:
        """Commit the offsets of owned partitions; ignore the rest.

        A commit refused because the group rebalanced is dropped, not raised. Other failures
        raise translated (see .errors).
        """
        consumer = self._consumer
        mine = {
            TopicPartition(self._kafka_topic, partition): offset
            for partition, offset in offsets.items()
            if partition in self._owned
        }
        if consumer is None or not mine:
            return
        try:
            await consumer.commit(mine)
            self._committed.update({tp.partition: offset for tp, offset in mine.items()})
        except (CommitFailedError, IllegalStateError) as error:
            log.warning(
                "commit dropped: the group moved the partitions; their records will be "
                "delivered again",
                topic=self._topic,
                group=self._group_id,
                offsets={tp.partition: offset for tp, offset in mine.items()},
                error=str(error),
            )

    @translating
    async def lag(self) -> dict[int, int]:
        """End offset minus the group's committed offset, per owned partition.

        End offsets come from one ListOffsets request; a committed offset is asked of the
        group coordinator only when this member has not committed the partition itself.
        """
        consumer = self._consumer
        owned = sorted(self._owned)
        if consumer is None or not owned:
            return {}
        tps = [TopicPartition(self._kafka_topic, partition) for partition in owned]
        ends = await consumer.end_offsets(tps)
        out: dict[int, int] = {}
        for tp in tps:
            committed = self._committed.get(tp.partition)
            if committed is None:
                committed = await consumer.committed(tp)
                if committed is None:
                    committed = (await consumer.beginning_offsets([tp]))[tp]
                self._committed[tp.partition] = committed
            out[tp.partition] = max(ends[tp] - committed, 0)
        return out

    async def stop(self) -> None:
        """Run `on_revoked` for every owned partition, then leave the group."""
        self._stopping = True
        self._changed.set()  # a poll waiting for records returns now
        async with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
            try:
                await self._revoke_all()
                if self._consumer is not None:
                    await self._consumer.stop()  # LeaveGroup: the others rebalance at once
            finally:
                self._log._forget(self)

    # --- hooks ---

    async def _revocation_requested(self, partitions: set[int]) -> None:
        if self._stopping:
            async with self._hooks:  # stop() revokes everything itself: wait until it has
                return
        self._unannounced -= partitions  # never announced: nothing to undo
        if not partitions & self._owned and not self._hooks.locked():
            return
        done = asyncio.get_running_loop().create_future()
        self._revocations.append((partitions, done))
        self._changed.set()
        await done

    def _assignment_received(self, partitions: set[int]) -> None:
        if self._stopping or self._consumer is None:
            return
        # The eager protocol revokes everything before it assigns, so all of these are new;
        # an owned one would stay paused for good, hence the guard.
        partitions = partitions - self._owned
        for partition in partitions:
            with contextlib.suppress(IllegalStateError):
                self._consumer.pause(TopicPartition(self._kafka_topic, partition))
        self._unannounced |= partitions
        self._changed.set()

    async def _run_hooks(self) -> None:
        """Run the hooks for the changes the listener queued, in order.

        A hook that raises leaves its change queued, so the next poll runs it again; the
        error propagates to the caller of poll, as it would from the in-process log.
        """
        async with self._hooks:
            while not self._stopping:
                if self._revocations:
                    partitions, done = self._revocations[0]
                    self._unannounced -= partitions
                    lost = partitions & self._owned
                    if lost and self._on_revoked is not None:
                        await self._on_revoked(lost)
                    self._owned -= lost
                    for partition in lost:
                        self._committed.pop(partition, None)
                    if lost:
                        log.info(
                            "partitions revoked",
                            topic=self._topic,
                            group=self._group_id,
                            partitions=sorted(lost),
                        )
                    self._revocations.pop(0)
                    if not done.done():
                        done.set_result(None)
                elif self._unannounced:
                    gained = set(self._unannounced)
                    if self._on_assigned is not None:
                        await self._on_assigned(gained)
                    self._unannounced -= gained
                    self._owned |= gained
                    self._resume(gained)
                    log.info(
                        "partitions assigned",
                        topic=self._topic,
                        group=self._group_id,
                        partitions=sorted(gained),
                    )
                else:
                    return

    async def _revoke_all(self) -> None:
        async with self._hooks:
            lost = set(self._owned)
            self._unannounced.clear()
            if lost and self._on_revoked is not None:
                try:
                    await self._on_revoked(lost)
                except Exception:
                    log.exception(
                        "on_revoked failed while stopping; leaving the group anyway, so "
                        "uncommitted records will be delivered again",
                        topic=self._topic,
                        group=self._group_id,
                        partitions=sorted(lost),
                    )
            self._owned.clear()
            self._committed.clear()
            for _, done in self._revocations:
                if not done.done():
                    done.set_result(None)
            self._revocations.clear()

    def _resume(self, partitions: set[int]) -> None:
        if self._consumer is None:
            return
        for partition in partitions:
            # A partition the group has taken away meanwhile is no longer assigned.
            with contextlib.suppress(IllegalStateError):
                self._consumer.resume(TopicPartition(self._kafka_topic, partition))

    # --- records ---

    async def _fetch(
        self, consumer: AIOKafkaConsumer, max_records: int, timeout_s: float
    ) -> list[LogRecord]:
        """Records fetched within `timeout_s`, or [] early when the listener queued a change."""
        timeout_s = max(timeout_s, 0.0)
        fetch = asyncio.ensure_future(
            consumer.getmany(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        )
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait(
                {fetch, changed},
                timeout=timeout_s + _FETCH_GRACE_S,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            changed.cancel()
            if not fetch.done():
                # Safe: aiokafka awaits only before it takes records from its buffer, and
                # returns without awaiting after, so a cancelled fetch has taken nothing.
                fetch.cancel()
                await asyncio.wait({fetch})
        if fetch.cancelled():
            return []
        try:
            batches = fetch.result()
        except ConsumerStoppedError:
            return []
        return self._records(consumer, batches)

    def _records(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Any]]
    ) -> list[LogRecord]:
        out: list[LogRecord] = []
        for tp, batch in batches.items():
            if tp.partition not in self._owned:
                # Arrived between the group's assignment and the pause in the listener:
                # read it again once on_assigned has run.
                with contextlib.suppress(IllegalStateError):
                    consumer.seek(tp, batch[0].offset)
                continue
            out.extend(log_record(self._topic, record) for record in batch)
        return out


def log_record(topic: str, record: ConsumerRecord[bytes, bytes]) -> LogRecord:
    """A Kafka record as the log port's, under headrace's own topic name."""
    return LogRecord(
        topic,
        record.partition,
        record.offset,
        # Keys are headrace's account ids, or whatever an intake's producer chose.
        record.key.decode(errors="replace") if record.key is not None else "",
        record.value if record.value is not None else b"",
        tuple((name, value or b"") for name, value in record.headers),
        record.timestamp,
    )
