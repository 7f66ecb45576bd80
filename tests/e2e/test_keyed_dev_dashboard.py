"""`headrace dev` with keys required asks for the dashboard token on the dashboard and
/metrics, as the distributed ingest does; without keys both stay open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from headrace.testing.dev import DevHandle, start_dev

EVENT_KEY = "keyed-event-key"
SIGNING_KEY = "signkey-test-0123456789abcdef0123456789abcdef"


@pytest.fixture
async def keyed(tmp_path: Path) -> AsyncIterator[tuple[DevHandle, Path]]:
    state = tmp_path / "state"
    handle = await start_dev(state, event_keys=((EVENT_KEY, "default"),), signing_key=SIGNING_KEY)
    yield handle, state
    await handle.stop()


async def test_a_stranger_gets_nothing_from_the_dashboard_or_metrics(
    keyed: tuple[DevHandle, Path],
) -> None:
    dev, state = keyed
    async with httpx.AsyncClient(base_url=dev.url) as http:
        page = await http.get("/dashboard/runs")
        send = await http.post("/dashboard/events", data={"name": "t/stranger", "data": "{}"})
        metrics = await http.get("/metrics")
        token = (state / "dashboard-token").read_text().strip()
        bearer = {"authorization": f"Bearer {token}"}
        allowed_page = await http.get("/dashboard/events", headers=bearer)
        allowed_metrics = await http.get("/metrics", headers=bearer)
        login = await http.post("/dashboard/login", data={"token": token, "next": "/dashboard"})
        after_login = await http.get("/dashboard/apps")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/dashboard/login")
    assert send.status_code == 401
    assert metrics.status_code == 401
    assert "headrace_" not in metrics.text
    assert allowed_page.status_code == 200 and "t/stranger" not in allowed_page.text
    assert allowed_metrics.status_code == 200 and "headrace_" in allowed_metrics.text
    assert login.status_code == 303
    assert after_login.status_code == 200
    assert await dev.stores.list_events(dev.account) == []
    assert (state / "dashboard-token").stat().st_mode & 0o077 == 0


async def test_a_given_token_is_the_one_asked_for(tmp_path: Path) -> None:
    dev = await start_dev(
        tmp_path / "state", event_keys=((EVENT_KEY, "default"),), dashboard_token="t0k"
    )
    try:
        async with httpx.AsyncClient(base_url=dev.url) as http:
            wrong = await http.get("/metrics", headers={"authorization": "Bearer nope"})
            right = await http.get("/metrics", headers={"authorization": "Bearer t0k"})
        assert wrong.status_code == 401
        assert right.status_code == 200
        assert not (tmp_path / "state" / "dashboard-token").exists()
    finally:
        await dev.stop()


async def test_without_keys_the_dashboard_and_metrics_stay_open(dev_engine: DevHandle) -> None:
    async with httpx.AsyncClient(base_url=dev_engine.url) as http:
        page = await http.get("/dashboard/runs")
        metrics = await http.get("/metrics")
    assert page.status_code == 200
    assert metrics.status_code == 200
