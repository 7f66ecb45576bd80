"""The one set-up call of a headrace process: logs and traces (metrics need none)."""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry.sdk.trace.export import SpanExporter

from headrace.obs.logging import configure_logging, register_secrets
from headrace.obs.tracing import setup_tracing


def setup_observability(
    service: str,
    *,
    log_format: str | None = None,
    log_level: str | None = None,
    secrets: Iterable[str | None] = (),
    span_exporter: SpanExporter | None = None,
) -> None:
    """Configure logging (format and level default to `HEADRACE_LOG_FORMAT` and
    `HEADRACE_LOG_LEVEL`), mask `secrets` in every log line, and install tracing (exported over
    OTLP when the standard `OTEL_EXPORTER_OTLP_*` variables say where)."""
    configure_logging(log_format, log_level)
    register_secrets(secrets)
    setup_tracing(service, span_exporter)
