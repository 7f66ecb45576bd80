"""The OpenAPI document describes exactly the routes `headrace dev` mounts (so it cannot rot),
every reference in it resolves, and the server serves it at /openapi.json."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route, WebSocketRoute

from headrace.api.openapi import document, document_bytes
from headrace.dev.server import DevServer
from headrace.runtime.settings import DEV_SETTINGS, EmbeddedStorage

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


@pytest.fixture(params=["open", "keyed"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[DevServer]:
    settings = replace(DEV_SETTINGS, embedded=EmbeddedStorage(state_dir=None))
    if request.param == "keyed":
        settings = replace(
            settings,
            event_keys=(("k", "default"),),
            signing_key="signkey-test-00",
            dashboard_token="t",
        )
    dev = DevServer(settings)
    yield dev
    await dev.embedded.close()


def _mounted(server: DevServer) -> set[tuple[str, str]]:
    """(method, path) of every route, paths as OpenAPI writes them (no `:path` convertors)."""
    found: set[tuple[str, str]] = set()
    for route in server.app.routes:
        assert isinstance(route, Route | Mount | WebSocketRoute), route
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        if isinstance(route, Mount):
            found.add(("get", path + "/{path}"))
        elif isinstance(route, WebSocketRoute):
            found.add(("get", path))
        else:
            # HEAD is what Starlette adds to every GET.
            found |= {(m.lower(), path) for m in route.methods or () if m != "HEAD"}
    return found


def _documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(m, path) for path, item in doc["paths"].items() for m in item if m in HTTP_METHODS}


def test_the_document_holds_every_route_the_dev_server_mounts_and_no_other(
    server: DevServer,
) -> None:
    mounted, documented = _mounted(server), _documented(document())
    assert sorted(mounted - documented) == [], "routes missing from api/openapi.json"
    assert sorted(documented - mounted) == [], "routes in api/openapi.json no server mounts"


def test_every_reference_resolves_and_every_operation_says_who_may_call_it() -> None:
    doc = document()
    text = document_bytes().decode()
    for ref in set(re.findall(r'"\$ref": "#/([^"]+)"', text)):
        node: Any = doc
        for part in ref.split("/"):
            assert part in node, f"#/{ref} does not resolve"
            node = node[part]
    schemes = set(doc["components"]["securitySchemes"])
    for path, item in doc["paths"].items():
        for method, spec in item.items():
            assert "security" in spec, f"{method} {path} does not say whether it needs a key"
            for requirement in spec["security"]:
                assert set(requirement) <= schemes, f"{method} {path}: {requirement}"


async def test_the_server_serves_the_document(server: DevServer) -> None:
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dev") as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["paths"]["/e/{key}"]["post"]["security"] == [{"eventKey": []}]
