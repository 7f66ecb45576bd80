"""Inngest Realtime with the official TypeScript SDK, in both modes: a function publishes from
steps (`step.realtime.publish`, both majors, and `inngest.realtime.publish`), a stream (a
`ReadableStream`, both majors), and with the 3.x line's `@inngest/realtime` middleware; a
subscriber using the SDK's own `subscribe()` (tests/ts/subscribe.mjs: 4.x's `inngest/realtime`,
3.x's separate `@inngest/realtime`) gets the messages over the engine's WebSocket. A cluster of
two accounts and two ingest replicas checks that a publish reaching one replica reaches
subscribers on the other, of its own account only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
import websockets

from headrace.protocol.signing import hashed_signing_key
from headrace.testing.cluster import Cluster, cluster_test_settings, start_cluster
from headrace.testing.dev import EngineHandle, eventually
from headrace.testing.ts_app import MAJORS, TsApp, TsSubscriber

ACME_KEY = "signkey-prod-" + "d4" * 32
GLOBEX_KEY = "signkey-prod-" + "e5" * 32


@pytest.fixture(params=MAJORS, ids=[f"ts{m}" for m in MAJORS])
def major(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def nodes() -> Iterator[list[Any]]:
    """The Node processes a test starts; stopped, and their output printed, at the end."""
    started: list[Any] = []
    yield started
    for node in started:
        print(f"--- {node.script}:\n{node.log()}")
        node.stop()


async def _subscribe(nodes: list[Any], subscriber: TsSubscriber) -> TsSubscriber:
    # Started off the event loop: in dev mode the engine answering its token request runs on it.
    nodes.append(subscriber)
    await asyncio.to_thread(subscriber.start)
    return subscriber


async def _received(subscriber: TsSubscriber, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        messages = subscriber.messages()
        return messages if len(messages) >= count else None

    return await eventually(probe, timeout=20, what=f"{count} realtime message(s)")


async def test_a_message_published_from_a_step_reaches_the_sdk_subscriber(
    dev: EngineHandle, nodes: list[Any], major: str
) -> None:
    channel = f"rt-{uuid.uuid4().hex[:8]}"
    subscriber = await _subscribe(nodes, TsSubscriber(dev.url, channel, ["progress"]))
    app = TsApp(dev.url, f"ts-realtime-{channel}-v{major}", ["realtime"], major=major)
    nodes.append(app.start())
    await dev.sync(app.url, app.app_id)

    data = {"step": "resize", "done": 3, "of": 4, "note": "ünïcode ✓"}
    [event_id] = await dev.send(
        {
            "name": f"{app.app_id}/realtime",
            "data": {"channel": channel, "topic": "progress", "data": data},
        }
    )
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)

    # Both publishes succeeded, the one nobody listens to as well. 4.x's step returns the data;
    # 3.x's returns the SDK's own API result (InngestStepTools.js: `inngestApi.publish(...)`).
    assert run.status == "completed", app.log()
    sent, unheard = (data, {"n": 1}) if major == "4" else ({"ok": True}, {"ok": True})
    assert run.output == {"sent": sent, "unheard": unheard, "fromClient": "published"}
    # The step's publish, then the client's (inngest.realtime.publish, in a step.run).
    from_step, from_client = await _received(subscriber, 2)
    expected = {"kind": "data", "channel": channel, "topic": "progress", "runId": run.run_id}
    assert from_step == {**expected, "data": data}
    assert from_client == {**expected, "data": {"from": "client"}}
    # Nothing of the topic the subscriber did not ask for.
    await asyncio.sleep(0.5)
    assert len(subscriber.messages()) == 2


@contextlib.asynccontextmanager
async def _frames(url: str, channel: str, topic: str) -> AsyncIterator[list[dict[str, Any]]]:
    """The frames of a WebSocket subscription to `topic`, as they arrive: the wire itself, for
    streams, which the SDKs' own subscribers cannot read (both throw on `datastream-start`:
    their TokenSubscription reads the stream it is constructing, a ReferenceError; Node
    exits), and for requests no SDK makes."""
    async with httpx.AsyncClient(base_url=url) as http:
        token = await http.post("/v1/realtime/token", json=[{"channel": channel, "name": topic}])
    ws_url = url.replace("http://", "ws://") + f"/v1/realtime/connect?token={token.json()['jwt']}"
    frames: list[dict[str, Any]] = []
    async with websockets.connect(ws_url) as socket:

        async def read() -> None:
            async for frame in socket:
                frames.append(json.loads(frame))

        reader = asyncio.create_task(read())
        try:
            yield frames
        finally:
            reader.cancel()


async def test_a_streamed_publish_reaches_subscribers_piece_by_piece(
    dev: EngineHandle, nodes: list[Any], major: str
) -> None:
    channel = f"rt-{uuid.uuid4().hex[:8]}"
    app = TsApp(dev.url, f"ts-rt-stream-{channel}-v{major}", ["realtime-stream"], major=major)
    nodes.append(app.start())
    await dev.sync(app.url, app.app_id)

    # Longer than one chunk (1 KiB), with characters of two and three bytes across the cuts.
    pieces = ["héllo ", "é" * 700 + "✓" * 200, " the end"]
    async with _frames(dev.url, channel, "tokens") as frames:
        [event_id] = await dev.send(
            {
                "name": f"{app.app_id}/realtime-stream",
                "data": {"channel": channel, "topic": "tokens", "pieces": pieces},
            }
        )
        run = await dev.finished(await dev.run_of_event(event_id), timeout=30)
        assert run.status == "completed", app.log()
        assert run.output == "streamed"

        async def whole_stream() -> list[dict[str, Any]] | None:
            ended = frames and frames[-1]["kind"] == "datastream-end"
            return list(frames) if ended else None

        start, *chunks, end = await eventually(whole_stream, timeout=20, what="the stream's end")
    stream_id = start["data"]
    expected = {"channel": channel, "topic": "tokens", "run_id": run.run_id}
    assert start == {**expected, "kind": "datastream-start", "data": stream_id, "created_at": ANY}
    assert end == {**expected, "kind": "datastream-end", "data": stream_id, "created_at": ANY}
    # Each chunk names its stream, and its channel and topic, which the SDKs need to keep it.
    assert all(
        c == {**expected, "kind": "chunk", "stream_id": stream_id, "data": ANY, "created_at": ANY}
        for c in chunks
    ), chunks
    assert "".join(c["data"] for c in chunks) == "".join(pieces)
    # 2,015 bytes: two chunks at least, none over 1 KiB.
    assert len(chunks) >= 2 and all(len(c["data"].encode()) <= 1024 for c in chunks)


async def test_a_publish_naming_two_topics_goes_to_the_first(dev: EngineHandle) -> None:
    async with _frames(dev.url, "c", "first") as frames:
        async with httpx.AsyncClient(base_url=dev.url) as http:
            published = await http.post(
                "/v1/realtime/publish?channel=c&topic=first&topic=second", json={"n": 1}
            )
        assert published.status_code == 200

        async def one() -> list[dict[str, Any]] | None:
            return list(frames) or None

        [frame] = await eventually(one, timeout=20, what="the message")
    assert (frame["topic"], frame["data"]) == ("first", {"n": 1})


async def test_a_3x_app_publishes_with_the_realtime_middleware(
    dev: EngineHandle, nodes: list[Any]
) -> None:
    """The 3.x line as Inngest's docs show it: `realtimeMiddleware()` on the client, `publish`
    in the function's context, a subscriber with `@inngest/realtime`'s `subscribe`."""
    channel = f"rt-{uuid.uuid4().hex[:8]}"
    subscriber = await _subscribe(nodes, TsSubscriber(dev.url, channel, ["ai"], major="3"))
    app = TsApp(
        dev.url,
        f"ts-rt-middleware-{channel}",
        ["realtime-middleware"],
        major="3",
        env={"HEADRACE_TS_REALTIME_MIDDLEWARE": "1"},
    )
    nodes.append(app.start())
    await dev.sync(app.url, app.app_id)

    data = {"text": "ünïcode ✓"}
    [event_id] = await dev.send(
        {
            "name": f"{app.app_id}/realtime-middleware",
            "data": {"channel": channel, "topic": "ai", "data": data},
        }
    )
    run = await dev.finished(await dev.run_of_event(event_id), timeout=30)
    assert run.status == "completed", app.log()
    # The middleware's publish returns the data it published.
    assert run.output == {"outside": data, "inside": {"n": 2}}
    expected = {"kind": "data", "channel": channel, "topic": "ai", "runId": run.run_id}
    assert await _received(subscriber, 2) == [
        {**expected, "data": data},
        {**expected, "data": {"n": 2}},
    ]


async def test_a_token_the_engine_did_not_issue_is_refused(
    dev: EngineHandle, nodes: list[Any]
) -> None:
    forged = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJpc3MiOiJydC5pbm5nZXN0LmNvbSIsInN1YiI6ImRlZmF1bHQifQ."
        "c2lnbmVkIHdpdGggc29tZXRoaW5nIGVsc2U"
    )
    for token in (forged, "not-a-jwt"):
        subscriber = TsSubscriber(dev.url, "rt-forged", ["progress"], token=token)
        refusal = await asyncio.to_thread(subscriber.refusal)
        assert refusal.startswith("refused"), refusal


async def test_bad_realtime_requests_get_a_clear_4xx(dev: EngineHandle) -> None:
    async with httpx.AsyncClient(base_url=dev.url) as http:
        no_channel = await http.post("/v1/realtime/publish?topic=t", json={"a": 1})
        no_topic = await http.post("/v1/realtime/publish?channel=c", json={"a": 1})
        long_channel = await http.post(f"/v1/realtime/publish?channel={'c' * 300}&topic=t")
        too_big = await http.post(
            "/v1/realtime/publish?channel=c&topic=t", content=b"x" * (512 * 1024 + 1)
        )
        not_utf8 = await http.post("/v1/realtime/publish?channel=c&topic=t", content=b"\xff\xfe")
        stream = {"content-type": "text/stream"}
        stream_not_utf8 = await http.post(
            "/v1/realtime/publish?channel=c&topic=t", content=b"ok \xff", headers=stream
        )
        stream_cut_char = await http.post(
            "/v1/realtime/publish?channel=c&topic=t", content="✓".encode()[:2], headers=stream
        )
        stream_too_long = await http.post(
            "/v1/realtime/publish?channel=c&topic=t",
            content=b"x" * (1000 * 1024 + 1),
            headers=stream,
        )
        stream_no_topic = await http.post(
            "/v1/realtime/publish?channel=c", content=b"x", headers=stream
        )
        text = await http.post("/v1/realtime/publish?channel=c&topic=t", content=b"plain text")
        token_not_list = await http.post("/v1/realtime/token", json={"channel": "c"})
        token_empty = await http.post("/v1/realtime/token", json=[])
        token_no_name = await http.post("/v1/realtime/token", json=[{"channel": "c"}])
        token_blank = await http.post("/v1/realtime/token", json=[{"channel": "", "name": "t"}])
        token_bad_json = await http.post("/v1/realtime/token", content=b"[{")
        token_ok = await http.post("/v1/realtime/token", json=[{"channel": "c", "name": "t"}])
        tee_no_channel = await http.post("/v1/realtime/publish/tee", content=b"event: x\n\n")
        tee_not_utf8 = await http.post("/v1/realtime/publish/tee?channel=r", content=b"\xff")
        tee_too_long = await http.post(
            "/v1/realtime/publish/tee?channel=r", content=b"x" * (1000 * 1024 + 1)
        )
        sse_bad_token = await http.get("/v1/realtime/sse?token=not-a-jwt")
        sse_no_token = await http.get("/v1/realtime/sse")
    for response, status, says in [
        (no_channel, 400, "channel is required"),
        (no_topic, 400, "topic is required"),
        (long_channel, 400, "channel is longer"),
        (too_big, 413, "at most"),
        (not_utf8, 400, "UTF-8"),
        (stream_not_utf8, 400, "UTF-8"),
        (stream_cut_char, 400, "UTF-8"),
        (stream_too_long, 413, "at most"),
        (stream_no_topic, 400, "topic is required"),
        (token_not_list, 400, "list of topics"),
        (token_empty, 400, "1 to 100 topics"),
        (token_no_name, 400, "list of topics"),
        (token_blank, 400, "channel is required"),
        (token_bad_json, 400, "list of topics"),
        (tee_no_channel, 400, "channel is required"),
        (tee_not_utf8, 400, "UTF-8"),
        (tee_too_long, 413, "at most"),
        (sse_bad_token, 401, "invalid realtime token"),
        (sse_no_token, 401, "invalid realtime token"),
    ]:
        assert response.status_code == status, (response.request.url, response.text)
        assert says in response.json()["error"], response.text
    # Text that is not JSON is published as a JSON string, as Inngest does.
    assert text.status_code == 200
    assert token_ok.status_code == 201 and token_ok.json()["jwt"].count(".") == 2


@pytest.fixture
async def two_accounts_two_ingests(
    kafka_bootstrap: str,
    cassandra_contact: tuple[str, int],
    drop_keyspace: Callable[[str], None],
    tmp_path: Path,
) -> AsyncIterator[tuple[Cluster, EngineHandle]]:
    name = f"realtime_{uuid.uuid4().hex[:8]}"
    settings = cluster_test_settings(
        kafka_bootstrap, cassandra_contact, keyspace=name, partitions=2
    )
    env = {"HEADRACE_SIGNING_KEYS": f"acme={ACME_KEY},globex={GLOBEX_KEY}"}
    counts = {"ingest": 2}
    cluster, engine = await start_cluster(settings, tmp_path / "logs", counts=counts, env=env)
    try:
        yield cluster, engine
    finally:
        await engine.stop()
        drop_keyspace(name)


@pytest.mark.kafka
@pytest.mark.cassandra
async def test_subscribers_get_their_accounts_messages_from_any_ingest_and_no_others(
    two_accounts_two_ingests: tuple[Cluster, EngineHandle], nodes: list[Any]
) -> None:
    cluster, _ = two_accounts_two_ingests
    first, second = (f"http://127.0.0.1:{p.port}" for p in cluster.of("ingest"))
    # Both accounts use the same channel and topic names.
    acme = await _subscribe(nodes, TsSubscriber(second, "orders", ["status"], signing_key=ACME_KEY))
    globex = await _subscribe(
        nodes, TsSubscriber(first, "orders", ["status"], signing_key=GLOBEX_KEY)
    )

    async def publish(url: str, key: str, data: dict[str, Any]) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.post(
                f"{url}/v1/realtime/publish?channel=orders&topic=status",
                json=data,
                headers={"Authorization": f"Bearer {hashed_signing_key(key)}"},
            )

    # Each account publishes on the replica its subscriber is not connected to.
    assert (await publish(first, ACME_KEY, {"order": "A-1"})).status_code == 200
    assert (await publish(second, GLOBEX_KEY, {"order": "G-1"})).status_code == 200
    [for_acme] = await _received(acme, 1)
    [for_globex] = await _received(globex, 1)
    assert for_acme["data"] == {"order": "A-1"}
    assert for_globex["data"] == {"order": "G-1"}

    # No key, or a key no account has: refused, to publish and to get a token.
    async with httpx.AsyncClient(base_url=first) as http:
        anonymous = await http.post("/v1/realtime/publish?channel=orders&topic=status", json={})
        stranger = await http.post(
            "/v1/realtime/token",
            json=[{"channel": "orders", "name": "status"}],
            headers={"Authorization": "Bearer signkey-prod-" + "f6" * 32},
        )
        acme_token = await http.post(
            "/v1/realtime/token",
            json=[{"channel": "orders", "name": "status"}],
            headers={"Authorization": f"Bearer {hashed_signing_key(ACME_KEY)}"},
        )
    assert anonymous.status_code == 401 and stranger.status_code == 401
    # A token is no signing key: it cannot publish.
    async with httpx.AsyncClient(base_url=second) as http:
        with_token = await http.post(
            "/v1/realtime/publish?channel=orders&topic=status",
            json={"order": "X"},
            headers={"Authorization": f"Bearer {acme_token.json()['jwt']}"},
        )
    assert with_token.status_code == 401

    # A Durable Endpoint's stream (teed text, read as server-sent events) keeps to its account
    # too: globex tees to the channel acme reads first, on the other replica.
    async with httpx.AsyncClient(base_url=second) as http:
        stream_token = await http.post(
            "/v1/realtime/token",
            json=[{"channel": "run-1", "name": "$stream"}],
            headers={"Authorization": f"Bearer {hashed_signing_key(ACME_KEY)}"},
        )
        async with http.stream(
            "GET", f"/v1/realtime/sse?token={stream_token.json()['jwt']}"
        ) as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            for key, text in [
                (GLOBEX_KEY, "event: x\ndata: globex\n\n"),
                (ACME_KEY, "event: x\ndata: acme\n\n"),
            ]:
                async with httpx.AsyncClient(base_url=first) as publisher:
                    teed = await publisher.post(
                        "/v1/realtime/publish/tee?channel=run-1",
                        content=text.encode(),
                        headers={"Authorization": f"Bearer {hashed_signing_key(key)}"},
                    )
                assert teed.status_code == 200
            first_text = await anext(events.aiter_text())
    assert first_text == "event: x\ndata: acme\n\n"

    await asyncio.sleep(1.0)
    assert len(acme.messages()) == 1 and len(globex.messages()) == 1
