"""Which account a key belongs to: event keys, signing keys as the SDKs show them, and the
signature each account's calls carry."""

from __future__ import annotations

import httpx
import pytest

from headrace.core.clock import FakeClock
from headrace.protocol.accounts import AccountKeys
from headrace.protocol.driver import AppDriver
from headrace.protocol.signing import hashed_signing_key, sign

ACME = "signkey-prod-aa11"
GLOBEX = "signkey-prod-bb22"


def test_a_dev_server_takes_any_key_for_the_default_account() -> None:
    keys = AccountKeys.of(None)
    assert keys.server_kind == "dev"
    assert keys.for_event_key("anything") == "default"
    assert keys.for_authorization(None) == "default"


def test_event_keys_name_their_account_and_unknown_keys_none() -> None:
    keys = AccountKeys.of([("ka", "acme"), ("kg", "globex")])
    assert keys.for_event_key("ka") == "acme" and keys.for_event_key("kg") == "globex"
    assert keys.for_event_key("nope") is None
    # Distributed mode without event keys accepts none.
    assert AccountKeys.of([]).for_event_key("ka") is None


def test_a_signing_key_in_either_sdk_form_names_its_account() -> None:
    keys = AccountKeys.of(None, ACME, [("globex", GLOBEX)])
    hashed = hashed_signing_key(GLOBEX)
    assert keys.server_kind == "cloud"
    assert keys.for_authorization(f"Bearer {hashed_signing_key(ACME)}") == "default"
    assert keys.for_authorization(f"Bearer {hashed}") == "globex"
    assert keys.for_authorization(f"Bearer signkey-prod-{hashed}") == "globex"
    assert keys.for_authorization("Bearer 00ff") is None
    assert keys.for_authorization(None) is None


def test_two_accounts_cannot_share_a_signing_key() -> None:
    with pytest.raises(ValueError, match="share a signing key"):
        AccountKeys.of(None, ACME, [("globex", ACME)])


async def test_each_account_s_calls_are_signed_with_its_own_key() -> None:
    seen: list[str | None] = []

    def app(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-inngest-signature"))
        return httpx.Response(200, json="done")

    clock = FakeClock()
    keys = AccountKeys.of(None, None, [("acme", ACME), ("globex", GLOBEX)])
    driver = AppDriver(clock, keys=keys, transport=httpx.MockTransport(app))
    try:
        for account in ("acme", "globex", "unknown"):
            await driver.call("http://app/api/inngest", b"{}", {}, account_id=account)
    finally:
        await driver.close()

    now_s = clock.now_ms() // 1000
    assert seen == [sign(b"{}", ACME, now_s), sign(b"{}", GLOBEX, now_s), None]


def test_the_secret_values_are_every_key_and_the_bearer_hash_of_each_signing_key() -> None:
    keys = AccountKeys.of([("ka", "acme"), ("kg", "globex")], ACME, [("globex", GLOBEX)])
    assert sorted(keys.secret_values()) == sorted(
        ["ka", "kg", ACME, hashed_signing_key(ACME), GLOBEX, hashed_signing_key(GLOBEX)]
    )
