"""step.fetch: the Gateway opcode. The SDK asks the engine to make an HTTP request for the
function; headrace makes it and answers the op as if a step had returned the response.

What the SDK sends (inngest-js `components/InngestStepTools.ts`, `gatewaySymbol`): opts
`{url, method, headers, body}`, `body` as the app gave it to `fetch` (a string, or absent). What
it reads back (`components/Fetch.ts`): step data `{status_code, headers, body}`, made into a
`Response`. As Inngest (pkg/execution/executor `handleGeneratorGateway`, pkg/util/gateway): any
HTTP status is a result, headers are joined with ","; a request that gets no answer is a
`GatewayError`, retried as Inngest does: the run is called again (the SDK reports the op again)
until the function's attempts are spent, and then the SDK's fetch throws it. Limits: the
driver's timeout and `MAX_RESPONSE_BYTES`.
"""

from __future__ import annotations

import msgspec

from headrace.protocol.ops import FetchOpts, Gateway, RequestFailed, StepRun
from headrace.protocol.urls import url_problem

# Inngest's largest step output (consts.MaxStepOutputSize): the response is stored as a memo.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class FetchRequest(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def build_fetch(opts: FetchOpts | None) -> FetchRequest | str:
    """The request a Gateway op asks for, or why it cannot be made."""
    opts = opts or FetchOpts()
    url = opts.url
    if url is None or not url.startswith(("http://", "https://")):
        return "step.fetch needs an http(s) url"
    if (problem := url_problem(url)) is not None:
        return f"step.fetch's url {problem}"
    method = (opts.method or "GET").upper()
    if method not in _METHODS:
        return f"step.fetch cannot make a {method} request"
    headers = dict(opts.headers or {})
    body = opts.body
    if body is None or body == "":
        data = None
    elif isinstance(body, str):
        # Sent as the app gave it. (Inngest sends a body that is not JSON as a JSON string,
        # quoted; a form or text body then reaches its server changed.)
        data = body.encode()
    else:
        data = msgspec.json.encode(body)
    return FetchRequest(method=method, url=url, headers=headers, body=data)


def fetched_op(
    op: Gateway, url: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> StepRun:
    """The op standing for a response: a StepRun with it as data."""
    joined: dict[str, str] = {}
    for name, value in headers:
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    data = {
        "url": url,
        "headers": joined,
        "body": body.decode(errors="replace"),
        "status_code": status,
    }
    return StepRun(data=data, **op.common())


def failed_op(op: Gateway, reason: str) -> RequestFailed:
    """The op standing for a request that got no usable answer: an error of the step, retried
    by calling the run again (`engine/retries.py` `request_failed`)."""
    error = {"name": "GatewayError", "message": f"Error making gateway request: {reason}"}
    return RequestFailed(error=error, **op.common())
