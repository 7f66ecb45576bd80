"""Send the TypeScript example app's events to a headrace server and report how each run ended.

The approval is sent once its run waits for it, and an order is cancelled while it sleeps: the
tour reads the run's trace (GraphQL, `/v0/gql`) to see the pending step, as a client of
Inngest's dev server would.

`python -m examples.ts.tour --url http://127.0.0.1:8288` (used by `scripts/demo-ts`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
from typing import Any

import httpx

from examples.demo.tour import outcome, poll, run_of, wait_for_app

APP_ID = "headrace-ts-demo"
SPANS_QUERY = "query($id: String!) { run(runID: $id) { trace { childrenSpans { name status } } } }"


def tour_events(now: datetime.datetime) -> dict[str, dict[str, Any]]:
    """The events to send, by the label the tour reports them under."""
    due = now + datetime.timedelta(seconds=2)
    return {
        "video": {"name": "media/video.uploaded", "data": {"video": "keynote.mp4"}},
        "invoice": {
            "name": "billing/invoice.created",
            "data": {
                "invoiceId": "inv-7",
                "amountCents": 4200,
                "dueAt": due.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            },
        },
        "contacts (valid)": {
            "name": "contacts/csv.uploaded",
            "data": {"csv": "name,email\nann,ann@example.com\nbob,bob@example.com"},
        },
        "contacts (invalid)": {
            "name": "contacts/csv.uploaded",
            "data": {"csv": "name,email\nann,ann@example.com\nbob\ncy,not-an-email"},
        },
        "pricing sync": {"name": "pricing/sync.requested", "data": {"skuCount": 120}},
        "approval": {"name": "approvals/requested", "data": {"requestId": "req-3"}},
        "order (shipped)": {"name": "shop/order.placed", "data": {"orderId": "o-1", "hold": "1s"}},
        "order (cancelled)": {
            "name": "shop/order.placed",
            "data": {"orderId": "o-2", "hold": "1h"},
        },
        "daily report": {
            "name": "reports/daily.requested",
            "data": {"day": now.date().isoformat()},
        },
    }


async def waiting_on(
    client: httpx.AsyncClient, url: str, run_id: str, step: str, timeout: float
) -> None:
    """Until the run's step `step` (a sleep or a wait) is pending."""

    async def check() -> bool | None:
        body = {"query": SPANS_QUERY, "variables": {"id": run_id}}
        data = (await client.post(f"{url}/v0/gql", json=body)).json().get("data") or {}
        spans = ((data.get("run") or {}).get("trace") or {}).get("childrenSpans") or []
        return any(s["name"] == step and s["status"] == "WAITING" for s in spans) or None

    await poll(check, timeout, f"run {run_id} never reached {step}")


async def tour(url: str, timeout: float = 60.0, echo: bool = True) -> dict[str, Any]:
    """Send the events, approve the request and cancel an order once their runs wait, and
    collect each outcome: label -> (status, output)."""
    async with httpx.AsyncClient(timeout=30) as client:
        await wait_for_app(client, url, APP_ID, timeout)
        events = tour_events(datetime.datetime.now(datetime.UTC))
        response = await client.post(f"{url}/e/demo-key", json=list(events.values()))
        response.raise_for_status()
        runs = {
            label: await run_of(client, url, event_id, timeout)
            for label, event_id in zip(events, response.json()["ids"], strict=True)
        }
        if echo:
            print(f"sent {len(events)} events; runs started:")
            for label, run_id in runs.items():
                print(f"  {label:20} run {run_id}")

        await waiting_on(client, url, runs["approval"], "wait-for-decision", timeout)
        decided = {"requestId": "req-3", "approved": True, "by": "ops"}
        await client.post(f"{url}/e/demo-key", json={"name": "approvals/decided", "data": decided})
        await waiting_on(client, url, runs["order (cancelled)"], "hold-before-shipping", timeout)
        cancelled = {"name": "shop/order.cancelled", "data": {"orderId": "o-2"}}
        await client.post(f"{url}/e/demo-key", json=cancelled)
        if echo:
            print("approved req-3 while its run waited; cancelled order o-2 while it slept")

        results = {
            label: await outcome(client, url, run_id, timeout) for label, run_id in runs.items()
        }
    if echo:
        for label, (status, output) in results.items():
            print(f"  {label:20} {status:10} {json.dumps(output)}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8288")
    args = parser.parse_args()
    asyncio.run(tour(args.url))


if __name__ == "__main__":
    main()
