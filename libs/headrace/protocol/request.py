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
    env: str = "dev",
) -> bytes:
    """Canonical JSON of the request; falls back to `use_api` when it would pass 4 MB."""
    body = _body(
        run_id=run_id,
        fn_id=fn_id,
        events=events,
        steps={k: msgspec.Raw(v) for k, v in memos.items()},
        stack=stack,
        attempt=attempt,
        max_attempts=max_attempts,
        target=target,
        disable_immediate=disable_immediate,
        version=version,
        env=env,
        use_api=False,
    )
    if len(body) <= MAX_INLINE_BYTES:
        return body
    return _body(
        run_id=run_id,
        fn_id=fn_id,
        events=[],
        steps={},
        stack=stack,
        attempt=attempt,
        max_attempts=max_attempts,
        target=target,
        disable_immediate=disable_immediate,
        version=version,
        env=env,
        use_api=True,
        event=events[0] if events else {},
    )


def _body(
    *,
    run_id: str,
    fn_id: str,
    events: list[dict[str, Any]],
    steps: dict[str, Any],
    stack: list[str],
    attempt: int,
    max_attempts: int,
    target: str | None,
    disable_immediate: bool,
    version: int,
    env: str,
    use_api: bool,
    event: dict[str, Any] | None = None,
) -> bytes:
    return canonical(
        {
            "event": event if event is not None else (events[0] if events else {}),
            "events": events,
            "steps": steps,
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
            },
            "version": version,
            "use_api": use_api,
        }
    )
