"""Bad input gets a clear 4xx and stores nothing; a bad app fails its runs, not the engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import inngest
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from headrace.testing.dev import (
    FIRST_BACKOFF_MAX_S,
    DevHandle,
    eventually,
    fake_clock,
    start_dev,
)
from headrace.testing.sdk_app import ServedApp, free_port, make_client


@pytest.fixture
def dev(dev_engine: DevHandle) -> DevHandle:
    """Dev mode only: these tests count every event of the account, and the validation they
    check is the one code path both modes share (EventIngest)."""
    return dev_engine


async def _post(dev: DevHandle, body: bytes, key: str = "k") -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{dev.url}/e/{key}", content=body, headers={"content-type": "application/json"}
        )


async def _stored_events(dev: DevHandle) -> int:
    """Events stored besides a sentinel sent last: once the sentinel is in, anything sent
    before it has been handled too (one account, one partition, in order)."""
    sentinel = await _post(dev, b'{"name": "sentinel"}', key="good-key")
    assert sentinel.status_code == 200

    async def names() -> list[str] | None:
        events = await dev.stores.list_events(dev.account, limit=10_000)
        found = [e.name for e in events]
        return found if "sentinel" in found else None

    found = await eventually(names, what="the sentinel event to be stored")
    return len(found) - 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"name": "x", "data": ', "not valid JSON"),
        (b'{"data": {"a": 1}}', "has no name"),
        (b'{"name": "x", "data": [1, 2]}', "data must be an object"),
        (b"[]", "no events"),
    ],
)
async def test_malformed_events_are_refused_with_the_reason(
    dev: DevHandle, body: bytes, message: str
) -> None:
    response = await _post(dev, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert await _stored_events(dev) == 0


async def test_events_before_the_first_invalid_one_are_accepted_with_their_ids(
    dev: DevHandle,
) -> None:
    response = await _post(dev, b'[{"name": "ok"}, {"name": ""}, {"name": "after"}]')
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "event 1: the event has no name"
    assert len(body["ids"]) == 1

    async def stored() -> list[str] | None:
        events = await dev.stores.list_events(dev.account)
        return [e.name for e in events] or None

    assert await eventually(stored, what="the valid event to be stored") == ["ok"]
    assert (await dev.stores.get_event(body["ids"][0])) is not None


async def test_an_oversized_event_is_refused_naming_the_limit(dev: DevHandle) -> None:
    big = b'{"name": "big", "data": {"blob": "' + b"x" * (3 * 1024 * 1024) + b'"}}'
    response = await _post(dev, big)
    assert response.status_code == 400
    assert "over the limit of 3145728 bytes per event" in response.json()["error"]
    assert await _stored_events(dev) == 0


async def test_too_many_events_in_one_request_are_refused(dev: DevHandle) -> None:
    body = b"[" + b",".join([b'{"name": "n"}'] * 5001) + b"]"
    response = await _post(dev, body)
    assert response.status_code == 400
    assert "5001 in one request, the limit is 5000" in response.json()["error"]
    assert await _stored_events(dev) == 0


@pytest.fixture
async def keyed_dev(tmp_path: Path) -> AsyncIterator[DevHandle]:
    handle = await start_dev(tmp_path / "keyed", event_keys=(("good-key", "default"),))
    yield handle
    await handle.stop()


async def test_an_unknown_event_key_is_refused_when_keys_are_required(keyed_dev: DevHandle) -> None:
    refused = await _post(keyed_dev, b'{"name": "x"}', key="bad-key")
    assert refused.status_code == 401
    assert refused.json()["error"] == "unknown event key"
    assert await _stored_events(keyed_dev) == 0
    accepted = await _post(keyed_dev, b'{"name": "x"}', key="good-key")
    assert accepted.status_code == 200


async def test_a_sync_with_a_bad_expression_is_refused_naming_function_and_field(
    dev: DevHandle,
) -> None:
    body = {
        "url": "http://127.0.0.1:1/api/inngest",
        "appName": "bad-app",
        "functions": [
            {
                "id": "bad-app-fn",
                "name": "fn",
                "triggers": [{"event": "x", "expression": "event.data.a == "}],
                "steps": {
                    "step": {
                        "id": "step",
                        "name": "step",
                        "runtime": {
                            "type": "http",
                            "url": "http://127.0.0.1:1/api/inngest?fnId=bad-app-fn",
                        },
                    }
                },
            }
        ],
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{dev.url}/fn/register", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "'bad-app-fn'" in error and "triggers[0].expression" in error
    assert await dev.stores.get_app(dev.account, "bad-app") is None


class _BadApp:
    """An app that registers like an SDK would, then answers its calls badly."""

    def __init__(self, dev_url: str, mode: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api/inngest"
        self.calls = 0
        self._dev_url = dev_url
        self._mode = mode
        app = Starlette(routes=[Route("/api/inngest", self._serve, methods=["PUT", "POST"])])
        self._server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self._task: asyncio.Task[None] | None = None
        self._released = asyncio.Event()

    async def _serve(self, request: Request) -> Response:
        if request.method == "PUT":
            fn_id = f"bad-{self._mode}-fn"
            async with httpx.AsyncClient() as client:
                await client.post(
                    f"{self._dev_url}/fn/register",
                    json={
                        "url": self.url,
                        "appName": f"bad-{self._mode}",
                        "sdk": "py:fake",
                        "functions": [
                            {
                                "id": fn_id,
                                "name": fn_id,
                                "triggers": [{"event": "test/bad"}],
                                "steps": {
                                    "step": {
                                        "id": "step",
                                        "name": "step",
                                        "runtime": {
                                            "type": "http",
                                            "url": f"{self.url}?fnId={fn_id}",
                                        },
                                        "retries": {"attempts": 2},
                                    }
                                },
                            }
                        ],
                    },
                )
            return JSONResponse({})
        self.calls += 1
        if self._mode == "garbage":
            return PlainTextResponse(
                "<html>definitely not JSON</html>", headers={"x-inngest-sdk": "py:fake"}
            )
        if self._mode == "silent":
            await self._released.wait()  # never answers while the test runs
        return JSONResponse({"message": "kaput", "name": "Boom"}, status_code=500)

    async def __aenter__(self) -> _BadApp:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._released.set()
        self._server.should_exit = True
        self._server.force_exit = True
        assert self._task is not None
        await asyncio.wait([self._task], timeout=5)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("garbage", "not JSON"),
        ("failing", "kaput"),
        ("silent", "did not answer within 1 s"),
    ],
)
async def test_a_bad_app_fails_its_run_after_retries_and_the_engine_serves_others(
    tmp_path: Path, mode: str, message: str
) -> None:
    dev = await start_dev(tmp_path / "state", clock=fake_clock(), call_timeout_s=1.0)
    good_client = make_client(dev.url, "good-app")

    @good_client.create_function(fn_id="fine", trigger=inngest.TriggerEvent(event="test/good"))
    async def fine(ctx: inngest.Context) -> str:
        return "fine"

    try:
        async with _BadApp(dev.url, mode) as bad:
            with ServedApp(good_client, [fine]) as good:
                await dev.sync(bad.url, f"bad-{mode}")
                await dev.sync(good.url, "good-app")
                [bad_event] = await dev.send({"name": "test/bad"})
                [good_event] = await dev.send({"name": "test/good"})
                good_run = await dev.finished(await dev.run_of_event(good_event))
                bad_run_id = await dev.run_of_event(bad_event)
                # Each retry once the call before it has failed (no lease runs out as the clock
                # jumps), past the longest backoff: 15 s then 30 s, each plus up to 30 s.
                for failed, backoff_s in ((1, FIRST_BACKOFF_MAX_S), (2, 60)):
                    await eventually(
                        lambda n=failed: _errored(dev, bad_run_id, n), what=f"call {failed} failed"
                    )
                    await dev.advance(backoff_s)
                bad_run = await dev.finished(bad_run_id, timeout=30)
        assert good_run.status == "completed"
        assert bad_run.status == "failed"
        assert message in bad_run.output["message"]
        assert bad.calls == 3
        history = await dev.history(bad_run.run_id)
        assert [h.kind for h in history].count("run.errored") == 2
        assert history[-1].kind == "run.failed"
    finally:
        await dev.stop()


async def _errored(dev: DevHandle, run_id: str, times: int) -> bool:
    return [h.kind for h in await dev.history(run_id)].count("run.errored") >= times
