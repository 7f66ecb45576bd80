"""Traces and metrics of a run, as an SRE's tools see them.

One function with two steps (one fails once and is retried), a sleep and a waitForEvent. In dev
mode the spans are collected in process; in distributed mode every service exports them over
OTLP/HTTP to a small receiver here, and they must form one trace across the processes.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import inngest
import pytest
from inngest.experimental.ai import gemini
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from headrace.messages.state import RunState
from headrace.obs.tracing import run_root_span_id, run_trace_id, setup_tracing
from headrace.runtime.http import HttpServer
from headrace.runtime.settings import Settings
from headrace.testing.dev import FIRST_BACKOFF_MAX_S, EngineHandle, eventually
from headrace.testing.metrics import samples
from headrace.testing.sdk_app import ServedApp, free_port, make_client


@dataclasses.dataclass(frozen=True)
class SpanView:
    """A span as both sources give it: the SDK's in-memory exporter, or OTLP protobuf."""

    name: str
    trace_id: int
    span_id: int
    parent_id: int | None
    attributes: dict[str, Any]
    start_ns: int
    end_ns: int
    service: str


@pytest.fixture(scope="session")
def memory_spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    setup_tracing("test", exporter)
    return exporter


def _views_of_memory(exporter: InMemorySpanExporter) -> list[SpanView]:
    return [
        SpanView(
            name=span.name,
            trace_id=span.context.trace_id,
            span_id=span.context.span_id,
            parent_id=span.parent.span_id if span.parent is not None else None,
            attributes=dict(span.attributes or {}),
            start_ns=span.start_time or 0,
            end_ns=span.end_time or 0,
            service=str(span.resource.attributes.get("service.name")),
        )
        for span in exporter.get_finished_spans()
        if span.context is not None
    ]


def _value(value: AnyValue) -> Any:
    return getattr(value, value.WhichOneof("value") or "string_value")


class OtlpReceiver:
    """Accepts `POST /v1/traces` (OTLP/HTTP protobuf), as a collector would."""

    def __init__(self) -> None:
        self.spans: list[SpanView] = []
        # Each export as it came, to search whole (events and statuses too).
        self.raw: list[bytes] = []
        self.port = free_port()
        self.server = HttpServer.for_app(
            Starlette(routes=[Route("/v1/traces", self._traces, methods=["POST"])]),
            "127.0.0.1",
            self.port,
        )

    async def _traces(self, request: Request) -> Response:
        export = ExportTraceServiceRequest()
        self.raw.append(await request.body())
        export.ParseFromString(self.raw[-1])
        for resource_spans in export.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        SpanView(
                            name=span.name,
                            trace_id=int.from_bytes(span.trace_id, "big"),
                            span_id=int.from_bytes(span.span_id, "big"),
                            parent_id=int.from_bytes(span.parent_span_id, "big")
                            if span.parent_span_id
                            else None,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            service=str(resource.get("service.name")),
                        )
                    )
        return Response(
            ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf"
        )


@pytest.fixture
async def otlp_receiver() -> AsyncIterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    task = await receiver.server.start()
    yield receiver
    receiver.server.should_exit = True
    await task


@pytest.fixture
async def traced_cluster(
    distributed_settings: Settings,
    otlp_receiver: OtlpReceiver,
    tmp_path: Path,
    drop_keyspace: Callable[[str], None],
) -> AsyncIterator[tuple[EngineHandle, dict[str, int]]]:
    """Its own small cluster (one of each service), exporting to the receiver."""
    from headrace.testing.cluster import start_cluster

    base = distributed_settings.cluster
    connection = dataclasses.replace(
        base, keyspace=f"{base.keyspace}_obs", topic_prefix=f"{base.topic_prefix}obs."
    )
    settings = dataclasses.replace(distributed_settings, cluster=connection)
    cluster, handle = await start_cluster(
        settings,
        tmp_path / "logs",
        counts={"ingest": 1, "runner": 1, "scheduler": 1, "executor": 1},
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_receiver.port}",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    )
    yield handle, {proc.name: proc.port for proc in cluster.procs}
    await handle.stop()
    drop_keyspace(settings.cluster.keyspace)


