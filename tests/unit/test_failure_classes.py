"""What a consumer does with a failed record: outages are retried for as long as they last,
records that can never succeed are set aside, anything else is retried a bounded number of times.
Driver errors are judged as their adapter translates them (at its edge)."""

from __future__ import annotations

import msgspec
import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)
from cassandra import ConsistencyLevel, ReadFailure, WriteTimeout
from cassandra.cluster import NoHostAvailable

from headrace.adapters.cassandra.session import CassandraUnavailable
from headrace.adapters.cassandra.session import translate as cassandra_translate
from headrace.adapters.kafka.errors import translate as kafka_translate
from headrace.adapters.kafka.log import ProducerReset
from headrace.core.errors import InputError
from headrace.runtime.failures import Disposition, classify

QUORUM = {"consistency": ConsistencyLevel.QUORUM, "required_responses": 2, "received_responses": 1}


@pytest.mark.parametrize(
    "error",
    [
        cassandra_translate(NoHostAvailable("no host", {})),
        cassandra_translate(WriteTimeout("a replica was slow", write_type=0, **QUORUM)),
        cassandra_translate(ReadFailure("a replica failed", failures=1, **QUORUM)),
        CassandraUnavailable("NoHostAvailable"),
        kafka_translate(KafkaConnectionError("refused")),
        kafka_translate(KafkaTimeoutError()),
        kafka_translate(RequestTimedOutError()),
        ProducerReset("the Kafka producer was replaced"),
        OSError("connection reset"),
    ],
)
def test_an_outage_is_retried_until_it_ends(error: Exception) -> None:
    assert classify(error) is Disposition.RETRY


def test_a_record_that_cannot_succeed_is_dead_lettered() -> None:
    with pytest.raises(msgspec.DecodeError) as undecodable:
        msgspec.msgpack.decode(b"\xc1")
    assert classify(undecodable.value) is Disposition.DEAD_LETTER
    assert classify(InputError("no such function")) is Disposition.DEAD_LETTER
    assert classify(kafka_translate(MessageSizeTooLargeError())) is Disposition.DEAD_LETTER


def test_anything_else_is_retried_a_bounded_number_of_times() -> None:
    assert classify(KeyError("surprise")) is Disposition.RETRY_BOUNDED
    # A driver error nobody has judged yet, and one that reached here untranslated.
    assert classify(kafka_translate(TopicAuthorizationFailedError())) is Disposition.RETRY_BOUNDED
    assert classify(NoHostAvailable("no host", {})) is Disposition.RETRY_BOUNDED
