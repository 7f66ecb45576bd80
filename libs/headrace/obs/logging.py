"""structlog set-up: readable lines in dev, JSON lines in production.

Context (account, function, run, step) is bound by the code that knows it, with structlog's
contextvars, so every line logged while a record is handled carries it; lines logged inside a
span also carry its trace and span ids.

Nothing secret and no user data reaches a log: fields that hold secrets (event keys, signing
keys) are always masked, and so is every known secret value wherever it appears (a URL, an
error message); fields that hold payloads (event data, step outputs, request bodies) are
masked unless `HEADRACE_LOG_PAYLOADS=1`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

FORMATS = ("console", "json")
MASK = "[redacted]"
# Field names whose values are secrets, masked always.
SECRET_FIELDS = frozenset(
    {
        "authorization",
        "event_key",
        "event_keys",
        "key",
        "password",
        "secret",
        "signature",
        "signing_key",
        "token",
    }
)
# Field names whose values are user data, masked unless HEADRACE_LOG_PAYLOADS=1.
PAYLOAD_FIELDS = frozenset(
    {
        "body",
        "data",
        "event_data",
        "events",
        "input",
        "memo",
        "output",
        "payload",
        "result",
        "user",
    }
)
_secrets: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Values to mask wherever they appear in a log line (event keys, signing keys)."""
    # Very short values would mask ordinary words; keys are long.
    _secrets.update(v for v in values if v and len(v) >= 6)


def payloads_allowed() -> bool:
    return os.environ.get("HEADRACE_LOG_PAYLOADS") == "1"


def _scrub(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The processor that keeps secrets and payloads out of log lines."""
    allow_payloads = payloads_allowed()
    for name, value in list(event_dict.items()):
        lowered = name.lower()
        if lowered in SECRET_FIELDS or (lowered in PAYLOAD_FIELDS and not allow_payloads):
            event_dict[name] = MASK
        elif isinstance(value, str):
            event_dict[name] = _scrub(value)
        elif _secrets and value is not None and not isinstance(value, int | float | bool):
            text = str(value)
            if _scrub(text) != text:
                event_dict[name] = _scrub(text)
    return event_dict


def add_trace_ids(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", format(context.trace_id, "032x"))
        event_dict.setdefault("span_id", format(context.span_id, "016x"))
    return event_dict


def configure_logging(
    fmt: str | None = None, level: str | None = None, *, file: TextIO | None = None
) -> None:
    """`fmt` is "console" or "json" (default: `HEADRACE_LOG_FORMAT`, else console); `level`
    a logging level name (default: `HEADRACE_LOG_LEVEL`, else info). Lines go to stderr, or
    to `file`."""
    file = file or sys.stderr
    fmt = fmt or os.environ.get("HEADRACE_LOG_FORMAT") or "console"
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    level = level or os.environ.get("HEADRACE_LOG_LEVEL") or "info"
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"log level {level!r} is not a logging level (debug, info, warning...)")
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=file.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_trace_ids,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=file),
        cache_logger_on_first_use=True,
    )
