"""The cap on request bodies (services/ingest/body_cap.py): declared or streamed, a body over it
is answered 413 without the route reading more of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from headrace.services.ingest.body_cap import BodyCap
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def _client(read: list[int]) -> httpx.AsyncClient:
    async def echo(request: Request) -> Response:
        body = await request.body()
        read.append(len(body))
        return JSONResponse({"read": len(body)})

    # Inside the app's error handling, as build_app places it.
    app = Starlette(
        routes=[Route("/in", echo, methods=["POST"])],
        middleware=[Middleware(BodyCap, max_bytes=10)],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h")


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_a_body_within_the_cap_reaches_the_route() -> None:
    read: list[int] = []
    async with _client(read) as http:
        declared = await http.post("/in", content=b"x" * 10)
        streamed = await http.post("/in", content=_chunks(b"x" * 5, b"y" * 5))

    assert (declared.status_code, streamed.status_code) == (200, 200)
    assert read == [10, 10]


async def test_a_body_declared_over_the_cap_is_refused_unread() -> None:
    read: list[int] = []
    async with _client(read) as http:
        answer = await http.post("/in", content=b"x" * 11)

    assert answer.status_code == 413
    assert answer.json() == {
        "error": "the request body is over the limit of 10 bytes",
        "status": 413,
    }
    assert read == []


async def test_a_streamed_body_is_refused_once_it_goes_over_the_cap() -> None:
    read: list[int] = []
    async with _client(read) as http:
        answer = await http.post("/in", content=_chunks(b"x" * 6, b"y" * 6, b"z" * 6))

    assert answer.status_code == 413
    assert read == []
