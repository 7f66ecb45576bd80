"""`GET /openapi.json`: the OpenAPI 3.1 description of the HTTP API, kept by hand beside the
routes in `openapi.json` (tests/unit/test_openapi.py holds the two to each other). Open on every
server: it describes the routes, it reads nothing of an account's."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

PATH = "/openapi.json"


@functools.cache
def document_bytes() -> bytes:
    return resources.files("headrace.api").joinpath("openapi.json").read_bytes()


def document() -> dict[str, Any]:
    """A fresh copy each call: callers may change theirs."""
    doc: dict[str, Any] = json.loads(document_bytes())
    return doc


def openapi_routes() -> list[BaseRoute]:
    async def serve(_: Request) -> Response:
        return Response(document_bytes(), media_type="application/json")

    return [Route(PATH, serve, methods=["GET"])]
