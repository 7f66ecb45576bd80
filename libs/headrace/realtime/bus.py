"""Where a published message goes: straight to this process's subscribers (`headrace dev`), or
through a log topic that every ingest replica tails, so subscribers connected to any replica
get it (distributed mode). Each replica reads from the topic's end with a group-less tail:
a message reaches the subscribers connected when it arrives, at most once, and a replica that
was down misses what was published meanwhile."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import structlog

from headrace.ports.log import Log, Outgoing, Tail
from headrace.realtime.hub import Hub
from headrace.realtime.messages import Published, decode, encode

log = structlog.get_logger(__name__)

_POLL_RECORDS = 500
_POLL_TIMEOUT_MS = 1000


class LocalBus:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def publish(self, message: Published) -> None:
        self.hub.deliver(message)

    async def publish_many(self, messages: Sequence[Published]) -> None:
        for message in messages:
            self.hub.deliver(message)


class LogBus:
    def __init__(self, hub: Hub, log_port: Log, topic: str) -> None:
        self.hub = hub
        self._log = log_port
        self._topic = topic
        self._tail: Tail | None = None

    async def publish(self, message: Published) -> None:
        await self._log.publish(self._topic, message.account, encode(message))

    async def publish_many(self, messages: Sequence[Published]) -> None:
        """In order, in a few producer requests: a stream's pieces arrive by the hundred."""
        outgoing = [Outgoing(m.account, encode(m)) for m in messages]
        await self._log.publish_many(self._topic, outgoing)

    async def start(self) -> None:
        """Take the topic's end: messages published from now on reach this replica."""
        self._tail = self._log.tail(self._topic)
        await self._tail.start()

    async def run(self) -> None:
        """Hand each message the tail reads to the subscribers here (after `start`)."""
        assert self._tail is not None, "run before start"
        while True:
            for record in await self._tail.poll(_POLL_RECORDS, _POLL_TIMEOUT_MS):
                try:
                    message = decode(record.value)
                except msgspec.MsgspecError as err:
                    log.warning("unreadable realtime record skipped", error=str(err))
                    continue
                self.hub.deliver(message)

    async def stop(self) -> None:
        if self._tail is not None:
            await self._tail.stop()
            self._tail = None


Bus = LocalBus | LogBus
