"""A published realtime message: as it crosses the log between ingest replicas, and as a
subscriber's WebSocket receives it (the SDK's `Realtime.messageSchema`, inngest-js
src/components/realtime/types.ts).

A message is `data`, or part of a streamed publish (pkg/execution/realtime/api.go
`publishStream`): `datastream-start` and `datastream-end` carry the stream's id as their data,
each `chunk` between them a piece of the body as a JSON string and the id in `stream_id`. A
`raw` message is text teed from a Durable Endpoint's SSE stream (`api.go` `PostPublishTee`):
its data, a JSON string, goes to subscribers as the text itself, never as a frame of its own."""

from __future__ import annotations

import msgspec

KIND_DATA = "data"
KIND_STREAM_START = "datastream-start"
KIND_STREAM_END = "datastream-end"
KIND_CHUNK = "chunk"
KIND_RAW = "raw"
# The topic a Durable Endpoint's teed stream goes to, on its run's channel (streamingtypes.go).
STREAM_TOPIC = "$stream"


class Published(msgspec.Struct, frozen=True):
    """One message on `channel`/`topic` of `account`; `data` is JSON."""

    account: str
    channel: str
    topic: str
    data: msgspec.Raw
    created_at: str
    run_id: str = ""
    kind: str = KIND_DATA
    stream_id: str = ""


class _Wire(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str
    channel: str
    topic: str
    data: msgspec.Raw
    created_at: str
    run_id: str = ""
    stream_id: str = ""


def to_wire(message: Published) -> bytes:
    """The frame subscribers get. The account stays out of it; raw text goes as it is."""
    if message.kind == KIND_RAW:
        return msgspec.json.decode(message.data, type=str).encode()
    return msgspec.json.encode(
        _Wire(
            kind=message.kind,
            channel=message.channel,
            topic=message.topic,
            data=message.data,
            created_at=message.created_at,
            run_id=message.run_id,
            stream_id=message.stream_id,
        )
    )


def encode(message: Published) -> bytes:
    return msgspec.json.encode(message)


def decode(raw: bytes) -> Published:
    return msgspec.json.decode(raw, type=Published)
