"""Traces: one trace per run, whichever service or process records a span of it.

A run's trace id is its run id (a ULID is 128 bits, as a trace id is), and its root span id is
derived from the run id too. So every service can put a span into the run's trace, as a child
of the run's root span, without having been handed a parent: after a crash, a retry, or a
timer that fired months later, the span still lands where it belongs. The root span itself
(`run`) is recorded once, by the executor, when the run ends, with the run's real start time.

Spans of a run are children of the root, so a trace reads as the run's timeline. The W3C trace
context still travels with every record (in Kafka record headers, see `headrace.obs.log`) and
to the app (`traceparent`): a span made while handling a record links to the span that
produced it, and the app's own spans nest under the HTTP call that ran them.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from ulid import ULID

tracer = trace.get_tracer("headrace")

# The ids the next root span gets, when it is a run's root span (see `record_run_span`).
_root_ids: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "headrace_root_ids", default=None
)
_provider: TracerProvider | None = None


class RunIdGenerator(IdGenerator):
    """Random ids, except for a run's root span, whose ids derive from the run id."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()

    def generate_span_id(self) -> int:
        ids = _root_ids.get()
        return ids[1] if ids is not None else self._random.generate_span_id()

    def generate_trace_id(self) -> int:
        ids = _root_ids.get()
        return ids[0] if ids is not None else self._random.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return _root_ids.get() is None


def run_trace_id(run_id: str) -> int:
    """The trace id of a run: its ULID's 128 bits (a hash for an id that is not a ULID)."""
    try:
        value = int(ULID.from_str(run_id))
    except ValueError:
        value = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:16], "big")
    return value or 1


def run_root_span_id(run_id: str) -> int:
    value = int.from_bytes(hashlib.sha256(b"headrace.run:" + run_id.encode()).digest()[:8], "big")
    return value or 1


def run_root(run_id: str) -> SpanContext:
    return SpanContext(
        run_trace_id(run_id),
        run_root_span_id(run_id),
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def _cause(root: SpanContext) -> list[Link]:
    """A link to the span that caused this one (the record's producer), when in the same run."""
    current = trace.get_current_span().get_span_context()
    if current.is_valid and current.trace_id == root.trace_id and current.span_id != root.span_id:
        return [Link(current)]
    return []


@contextlib.contextmanager
def run_span(
    name: str,
    run_id: str,
    attributes: Mapping[str, Any],
    *,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[Span]:
    """A span of a run, current while the block runs, child of the run's root span."""
    root = run_root(run_id)
    parent = trace.set_span_in_context(NonRecordingSpan(root))
    with tracer.start_as_current_span(
        name,
        context=parent,
        kind=kind,
        links=_cause(root),
        attributes={"headrace.run_id": run_id, **attributes},
    ) as span:
        yield span


def record_run_span(
    name: str,
    run_id: str,
    attributes: Mapping[str, Any],
    start_ms: int,
    end_ms: int,
    *,
    root: bool = False,
) -> None:
    """Record a span that has already happened (a sleep, a wait, the run itself), with its real
    times. With `root`, it is the run's root span, with the ids every other span points to."""
    ids_token = None
    if root:
        ids = run_root(run_id)
        context = otel_context.Context()
        ids_token = _root_ids.set((ids.trace_id, ids.span_id))
    else:
        context = trace.set_span_in_context(NonRecordingSpan(run_root(run_id)))
    try:
        span = tracer.start_span(
            name,
            context=context,
            attributes={"headrace.run_id": run_id, **attributes},
            start_time=start_ms * 1_000_000,
        )
    finally:
        if ids_token is not None:
            _root_ids.reset(ids_token)
    span.end(end_time=max(end_ms, start_ms) * 1_000_000)


def context_headers() -> tuple[tuple[str, bytes], ...]:
    """The current trace context, as record headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return tuple((k, v.encode()) for k, v in carrier.items())


def inject(
    headers: Sequence[tuple[str, bytes]],
    context: tuple[tuple[str, bytes], ...] | None = None,
) -> tuple[tuple[str, bytes], ...]:
    """`headers` with the trace context (`context`, from `context_headers`, or the current one)
    added, unless they carry one already."""
    context = context_headers() if context is None else context
    if not headers:
        return context
    present = {name for name, _ in headers}
    return (*headers, *(item for item in context if item[0] not in present))


def extract(headers: Sequence[tuple[str, bytes]]) -> otel_context.Context:
    """The trace context that record headers carry (an empty context when none)."""
    carrier = {name: value.decode("latin-1") for name, value in headers}
    return propagate.extract(carrier)


def setup_tracing(service: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """Install the tracer provider (once per process) and return it.

    Spans go over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` or
    `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (the exporter reads the other standard
    `OTEL_EXPORTER_OTLP_*` variables itself), and to `exporter` when given (tests). Otherwise
    spans are still made, so the trace context reaches the apps, but exported nowhere.
    """
    global _provider
    if _provider is None:
        name = os.environ.get("OTEL_SERVICE_NAME") or f"headrace-{service}"
        _provider = TracerProvider(
            resource=Resource.create({SERVICE_NAME: name}), id_generator=RunIdGenerator()
        )
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        ):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(_provider)
    if exporter is not None:
        _provider.add_span_processor(SimpleSpanProcessor(exporter))
    return _provider
