"""The fault schedule's workload (issue 16): per run, steps whose outputs are random tokens
recorded at the app, two parallel steps, a step that fails its first attempt, a durable sleep, a
step that sends an "early" event matching the run's wait, the wait (matched only by a later
"real" event), an invoke of a function with a concurrency limit, and a last step. The run's
output holds every step's output, so the checker can compare it with what was stored and
handed to the app."""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import datetime
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import inngest
from workload import Executions, Requests

from headrace.core.ids import step_hash

START = "fault/start"
GO = "fault/go"
MAIN_STEPS = ("a", "p1", "p2", "flaky", "early", "c")
CHILD_STEP = "limited"
LIMIT = 4
WAIT_TIMEOUT = datetime.timedelta(minutes=30)
# Hashes of the steps whose order the checker reads from the calls the app received.
HASH = {name: step_hash(name) for name in (*MAIN_STEPS, "nap", "go", "child")}
RETRY_S = 0.2


def sleep_s(n: int) -> int:
    return 1 + n % 3


@dataclass(frozen=True)
class Ack:
    name: str
    data: dict[str, Any]
    sent: float  # time.monotonic() when the first attempt was sent
    acked: float  # when the Event API acknowledged it


@dataclass
class EventLog:
    """Every event the Event API acknowledged, by id. A send is retried on 5xx and connection
    errors until acknowledged, with the SDKs' `x-inngest-event-id-seed`, so a retry of a send
    the API had accepted yields the same ids (deduplicated), not new events."""

    url: str
    acks: dict[str, Ack] = field(default_factory=dict)
    retries: int = 0

    async def send(self, *events: dict[str, Any]) -> list[str]:
        seed = f"{int(time.time() * 1000)},{base64.b64encode(os.urandom(10)).decode()}"
        sent = time.monotonic()
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                try:
                    response = await client.post(
                        f"{self.url}/e/key",
                        json=list(events),
                        headers={"x-inngest-event-id-seed": seed},
                    )
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code < 500:
                    break
                self.retries += 1
                await asyncio.sleep(RETRY_S)
        assert response.status_code == 200, response.text
        acked = time.monotonic()
        ids = [str(i) for i in response.json()["ids"]]
        for event_id, event in zip(ids, events, strict=True):
            self.acks.setdefault(event_id, Ack(event["name"], event["data"], sent, acked))
        return ids

    def of(self, name: str) -> dict[str, Ack]:
        return {i: a for i, a in self.acks.items() if a.name == name}


@dataclass
class Flaky:
    """First attempts of the flaky step, failed on purpose, by run."""

    failed: collections.Counter[str] = field(default_factory=collections.Counter)

    async def run(self, executions: Executions, run_id: str, attempt: int) -> str:
        if attempt == 0:
            await asyncio.sleep(0.02)
            self.failed[run_id] += 1
            raise RuntimeError("the first attempt fails on purpose")
        return await executions.run(run_id, "flaky")


def functions(
    client: inngest.Inngest, executions: Executions, events: EventLog, flaky: Flaky
) -> list[inngest.Function[Any]]:
    @client.create_function(
        fn_id="limited",
        trigger=inngest.TriggerEvent(event="fault/limited"),
        concurrency=[inngest.Concurrency(limit=LIMIT)],
        retries=20,
    )
    async def limited(ctx: inngest.Context) -> str:
        return await ctx.step.run(CHILD_STEP, lambda: executions.run(ctx.run_id, CHILD_STEP, 0.05))

    @client.create_function(fn_id="main", trigger=inngest.TriggerEvent(event=START), retries=20)
    async def main(ctx: inngest.Context) -> dict[str, Any]:
        key = str(ctx.event.data["key"])
        run = ctx.run_id

        async def early() -> str:
            # Acknowledged before this step returns, so before the wait below is declared:
            # the wait must never match it.
            [event_id] = await events.send({"name": GO, "data": {"key": key, "phase": "early"}})
            return event_id

        a = await ctx.step.run("a", lambda: executions.run(run, "a"))
        p1, p2 = await ctx.group.parallel(
            (
                lambda: ctx.step.run("p1", lambda: executions.run(run, "p1")),
                lambda: ctx.step.run("p2", lambda: executions.run(run, "p2")),
            )
        )
        flaked = await ctx.step.run("flaky", lambda: flaky.run(executions, run, ctx.attempt))
        await ctx.step.sleep("nap", datetime.timedelta(seconds=sleep_s(int(ctx.event.data["n"]))))
        early_id = await ctx.step.run("early", lambda: executions.run(run, "early", 0, early))
        go = await ctx.step.wait_for_event(
            "go", event=GO, if_exp=f'async.data.key == "{key}"', timeout=WAIT_TIMEOUT
        )
        child = await ctx.step.invoke("child", function=limited, data={"key": key})
        c = await ctx.step.run("c", lambda: executions.run(run, "c"))
        return {
            "a": a,
            "p1": p1,
            "p2": p2,
            "flaky": flaked,
            "early": early_id,
            "go": None if go is None else {"id": go.id, "phase": go.data.get("phase")},
            "child": child,
            "c": c,
        }

    return [main, limited]


def waiting(requests: Requests) -> dict[str, str]:
    """Runs whose wait the app has declared (a call arrived with `early` stored and `go` not):
    run id -> key."""
    found = {}
    for run_id, calls in list(requests.of.items()):
        last = calls[-1]
        if HASH["early"] in last.memos and HASH["go"] not in last.memos:
            found[run_id] = str(last.event.get("data", {}).get("key"))
    return found


@contextlib.asynccontextmanager
async def offering_go(events: EventLog, requests: Requests) -> AsyncIterator[None]:
    """While the block runs, send a "real" GO to each run whose wait the app has declared,
    again every few seconds until the wait is matched (an event sent while a runner is away
    is still matched when it is back; the repeats only cover a wait not yet stored)."""
    stop = asyncio.Event()
    offered: dict[str, float] = {}

    async def keep_offering() -> None:
        while not stop.is_set():
            now = time.monotonic()
            due = [k for k in waiting(requests).values() if now - offered.get(k, 0) > 5]
            for chunk in range(0, len(due), 100):
                batch = due[chunk : chunk + 100]
                await events.send(
                    *({"name": GO, "data": {"key": k, "phase": "real"}} for k in batch)
                )
                offered.update(dict.fromkeys(batch, now))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1)

    sender = asyncio.create_task(keep_offering())
    try:
        yield
    finally:
        stop.set()
        await sender


async def start_runs(events: EventLog, runs: int, tag: str) -> list[str]:
    ids: list[str] = []
    for chunk in range(0, runs, 100):
        batch = range(chunk, min(chunk + 100, runs))
        ids += await events.send(
            *({"name": START, "data": {"n": n, "key": f"{tag}-{n}"}} for n in batch)
        )
    return ids
