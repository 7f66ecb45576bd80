"""The call request headrace sends to an app (protocol §2), as canonical JSON."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from headrace.core.jsonutil import canonical

# Above this the SDK fetches events and memos through /v0/runs/{id}/batch and /actions.
MAX_INLINE_BYTES = 4 * 1024 * 1024


def call_url(step_url: str, fn_id: str, target: str | None) -> str:
    """The function's registered step URL with `fnId` and `stepId` set for this call."""
    parts = urlsplit(step_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    query = [(k, v) for k, v in query if k not in ("fnId", "stepId")]
    query += [("fnId", fn_id), ("stepId", target or "step")]
    return urlunsplit(parts._replace(query=urlencode(query)))


def build_body(
    *,
    run_id: str,
    fn_id: str,
    events: list[dict[str, Any]],
    memos: dict[str, bytes],
    stack: list[str],
    attempt: int,
    max_attempts: int,
    target: str | None,
    disable_immediate: bool,
    version: int,
    queue_item: str | None = None,
    env: str = "dev",
) -> bytes:
    """Canonical JSON of the request; falls back to `use_api` when it would pass 4 MB.
    `queue_item` is `ctx.qi_id`, which turns on the 4.x SDK's checkpointing (see
    protocol/checkpoint.py)."""

    def body(use_api: bool) -> bytes:
        return canonical(
            {
                "event": events[0] if events else {},
                "events": [] if use_api else events,
                "steps": {} if use_api else {k: msgspec.Raw(v) for k, v in memos.items()},
                "ctx": {
                    "run_id": run_id,
                    "fn_id": fn_id,
                    "attempt": attempt,
                    "max_attempts": max_attempts,
                    "env": env,
                    "step_id": target or "step",
                    "stack": {"stack": stack, "current": len(stack)},
                    "disable_immediate_execution": disable_immediate,
                    "use_api": use_api,
                    **({"qi_id": queue_item} if queue_item is not None else {}),
                },
                "version": version,
                "use_api": use_api,
            }
        )

    if sum(len(value) for value in memos.values()) > MAX_INLINE_BYTES:
        return body(use_api=True)  # too large already: not encoded whole only to be dropped
    inline = body(use_api=False)
    return inline if len(inline) <= MAX_INLINE_BYTES else body(use_api=True)
