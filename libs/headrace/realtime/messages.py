"""A published realtime message: as it crosses the log between ingest replicas, and as a
subscriber's WebSocket receives it (the SDK's `Realtime.messageSchema`, inngest-js
src/components/realtime/types.ts)."""

from __future__ import annotations

import msgspec


class Published(msgspec.Struct, frozen=True):
    """One message on `channel`/`topic` of `account`; `data` is JSON."""

    account: str
    channel: str
    topic: str
    data: msgspec.Raw
    created_at: str
    run_id: str = ""


class _Wire(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str
    channel: str
    topic: str
    data: msgspec.Raw
    created_at: str
    run_id: str = ""


def to_wire(message: Published) -> bytes:
    """The frame subscribers get: a `data` message. The account stays out of it."""
    return msgspec.json.encode(
        _Wire(
            kind="data",
            channel=message.channel,
            topic=message.topic,
            data=message.data,
            created_at=message.created_at,
            run_id=message.run_id,
        )
    )


def encode(message: Published) -> bytes:
    return msgspec.json.encode(message)


def decode(raw: bytes) -> Published:
    return msgspec.json.decode(raw, type=Published)
