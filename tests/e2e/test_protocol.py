"""Protocol details: event ids, dedupe, large payloads through use_api, streaming, triggers."""

from __future__ import annotations

import base64
import collections
import contextlib
import http.server
import threading
from collections.abc import Iterator

import httpx
import inngest

from headrace.testing.dev import DevHandle
from headrace.testing.sdk_app import ServedApp, free_port, make_client


async def test_event_ids_are_stable_across_sdk_retries_and_start_one_run(dev: DevHandle) -> None:
    client = make_client(dev.url, "seed-app")
    runs: list[str] = []

    @client.create_function(fn_id="once", trigger=inngest.TriggerEvent(event="test/seeded"))
    async def once(ctx: inngest.Context) -> None:
        runs.append(ctx.run_id)

    seed = "1700000000000," + base64.b64encode(bytes(range(10))).decode()
    body = [{"name": "test/seeded", "data": {"n": 1}}, {"name": "test/seeded", "data": {"n": 2}}]
    with ServedApp(client, [once]) as app:
        await dev.sync(app.url, "seed-app")
        async with httpx.AsyncClient() as http:
            answers = [
                (
                    await http.post(
                        f"{dev.url}/e/key", json=body, headers={"x-inngest-event-id-seed": seed}
                    )
                ).json()
                for _ in range(2)
            ]
        assert answers[0] == answers[1]
        ids = answers[0]["ids"]
        assert len(set(ids)) == 2
        for event_id in ids:
            await dev.finished(await dev.run_of_event(event_id))

    assert len(runs) == 2


async def test_a_duplicate_user_event_id_starts_no_second_run(dev: DevHandle) -> None:
    client = make_client(dev.url, "dedupe-app")
    seen: list[object] = []

    @client.create_function(fn_id="dedupe", trigger=inngest.TriggerEvent(event="test/dup"))
    async def dedupe(ctx: inngest.Context) -> None:
        seen.append(ctx.event.data["n"])

    with ServedApp(client, [dedupe]) as app:
        await dev.sync(app.url, "dedupe-app")
        [first] = await dev.send({"name": "test/dup", "id": "order-1", "data": {"n": 1}})
        await dev.finished(await dev.run_of_event(first))
        [second] = await dev.send({"name": "test/dup", "id": "order-1", "data": {"n": 2}})
        [other] = await dev.send({"name": "test/dup", "id": "order-2", "data": {"n": 3}})
        await dev.finished(await dev.run_of_event(other))

    assert await dev.stores.runs_for_event(second) == []
    assert seen == [1, 3]


async def test_payloads_over_4_mb_go_through_use_api(dev: DevHandle) -> None:
    client = make_client(dev.url, "big-app")
    sizes: list[int] = []

    @client.create_function(fn_id="big", trigger=inngest.TriggerEvent(event="test/big"))
    async def big(ctx: inngest.Context) -> list[int]:
        async def blob(i: int) -> str:
            return str(i) * (1024 * 1024)

        outputs = [await ctx.step.run(f"blob-{i}", blob, i) for i in range(6)]
        sizes.append(len(ctx.event.data["pad"]))
        return [len(o) for o in outputs]

    with ServedApp(client, [big]) as app:
        await dev.sync(app.url, "big-app")
        [event_id] = await dev.send({"name": "test/big", "data": {"pad": "x" * 2_000_000}})
        run = await dev.finished(await dev.run_of_event(event_id), timeout=60)

    assert run.status == "completed"
    assert run.output == [1024 * 1024] * 6
    assert set(sizes) == {2_000_000}


async def test_streamed_responses_are_read(dev: DevHandle) -> None:
    client = make_client(dev.url, "stream-app")

    @client.create_function(fn_id="streamer", trigger=inngest.TriggerEvent(event="test/stream"))
    async def streamer(ctx: inngest.Context) -> str:
        async def step() -> str:
            return "streamed"

        return await ctx.step.run("s", step) + "!"

    with ServedApp(client, [streamer], streaming=True) as app:
        await dev.sync(app.url, "stream-app")
        [event_id] = await dev.send({"name": "test/stream"})
        run = await dev.finished(await dev.run_of_event(event_id))

    assert run.status == "completed"
    assert run.output == "streamed!"


@contextlib.contextmanager
def http10_relay(port: int, target_port: int) -> Iterator[list[str]]:
    """An HTTP/1.0 proxy on `port` in front of an app, as in the inngest-py suite
    (test_core/http_proxy.py): it reads the app's whole answer, then sends it on with the app's
    headers, Transfer-Encoding included, over the de-chunked body. Yields the status and
    Transfer-Encoding of each answer it relayed, as "201 chunked"."""
    relayed: list[str] = []

    class Relay(http.server.BaseHTTPRequestHandler):
        def _relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            answer = httpx.request(
                self.command,
                f"http://127.0.0.1:{target_port}{self.path}",
                content=body,
                headers=dict(self.headers.items()),
                timeout=60,
            )
            relayed.append(f"{answer.status_code} {answer.headers.get('transfer-encoding')}")
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_PUT = do_POST = _relay

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Relay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield relayed
    finally:
        server.shutdown()
        thread.join(timeout=10)


async def test_a_streamed_answer_relayed_by_an_http10_proxy_is_read(dev: DevHandle) -> None:
    """An HTTP/1.0 answer may not be chunked; Inngest's server ignores the header there and
    reads the body to the connection's close, and so does headrace."""
    client = make_client(dev.url, "relayed-app")

    @client.create_function(fn_id="relayed", trigger=inngest.TriggerEvent(event="test/relayed"))
    async def relayed(ctx: inngest.Context) -> str:
        async def step() -> str:
            return "relayed"

        return await ctx.step.run("s", step) + "!"

    relay_port = free_port()
    origin = f"http://127.0.0.1:{relay_port}"
    with (
        ServedApp(client, [relayed], streaming=True, serve_origin=origin) as app,
        http10_relay(relay_port, app.port) as answers,
    ):
        await dev.sync(f"{origin}/api/inngest", "relayed-app")
        [event_id] = await dev.send({"name": "test/relayed"})
        run = await dev.finished(await dev.run_of_event(event_id))

    assert answers.count("201 chunked") >= 2  # the step's call and the last one, streamed
    assert run.status == "completed"
    assert run.output == "relayed!"


async def test_several_triggers_and_trigger_expressions(dev: DevHandle) -> None:
    client = make_client(dev.url, "trigger-app")
    started: collections.Counter[str] = collections.Counter()

    @client.create_function(
        fn_id="multi",
        trigger=[
            inngest.TriggerEvent(event="test/a"),
            inngest.TriggerEvent(event="test/b", expression="event.data.amount > 100"),
        ],
    )
    async def multi(ctx: inngest.Context) -> None:
        started[ctx.event.name] += 1

    with ServedApp(client, [multi]) as app:
        await dev.sync(app.url, "trigger-app")
        ids = await dev.send(
            {"name": "test/a"},
            {"name": "test/b", "data": {"amount": 50}},
            {"name": "test/b", "data": {"amount": 150.5}},
        )
        await dev.finished(await dev.run_of_event(ids[0]))
        await dev.finished(await dev.run_of_event(ids[2]))

    assert await dev.stores.runs_for_event(ids[1]) == []
    assert started == {"test/a": 1, "test/b": 1}
