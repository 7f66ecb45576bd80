"""Kafka's murmur2 hash (the Java client's `Utils.murmur2`), which its default partitioner
applies to a record's key: headrace places records with it itself, so the in-process log and
Kafka agree, and so topics written by an earlier version keep their accounts' partitions.

Written here rather than imported from the Kafka driver so that code above the adapters needs
no driver; tests/unit/test_murmur2.py checks it against aiokafka's and Kafka's own test values.
"""

from __future__ import annotations

import struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """The hash as an unsigned 32-bit integer (Java's is the same bits, signed)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for (k,) in struct.iter_unpack("<I", data[:whole]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[whole:]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h