@dataclasses.dataclass
class TracedApp:
    app: ServedApp
    flaky_calls: collections.Counter[str]


@pytest.fixture
def traced_app(request: pytest.FixtureRequest) -> Iterator[TracedApp]:
    engine: EngineHandle = request.getfixturevalue(request.param)
    client = make_client(engine.url, f"traced-app-{engine.mode}")
    calls = collections.Counter[str]()

    @client.create_function(
        fn_id="traced", trigger=inngest.TriggerEvent(event=f"test/traced.{engine.mode}"), retries=2
    )
    async def traced(ctx: inngest.Context) -> object:
        async def first() -> str:
            return "one"

        async def flaky() -> str:
            calls["flaky"] += 1
            if calls["flaky"] == 1:
                raise RuntimeError("the first attempt fails")
            return "two"

        await ctx.step.run("first", first)
        await ctx.step.run("flaky", flaky)
        # A second of the engine's time: the SDK's `sleep` would count it from the real time,
        # which a fake clock moved past a retry's backoff is ahead of.
        until = datetime.datetime.fromtimestamp(engine.now_ms() / 1000 + 1, datetime.UTC)
        await ctx.step.sleep_until("nap", until)
        got = await ctx.step.wait_for_event(
            "approval",
            event=f"test/traced.{engine.mode}.approved",
            timeout=datetime.timedelta(seconds=60),
        )
        return None if got is None else got.data

    with ServedApp(client, [traced], keep_request_headers=True) as app:
        yield TracedApp(app, calls)


async def _run_traced_function(engine: EngineHandle, traced: TracedApp) -> RunState:
    await engine.sync(traced.app.url, f"traced-app-{engine.mode}")
    [event_id] = await engine.send({"name": f"test/traced.{engine.mode}", "data": {"n": 1}})
    run_id = await engine.run_of_event(event_id)

    async def reached(kind: str) -> bool:
        return any(e.kind == kind for e in await engine.history(run_id))

    # Before its wait, the run retries "flaky" after Inngest's backoff (15 s plus up to 30 s of
    # jitter; the distributed engine's `--retry-interval` is a tenth of a second) and sleeps a
    # second. On a fake clock, each is passed once the run has reached it (so no call is in
    # flight while the clock moves, and the sleep lasts what the app asked).
    if engine.clock is not None:
        await eventually(lambda: reached("step.errored"), what="the first attempt of flaky to fail")
        await engine.advance(FIRST_BACKOFF_MAX_S)
        await eventually(lambda: reached("step.sleeping"), what="the run to sleep")
    what = "the run to wait for its approval"
    await engine.passing(lambda: reached("step.waiting"), step_s=0.25, timeout=30, what=what)
    await engine.send({"name": f"test/traced.{engine.mode}.approved", "data": {"ok": True}})
    run = await engine.finished(run_id, timeout=30)
    assert run.status == "completed", run.output
    assert traced.flaky_calls["flaky"] == 2
    return run


