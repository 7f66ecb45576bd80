"""`GET /dev`: what Inngest's dev server answers there (inngest/inngest pkg/devserver/api.go
`Info`), for the SDKs and their test suites: the server's kind, its apps, and each function as
an inngest.Function: triggers as the SDK sent them, steps as a list of {id, name, uri}."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headrace.api.context import ApiContext, acting
from headrace.messages.state import FunctionRecord


def dev_function(fn: FunctionRecord) -> dict[str, Any]:
    steps = fn.config.get("steps")
    return {
        "id": fn.fn_id,
        # Inngest's functions have a UUID id and a slug; headrace's only the slug.
        "slug": fn.fn_id,
        "name": fn.name,
        "app_id": fn.app_id,
        "archived": fn.archived,
        "triggers": fn.config.get("triggers") or [],
        "steps": [
            {"id": step.get("id") or key, "name": step.get("name") or key, "uri": _step_uri(step)}
            for key, step in (steps.items() if isinstance(steps, dict) else [])
            if isinstance(step, dict)
        ],
    }


def _step_uri(step: dict[str, Any]) -> str:
    runtime = step.get("runtime")
    url = runtime.get("url") if isinstance(runtime, dict) else None
    return url if isinstance(url, str) else ""


async def _dev_info(ctx: ApiContext, _: Request) -> Response:
    apps = await ctx.stores.list_apps(ctx.account)
    functions = await ctx.stores.list_functions(ctx.account)
    return JSONResponse(
        {
            "version": "headrace",
            "kind": ctx.keys.server_kind,
            "apps": [{"id": a.app_id, "url": a.url, "synced_ms": a.synced_ms} for a in apps],
            "functions": [dev_function(f) for f in functions],
        }
    )


def dev_info_routes(ctx: ApiContext) -> list[BaseRoute]:
    return [Route("/dev", acting(ctx, _dev_info))]
