"""A request that changes a run: read it, decide, write; again when another writer won.

The executor (applying a resume, a cancel, a call's outcome) may write the run between this
request's read and its write; the write then raises Conflict, and the request is decided again
from the run as it now is, a few times, before it is answered 503 to be sent again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.responses import Response

from headrace.api.context import ApiContext, api_error
from headrace.core.errors import Conflict
from headrace.messages.state import RunState

_CONFLICT_ROUNDS = 5

Decide = Callable[[RunState, set[str]], Awaitable[Response]]


async def change_run(ctx: ApiContext, run_id: str, decide: Decide) -> Response:
    """`decide` answers the request from the run and its memos' step hashes (404 when the run
    is not the acting account's), and writes what it decided; a Conflict it raises decides
    again."""
    for _ in range(_CONFLICT_ROUNDS):
        found = await ctx.stores.get_run_and_memo_keys(run_id)
        if found is None or found[0].account_id != ctx.account:
            return api_error(404, f"run not found: {run_id}")
        try:
            return await decide(*found)
        except Conflict:
            continue
    return api_error(503, f"run {run_id} kept changing; send the request again")
