"""Send the example app's events to a headrace server and report how each run ended.

Events go through the Event API, and (on `headrace dev`) also as records of the intake topic,
posted with `/dev/intake/intake` as a Kafka producer would publish them: one good record, and a
bad one that the intake sets aside in the dead-letter topic.

`python -m examples.demo.tour --url http://127.0.0.1:8288` (used by `scripts/demo`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")

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


def intake_events(tag: str) -> list[dict[str, Any]]:
    """Two more of the demo's events, for one intake record; their ids (the producer's own)
    let the tour find them among the events."""
    return [
        {"id": f"{tag}-media", "name": "media/uploaded", "data": {"video": "intake-teaser.mp4"}},
        {
            "id": f"{tag}-csv",
            "name": "imports/csv.uploaded",
            "data": {"rows": ["fay,6,f", "gus,7,g"], "batch_size": 2},
        },
    ]


async def poll(check: Callable[[], Awaitable[T | None]], timeout: float, failure: str) -> T:
    """Call `check` every 0.2 s until it answers something other than None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = await check()
        if answer is not None:
            return answer
        await asyncio.sleep(0.2)
    raise TimeoutError(failure)


async def _gql(client: httpx.AsyncClient, url: str, query: str, variables: dict[str, Any]) -> Any:
    response = await client.post(f"{url}/v0/gql", json={"query": query, "variables": variables})
    return response.json().get("data") or {}


async def run_of(client: httpx.AsyncClient, url: str, event_id: str, timeout: float) -> str:
    async def check() -> str | None:
        event = (await _gql(client, url, EVENT_QUERY, {"id": event_id})).get("event") or {}
        runs = event.get("functionRuns") or []
        return str(runs[0]["id"]) if runs else None

    return await poll(check, timeout, f"no run started for event {event_id}")


async def outcome(client: httpx.AsyncClient, url: str, run_id: str, timeout: float) -> Any:
    async def check() -> Any:
        run = (await _gql(client, url, RUN_QUERY, {"id": run_id})).get("run") or {}
        if run.get("status") in (None, "QUEUED", "RUNNING"):
            return None
        return run["status"], json.loads(run["output"]) if run.get("output") else None

    return await poll(check, timeout, f"run {run_id} did not finish")


async def internal_id(
    client: httpx.AsyncClient, url: str, event: dict[str, Any], timeout: float
) -> str:
    """headrace's id of the event the producer sent with id `event["id"]`, once it is in."""

    async def check() -> str | None:
        params = {"name": event["name"], "limit": "100"}
        listed = (await client.get(f"{url}/v1/events", params=params)).json()["data"]
        found = [e["internal_id"] for e in listed if e["id"] == event["id"]]
        return str(found[0]) if found else None

    return await poll(check, timeout, f"event {event['id']} of the intake record did not arrive")


async def dead_letter(
    client: httpx.AsyncClient, url: str, where: dict[str, Any], timeout: float
) -> str:
    """The reason the record at `where` (its topic, partition, offset) was set aside."""

    async def check() -> str | None:
        for letter in (await client.get(f"{url}/dev/dead-letters")).json()["data"]:
            if all(letter[k] == where[k] for k in ("topic", "partition", "offset")):
                return str(letter["reason"])
        return None

    return await poll(check, timeout, f"the bad record {where} was not set aside")


async def publish_intake(
    client: httpx.AsyncClient, url: str, timeout: float, echo: bool
) -> tuple[dict[str, str], dict[str, Any]]:
    """Post a record of two events and a bad record to the intake topic; answer the runs of
    the two events by label, and where the bad record went."""
    events = intake_events(f"tour-{uuid.uuid4().hex[:12]}")
    key = {"event-key": "demo-key"}
    good = await client.post(f"{url}/dev/intake/intake", json=events, headers=key)
    good.raise_for_status()
    # Cut short: not JSON. The intake refuses the record whole and sets it aside.
    bad = await client.post(f"{url}/dev/intake/intake", content=b'[{"name": "media/', headers=key)
    bad.raise_for_status()
    runs = {
        f"intake {event['name']}": await run_of(
            client, url, await internal_id(client, url, event, timeout), timeout
        )
        for event in events
    }
    if echo:
        print("published 2 events in one record of the intake topic; runs started:")
        for label, run_id in runs.items():
            print(f"  {label:28} run {run_id}")
        print("and one bad record, which the intake sets aside in the dead-letter topic")
    return runs, bad.json()


async def wait_for_app(client: httpx.AsyncClient, url: str, app_id: str, timeout: float) -> None:
    """Wait until the server is up and the app has registered its functions."""

    async def check() -> bool | None:
        try:
            info = (await client.get(f"{url}/dev")).json()
        except httpx.HTTPError:
            return None  # not up yet
        return any(fn["app_id"] == app_id for fn in info.get("functions", [])) or None

    await poll(check, timeout, f"app {app_id} did not sync with {url}")


async def tour(
    url: str, timeout: float = 60.0, echo: bool = True, intake: bool = True
) -> dict[str, Any]:
    """Send the demo events, approve the payment once it slept, and collect each outcome.

    With `intake`, publish to the intake topic too (`/dev/intake` is `headrace dev`'s: a
    cluster's producers publish to Kafka); the bad record's outcome is its dead-letter reason.
    """
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
        if intake:
            intake_runs, bad_record = await publish_intake(client, url, timeout, echo)
            runs.update(intake_runs)
        if echo:
            print("the payment sleeps until its charge date, then waits for approval...")
        await asyncio.sleep(4)
        await client.post(
            f"{url}/e/demo-key",
            json={"name": "payments/approved", "data": {"payment_id": "pay-42", "approver": "ops"}},
        )
        results = {
            label: await outcome(client, url, run_id, timeout) for label, run_id in runs.items()
        }
        if intake:
            reason = await dead_letter(client, url, bad_record, timeout)
            results["intake bad record"] = ("DEAD_LETTER", reason)
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
