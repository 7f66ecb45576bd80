"""Input a stranger sends that headrace cannot store (JSON nested too deeply, integers out of
64 bits, infinities, dates out of range): a 400 naming the reason, nothing stored, and the
reads that follow still work. Dev mode: the decoding and validation are the code both modes
share (core/jsonutil, EventIngest), and the dashboard is open there."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import inngest
import pytest

from headrace.testing.dev import DevHandle, eventually
from headrace.testing.sdk_app import ServedApp, make_client

DEEP = b"[" * 10_000 + b"]" * 10_000
HUGE_INT = b'{"name": "t/huge", "data": {"x": 123456789012345678901234567890}}'


@pytest.fixture
def dev(dev_engine: DevHandle) -> DevHandle:
    return dev_engine


async def _stored_events(dev: DevHandle) -> list[str]:
    """The names of the events stored before a sentinel sent last (one account, one
    partition: anything accepted before it is stored by the time it is)."""
    await dev.send({"name": "sentinel"})

    async def names() -> list[str] | None:
        found = [e.name for e in await dev.stores.list_events(dev.account, limit=10_000)]
        return found if "sentinel" in found else None

    return [n for n in await eventually(names, what="the sentinel") if n != "sentinel"]


@pytest.mark.parametrize(
    ("method", "path", "form"),
    [
        ("POST", "/e/key", None),
        ("POST", "/fn/register", None),
        ("POST", "/v0/gql", None),
        ("GET", "/v0/gql", "variables"),
        ("POST", "/v1/cancellations", None),
        ("POST", "/dashboard/events", "data"),
        ("POST", "/dashboard/functions/any-fn/invoke", "data"),
    ],
)
async def test_json_nested_too_deeply_is_refused_on_every_route(
    dev: DevHandle, method: str, path: str, form: str | None
) -> None:
    async with httpx.AsyncClient(base_url=dev.url) as http:
        if method == "GET":
            response = await http.get(path, params={"query": "{ __typename }", form: DEEP.decode()})
        elif form is not None:
            response = await http.post(path, data={"name": "t/deep", form: DEEP.decode()})
        else:
            response = await http.post(path, content=DEEP)
    if path.startswith("/dashboard"):
        # The dashboard's forms answer with a redirect to a page saying what was wrong.
        assert response.status_code == 303
        assert "nested+too+deeply" in response.headers["location"].replace("%20", "+")
    else:
        assert response.status_code == 400, response.text
        assert "nested too deeply" in response.text
    assert await _stored_events(dev) == []


async def test_integers_out_of_64_bits_and_times_out_of_range_are_refused(
    dev: DevHandle,
) -> None:
    async with httpx.AsyncClient(base_url=dev.url) as http:
        huge = await http.post("/e/key", content=HUGE_INT)
        far = await http.post("/e/key", json={"name": "t/far", "ts": 1e300})
        form = await http.post(
            "/dashboard/events",
            data={"name": "t/huge", "data": '{"x": 123456789012345678901234567890}'},
        )
    assert huge.status_code == 400
    assert "does not fit in 64 bits" in huge.json()["error"]
    assert far.status_code == 400
    assert "ts must be a number of milliseconds from 0 to" in far.json()["error"]
    assert form.status_code == 303 and "problem=" in form.headers["location"]
    assert await _stored_events(dev) == []


def _echo(client: inngest.Inngest) -> inngest.Function[Any]:
    @client.create_function(fn_id="echo", trigger=inngest.TriggerEvent(event="t/echo"))
    async def echo(ctx: inngest.Context) -> Any:
        return ctx.event.data

    return echo


async def test_an_infinity_from_graphql_is_refused_and_the_event_list_keeps_working(
    dev: DevHandle,
) -> None:
    client = make_client(dev.url, "stranger-app")
    with ServedApp(client, [_echo(client)]) as app:
        await dev.sync(app.url, "stranger-app")
        async with httpx.AsyncClient(base_url=dev.url) as http:
            response = await http.post(
                "/v0/gql",
                json={
                    "query": 'mutation { invokeFunction(functionSlug: "stranger-app-echo", '
                    "data: {a: 1e400}) }"
                },
            )
            assert response.status_code == 200
            [error] = response.json()["errors"]
            assert "inf is not a number JSON can hold" in error["message"]
            assert await _stored_events(dev) == []
            events = await http.get("/v1/events")
        assert events.status_code == 200
        assert [e["name"] for e in events.json()["data"]] == ["sentinel"]


async def test_a_cancellation_up_to_the_last_date_works_and_one_past_it_is_refused(
    dev: DevHandle,
) -> None:
    client = make_client(dev.url, "stranger-app")
    with ServedApp(client, [_echo(client)]) as app:
        await dev.sync(app.url, "stranger-app")
        body = {"app_id": "stranger-app", "function_id": "echo"}
        async with httpx.AsyncClient(base_url=dev.url) as http:
            last = await http.post(
                "/v1/cancellations",
                json={**body, "started_before": "9999-12-31T23:59:59.999999999Z"},
            )
            past = await http.post(
                "/v1/cancellations",
                json={**body, "started_before": "9999-12-31T23:59:59-05:00"},
            )
    assert last.status_code == 200, last.text
    assert last.json()["data"]["started_before"] == "9999-12-31T23:59:59.999Z"
    assert past.status_code == 400
    assert "out of the years 1 to 9999" in past.json()["error"]


def _sync_body(url: str) -> dict[str, Any]:
    return {
        "url": url,
        "appName": "uncallable",
        "functions": [
            {
                "id": "uncallable-fn",
                "name": "fn",
                "triggers": [{"event": "t/uncallable"}],
                "steps": {
                    "step": {
                        "id": "step",
                        "name": "step",
                        "runtime": {"type": "http", "url": f"{url}?fnId=uncallable-fn"},
                    }
                },
            }
        ],
    }


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:1/api/\x00inngest", "a space or a control character"),
        ("http://127.0.0.1:99999/api/inngest", "port 99999, out of the range 1 to 65535"),
        ("http://127.0.0.1:1/" + "a" * 70_000, "over the limit of 4096"),
        ("ftp://127.0.0.1/api/inngest", "must be an http:// or https:// URL"),
    ],
)
async def test_a_sync_with_a_url_the_engine_cannot_call_is_refused(
    dev: DevHandle, url: str, reason: str
) -> None:
    async with httpx.AsyncClient(base_url=dev.url) as http:
        response = await http.post("/fn/register", json=_sync_body(url))
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert await dev.stores.get_app(dev.account, "uncallable") is None


async def test_the_dashboard_sync_of_an_app_at_an_uncallable_url_says_why(
    dev: DevHandle,
) -> None:
    client = make_client(dev.url, "stranger-app")
    with ServedApp(client, [_echo(client)]) as app:
        await dev.sync(app.url, "stranger-app")
    # An app stored before sync refused such URLs.
    stored = await dev.stores.get_app(dev.account, "stranger-app")
    assert stored is not None
    stored.url = "http://127.0.0.1:99999/api/inngest"
    await dev.stores.put_app(stored)
    async with httpx.AsyncClient(base_url=dev.url) as http:
        response = await http.post("/dashboard/apps/stranger-app/sync")
    assert response.status_code == 303
    assert "problem=stranger-app%20did%20not%20answer" in response.headers["location"]


async def test_a_refused_form_redirects_with_a_short_reason_whatever_its_input(
    dev: DevHandle,
) -> None:
    name = "n" * (5 * 1024 * 1024)
    async with httpx.AsyncClient(base_url=dev.url) as http:
        response = await http.post("/dashboard/events", data={"name": name, "data": "{}"})
        assert response.status_code == 303
        location = response.headers["location"]
        assert len(location) < 1024
        assert "over+the+limit" in location.replace("%20", "+")
        page = await http.get(location)
    assert page.status_code == 200
    assert "over the limit of 3145728 bytes per event" in page.text
    assert await _stored_events(dev) == []


async def test_a_client_hanging_up_mid_body_is_no_server_error_and_stores_nothing(
    dev: DevHandle, caplog: pytest.LogCaptureFixture
) -> None:
    host, port = dev.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /e/key HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 1000\r\n\r\n{"name": "t/half'
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    # The sentinel's request comes after the hang-up was handled (one connection each, the
    # server reads the first to its end before the second is sent).
    assert await _stored_events(dev) == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


async def test_the_event_list_shows_big_events_without_their_data_and_their_page_all_of_it(
    dev: DevHandle,
) -> None:
    items = [{"id": i, "tail": f"item-{i}"} for i in range(50_000)]
    [event_id] = await dev.send({"name": "t/big", "data": {"items": items}})

    async def stored() -> bool:
        return await dev.stores.get_event(event_id) is not None

    await eventually(stored, what="the big event")
    async with httpx.AsyncClient(base_url=dev.url) as http:
        listed = await http.get("/dashboard/events")
        page = await http.get(f"/dashboard/events/{event_id}")
    assert listed.status_code == 200
    assert event_id in listed.text and "item-49999" not in listed.text
    assert page.status_code == 200 and "item-49999" in page.text
