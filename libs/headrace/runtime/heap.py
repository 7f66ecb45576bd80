"""The garbage collector and a long-running service: what it costs, and keeping it small."""

from __future__ import annotations

import gc
import time
from typing import Any

from headrace.obs.metrics import observe_gc_pause


class _PauseTimer:
    """Times each pass of the cycle collector (`gc.callbacks` brackets it)."""

    def __init__(self) -> None:
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            observe_gc_pause(info["generation"], time.perf_counter() - self._began)


_PAUSES = _PauseTimer()


def time_collections() -> None:
    """Record every collection's pause in `headrace_gc_pause_seconds` (once per process)."""
    if _PAUSES not in gc.callbacks:
        gc.callbacks.append(_PAUSES)


def freeze_startup_heap() -> None:
    """Take what the process built to start (modules, drivers, clients, caches) out of the cycle
    collector's reach, once it is wired. A full collection walked all of it: 50-150 ms every few
    seconds on a busy executor or scheduler, a stall of every run it served (measured in
    benchmarks/sleep_lateness.md). Reference counting still frees any of it that is dropped;
    only garbage in cycles among it would stay, and startup makes little that becomes garbage."""
    gc.collect()
    gc.freeze()
