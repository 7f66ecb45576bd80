"""Reading an app's HTTP answer into an Outcome (protocol §3)."""

from __future__ import annotations

from typing import Any

import msgspec

from headrace.core.backoff import retry_after_ms
from headrace.core.jsonutil import loads
from headrace.protocol.answer_signature import ERROR_NAME, AnswerCheck
from headrace.protocol.ops import WITHOUT_STEP, Outcome, decode_ops

# The largest answer read from an app, as Inngest's (consts.MaxSDKResponseBodySize: a step's
# largest output plus its largest input).
MAX_ANSWER_BYTES = 8 * 1024 * 1024
# The most ops one answer may hold: Inngest fails a run whose answer holds more than its step
# limit (executor.HandleGeneratorResponse, consts.DefaultMaxStepLimit). Checked before the
# executor makes any request an op asks for (step.fetch, step.ai.infer).
MAX_OPS = 1_000


def _header(headers: dict[str, str], name: str) -> str | None:
    return headers.get(name.lower())


def _error(name: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "message": message, **extra}


def read_response(
    status: int,
    headers: dict[str, str],
    body: bytes,
    now_ms: int,
    check: AnswerCheck | None = None,
) -> Outcome:
    """Interpret one response. `headers` must have lower-case names. `check`: the signature
    the answer must carry, for a signed call; an answer that fails it is not read."""
    if status == 201:
        return _read_stream(body, now_ms, check)
    problem = check.problem(status, headers, body, now_ms // 1000) if check else None
    if problem is not None:
        # Not retried: the same app with the same key signs the same way every time, and a
        # retry would run the step's code again for an answer that is refused again.
        return Outcome(error=_error(ERROR_NAME, problem), status=status, retryable=False)
    request_version = _int(_header(headers, "x-inngest-req-version"))
    no_retry = (_header(headers, "x-inngest-no-retry") or "").lower() == "true"
    retry_after = retry_after_ms(_header(headers, "retry-after"), now_ms)
    if 200 <= status < 300 and _header(headers, "x-inngest-sdk") is None:
        return Outcome(
            error=_error(
                "UnexpectedResponse",
                f"the app answered {status} without an X-Inngest-SDK header: "
                "the URL does not serve an Inngest SDK",
            ),
            status=status,
        )
    try:
        parsed: Any = loads(body) if body.strip() else None
    except msgspec.DecodeError:
        if 200 <= status < 300:
            return Outcome(
                error=_error(
                    "UnexpectedResponse",
                    f"the app answered {status} with a body that is not JSON: {_clip(body)}",
                ),
                status=status,
            )
        parsed = None
    if status == 206:
        return _read_ops(parsed, status, request_version, no_retry, retry_after)
    if 200 <= status < 300:
        return Outcome(done=True, result=parsed, status=status, request_version=request_version)
    error = parsed if isinstance(parsed, dict) else None
    if error is None or not isinstance(error.get("message"), str):
        text = body.decode(errors="replace").strip() if body else ""
        error = _error(
            "Error", f"invalid status code: {status}" + (f": {_clip(body)}" if text else "")
        )
    return Outcome(
        error=error,
        retryable=not no_retry,
        retry_after_ms=retry_after,
        status=status,
        request_version=request_version,
    )


def _read_ops(
    parsed: Any,
    status: int,
    request_version: int | None,
    no_retry: bool,
    retry_after: int | None,
) -> Outcome:
    items = parsed if isinstance(parsed, list) else [] if parsed is None else [parsed]
    if len(items) > MAX_OPS:
        return Outcome(
            error=_error(
                "InngestErrFunctionOverflowed",
                f"The function run exceeded the step limit of {MAX_OPS} steps: "
                f"the app answered {len(items)} ops at once",
            ),
            status=status,
            retryable=False,
        )
    try:
        ops = decode_ops(items)
    except msgspec.ValidationError as err:
        return Outcome(
            error=_error("UnexpectedResponse", f"the app answered 206 with an invalid op: {err}"),
            status=status,
        )
    nameless = next(
        (op.opcode for op in ops if not op.id and not isinstance(op, WITHOUT_STEP)), None
    )
    if nameless is not None:
        # A step without an id could never be told apart, memoized or called for.
        return Outcome(
            error=_error(
                "UnexpectedResponse",
                f"the app answered 206 with a {_clip(nameless.encode(), 100)!r} op without an id",
            ),
            status=status,
        )
    # Retry-After on ops is for their StepError: its retry waits for it, as in Inngest (the JS
    # SDK's RetryAfterError thrown in a step).
    return Outcome(
        ops=ops,
        status=status,
        request_version=request_version,
        retryable=not no_retry,
        retry_after_ms=retry_after,
    )


def _read_stream(body: bytes, now_ms: int, check: AnswerCheck | None) -> Outcome:
    """A 201 streams keep-alive spaces, then {"status", "headers", "body"}."""
    try:
        wrapper = loads(body.strip())
        status = int(wrapper["status"])
        headers = {str(k).lower(): str(v) for k, v in (wrapper.get("headers") or {}).items()}
        inner = wrapper.get("body")
    except (msgspec.DecodeError, KeyError, TypeError, ValueError, AttributeError):
        return Outcome(
            error=_error("UnexpectedResponse", f"invalid streamed response: {_clip(body)}"),
            status=201,
        )
    inner_bytes = inner.encode() if isinstance(inner, str) else msgspec.json.encode(inner)
    headers.setdefault("x-inngest-sdk", "streamed")
    return read_response(status, headers, inner_bytes, now_ms, check)


def too_large(status: int, limit: int) -> Outcome:
    """An answer cut off past `limit` bytes: an error retried by the rules, as Inngest's
    `output_too_large` is."""
    return Outcome(
        error=_error(
            "OutputTooLarge",
            f"the app answered {status} with a body larger than {limit} bytes, "
            "the most the engine reads",
        ),
        status=status,
    )


def transport_error(message: str) -> Outcome:
    return Outcome(error=_error("NetworkError", message), status=0)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _clip(body: bytes, limit: int = 200) -> str:
    text = body.decode(errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."
