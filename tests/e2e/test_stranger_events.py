"""The Event API of both modes refuses JSON headrace cannot store (issue 16 items 1-2) with a
400 naming the reason, and stores none of it."""

from __future__ import annotations

import httpx
import pytest

from headrace.testing.dev import EngineHandle, eventually


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 10_000 + b"]" * 10_000, "nested too deeply"),
        (b'{"name": "t/x", "data": {"x": 123456789012345678901234567890}}', "64 bits"),
        (b'{"name": "t/x", "ts": 1e300}', "ts must be a number of milliseconds"),
    ],
)
async def test_the_event_api_refuses_json_it_cannot_store(
    dev: EngineHandle, body: bytes, reason: str
) -> None:
    name = f"t/stranger-{dev.mode}-{len(body)}"
    async with httpx.AsyncClient(base_url=dev.url) as http:
        refused = await http.post("/e/test-key", content=body.replace(b"t/x", name.encode()))
    assert refused.status_code == 400
    assert reason in refused.json()["error"]
    # Sent after the refused one on the account's partition: once it is stored, the refused
    # event would have been too.
    [sentinel] = await dev.send({"name": f"{name}/sentinel"})

    async def stored() -> list[str] | None:
        events = await dev.stores.list_events(dev.account, limit=1000)
        names = [e.name for e in events]
        return names if f"{name}/sentinel" in names else None

    names = await eventually(stored, what=f"the sentinel {sentinel}")
    assert name not in names