def _check_run_trace(spans: list[SpanView], run: RunState, app: ServedApp) -> None:
    trace_id = run_trace_id(run.run_id)
    root_id = run_root_span_id(run.run_id)
    mine = [s for s in spans if s.trace_id == trace_id]
    by_id = {s.span_id: s for s in mine}

    [root] = [s for s in mine if s.name == "run"]
    assert (root.span_id, root.parent_id) == (root_id, None)
    assert root.attributes["headrace.run_id"] == run.run_id
    assert root.attributes["headrace.function_id"] == run.fn_id
    assert root.attributes["headrace.run.status"] == "completed"

    # Every other span nests under the run's root, directly or through its step.
    for span in mine:
        if span is not root:
            assert span.parent_id in by_id, (span.name, span.service)
            assert span.attributes.get("headrace.run_id", run.run_id) == run.run_id

    steps = [s for s in mine if s.name == "step"]
    attempts = sorted(
        (s.attributes["headrace.step.name"], s.attributes["headrace.attempt"]) for s in steps
    )
    assert attempts == [("first", 0), ("flaky", 0), ("flaky", 1)]
    outcomes = {
        (s.attributes["headrace.step.name"], s.attributes["headrace.attempt"]): s.attributes[
            "headrace.step.outcome"
        ]
        for s in steps
    }
    assert outcomes == {
        ("first", 0): "completed",
        ("flaky", 0): "errored",
        ("flaky", 1): "completed",
    }
    calls = [s for s in mine if s.name in ("step", "discovery")]
    assert all(s.parent_id == root_id for s in calls)
    assert all(s.attributes["headrace.function_id"] == run.fn_id for s in calls)

    # One HTTP call per step attempt or discovery call, inside it.
    posts = [s for s in mine if s.name == "POST"]
    assert sorted(by_id[p.parent_id].span_id for p in posts if p.parent_id) == sorted(
        s.span_id for s in calls
    )
    assert all(p.attributes["http.response.status_code"] in (200, 206, 500) for p in posts)

    [sleep] = [s for s in mine if s.name == "sleep"]
    assert sleep.attributes["headrace.step.name"] == "nap"
    assert sleep.parent_id == root_id
    assert sleep.end_ns - sleep.start_ns >= 900_000_000  # it slept about a second
    [wait] = [s for s in mine if s.name == "wait"]
    assert wait.attributes["headrace.step.name"] == "approval"
    assert wait.parent_id == root_id
    assert {"trigger", "deliver", "pause.match"} <= {s.name for s in mine}

    # The app was called with the context of the HTTP call span.
    parents = {
        (int(tp.split("-")[1], 16), int(tp.split("-")[2], 16))
        for headers in app.request_headers
        if (tp := headers.get("traceparent")) is not None and int(tp.split("-")[1], 16) == trace_id
    }
    assert parents == {(trace_id, p.span_id) for p in posts}


async def _check_metrics(url: str, run: RunState, *, lag_group: str) -> None:
    async def scrape() -> str | None:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{url}/metrics")).text
        lag = samples(text, "headrace_consumer_lag")
        return text if any(labels["group"] == lag_group for labels, _ in lag) else None

    text = await eventually(scrape, what="the consumer lag to be reported")
    steps = {
        (labels["kind"], labels["outcome"]): value
        for labels, value in samples(text, "headrace_step_duration_seconds_count")
        if labels["function"] == run.fn_id
    }
    assert steps[("step", "completed")] >= 2
    assert steps[("step", "errored")] >= 1
    ended = samples(text, "headrace_runs_ended_total")
    assert any(labels == {"function": run.fn_id, "status": "completed"} for labels, _ in ended)
    # The executor reports the lag of the partitions of `work` it owns.
    lags = [
        v for labels, v in samples(text, "headrace_consumer_lag") if labels["group"] == lag_group
    ]
    assert lags and all(v >= 0 for v in lags)


@pytest.mark.fake_clock
@pytest.mark.parametrize("traced_app", ["dev_engine"], indirect=True)
async def test_a_run_is_one_trace_with_its_steps_retries_sleep_and_wait_in_dev(
    dev_engine: EngineHandle, memory_spans: InMemorySpanExporter, traced_app: TracedApp
) -> None:
    memory_spans.clear()
    run = await _run_traced_function(dev_engine, traced_app)
    trace_id = run_trace_id(run.run_id)

    async def root_recorded() -> bool:
        return any(
            s.trace_id == trace_id and s.name == "run" for s in _views_of_memory(memory_spans)
        )

    await eventually(root_recorded, what="the run's root span")
    _check_run_trace(_views_of_memory(memory_spans), run, traced_app.app)
    await _check_metrics(dev_engine.url, run, lag_group="executor")


