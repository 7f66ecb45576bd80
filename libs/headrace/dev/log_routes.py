"""The dev server's window on its embedded log, standing in for a Kafka client.

No Kafka client reaches a log inside this process, so a producer outside it publishes to an
intake topic with `POST /dev/intake/{name}`, and `GET /dev/dead-letters` shows the records the
consumers set aside. The first is a produce, not an Event API: it checks nothing in the record
(the intake reading the topic does, as with Kafka, and dead-letters what it refuses).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headrace.adapters.inproc.log import InProcLog
from headrace.api.context import ApiContext, acting
from headrace.api.v1 import parse_limit
from headrace.core.durations import format_iso_ms
from headrace.messages.topics import Topics
from headrace.ports.log import MAX_RECORD_BYTES
from headrace.runtime.dead_letter import DeadLetter
from headrace.services.ingest.intake import EVENT_KEY_HEADER

DEAD_LETTERS_LIMIT = 50
DEAD_LETTERS_MAX = 1000


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def dev_log_routes(
    ctx: ApiContext, log: InProcLog, topics: Topics, intake_topics: Sequence[str]
) -> list[BaseRoute]:
    """Both go through `acting`: open on a dev server, and with `--signing-key` (a server run as
    in production) they want it, as `/dev` does. A produce stands in for Kafka, whose producers
    a production cluster authenticates; the record's event key is no such check (without
    `--event-key` any key is taken), and dead letters hold the data of refused events."""

    async def produce(_: ApiContext, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in intake_topics:
            configured = ", ".join(intake_topics) or "none"
            return _error(
                404,
                f"no intake topic {name!r}; this server reads: {configured} "
                "(headrace dev --intake-topics)",
            )
        body, size = await _body_within(request, MAX_RECORD_BYTES)
        if body is None:
            return _error(
                413,
                f"the record is {size} bytes, over the limit of {MAX_RECORD_BYTES} bytes of a "
                "record on the log; split its events over several records",
            )
        # Starlette decodes header values as latin-1: encoding back gives the bytes as sent.
        event_key = request.headers.get(EVENT_KEY_HEADER)
        headers = [(EVENT_KEY_HEADER, event_key.encode("latin-1"))] if event_key is not None else []
        key = request.query_params.get("key")
        record = await log.append(
            topics.intake(name), uuid.uuid4().hex if key is None else key, body, headers
        )
        return JSONResponse(
            {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            status_code=202,
        )

    async def dead_letters(_: ApiContext, request: Request) -> Response:
        try:
            limit = parse_limit(
                request.query_params.get("limit"), DEAD_LETTERS_LIMIT, DEAD_LETTERS_MAX
            )
        except ValueError:
            return _error(400, "limit must be an integer")
        letters = [DeadLetter.read(r) for r in log.newest(topics.dead_letter, limit)]
        return JSONResponse({"data": [_letter_json(letter) for letter in letters]})

    return [
        Route("/dev/intake/{name}", acting(ctx, produce), methods=["POST"]),
        Route("/dev/dead-letters", acting(ctx, dead_letters), methods=["GET"]),
    ]


async def _body_within(request: Request, limit: int) -> tuple[bytes | None, int]:
    """The body and its size; None past `limit`. Read to the end either way (keeping nothing
    past the limit), so the client gets the answer rather than a connection reset mid-upload."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    return (b"".join(chunks) if size <= limit else None), size


def _bytes_json(data: bytes) -> dict[str, str]:
    """Bytes as text when they are UTF-8, else as base64; the key says which."""
    try:
        return {"text": data.decode()}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def _letter_json(letter: DeadLetter) -> dict[str, object]:
    record = letter.record
    return {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "service": letter.service,
        "reason": letter.reason,
        "key": record.key,
        "value": _bytes_json(record.value),
        "headers": [{"name": name, **_bytes_json(value)} for name, value in record.headers],
        "dead_lettered_at": (
            format_iso_ms(letter.dead_lettered_ms) if letter.dead_lettered_ms else None
        ),
    }
