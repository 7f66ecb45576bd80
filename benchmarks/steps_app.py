"""The app the step benchmarks drive (step_overhead.py, peer_comparison.py, scale_out.py): a
function of `step.run`s, trivial or waiting on I/O, written with the official `inngest` SDK, and
what it saw of each run, keyed by its event's `data.k`, on one clock (`time.perf_counter`)
whoever calls it."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import inngest

STEPS_EVENT = "bench/steps"
STEPS_FN = "steps"


class StepsSeen:
    """When each step body of a run started, and when its function's last line ran. The app
    writes from its own thread; `expect` and `ends` are for the loop that sends the runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.step_starts: dict[str, list[float]] = {}
        self._ended: dict[str, float] = {}
        self._waiters: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Future[float]]] = {}

    def step_started(self, key: str) -> None:
        with self._lock:
            self.step_starts.setdefault(key, []).append(time.perf_counter())

    def ended(self, key: str) -> None:
        now = time.perf_counter()
        with self._lock:
            self._ended.setdefault(key, now)
            waiter = self._waiters.pop(key, None)
        if waiter is not None:
            loop, future = waiter
            loop.call_soon_threadsafe(_resolve, future, now)

    def expect(self, keys: list[str]) -> list[asyncio.Future[float]]:
        """Futures of the runs' ends, made before their events are sent."""
        loop = asyncio.get_running_loop()
        futures = []
        with self._lock:
            for key in keys:
                future: asyncio.Future[float] = loop.create_future()
                if key in self._ended:
                    future.set_result(self._ended[key])
                else:
                    self._waiters[key] = (loop, future)
                futures.append(future)
        return futures

    def gaps_ms(self, key: str) -> list[float]:
        """Between the starts of consecutive step bodies of the run."""
        return [(b - a) * 1000 for a, b in itertools.pairwise(self.step_starts[key])]


def _resolve(future: asyncio.Future[float], at: float) -> None:
    if not future.done():
        future.set_result(at)


async def ends(futures: list[asyncio.Future[float]], timeout: float, what: str) -> list[float]:
    """The runs' end times; an error that says how many ended when some did not in time."""
    # asyncio.wait, not wait_for: a timeout must leave the futures as they are to be counted.
    done, pending = await asyncio.wait(futures, timeout=timeout)
    if pending:
        raise RuntimeError(f"{what}: {len(done)} of {len(futures)} runs ended in {timeout:g} s")
    return [future.result() for future in futures]


def steps_function(
    client: inngest.Inngest,
    steps: int,
    seen: StepsSeen,
    *,
    wait_s: float = 0.0,
    fn_id: str = STEPS_FN,
    event: str = STEPS_EVENT,
) -> inngest.Function[int]:
    """`steps` `step.run`s, each an async body that waits `wait_s` on I/O (`asyncio.sleep`, on
    the app's event loop, so a waiting step holds no thread and the app takes many calls at
    once) or, by default, returns at once."""

    @client.create_function(fn_id=fn_id, trigger=inngest.TriggerEvent(event=event))
    async def steps_fn(ctx: inngest.Context) -> int:
        key = str(ctx.event.data["k"])

        async def step() -> int:
            seen.step_started(key)
            if wait_s:
                await asyncio.sleep(wait_s)
            return 1

        total = sum([await ctx.step.run(f"s{i}", step) for i in range(steps)])
        seen.ended(key)
        return total

    return steps_fn
