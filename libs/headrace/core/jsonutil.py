"""JSON encoding shared by every module: canonical bytes for what is signed and compared."""

from __future__ import annotations

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()


def canonical(value: Any) -> bytes:
    """Compact JSON with sorted keys: the bytes headrace sends to apps and signs."""
    return _encoder.encode(value)


def loads(data: bytes | str) -> Any:
    return _decoder.decode(data)


def dumps_text(value: Any) -> str:
    return _encoder.encode(value).decode()
