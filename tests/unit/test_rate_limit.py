"""The per-client rate limit on writing requests (api/rate_limit.py), on a fake clock."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from headrace.api.rate_limit import RateLimited
from headrace.core.clock import FakeClock
from headrace.flow.client_rate import ClientRate
from headrace.protocol.accounts import AccountKeys
from headrace.protocol.signing import hashed_signing_key

ACME_SIGNING_KEY = "signkey-prod-" + "a1" * 32
KEYS = AccountKeys.of(
    [("acme-key", "acme"), ("globex-key", "globex")], signing_keys=[("acme", ACME_SIGNING_KEY)]
)


async def _ok(_: Request) -> Response:
    return JSONResponse({"ok": True})


def _limited(clock: FakeClock, limit: ClientRate) -> RateLimited:
    app = Starlette(
        routes=[
            Route("/e/{key}", _ok, methods=["POST"]),
            Route("/v1/events", _ok, methods=["GET"]),
            Route("/v1/cancellations", _ok, methods=["POST"]),
        ]
    )
    return RateLimited(app, limit, KEYS, clock)


def _client(limited: RateLimited, address: str = "10.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=limited, client=(address, 5000))
    return httpx.AsyncClient(transport=transport, base_url="http://headrace")


async def test_past_the_burst_a_client_gets_429_with_retry_after_until_its_turn_comes() -> None:
    clock = FakeClock()
    # 2 per second, 3 at once.
    async with _client(_limited(clock, ClientRate(2.0, 3))) as http:
        burst = [(await http.post("/e/acme-key", json={})).status_code for _ in range(3)]
        refused = await http.post("/e/acme-key", json={})
        await clock.advance(499)
        still = await http.post("/e/acme-key", json={})
        await clock.advance(1)
        admitted = await http.post("/e/acme-key", json={})
        again = await http.post("/e/acme-key", json={})

    assert burst == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {
        "error": "too many requests: slow down and retry after the given seconds",
        "status": 429,
    }
    assert still.status_code == 429
    assert admitted.status_code == 200  # one more every 500 ms
    assert again.status_code == 429


async def test_retry_after_counts_whole_seconds_up_to_the_next_admission() -> None:
    clock = FakeClock()
    # One a minute.
    async with _client(_limited(clock, ClientRate(1 / 60, 1))) as http:
        first = await http.post("/e/acme-key", json={})
        await clock.advance(10_500)
        refused = await http.post("/e/acme-key", json={})

    assert first.status_code == 200
    assert (refused.status_code, refused.headers["retry-after"]) == (429, "50")


async def test_one_account_at_its_limit_leaves_the_others_theirs() -> None:
    clock = FakeClock()
    async with _client(_limited(clock, ClientRate(1.0, 2))) as http:
        acme = [(await http.post("/e/acme-key", json={})).status_code for _ in range(3)]
        globex = [(await http.post("/e/globex-key", json={})).status_code for _ in range(2)]
        # The account, not the route: acme's signing key shares acme's budget.
        bearer = {"Authorization": f"Bearer {hashed_signing_key(ACME_SIGNING_KEY)}"}
        acme_api = await http.post("/v1/cancellations", json={}, headers=bearer)

    assert acme == [200, 200, 429]
    assert globex == [200, 200]
    assert acme_api.status_code == 429


async def test_keys_no_account_has_are_counted_by_address_so_inventing_keys_does_not_help() -> None:
    clock = FakeClock()
    # One limiter (one state), seen from two addresses.
    limited = _limited(clock, ClientRate(1.0, 2))
    async with _client(limited, "10.0.0.1") as stranger, _client(limited, "10.0.0.2") as neighbour:
        invented = [
            (await stranger.post(f"/e/invented-{n}", json={})).status_code for n in range(3)
        ]
        other = await neighbour.post("/e/invented-x", json={})
        customer = await stranger.post("/e/acme-key", json={})

    assert invented == [200, 200, 429]
    assert other.status_code == 200
    assert customer.status_code == 200  # a known key is its account's budget, not the address's


async def test_reads_are_not_limited_and_no_limit_is_the_default() -> None:
    clock = FakeClock()
    async with (
        _client(_limited(clock, ClientRate(1.0, 1))) as limited,
        _client(_limited(clock, ClientRate())) as off,
    ):
        reads = {(await limited.get("/v1/events")).status_code for _ in range(5)}
        writes = {(await off.post("/e/acme-key", json={})).status_code for _ in range(50)}

    assert reads == {200}
    assert writes == {200}
