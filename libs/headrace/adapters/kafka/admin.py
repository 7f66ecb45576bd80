"""Topic creation: every topic with the same partition count and replication factor.

The count matters beyond capacity: records are keyed by account and placed with Kafka's
partitioner, so an account lands on the same partition number in every topic only if every topic
has the same count (see `headrace.messages.topics`). A topic that exists with another count would
silently split an account's records between owners, so it is an error, never adjusted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError, for_code

from headrace.adapters.kafka.security import PLAINTEXT, KafkaSecurity, start_client
from headrace.ports.log import MAX_RECORD_BYTES

READY_TIMEOUT_S = 30.0


# Brokers refuse records larger than their topic allows.
TOPIC_CONFIGS = {"max.message.bytes": str(MAX_RECORD_BYTES)}


class TopicError(Exception):
    """A topic could not be created or does not have the configured shape.

    `retriable` says whether trying again can help (the broker was busy, metadata was late) or
    the configuration or the cluster must change first (another partition count, a replication
    factor the cluster cannot give).
    """

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


async def ensure_topics(
    bootstrap_servers: str,
    names: Collection[str],
    *,
    partitions: int,
    replication_factor: int,
    client_id: str,
    security: KafkaSecurity = PLAINTEXT,
    configs: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Create the topics of `names` that are missing; check the count of those that exist.

    `configs` adds topic configs (name -> {config: value}) to the topics created here; a topic
    that exists keeps its own (changing it is an operator's decision).

    Returns once every topic is visible in the cluster metadata with a leader for each
    partition, so producers and consumers started next find it. Safe to run concurrently from
    several processes: a topic another process created first is checked like any other.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id=client_id, **security.client_options()
    )
    try:
        await start_client(admin, bootstrap_servers, security)
        missing = []
        for name, parts in (await _describe(admin, names)).items():
            if parts:
                _check_count(name, len(parts), partitions)
            else:
                missing.append(name)
        if missing:
            await _create(admin, missing, partitions, replication_factor, configs or {})
            await _wait_ready(admin, missing, partitions)
    finally:
        await admin.close()


async def _describe(admin: AIOKafkaAdminClient, names: Collection[str]) -> dict[str, list[Any]]:
    """`topic -> its partitions' metadata`, an empty list for a topic that does not exist."""
    found: dict[str, list[Any]] = {}
    for topic in await admin.describe_topics(list(names)):
        code = topic["error_code"]
        if code == UnknownTopicOrPartitionError.errno:
            found[topic["topic"]] = []
        elif code != 0:
            error = for_code(code)
            raise TopicError(
                f"describing topic {topic['topic']} failed: {error.__name__}",
                retriable=error.retriable,
            )
        else:
            found[topic["topic"]] = topic["partitions"]
    return found


def _check_count(name: str, actual: int, wanted: int) -> None:
    if actual != wanted:
        raise TopicError(
            f"topic {name} has {actual} partitions but headrace is configured for {wanted}; "
            "every topic needs the same count so that an account's records share a partition "
            "number. Not retriable: change the configured count or recreate the topic.",
            retriable=False,
        )


async def _create(
    admin: AIOKafkaAdminClient,
    names: list[str],
    partitions: int,
    replication_factor: int,
    configs: Mapping[str, Mapping[str, str]],
) -> None:
    response = await admin.create_topics(
        [
            NewTopic(
                name,
                partitions,
                replication_factor,
                topic_configs={**TOPIC_CONFIGS, **configs.get(name, {})},
            )
            for name in names
        ]
    )
    for name, code, message in response.topic_errors:
        # Another process may have created it in between; _wait_ready checks its count.
        if code in (0, TopicAlreadyExistsError.errno):
            continue
        error = for_code(code)
        advice = "retry later" if error.retriable else "not retriable: fix the configuration"
        raise TopicError(
            f"creating topic {name} ({partitions} partitions, replication factor "
            f"{replication_factor}) failed: {error.__name__}: {message}; {advice}",
            retriable=error.retriable,
        )


async def _wait_ready(admin: AIOKafkaAdminClient, names: list[str], partitions: int) -> None:
    """Wait until metadata shows every partition of `names` with a leader."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        pending = []
        for name, parts in (await _describe(admin, names)).items():
            if parts:
                _check_count(name, len(parts), partitions)
            if not parts or any(part["leader"] < 0 for part in parts):
                pending.append(name)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TopicError(
                f"topics {pending} were created but have no leader for every partition after "
                f"{READY_TIMEOUT_S:.0f} s; retry later",
                retriable=True,
            )
        await asyncio.sleep(0.05)
