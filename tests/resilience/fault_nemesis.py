"""The fault schedule's nemesis (issue 16): from `random.Random(seed)`, a sequence of faults
on a cluster and a Kafka and Cassandra of the test's own, each recorded with its start and end:

- `kill`: SIGKILL any service (the ingest included), restarted 1-3 s later;
- `owner_twice`: SIGKILL the executor that holds a `work` partition (one of the seed's; runs
  are spread over all of them by run id), then, after the hand-over, its successor;
- `pause`: SIGSTOP a service for longer than the consumer session timeout, then SIGCONT;
- `kafka_restart`, `cassandra_restart`: stop the broker or the database for a while and start
  it again; every service must report not-ready while it is away and ready once it is back;
- `cut_kafka`, `cut_cassandra`: stall a runner's, scheduler's or executor's connections to
  Kafka or Cassandra (it runs in a network namespace of its own, `headrace.testing.netns`)
  for a while; it must report not-ready during the cut and ready after the heal."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from strikes import Strikes, label

from headrace.infra import InfraConfig, down, start_each
from headrace.testing.cluster import Cluster, ServiceProc
from headrace.testing.dev import eventually
from headrace.testing.netns import set_cut

KINDS = (
    "kill",
    "owner_twice",
    "pause",
    "kafka_restart",
    "cassandra_restart",
    "cut_kafka",
    "cut_cassandra",
)
SESSION_TIMEOUT_S = 10.0  # the services' consumer session timeout (adapters/kafka/log.py)
# After one fault of each kind, the rest are drawn with these weights: kills are quick, so a
# short schedule still strikes often (the kill schedule it replaced found a step run twice only
# after many kills), while a restart of Kafka or Cassandra costs a minute or more.
WEIGHTS = (4, 2, 1, 1, 1, 1, 1)
GAP_S = (2.0, 6.0)
RESTART_AFTER_S = (1.0, 3.0)
AWAY_S = (3.0, 10.0)  # how long Kafka or Cassandra is down, or a service cut off
OWNER_WAIT_S = 60.0
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Fault:
    kind: str
    gap_s: float  # after the previous fault ended
    pick: int  # which service (an index into the candidates)
    hold_s: float  # down, paused or cut this long; for kills, the restart delay


def plan(seed: int, seconds: float) -> list[Fault]:
    """Every kind once, in a random order, then kinds drawn by `WEIGHTS` until `seconds` of
    gaps and holds are used up (a fault's own recovery time comes on top)."""
    rng = random.Random(seed)
    kinds = list(KINDS)
    rng.shuffle(kinds)
    faults: list[Fault] = []
    used = 0.0
    while len(faults) < len(kinds) or used < seconds:
        if len(faults) < len(kinds):
            kind = kinds[len(faults)]
        else:
            kind = rng.choices(KINDS, WEIGHTS)[0]
        if kind in ("kill", "owner_twice"):
            hold = rng.uniform(*RESTART_AFTER_S)
        elif kind == "pause":
            hold = SESSION_TIMEOUT_S + rng.uniform(2.0, 5.0)
        else:
            hold = rng.uniform(*AWAY_S)
        fault = Fault(kind, round(rng.uniform(*GAP_S), 2), rng.randrange(1 << 16), round(hold, 2))
        faults.append(fault)
        if len(faults) > len(kinds):
            used += fault.gap_s + fault.hold_s
    return faults


async def readiness(cluster: Cluster) -> dict[str, bool]:
    async with httpx.AsyncClient(timeout=3) as client:
        states = {}
        for proc in cluster.procs:
            try:
                response = await client.get(f"http://127.0.0.1:{proc.port}/ready")
                states[label(proc)] = response.status_code == 200
            except httpx.HTTPError:
                states[label(proc)] = False
        return states


@dataclass
class Nemesis:
    cluster: Cluster
    infra: InfraConfig
    netns: dict[int, Path]  # the namespaced services' relay directories, by port
    t0: float
    partitions: int
    faults: list[dict[str, Any]] = field(default_factory=list)
    strikes: Strikes = field(init=False)

    def __post_init__(self) -> None:
        self.strikes = Strikes(self.cluster)

    def _at(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    async def run(self, plan: list[Fault], seconds: float) -> None:
        """The faults of `plan` in turn: every kind once, then more until `seconds` have passed
        since the first round ended (a restart of Kafka or Cassandra takes far longer than its
        hold, so the plan's sum of holds is no measure of time)."""
        round_over = 0.0
        for i, fault in enumerate(plan):
            if i == len(KINDS):
                round_over = time.monotonic()
            if i >= len(KINDS) and time.monotonic() - round_over >= seconds:
                return
            await asyncio.sleep(fault.gap_s)
            record: dict[str, Any] = {"kind": fault.kind, "start": self._at()}
            self.faults.append(record)
            await getattr(self, fault.kind)(fault, record)
            record["end"] = self._at()

    def counts(self) -> dict[str, int]:
        by_kind = dict.fromkeys(KINDS, 0)
        for fault in self.faults:
            by_kind[fault["kind"]] += 1
        return by_kind

    # --- kills and pauses ---

    async def _strike(self, victim: ServiceProc, restart_after_s: float) -> None:
        await self.strikes.up(victim)
        self.strikes.kill(victim, restart_after_s)

    async def settled(self) -> None:
        """Every service killed is up again."""
        await self.strikes.settled()

    async def kill(self, fault: Fault, record: dict[str, Any]) -> None:
        victim = self.cluster.procs[fault.pick % len(self.cluster.procs)]
        record["service"] = label(victim)
        await self._strike(victim, fault.hold_s)

    async def owner_twice(self, fault: Fault, record: dict[str, Any]) -> None:
        struck = []
        record["partition"] = partition = fault.pick % self.partitions
        for _ in range(2):
            victim = await self.strikes.holder(partition, OWNER_WAIT_S)
            struck.append({"service": label(victim), "held": sorted(self.strikes.held.of(victim))})
            await self._strike(victim, fault.hold_s)
        record["struck"] = struck

    async def pause(self, fault: Fault, record: dict[str, Any]) -> None:
        await self.settled()
        victim = self.cluster.procs[fault.pick % len(self.cluster.procs)]
        record["service"] = label(victim)
        assert victim.process is not None
        victim.process.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(fault.hold_s)
        finally:
            victim.process.send_signal(signal.SIGCONT)

    # --- Kafka and Cassandra away ---

    async def kafka_restart(self, fault: Fault, record: dict[str, Any]) -> None:
        await self._away("kafka", fault, record)

    async def cassandra_restart(self, fault: Fault, record: dict[str, Any]) -> None:
        await self._away("cassandra", fault, record)

    async def _away(self, component: str, fault: Fault, record: dict[str, Any]) -> None:
        """Stop `component`; every service must turn not-ready, then ready once it is back."""
        await self.settled()
        await asyncio.to_thread(down, self.infra, [component])
        stopped = time.monotonic()

        async def none_ready() -> bool:
            return not any((await readiness(self.cluster)).values())

        await eventually(
            none_ready, timeout=60, what=f"every service not ready without {component}"
        )
        record["all_not_ready_after_s"] = round(time.monotonic() - stopped, 2)
        await asyncio.sleep(max(0.0, fault.hold_s - (time.monotonic() - stopped)))
        [result] = (await asyncio.to_thread(start_each, self.infra, [component])).values()
        assert not isinstance(result, Exception), result
        back = time.monotonic()
        record["back"] = self._at()

        async def all_ready() -> bool:
            return all((await readiness(self.cluster)).values())

        await eventually(
            all_ready, timeout=READY_TIMEOUT_S, what=f"every service ready after {component}"
        )
        record["all_ready_after_s"] = round(time.monotonic() - back, 2)

    # --- cuts ---

    async def cut_kafka(self, fault: Fault, record: dict[str, Any]) -> None:
        await self._cut(self.infra.kafka_port, fault, record)

    async def cut_cassandra(self, fault: Fault, record: dict[str, Any]) -> None:
        await self._cut(self.infra.cassandra_port, fault, record)

    async def _cut(self, port: int, fault: Fault, record: dict[str, Any]) -> None:
        """Stall one namespaced service's connections to `port` for `hold_s` (long enough
        for its /ready to notice); it must turn not-ready, and ready again after the heal."""
        await self.settled()
        ports = sorted(self.netns)
        victim = next(p for p in self.cluster.procs if p.port == ports[fault.pick % len(ports)])
        record["service"] = label(victim)

        async def ready() -> bool:
            return (await readiness(self.cluster))[label(victim)]

        async def not_ready() -> bool:
            return not await ready()

        set_cut(self.netns[victim.port], {port})
        cut = time.monotonic()
        try:
            await eventually(not_ready, timeout=60, what=f"{label(victim)} not ready when cut")
            record["not_ready_after_s"] = round(time.monotonic() - cut, 2)
            await asyncio.sleep(max(0.0, fault.hold_s - (time.monotonic() - cut)))
        finally:
            set_cut(self.netns[victim.port], set())
        healed = time.monotonic()
        record["healed"] = self._at()
        await eventually(ready, timeout=READY_TIMEOUT_S, what=f"{label(victim)} ready again")
        record["ready_after_s"] = round(time.monotonic() - healed, 2)
