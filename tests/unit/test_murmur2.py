"""headrace's murmur2 places records exactly as Kafka's default partitioner would."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from headrace.core.murmur2 import murmur2


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


# From Kafka's own UtilsTest.testMurmur2 (clients/src/test/java/.../utils/UtilsTest.java).
@pytest.mark.parametrize(
    ("key", "java"),
    [
        ("21", -973932308),
        ("foobar", -790332482),
        ("a-little-bit-long-string", -985981536),
        ("a-little-bit-longer-string", -1486304829),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        ("abc", 479470107),
    ],
)
def test_it_gives_the_java_clients_values(key: str, java: int) -> None:
    assert _signed(murmur2(key.encode())) == java


@given(st.binary(max_size=64))
def test_it_agrees_with_the_kafka_driver_on_any_key(data: bytes) -> None:
    assert murmur2(data) & 0x7FFFFFFF == aiokafka_murmur2(data) & 0x7FFFFFFF
