"""The dead-letter topic: records a consumer could not handle, set aside with the reason.

The record keeps its key, value and headers untouched (an operator can publish it again as it
was); headers added here say where it came from and why it was set aside.
"""

from __future__ import annotations

from headrace.ports.log import Log, LogRecord

MAX_REASON_BYTES = 1_024


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
            ("headrace.dead-letter.reason", reason),
            ("headrace.dead-letter.service", self._service.encode()),
            ("headrace.dead-letter.topic", record.topic.encode()),
            ("headrace.dead-letter.partition", str(record.partition).encode()),
            ("headrace.dead-letter.offset", str(record.offset).encode()),
        ]
        await self._log.publish(self._topic, record.key, record.value, headers)
