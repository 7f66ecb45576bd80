"""Send the example app's events to a headrace server and report how each run ended.

`python -m examples.demo.tour --url http://127.0.0.1:8288` (used by `scripts/demo`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import time
from typing import Any

import httpx

RUN_QUERY = "query($id: String!) { run(runID: $id) { status output } }"
EVENT_QUERY = "query($id: ID!) { event(query: {eventId: $id}) { functionRuns { id } } }"


def demo_events(now: datetime.datetime) -> list[dict[str, Any]]:
    charge_at = (now + datetime.timedelta(seconds=3)).isoformat()
    return [
        {"name": "media/uploaded", "data": {"video": "launch-keynote.mp4"}},
        {"name": "payments/requested", "data": {"payment_id": "pay-42", "charge_at": charge_at}},
        {
            "name": "imports/csv.uploaded",
            "data": {"rows": ["ann,1,a", "bob,2,b", "cy,3,c", "di,4,d", "ed,5,e"], "batch_size": 2},
        },
        {"name": "imports/csv.uploaded", "data": {"rows": ["ann,1,a", "broken row"]}},
    ]


async def _gql(client: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any]) -> Any:
    response = await client.post(f"{url}/v0/gql", json={"query": query, "variables": variables})
    return response.json().get("data") or {}


async def run_of(client: httpx.AsyncClient, url: str, event_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = (await _gql(client, url, EVENT_QUERY, {"id": event_id})).get("event") or {}
        runs = event.get("functionRuns") or []
        if runs:
            return str(runs[0]["id"])
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no run started for event {event_id}")


async def outcome(client: httpx.AsyncClient, url: str, run_id: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = (await _gql(client, url, RUN_QUERY, {"id": run_id})).get("run") or {}
        if run.get("status") not in (None, "QUEUED", "RUNNING"):
            return run["status"], json.loads(run["output"]) if run.get("output") else None
        await asyncio.sleep(0.2)
    raise TimeoutError(f"run {run_id} did not finish")


async def wait_for_app(client: httpx.AsyncClient, url: str, app_id: str, timeout: float) -> None:
    """Wait until the server is up and the app has registered its functions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            info = (await client.get(f"{url}/dev")).json()
            if any(fn["app_id"] == app_id for fn in info.get("functions", [])):
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"app {app_id} did not sync with {url}")


async def tour(url: str, timeout: float = 60.0, echo: bool = True) -> dict[str, Any]:
    """Send the demo events, approve the payment once it slept, and collect each outcome."""
    async with httpx.AsyncClient(timeout=30) as client:
        await wait_for_app(client, url, "headrace-demo", timeout)
        events = demo_events(datetime.datetime.now(datetime.UTC))
        response = await client.post(f"{url}/e/demo-key", json=events)
        response.raise_for_status()
        ids = response.json()["ids"]
        runs = {
            event["name"] + f"#{i}": await run_of(client, url, event_id, timeout)
            for i, (event, event_id) in enumerate(zip(events, ids, strict=True))
        }
        if echo:
            print("sent 4 events; runs started:")
            for label, run_id in runs.items():
                print(f"  {label:28} run {run_id}")
            print("the payment sleeps until its charge date, then waits for approval...")
        await asyncio.sleep(4)
        await client.post(
            f"{url}/e/demo-key",
            json={"name": "payments/approved", "data": {"payment_id": "pay-42", "approver": "ops"}},
        )
        results = {
            label: await outcome(client, url, run_id, timeout) for label, run_id in runs.items()
        }
    if echo:
        for label, (status, output) in results.items():
            print(f"  {label:28} {status:10} {json.dumps(output)}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8288")
    args = parser.parse_args()
    asyncio.run(tour(args.url))


if __name__ == "__main__":
    main()
