"""What the dashboard's pages show, read through the store ports only."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from headrace.messages.model import Event, EventHead
from headrace.messages.state import AppRecord, FunctionRecord, RunState
from headrace.ports.stores import Stores

# The runs page reads this many of the newest runs, then filters them by status and time.
RUNS_SCANNED = 1000
RUNS_SHOWN = 100
EVENTS_SHOWN = 50
STATUSES = ("queued", "running", "completed", "failed", "cancelled")
SINCE_MS = {"15m": 15 * 60_000, "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000}


@dataclass(frozen=True)
class RunFilter:
    fn_id: str = ""
    status: str = ""
    since: str = ""

    @classmethod
    def parse(cls, params: dict[str, str]) -> RunFilter:
        """Unknown values are ignored, as a filter that matches everything."""
        status = params.get("status", "")
        since = params.get("since", "")
        return cls(
            fn_id=params.get("fn", ""),
            status=status if status in STATUSES else "",
            since=since if since in SINCE_MS else "",
        )

    def query(self) -> str:
        pairs = [("fn", self.fn_id), ("status", self.status), ("since", self.since)]
        return "&".join(f"{k}={v}" for k, v in pairs if v)


async def runs(stores: Stores, account_id: str, wanted: RunFilter, now_ms: int) -> list[RunState]:
    found = await stores.list_runs(account_id, limit=RUNS_SCANNED, fn_id=wanted.fn_id or None)
    oldest = now_ms - SINCE_MS[wanted.since] if wanted.since else 0
    return [
        run
        for run in found
        if (not wanted.status or run.status == wanted.status) and run.started_ms >= oldest
    ][:RUNS_SHOWN]


@dataclass(frozen=True)
class EventRow:
    # A list's rows hold heads only: its page never decodes a payload it does not show.
    event: Event | EventHead
    runs: list[RunState]


async def event_rows(stores: Stores, events: Sequence[Event | EventHead]) -> list[EventRow]:
    linked = await asyncio.gather(*(stores.runs_for_event(e.internal_id) for e in events))
    # Each run read once: the events of a batch all link to its one run, whose state holds
    # every one of their payloads (a page of six 1 MiB events read 36 MiB, for 15 s).
    distinct = list(dict.fromkeys(run_id for run_ids in linked for run_id in run_ids))
    found = dict(zip(distinct, await asyncio.gather(*map(stores.get_run, distinct)), strict=True))
    return [
        EventRow(event, [run for run_id in run_ids if (run := found[run_id]) is not None])
        for event, run_ids in zip(events, linked, strict=True)
    ]


@dataclass(frozen=True)
class AppView:
    app: AppRecord
    functions: list[FunctionRecord]


async def apps(stores: Stores, account_id: str) -> list[AppView]:
    functions = await stores.list_functions(account_id)
    return [
        AppView(app, [fn for fn in functions if fn.app_id == app.app_id])
        for app in await stores.list_apps(account_id)
    ]
