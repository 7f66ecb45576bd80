"""`/v0/gql`: GraphQL over HTTP, as a POST with a JSON body or a GET with query parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import ExecutionResult, GraphQLError, execute, parse, validate
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headrace.api.context import ApiContext, acting
from headrace.api.gql.schema import SCHEMA
from headrace.core.jsonutil import loads


class _BadRequest(Exception):
    """A request that carries no GraphQL operation to run."""


@dataclass(frozen=True)
class _Operation:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None


def _operation(params: Mapping[str, Any]) -> _Operation:
    query = params.get("query")
    variables = params.get("variables")
    name = params.get("operationName")
    if not isinstance(query, str) or not query:
        raise _BadRequest("the request has no query")
    if variables is not None and not isinstance(variables, dict):
        raise _BadRequest("variables must be an object")
    if name is not None and not isinstance(name, str):
        raise _BadRequest("operationName must be a string")
    return _Operation(query, variables, name)


async def _read(request: Request) -> _Operation:
    try:
        if request.method == "GET":
            params: dict[str, Any] = dict(request.query_params)
            if "variables" in params:
                params["variables"] = loads(params["variables"])
        else:
            params = loads(await request.body())
    except ValueError as err:
        raise _BadRequest(f"invalid JSON: {err}") from None
    if not isinstance(params, dict):
        raise _BadRequest("the request body must be a JSON object")
    return _operation(params)


async def _endpoint(ctx: ApiContext, request: Request) -> Response:
    try:
        operation = await _read(request)
    except _BadRequest as err:
        return JSONResponse({"errors": [{"message": str(err)}]}, status_code=400)
    try:
        document = parse(operation.query)
    except GraphQLError as err:
        return _unprocessable([err])
    problems = validate(SCHEMA, document)
    if problems:
        return _unprocessable(problems)
    result = execute(
        SCHEMA,
        document,
        context_value=ctx,
        variable_values=operation.variables,
        operation_name=operation.operation_name,
    )
    if not isinstance(result, ExecutionResult):
        result = await result
    # An error in a resolver (an unknown run, say) still answers 200, with null data where it
    # happened and the error beside it, as GraphQL over HTTP does.
    return JSONResponse(result.formatted)


def _unprocessable(errors: list[GraphQLError]) -> Response:
    """A document that does not parse or does not validate against the schema (an unknown field,
    a wrong argument) answers 422 at once, as Inngest's server (gqlgen) does, so that a client
    that polls does not poll on a query that can never succeed."""
    return JSONResponse({"errors": [e.formatted for e in errors]}, status_code=422)


def gql_routes(ctx: ApiContext) -> list[BaseRoute]:
    """Resolvers see the account of the request's signing key (any request, on a dev server)."""
    return [Route("/v0/gql", acting(ctx, _endpoint), methods=["GET", "POST"])]
