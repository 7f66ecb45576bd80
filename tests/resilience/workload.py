"""The workload of the resilience tests: a function with steps, a sleep and a wait, whose step
bodies record every execution, so a step that ran twice can be counted."""

from __future__ import annotations

import asyncio
import collections
import datetime
import uuid
from dataclasses import dataclass, field

import inngest

from headrace.testing.dev import EngineHandle

START = "resilience/start"
GO = "resilience/go"


@dataclass
class Executions:
    """Every execution of every step body: (run id, step) -> the tokens it returned, in order."""

    tokens: dict[tuple[str, str], list[str]] = field(
        default_factory=lambda: collections.defaultdict(list)
    )

    in_flight: int = 0

    async def run(self, run_id: str, step: str) -> str:
        """A step body that takes a while, so a kill can catch calls in flight."""
        self.in_flight += 1
        try:
            await asyncio.sleep(0.1)
            token = f"{step}:{uuid.uuid4().hex}"
            self.tokens[(run_id, step)].append(token)
            return token
        finally:
            self.in_flight -= 1

    def twice(self) -> dict[tuple[str, str], int]:
        return {k: len(v) for k, v in self.tokens.items() if len(v) > 1}


def durable_function(client: inngest.Inngest, executions: Executions) -> inngest.Function[object]:
    """Steps, a sleep of 1-3 s and a wait for `GO` with the run's `n` (30 s timeout)."""

    @client.create_function(fn_id="durable", trigger=inngest.TriggerEvent(event=START), retries=20)
    async def durable(ctx: inngest.Context) -> list[object]:
        n = ctx.event.data["n"]
        a = await ctx.step.run("a", lambda: executions.run(ctx.run_id, "a"))
        await ctx.step.sleep("nap", datetime.timedelta(seconds=1 + int(n) % 3))
        b = await ctx.step.run("b", lambda: executions.run(ctx.run_id, "b"))
        go = await ctx.step.wait_for_event(
            "go", event=GO, if_exp=f"async.data.n == {n}", timeout=datetime.timedelta(seconds=30)
        )
        c = await ctx.step.run("c", lambda: executions.run(ctx.run_id, "c"))
        return [a, b, go is not None, c]

    return durable


async def check_no_stored_step_ran_again(
    engine: EngineHandle, run_ids: list[str], executions: Executions
) -> None:
    """A step's stored output is the token of its LAST execution: had the body run again after
    the memo was stored, a later token would exist (a memo is never replaced)."""
    for run_id in run_ids:
        stored = {
            h.step_name: h.output["data"]
            for h in await engine.history(run_id)
            if h.kind == "step.completed" and h.step_name in ("a", "b", "c")
        }
        assert set(stored) == {"a", "b", "c"}, (run_id, stored)
        for step, token in stored.items():
            assert executions.tokens[(run_id, step)][-1] == token, (run_id, step)
