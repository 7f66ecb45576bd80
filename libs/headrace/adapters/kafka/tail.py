"""A reader of every partition of a topic from its end, outside any consumer group (the log
port's `tail`): no group id, so no commits and no rebalances; each tail reads all partitions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import ConsumerStoppedError

from headrace.adapters.kafka.consumer import log_record
from headrace.adapters.kafka.errors import translating
from headrace.adapters.kafka.security import KafkaSecurity, start_client
from headrace.ports.log import MAX_RECORD_BYTES, LogRecord

if TYPE_CHECKING:
    from headrace.adapters.kafka.log import KafkaLog


class KafkaTail:
    def __init__(
        self,
        log: KafkaLog,
        topic: str,
        bootstrap_servers: str,
        client_id: str,
        security: KafkaSecurity,
    ) -> None:
        self._log = log
        self._security = security
        self._topic = topic
        self._bootstrap = bootstrap_servers
        self._client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None

    @translating
    async def start(self) -> None:
        await self._log.ensure_topics([self._topic])
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=MAX_RECORD_BYTES,
            **self._security.client_options(),
        )
        try:
            await start_client(consumer, self._bootstrap, self._security)
            name = self._log.topic_name(self._topic)
            tps = [TopicPartition(name, p) for p in range(self._log.partitions)]
            consumer.assign(tps)
            # Seek to the end offsets now, not lazily at the first fetch: a record appended
            # after `start` returns must be read even when it comes before that fetch.
            for tp, end in (await consumer.end_offsets(tps)).items():
                consumer.seek(tp, end)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    @translating
    async def poll(self, max_records: int, timeout_ms: int) -> list[LogRecord]:
        if self._consumer is None:
            raise RuntimeError("poll before start")
        try:
            batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except ConsumerStoppedError:
            return []
        return [log_record(self._topic, r) for batch in batches.values() for r in batch]

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()
        self._log._forget_tail(self)
