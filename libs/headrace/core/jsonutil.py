"""JSON encoding shared by every module: canonical bytes for what is signed and compared, and
the one decoder for JSON from outside, which refuses what headrace could not store."""

from __future__ import annotations

import math
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()

# Records are msgpack, whose integers span int64 and uint64; JSON floats out of the double
# range are already refused by msgspec ("Number out of range").
_MIN_INT = -(2**63)
_MAX_INT = 2**64 - 1
# An integer out of that range has at least 19 digits: bodies without such a run skip the walk.
# Found by mapping every digit to "0" and looking for 19 of them: 15-30 times faster than a
# regular expression, which mattered for megabyte step outputs (20 ms a megabyte).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19


class JsonRefused(msgspec.DecodeError):
    """Valid JSON headrace refuses (nested too deeply, an integer out of 64 bits): a
    `DecodeError`, so every caller that answers bad JSON with a 4xx answers this one too."""


def canonical(value: Any) -> bytes:
    """Compact JSON with sorted keys: the bytes headrace sends to apps and signs."""
    return _encoder.encode(value)


def loads(data: bytes | str) -> Any:
    return decode(data, Any)


def decode(data: bytes | str, type: type[T]) -> T:
    """Decode JSON as `type`; raises `msgspec.DecodeError` (a `ValueError`) for anything
    refused, with a reason a client can act on."""
    try:
        value = _decoder.decode(data) if type is Any else msgspec.json.decode(data, type=type)
    except RecursionError:
        raise JsonRefused("the JSON is nested too deeply") from None
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGIT_RUN in raw.translate(_DIGITS_AS_ZERO):
        check_storable(msgspec.to_builtins(value) if type is not Any else value)
    return value


def check_storable(value: Any) -> None:
    """Refuse a value that could not be stored and read back as JSON: an integer out of 64
    bits, an infinity or a NaN (a GraphQL literal such as `1e400` decodes to one)."""
    # Iterative: the value may be as deep as the decoder allows.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, int) and not _MIN_INT <= item <= _MAX_INT:
            raise JsonRefused("an integer does not fit in 64 bits")
        elif isinstance(item, float) and not math.isfinite(item):
            raise JsonRefused(f"{item} is not a number JSON can hold")


def dumps_text(value: Any) -> str:
    return _encoder.encode(value).decode()
