"""The rate limit on writing requests, as a client of the Event API meets it in each mode: past
its burst, 429 with `Retry-After`, and nothing of the refused request stored. (Its arithmetic
is checked on a fake clock in tests/unit/test_rate_limit.py; one request an hour leaves no
room for timing here.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from own_engine import own_engine

from headrace.flow.client_rate import ClientRate
from headrace.testing.dev import EngineHandle, eventually

ONE_AN_HOUR = ClientRate(1 / 3600, 2)


@pytest.fixture(
    params=["dev", pytest.param("distributed", marks=[pytest.mark.kafka, pytest.mark.cassandra])]
)
async def limited(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EngineHandle]:
    env = {
        "HEADRACE_RATE_LIMIT": str(ONE_AN_HOUR.per_second),
        "HEADRACE_RATE_BURST": str(ONE_AN_HOUR.burst),
    }
    engine = await own_engine(
        request,
        tmp_path,
        "rate",
        dev={"rate_limit": ONE_AN_HOUR},
        env=env,
        services=("ingest", "runner"),
    )
    yield engine
    await engine.stop()


async def test_past_its_burst_a_client_is_told_to_retry_later_and_nothing_is_stored(
    limited: EngineHandle,
) -> None:
    async with httpx.AsyncClient(base_url=limited.url) as http:
        admitted = [
            await http.post("/e/test-key", json={"name": "rate/tick", "data": {"n": n}})
            for n in range(2)
        ]
        refused = await http.post("/e/test-key", json={"name": "rate/tick", "data": {"n": 2}})
        reads = await http.get("/v1/events?name=rate/tick")

    async def both_stored() -> list[int] | None:
        events = await limited.stores.list_events("default", name="rate/tick")
        return sorted(e.payload["data"]["n"] for e in events) if len(events) >= 2 else None

    assert [r.status_code for r in admitted] == [200, 200]
    assert refused.status_code == 429
    assert 3590 <= int(refused.headers["retry-after"]) <= 3600
    assert refused.json()["error"].startswith("too many requests")
    assert reads.status_code == 200
    # The refused request was answered before it was read: only the admitted two are stored.
    assert await eventually(both_stored, what="the admitted events") == [0, 1]