@pytest.mark.kafka
@pytest.mark.cassandra
@pytest.mark.parametrize("traced_app", ["distributed_traced"], indirect=True)
async def test_a_run_is_one_trace_across_the_services_in_distributed_mode(
    traced_cluster: tuple[EngineHandle, dict[str, int]],
    otlp_receiver: OtlpReceiver,
    traced_app: TracedApp,
) -> None:
    engine, ports = traced_cluster
    run = await _run_traced_function(engine, traced_app)
    trace_id = run_trace_id(run.run_id)

    async def root_exported() -> bool:
        return any(s.trace_id == trace_id and s.name == "run" for s in otlp_receiver.spans)

    await eventually(root_exported, what="the run's root span to be exported")
    await _check_when_exported(otlp_receiver, run, traced_app.app)
    services = {s.service for s in otlp_receiver.spans if s.trace_id == trace_id}
    assert services == {"headrace-runner", "headrace-scheduler", "headrace-executor"}
    await _check_metrics(f"http://127.0.0.1:{ports['executor']}", run, lag_group="executor")


async def _check_when_exported(receiver: OtlpReceiver, run: RunState, app: ServedApp) -> None:
    """Each process exports in its own batches: check once all have come (or show why not)."""

    async def complete() -> bool | None:
        try:
            _check_run_trace(receiver.spans, run, app)
        except AssertionError:
            return None
        return True

    try:
        await eventually(complete, timeout=10, what="every service's spans of the run")
    except AssertionError:
        _check_run_trace(receiver.spans, run, app)
        raise


@pytest.fixture
def distributed_traced(traced_cluster: tuple[EngineHandle, dict[str, int]]) -> EngineHandle:
    return traced_cluster[0]


async def test_a_model_call_for_step_ai_infer_is_a_span_that_shows_no_key(
    dev_engine: EngineHandle, memory_spans: InMemorySpanExporter
) -> None:
    asked: list[str] = []

    async def generate(request: Request) -> Response:
        asked.append(request.query_params.get("key", ""))
        answer = {"candidates": [{"content": {"parts": [{"text": "a haiku"}]}}]}
        return Response(json.dumps(answer), media_type="application/json")

    model_port = free_port()
    model = HttpServer.for_app(
        Starlette(routes=[Route("/v1beta/models/{call:path}", generate, methods=["POST"])]),
        "127.0.0.1",
        model_port,
    )
    served = await model.start()
    client = make_client(dev_engine.url, "ai-app")

    @client.create_function(fn_id="poet", trigger=inngest.TriggerEvent(event="test/ai.poem"))
    async def poet(ctx: inngest.Context) -> object:
        adapter = gemini.Adapter(
            auth_key="model-secret-key",
            base_url=f"http://127.0.0.1:{model_port}/v1beta",
            model="gemini-test",
        )
        reply = await ctx.step.ai.infer(
            "write", adapter=adapter, body={"contents": [{"parts": [{"text": "a haiku"}]}]}
        )
        return reply["candidates"]

    memory_spans.clear()
    try:
        with ServedApp(client, [poet]) as app:
            await dev_engine.sync(app.url, "ai-app")
            [event_id] = await dev_engine.send({"name": "test/ai.poem", "data": {}})
            run = await dev_engine.finished(await dev_engine.run_of_event(event_id))
    finally:
        model.should_exit = True
        await served

    assert run.status == "completed", run.output
    assert run.output == [{"content": {"parts": [{"text": "a haiku"}]}}]
    assert asked == ["model-secret-key"]
    mine = [s for s in _views_of_memory(memory_spans) if s.trace_id == run_trace_id(run.run_id)]
    [model_call] = [s for s in mine if s.attributes.get("headrace.ai.gateway")]
    assert model_call.name == "POST" and model_call.attributes["http.response.status_code"] == 200
    assert model_call.attributes["url.full"].endswith("/models/gemini-test:generateContent")
    assert all("model-secret-key" not in str(s.attributes) for s in mine)
    # It is made inside the step that asked for it.
    assert {s.span_id: s.name for s in mine}[model_call.parent_id] in ("step", "discovery")
