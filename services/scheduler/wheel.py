"""The timer wheel of the partitions a scheduler owns.

Timers live in the TimerStore; the wheel keeps those due within `window_ms` in memory and fires
them from there on time. A timer due inside the loaded window is added to memory as well as to
the store; later ones are picked up by the next refill. Overdue timers fire at once on takeover.

A partition's refill reads the store beside the firing, not in its way: a slow read (a Cassandra
timeout of seconds, say) held every partition's due timers for its length. The window moves on
before the read, so a timer added during it is kept in memory as it is
stored; a timer fired or cancelled during it is not taken back from what the read returns.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Awaitable, Callable

import structlog

from headrace.core.clock import Clock
from headrace.core.wake import sleep_until_woken
from headrace.messages.state import Timer
from headrace.obs.metrics import observe_timer_lateness
from headrace.ports.stores import TimerStore

log = structlog.get_logger(__name__)

Fire = Callable[[Timer], Awaitable[None]]


class TimerWheel:
    def __init__(
        self, store: TimerStore, clock: Clock, fire: Fire, *, window_ms: int = 60_000
    ) -> None:
        self._store = store
        self._clock = clock
        self._fire = fire
        self._window_ms = window_ms
        self._heap: list[tuple[int, str]] = []
        self._timers: dict[str, Timer] = {}
        self._loaded_until: dict[int, int] = {}
        # Per partition, one set per read of its timers in progress: the timers gone (fired,
        # cancelled) meanwhile, which the read may still return.
        self._gone_while_loading: dict[int, list[set[str]]] = {}
        # The refill task of each partition that has one.
        self._refills: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        # Held while a timer fires, so a partition is released only between fires: a timer the
        # next owner loads is never also being fired here.
        self._firing = asyncio.Lock()

    @property
    def pending(self) -> int:
        return len(self._timers)

    async def add(self, timer: Timer) -> None:
        """Store the timer; keep it in memory too when it falls inside the loaded window."""
        await self._store.put_timer(timer)
        if timer.fire_ms <= self._loaded_until.get(timer.partition, -1):
            self._remember(timer)

    async def cancel(self, partition: int, timer_id: str) -> None:
        await self._store.delete_timer(partition, timer_id)
        self._forget(partition, timer_id)

    def _forget(self, partition: int, timer_id: str) -> None:
        self._timers.pop(timer_id, None)
        for gone in self._gone_while_loading.get(partition, ()):
            gone.add(timer_id)

    async def own(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._loaded_until[partition] = -1
            await self._load(partition)

    async def release(self, partitions: set[int]) -> None:
        async with self._firing:
            self._drop(partitions)

    def _drop(self, partitions: set[int]) -> None:
        for partition in partitions:
            self._loaded_until.pop(partition, None)
        for timer_id, timer in list(self._timers.items()):
            if timer.partition in partitions:
                del self._timers[timer_id]

    async def _load(self, partition: int) -> None:
        before = self._loaded_until.get(partition)
        if before is None:
            return  # released
        until = self._clock.now_ms() + self._window_ms
        self._loaded_until[partition] = until
        gone: set[str] = set()
        reads = self._gone_while_loading.setdefault(partition, [])
        reads.append(gone)
        try:
            due = await self._store.timers_due(partition, until)
        except BaseException:
            if partition in self._loaded_until:
                # Those stored before the read are not in memory: the next refill reads them.
                self._loaded_until[partition] = before
            raise
        finally:
            reads.remove(gone)
            if not reads:
                del self._gone_while_loading[partition]
        if partition not in self._loaded_until:
            return  # released while reading: the next owner fires them
        for timer in due:
            if timer.timer_id not in gone:
                self._remember(timer)

    async def _refill(self, partition: int) -> None:
        try:
            await self._load(partition)
        except Exception:
            log.exception("refilling a partition's timers failed; retrying", partition=partition)
            await asyncio.sleep(0.5)
        finally:
            del self._refills[partition]
            self._wake.set()

    def _remember(self, timer: Timer) -> None:
        if timer.timer_id in self._timers:
            return
        self._timers[timer.timer_id] = timer
        heapq.heappush(self._heap, (timer.fire_ms, timer.timer_id))
        self._wake.set()

    async def run(self) -> None:
        """Fire due timers, and refill each owned partition's window as time passes."""
        try:
            await self._run()
        finally:
            for refill in list(self._refills.values()):
                refill.cancel()

    async def _run(self) -> None:
        while True:
            # Cleared first: what sets it meanwhile (a refill done, a timer added) wakes the
            # next round at once.
            self._wake.clear()
            now = self._clock.now_ms()
            for partition, until in list(self._loaded_until.items()):
                if until - now < self._window_ms // 2 and partition not in self._refills:
                    self._refills[partition] = asyncio.create_task(self._refill(partition))
            while self._heap and self._heap[0][0] <= self._clock.now_ms():
                fire_ms, timer_id = heapq.heappop(self._heap)
                timer = self._timers.get(timer_id)
                if timer is None or timer.fire_ms != fire_ms:
                    continue
                try:
                    async with self._firing:
                        if timer_id not in self._timers:
                            continue  # its partition was released while we waited
                        late_ms = self._clock.now_ms() - fire_ms
                        await self._fire(timer)
                        observe_timer_lateness(late_ms / 1000)
                        await self._store.delete_timer(timer.partition, timer_id)
                        self._forget(timer.partition, timer_id)
                except Exception:
                    log.exception("firing a timer failed; retrying", timer_id=timer_id)
                    heapq.heappush(self._heap, (fire_ms, timer_id))
                    await asyncio.sleep(0.5)
            await self._sleep()

    async def _sleep(self) -> None:
        next_due = self._heap[0][0] if self._heap else None
        refill_at = self._clock.now_ms() + self._window_ms // 4
        deadline = refill_at if next_due is None else min(next_due, refill_at)
        await sleep_until_woken(self._clock, deadline, self._wake)
