"""What a consumer does with a failed record: outages are retried for as long as they last,
records that can never succeed are set aside, anything else is retried a bounded number of times."""

from __future__ import annotations

import msgspec
import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, RequestTimedOutError
from cassandra.cluster import NoHostAvailable

from headrace.adapters.cassandra.session import CassandraUnavailable
from headrace.adapters.kafka.log import ProducerReset
from headrace.core.errors import InputError
from headrace.runtime.failures import Disposition, classify


@pytest.mark.parametrize(
    "error",
    [
        NoHostAvailable("no host", {}),
        CassandraUnavailable("NoHostAvailable"),
        KafkaConnectionError("refused"),
        KafkaTimeoutError(),
        RequestTimedOutError(),
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


def test_anything_else_is_retried_a_bounded_number_of_times() -> None:
    assert classify(KeyError("surprise")) is Disposition.RETRY_BOUNDED
