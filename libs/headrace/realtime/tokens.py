"""Subscription tokens: HS256 JWTs naming an account and the channel topics it may read, as
Inngest issues them (pkg/execution/realtime/token.go: issuer "rt.inngest.com", `sub` the
account, `topics`, one minute to live). A token is checked once, when a WebSocket connects.

Each account's tokens are signed with a secret derived from its signing key, so every ingest
replica verifies the tokens of any other without a secret of its own to share. An account
without a signing key (a dev server) gets a fixed secret: such a server gives a token to any
request, so a secret would protect nothing there.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import jwt
import msgspec

from headrace.protocol.accounts import AccountKeys

ISSUER = "rt.inngest.com"
TTL_MS = 60_000
# A Durable Endpoint's stream token: Inngest's realtime.MaxDurpStreamingRun (15 minutes, its SSE
# connections' limit) and a minute more (pkg/api/apiv1/checkpoint.go).
STREAM_TOKEN_TTL_MS = 16 * 60_000
_ALGORITHM = "HS256"
_CONTEXT = b"headrace realtime subscription token"


class InvalidToken(Exception):
    """Not a token this server issued, or expired."""


class TopicClaim(msgspec.Struct, frozen=True):
    channel: str
    name: str
    kind: str = "run"


class Grant(msgspec.Struct, frozen=True):
    """What a verified token lets its holder read."""

    account: str
    topics: frozenset[tuple[str, str]]  # (channel, topic name)


class _Claims(msgspec.Struct, frozen=True):
    iss: str
    sub: str
    exp: int
    iat: int
    jti: str
    topics: list[TopicClaim]


class TokenIssuer:
    def __init__(self, keys: AccountKeys) -> None:
        self._keys = keys

    def _secret(self, account: str) -> bytes:
        signing_key = self._keys.signing_key(account) or ""
        return hmac.new(signing_key.encode(), _CONTEXT, hashlib.sha256).digest()

    def issue(
        self, account: str, topics: list[TopicClaim], now_ms: int, ttl_ms: int = TTL_MS
    ) -> str:
        claims = _Claims(
            iss=ISSUER,
            sub=account,
            exp=(now_ms + ttl_ms) // 1000,
            iat=now_ms // 1000,
            jti=secrets.token_hex(16),
            topics=topics,
        )
        return jwt.encode(msgspec.to_builtins(claims), self._secret(account), _ALGORITHM)

    def verify(self, token: str, now_ms: int) -> Grant:
        """The grant of `token`; raises InvalidToken. Expiry is checked against `now_ms` (the
        engine's clock), not by the JWT library."""
        try:
            account = jwt.decode(token, options={"verify_signature": False}).get("sub")
            if not isinstance(account, str) or account not in self._keys.accounts:
                raise InvalidToken("the token names no account of this server")
            payload = jwt.decode(
                token,
                self._secret(account),
                algorithms=[_ALGORITHM],
                issuer=ISSUER,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
            claims = msgspec.convert(payload, _Claims)
        except (jwt.PyJWTError, msgspec.ValidationError) as err:
            raise InvalidToken(f"invalid realtime token: {err}") from err
        if now_ms >= claims.exp * 1000:
            raise InvalidToken("the realtime token has expired")
        return Grant(claims.sub, frozenset((t.channel, t.name) for t in claims.topics))
