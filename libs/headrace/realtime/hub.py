"""The subscribers connected to this process, and handing each message to those of its
account, channel and topic."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from headrace.realtime.messages import Published

# Messages waiting for one subscriber's connection. A subscriber this far behind is cut off (its
# WebSocket closed) rather than let one slow reader hold the process's memory.
QUEUE_LIMIT = 1000


@dataclass(eq=False)
class Subscription:
    account: str
    topics: frozenset[tuple[str, str]]
    # Framed by the connection: a WebSocket and a server-sent event stream frame differently.
    frames: asyncio.Queue[Published] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_LIMIT)
    )
    # Set when a message did not fit: the connection is closed, the subscriber reconnects.
    overflowed: bool = False


class Hub:
    def __init__(self) -> None:
        self._by_topic: dict[tuple[str, str, str], set[Subscription]] = {}

    def subscribe(self, account: str, topics: Iterable[tuple[str, str]]) -> Subscription:
        sub = Subscription(account, frozenset(topics))
        for channel, topic in sub.topics:
            self._by_topic.setdefault((account, channel, topic), set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        for channel, topic in sub.topics:
            key = (sub.account, channel, topic)
            subs = self._by_topic.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_topic[key]

    def deliver(self, message: Published) -> int:
        """Queue `message` for its subscribers here; how many got it."""
        subs = self._by_topic.get((message.account, message.channel, message.topic))
        if not subs:
            return 0
        delivered = 0
        for sub in subs:
            try:
                sub.frames.put_nowait(message)
                delivered += 1
            except asyncio.QueueFull:
                sub.overflowed = True
        return delivered
