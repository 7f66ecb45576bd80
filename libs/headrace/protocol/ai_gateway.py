"""step.ai.infer: the AIGateway opcode (protocol §3). headrace makes the model call for the SDK
and answers the op as if the step had run: `{"data": <response JSON>}`, or a step error.

The request is built as Inngest does (pkg/util/aigateway/request.go `SerializableRequest`): POST
`opts.url` with `opts.body`; the auth key goes in `x-api-key` (anthropic), as `?key=` (gemini), raw
in `Authorization` (bedrock) or as `Authorization: Bearer` (anything else); `opts.headers` last.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from headrace.core.jsonutil import loads
from headrace.protocol.ops import AIGateway, AIGatewayOpts, RequestFailed, StepRun
from headrace.protocol.urls import url_problem


class GatewayRequest(msgspec.Struct, kw_only=True):
    url: str
    headers: dict[str, str]
    body: bytes


def build_request(opts: AIGatewayOpts | None) -> GatewayRequest | str:
    """The HTTP request of an AIGateway op, or why it cannot be made."""
    opts = opts or AIGatewayOpts()
    url = opts.url
    if not url:
        return "the AIGateway op has no url"
    if (problem := url_problem(url)) is not None:
        return f"the AIGateway op's url {problem}"
    key = opts.auth_key or ""
    fmt = opts.format or ""
    # Go's canonical header case (X-Api-Key): some model APIs and test doubles look names up
    # case-sensitively.
    headers = {"Content-Type": "application/json"}
    if fmt == "gemini":
        parts = urlsplit(url)
        query = [*parse_qsl(parts.query, keep_blank_values=True), ("key", key)]
        url = urlunsplit(parts._replace(query=urlencode(query)))
    elif not key:
        pass  # no key, no header: "Bearer " is a value HTTP/1.1 forbids (trailing space)
    elif fmt == "bedrock":
        headers["Authorization"] = key
    elif fmt == "anthropic":
        headers["X-Api-Key"] = key
    else:
        headers["Authorization"] = f"Bearer {key}"
    for name, value in (opts.headers or {}).items():
        headers[_canonical(name)] = value
    return GatewayRequest(url=url, headers=headers, body=msgspec.json.encode(opts.body))


def settled_op(
    op: AIGateway, status: int, body: bytes, transport_error: str | None = None
) -> StepRun | RequestFailed:
    """The op that stands for the gateway call's result: a StepRun with the response as data,
    or an error of the step, retried by calling the run again (the JS SDK cannot run an
    AIGateway step when called for it), as a failed step.fetch is."""
    if transport_error is None and 200 <= status < 300:
        try:
            data: Any = loads(body) if body.strip() else None
        except msgspec.DecodeError:
            data = body.decode(errors="replace")
        return StepRun(data=data, **op.common())
    reason = transport_error or f"unsuccessful status code: {status}"
    text = body.decode(errors="replace") if body else '{"error":"Error making AI request"}'
    error = {
        "name": "AIGatewayError",
        "message": f"Error making AI request: {reason}",
        "stack": text,
    }
    return RequestFailed(error=error, **op.common())


def _canonical(name: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: "x-my-header" -> "X-My-Header"."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
