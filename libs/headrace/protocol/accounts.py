"""Which account a request acts for, from the key it shows.

Event keys (`/e/{key}`) and signing keys (`Authorization: Bearer ...` on `/fn/register`, the
`/v0` and `/v1` APIs) each belong to one account; the executor signs a run's calls with its
account's signing key. An environment is an account of its own here (say `acme-prod` and
`acme-staging`), with its own keys, apps, functions and runs.

Without signing keys the server is a dev server: every API request acts for the default account.
With them, an API request without a valid key is refused, and none can see another account's
apps, runs or events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from headrace.protocol.signing import bearer_matches, hashed_signing_key

DEFAULT_ACCOUNT = "default"


@dataclass(frozen=True)
class AccountKeys:
    # Event key -> account; None: any key is accepted, for the default account (dev mode).
    event_keys: Mapping[str, str] | None = None
    # Account -> its signing key.
    signing_keys: Mapping[str, str] = field(default_factory=dict)
    default_account: str = DEFAULT_ACCOUNT

    @classmethod
    def of(
        cls,
        event_keys: Iterable[tuple[str, str]] | None,
        signing_key: str | None = None,
        signing_keys: Iterable[tuple[str, str]] = (),
    ) -> AccountKeys:
        """`signing_key` is the default account's; `signing_keys` pairs (account, key)."""
        keys = dict(signing_keys)
        if signing_key:
            keys.setdefault(DEFAULT_ACCOUNT, signing_key)
        by_key: dict[str, str] = {}
        for account, key in keys.items():
            if by_key.setdefault(key, account) != account:
                raise ValueError(f"accounts {by_key[key]!r} and {account!r} share a signing key")
        return cls(
            event_keys=dict(event_keys) if event_keys is not None else None, signing_keys=keys
        )

    @property
    def accounts(self) -> list[str]:
        """Every account a key names, and the default one."""
        named = set(self.signing_keys) | set((self.event_keys or {}).values())
        return sorted(named | {self.default_account})

    @property
    def server_kind(self) -> str:
        """What the SDKs call a server that checks signatures ("cloud") or does not ("dev")."""
        return "cloud" if self.signing_keys else "dev"

    @property
    def required(self) -> bool:
        """Whether the server refuses requests without a key (event keys or signing keys)."""
        return self.event_keys is not None or bool(self.signing_keys)

    def for_event_key(self, key: str) -> str | None:
        if self.event_keys is None:
            return self.default_account
        return self.event_keys.get(key)

    def for_authorization(self, authorization: str | None) -> str | None:
        """The account whose signing key the `Authorization` header shows; None: refuse."""
        if not self.signing_keys:
            return self.default_account
        for account, key in self.signing_keys.items():
            if bearer_matches(authorization, key):
                return account
        return None

    def signing_key(self, account: str) -> str | None:
        return self.signing_keys.get(account)

    def secret_values(self) -> list[str]:
        """What no log line may hold: every event key and signing key, and the hash of each
        signing key, which the SDKs send as their bearer token and which opens the APIs."""
        values = [*(self.event_keys or {})]
        for key in self.signing_keys.values():
            values.append(key)
            values.append(hashed_signing_key(key))
        return values
