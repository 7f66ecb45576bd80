"""`headrace dev` reads intake topics on its embedded log, as the ingest reads them on Kafka: a
record posted to `/dev/intake/{name}` (a produce: no check of its own) starts runs of an app
written with the official SDK; a record the intake refuses shows in `/dev/dead-letters` with its
reason and its bytes untouched, and is counted on `/metrics`."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import inngest
import pytest

from headrace.adapters.kafka.admin import MAX_RECORD_BYTES
from headrace.protocol.signing import hashed_signing_key
from headrace.testing.dev import EngineHandle, eventually, start_dev
from headrace.testing.metrics import intake_rejected, samples
from headrace.testing.sdk_app import ServedApp, make_client

INTAKE = "headrace.intake"
SIGNING_KEY = "signkey-prod-" + "d4" * 32
DASHBOARD_TOKEN = "intake-dashboard-token"


@pytest.fixture
async def keyed_dev(tmp_path: Path) -> AsyncIterator[EngineHandle]:
    """A dev server that takes one event key only, so an unknown key is refused."""
    handle = await start_dev(
        tmp_path / "state", event_keys=(("test-key", "default"),), dashboard_token=DASHBOARD_TOKEN
    )
    yield handle
    await handle.stop()


def _bytes_of(shown: dict[str, str]) -> bytes:
    return shown["text"].encode() if "text" in shown else base64.b64decode(shown["base64"])


async def _metrics(http: httpx.AsyncClient) -> str:
    # With keys required, /metrics asks for the dashboard token (open dev servers ignore it).
    response = await http.get("/metrics", headers={"authorization": f"Bearer {DASHBOARD_TOKEN}"})
    assert response.status_code == 200
    return response.text


def _accepted(text: str) -> float:
    return sum(
        v
        for labels, v in samples(text, "headrace_intake_events_total")
        if labels["topic"] == INTAKE
    )


async def test_posted_records_start_runs_and_refused_ones_show_as_dead_letters(
    keyed_dev: EngineHandle,
) -> None:
    engine = keyed_dev
    tag = uuid.uuid4().hex[:8]
    client = make_client(engine.url, "dev-intake-app")

    @client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="intake/order"))
    async def greet(ctx: inngest.Context) -> str:
        return await ctx.step.run("greet", lambda: f"order {ctx.event.data['n']}")

    def order(n: int) -> dict[str, Any]:
        return {"name": "intake/order", "data": {"n": n, "tag": tag}}

    key = {"event-key": "test-key"}
    good = [json.dumps(order(1)).encode(), json.dumps([order(2), order(3)]).encode()]
    # reason -> (value, HTTP headers); each value is its own, as dead letters are found by value.
    bad: dict[str, tuple[bytes, dict[str, str]]] = {
        # Not UTF-8 either: shown as base64.
        "invalid_json": (b"\xff not json " + tag.encode(), key),
        "unknown_event_key": (json.dumps(order(4)).encode(), {"event-key": "no-such-key"}),
        "no_event_key": (json.dumps(order(5)).encode(), {}),
        # All or nothing: the valid first event is not accepted either.
        "invalid_event": (json.dumps([order(6), {"data": {}}]).encode(), key),
    }

    async with httpx.AsyncClient(base_url=engine.url) as http:
        before = await _metrics(http)
        with ServedApp(client, [greet]) as app:
            await engine.sync(app.url, "dev-intake-app")
            answers = [
                await http.post("/dev/intake/intake", content=value, headers=key) for value in good
            ]
            answers += [
                await http.post(f"/dev/intake/intake?key={reason}", content=value, headers=headers)
                for reason, (value, headers) in bad.items()
            ]

            async def runs() -> list[str] | None:
                mine = [
                    r
                    for r in await engine.runs_of_function("dev-intake-app-greet")
                    if r.events and r.events[0].get("data", {}).get("tag") == tag
                ]
                done = [r for r in mine if r.status == "completed"]
                return sorted(str(r.output) for r in done) if len(done) >= 3 else None

            outputs = await eventually(runs, what="the posted events' runs")

        async def letters() -> dict[bytes, dict[str, Any]] | None:
            shown = (await http.get("/dev/dead-letters")).json()["data"]
            found = {_bytes_of(letter["value"]): letter for letter in shown}
            wanted = {value for value, _ in bad.values()}
            return found if wanted <= set(found) else None

        found = await eventually(letters, what="the refused records in /dev/dead-letters")
        after = await _metrics(http)

    assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
    assert all(a.json()["topic"] == INTAKE for a in answers)
    assert outputs == ["order 1", "order 2", "order 3"]
    # No run started for any event of a refused record.
    assert len(await engine.runs_of_function("dev-intake-app-greet")) == 3

    for reason, (value, headers) in bad.items():
        letter = found[value]
        assert (letter["topic"], letter["service"], letter["key"]) == (INTAKE, "ingest", reason)
        assert [(h["name"], _bytes_of(h)) for h in letter["headers"]] == [
            (name, v.encode()) for name, v in headers.items()
        ]
        assert letter["reason"].startswith("Rejected: "), letter
    assert "base64" in found[bad["invalid_json"][0]]["value"]
    assert "not valid JSON" in found[bad["invalid_json"][0]]["reason"]
    assert "unknown event key" in found[bad["unknown_event_key"][0]]["reason"]
    assert "no 'event-key' header" in found[bad["no_event_key"][0]]["reason"]
    assert "no event of this record was accepted" in found[bad["invalid_event"][0]]["reason"]

    rejected_before, rejected_after = (
        intake_rejected(before, INTAKE),
        intake_rejected(after, INTAKE),
    )
    for reason in bad:
        assert rejected_after.get(reason, 0) - rejected_before.get(reason, 0) == 1, reason
    assert _accepted(after) - _accepted(before) == 3


async def test_unknown_topics_and_oversized_records_are_refused(dev_engine: EngineHandle) -> None:
    async with httpx.AsyncClient(base_url=dev_engine.url, timeout=60) as http:
        unknown = await http.post("/dev/intake/orders", content=b"{}", headers={"event-key": "k"})
        too_large = await http.post(
            "/dev/intake/intake", content=b" " * (MAX_RECORD_BYTES + 1), headers={"event-key": "k"}
        )

    assert unknown.status_code == 404
    assert "no intake topic 'orders'" in unknown.json()["error"]
    assert "this server reads: intake" in unknown.json()["error"]
    assert too_large.status_code == 413
    assert f"over the limit of {MAX_RECORD_BYTES} bytes" in too_large.json()["error"]


async def test_more_intake_topics_are_read_when_configured(tmp_path: Path) -> None:
    engine = await start_dev(tmp_path / "state", intake_topics=("intake", "orders"))
    try:
        tag = uuid.uuid4().hex[:8]
        client = make_client(engine.url, "dev-intake-orders")

        @client.create_function(fn_id="ship", trigger=inngest.TriggerEvent(event="orders/paid"))
        async def ship(ctx: inngest.Context) -> str:
            return f"shipped {ctx.event.data['tag']}"

        with ServedApp(client, [ship]) as app:
            await engine.sync(app.url, "dev-intake-orders")
            async with httpx.AsyncClient(base_url=engine.url) as http:
                posted = await http.post(
                    "/dev/intake/orders",
                    json={"name": "orders/paid", "data": {"tag": tag}},
                    headers={"event-key": "any"},
                )

            async def shipped() -> list[Any] | None:
                runs = await engine.runs_of_function("dev-intake-orders-ship")
                return [r.output for r in runs if r.status == "completed"] or None

            outputs = await eventually(shipped, what="the run of the event posted to 'orders'")
    finally:
        await engine.stop()

    assert (posted.status_code, posted.json()["topic"]) == (202, "headrace.orders")
    assert outputs == [f"shipped {tag}"]


async def test_with_a_signing_key_the_dev_log_endpoints_want_it(tmp_path: Path) -> None:
    engine = await start_dev(tmp_path / "state", signing_key=SIGNING_KEY)
    bearer = {"Authorization": f"Bearer {hashed_signing_key(SIGNING_KEY)}"}
    try:
        async with httpx.AsyncClient(base_url=engine.url) as http:
            anonymous = [
                await http.post("/dev/intake/intake", content=b"{}"),
                await http.get("/dev/dead-letters"),
            ]
            signed = [
                await http.post("/dev/intake/intake", content=b"{}", headers=bearer),
                await http.get("/dev/dead-letters", headers=bearer),
            ]
    finally:
        await engine.stop()

    assert [r.status_code for r in anonymous] == [401, 401]
    assert [r.status_code for r in signed] == [202, 200]
