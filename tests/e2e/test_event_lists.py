"""Event lists with a multi-MB event among the newest: `GET /v1/events`, the dashboard's event
list and the GraphQL stream leave its payload out (the list says so), while the event's own
route returns it whole (benchmarks/event_lists.md has the times)."""

from __future__ import annotations

import uuid

import httpx

from headrace.testing.cluster import TEST_DASHBOARD_TOKEN
from headrace.testing.dev import EngineHandle, eventually

BLOB = "x" * (2 * 1024 * 1024)


async def test_lists_leave_a_large_payload_out_and_the_event_route_returns_it(
    dev: EngineHandle,
) -> None:
    name = f"lists/{uuid.uuid4().hex[:8]}"
    [large_id] = await dev.send({"name": name, "id": "large-1", "data": {"blob": BLOB}})
    [small_id] = await dev.send({"name": name, "data": {"n": 1}})
    headers = {"authorization": f"Bearer {TEST_DASHBOARD_TOKEN}"}
    async with httpx.AsyncClient(base_url=dev.url, headers=headers, timeout=30) as http:

        async def both_listed() -> list[dict[str, object]] | None:
            listed = (await http.get("/v1/events", params={"name": name})).json()["data"]
            return listed if len(listed) == 2 else None

        small, large = await eventually(both_listed, what="both events listed")
        whole = await http.get(f"/v1/events/{large_id}")
        page = await http.get("/dashboard/events", params={"name": name})
        # The stream is the account's, unfiltered: on an engine the session shares, cron ticks
        # and events of earlier tests' runs can land beside these two, so it is read deep.
        stream = await http.post(
            "/v0/gql", json={"query": "{ stream(query: {limit: 200}) { id trigger } }"}
        )

    assert (small["internal_id"], small["data"]) == (small_id, {"n": 1})
    assert "data_omitted" not in small
    assert large["internal_id"] == large_id
    assert (large["data"], large["data_omitted"], large["id"]) == (None, True, "large-1")
    assert whole.json()["data"]["data"] == {"blob": BLOB}
    assert page.status_code == 200 and large_id in page.text
    assert len(page.content) < 100_000
    assert stream.status_code == 200
    assert {"id": large_id, "trigger": name} in stream.json()["data"]["stream"]
