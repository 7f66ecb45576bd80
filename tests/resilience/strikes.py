"""Killing services of a cluster and starting them again, and which `work` partitions each
executor process holds (read from its log), for the tests that strike a partition's owner twice
in a row: the kill schedule and the fault schedule's nemesis."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from headrace.testing.cluster import Cluster, ServiceProc


def label(proc: ServiceProc) -> str:
    return f"{proc.name}-{proc.port}"


@dataclass
class HeldPartitions:
    cluster: Cluster
    # Where each service's current process began writing its log (logs are appended across
    # restarts), and how far its log has been read, with what it held by then.
    _log_from: dict[int, int] = field(default_factory=dict)
    _read: dict[int, tuple[int, set[int]]] = field(default_factory=dict)

    def log(self, proc: ServiceProc) -> Path:
        return self.cluster.log_dir / f"{label(proc)}.log"

    def restarting(self, proc: ServiceProc) -> None:
        """`proc` is about to start again: read only what its next process writes."""
        self._log_from[proc.port] = self.log(proc).stat().st_size
        self._read.pop(proc.port, None)

    def of(self, proc: ServiceProc) -> set[int]:
        """The `work` partitions the executor's current process holds, by its log."""
        offset, held = self._read.get(proc.port, (self._log_from.get(proc.port, 0), set()))
        with self.log(proc).open("rb") as log:
            log.seek(offset)
            text = log.read()
        complete = text.rfind(b"\n") + 1  # a line still being written is read next time
        for line in text[:complete].splitlines():
            if b'"partitions ' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("group") != self.cluster.group("executor"):
                continue
            if entry.get("event") == "partitions assigned":
                held |= set(entry["partitions"])
            elif entry.get("event") == "partitions revoked":
                held -= set(entry["partitions"])
        self._read[proc.port] = (offset + complete, held)
        return set(held)


@dataclass
class Strikes:
    """SIGKILLs, each followed by a restart after a while; one service at a time per port."""

    cluster: Cluster
    held: HeldPartitions = field(init=False)
    _restarts: dict[int, asyncio.Task[None]] = field(default_factory=dict)  # by port

    def __post_init__(self) -> None:
        self.held = HeldPartitions(self.cluster)

    def restarting(self, proc: ServiceProc) -> bool:
        return proc.port in self._restarts

    async def up(self, proc: ServiceProc) -> None:
        """Wait until `proc`, if it is restarting, is up again (killing it then is the strike)."""
        pending = self._restarts.get(proc.port)
        if pending is not None:
            await pending

    def kill(self, proc: ServiceProc, restart_after_s: float) -> None:
        self.cluster.kill(proc)
        self._restarts[proc.port] = asyncio.create_task(self._restart(proc, restart_after_s))

    async def _restart(self, proc: ServiceProc, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self.held.restarting(proc)
        try:
            await self.cluster.restart(proc)
        finally:
            self._restarts.pop(proc.port, None)

    async def holder(self, partition: int, wait_s: float) -> ServiceProc:
        """The executor holding `work` partition `partition`; between owners (a rebalance), the
        next one. `wait_s` without one is a failure of the test's own reading (the logs say who
        holds what), never something to wait out."""
        deadline = time.monotonic() + wait_s
        while True:
            for proc in self.cluster.of("executor"):
                if not self.restarting(proc) and partition in self.held.of(proc):
                    return proc
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no executor logged holding partition {partition} for {wait_s:.0f} s"
                    f" (logs in {self.cluster.log_dir})"
                )
            await asyncio.sleep(0.1)

    async def settled(self) -> None:
        """Every service killed is up again."""
        while self._restarts:
            await asyncio.gather(*self._restarts.values())
