"""Items waiting for flow control, in virtual queues served fairly.

Each queue (one per concurrency key set, or per throttle key) is ordered by `order_ms`, the time
the item was enqueued minus its run's priority, then by arrival. The queues are served round
robin: a queue that was just served goes to the back, so a busy key cannot starve a quiet one.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self) -> None:
        self._queues: OrderedDict[str, list[tuple[int, int, str]]] = OrderedDict()
        # id -> (queue, heap entry, payload); a heap entry whose id maps elsewhere is stale.
        self._items: dict[str, tuple[str, tuple[int, int, str], T]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __iter__(self) -> Iterator[tuple[str, T]]:
        """Every waiting item as (id, payload), in no particular order."""
        return ((item_id, payload) for item_id, (_, _, payload) in self._items.items())

    def get(self, item_id: str) -> T | None:
        found = self._items.get(item_id)
        return None if found is None else found[2]

    def has_queue(self, queue: str) -> bool:
        """Whether anything waits in `queue` (a newcomer must then wait behind it)."""
        return queue in self._queues

    def push(self, queue: str, item_id: str, order_ms: int, seq: int, payload: T) -> None:
        if item_id in self._items:
            return
        entry = (order_ms, seq, item_id)
        self._items[item_id] = (queue, entry, payload)
        heapq.heappush(self._queues.setdefault(queue, []), entry)

    def remove(self, item_id: str) -> T | None:
        """Take an item out wherever it is (its heap entry is dropped when it reaches the head)."""
        found = self._items.pop(item_id, None)
        if found is None:
            return None
        self._clean(found[0])
        return found[2]

    def heads(self) -> list[tuple[str, str, T]]:
        """(queue, item id, payload) of each queue's first item, in the order to serve them."""
        out = []
        for queue, heap in self._queues.items():
            item_id = heap[0][2]
            out.append((queue, item_id, self._items[item_id][2]))
        return out

    def pop(self, queue: str) -> T:
        """Take the head of `queue`; the queue goes to the back of the service order."""
        _, _, item_id = heapq.heappop(self._queues[queue])
        _, _, payload = self._items.pop(item_id)
        self._clean(queue)
        if queue in self._queues:
            self._queues.move_to_end(queue)
        return payload

    def _clean(self, queue: str) -> None:
        heap = self._queues.get(queue)
        if heap is None:
            return
        while heap and not self._current(heap[0]):
            heapq.heappop(heap)
        if not heap:
            del self._queues[queue]

    def _current(self, entry: tuple[int, int, str]) -> bool:
        found = self._items.get(entry[2])
        return found is not None and found[1] == entry
