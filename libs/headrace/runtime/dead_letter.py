"""The dead-letter topic: records a consumer could not handle, set aside with the reason.

The record keeps its key, value and headers untouched (an operator can publish it again as it
was); headers added here say where it came from and why it was set aside.
"""

from __future__ import annotations

import msgspec

from headrace.ports.log import Log, LogRecord

MAX_REASON_BYTES = 1_024
# Every header this module adds starts so; the record's own headers come before them.
HEADER_PREFIX = "headrace.dead-letter."


class DeadLetters:
    def __init__(self, log: Log, topic: str, service: str) -> None:
        self._log = log
        self._topic = topic
        self._service = service

    async def put(self, record: LogRecord, err: BaseException) -> None:
        """Durable when this returns, like any publish; raises when the log does not answer."""
        reason = f"{type(err).__name__}: {err}".encode()[:MAX_REASON_BYTES]
        headers = [
            *record.headers,
            (f"{HEADER_PREFIX}reason", reason),
            (f"{HEADER_PREFIX}service", self._service.encode()),
            (f"{HEADER_PREFIX}topic", record.topic.encode()),
            (f"{HEADER_PREFIX}partition", str(record.partition).encode()),
            (f"{HEADER_PREFIX}offset", str(record.offset).encode()),
        ]
        await self._log.publish(self._topic, record.key, record.value, headers)


class DeadLetter(msgspec.Struct, frozen=True):
    """A record of the dead-letter topic, read back into what `DeadLetters.put` was given."""

    # As it was on its own topic: topic, partition, offset, key, value and its own headers.
    record: LogRecord
    service: str
    reason: str
    # When it was set aside (0 where the log keeps no time).
    dead_lettered_ms: int

    @classmethod
    def read(cls, letter: LogRecord) -> DeadLetter:
        # A record set aside twice carries two sets of these headers; the later set is this one.
        ours = {
            name.removeprefix(HEADER_PREFIX): value.decode(errors="replace")
            for name, value in letter.headers
            if name.startswith(HEADER_PREFIX)
        }
        own = tuple((n, v) for n, v in letter.headers if not n.startswith(HEADER_PREFIX))
        record = LogRecord(
            ours.get("topic", ""),
            int(ours.get("partition", -1)),
            int(ours.get("offset", -1)),
            letter.key,
            letter.value,
            own,
        )
        return cls(record, ours.get("service", ""), ours.get("reason", ""), letter.timestamp_ms)
