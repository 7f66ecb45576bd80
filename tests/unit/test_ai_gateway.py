"""step.ai.infer: the model request headrace makes for the SDK, and how its answer settles."""

from __future__ import annotations

import json

from headrace.protocol.ai_gateway import build_request, settled_op
from headrace.protocol.ops import AIGateway, AIGatewayOpts, RequestFailed, StepRun


def test_an_anthropic_request_carries_the_key_and_the_extra_headers() -> None:
    request = build_request(
        AIGatewayOpts(
            url="http://model.local/v1/messages",
            auth_key="sk-1",
            format="anthropic",
            headers={"x-my-header": "v"},
            body={"messages": []},
        )
    )
    assert not isinstance(request, str)
    assert request.headers["X-Api-Key"] == "sk-1"
    assert request.headers["X-My-Header"] == "v"
    assert json.loads(request.body) == {"messages": []}


def test_other_formats_use_a_bearer_token_and_gemini_a_query_key() -> None:
    openai = build_request(
        AIGatewayOpts(url="http://m/v1/chat", auth_key="k", format="openai-chat")
    )
    gemini = build_request(AIGatewayOpts(url="http://m/gen?alt=1", auth_key="k", format="gemini"))
    assert not isinstance(openai, str) and openai.headers["Authorization"] == "Bearer k"
    assert not isinstance(gemini, str) and gemini.url == "http://m/gen?alt=1&key=k"
    assert build_request(None) == "the AIGateway op has no url"


def test_a_request_without_a_key_has_no_auth_header() -> None:
    for fmt in ("openai-chat", "anthropic", "bedrock"):
        request = build_request(AIGatewayOpts(url="http://m/v1/chat", format=fmt))
        assert not isinstance(request, str)
        assert request.headers == {"Content-Type": "application/json"}, fmt


def test_the_answer_becomes_the_steps_data_or_a_failed_request_retried_by_calling_again() -> None:
    op = AIGateway(id="h", name="infer")
    ok = settled_op(op, 200, b'{"content": "hi"}')
    assert isinstance(ok, StepRun)
    assert (ok.id, ok.data) == ("h", {"content": "hi"})
    failed = settled_op(op, 529, b"overloaded")
    assert isinstance(failed, RequestFailed)
    assert failed.error["message"] == "Error making AI request: unsuccessful status code: 529"
