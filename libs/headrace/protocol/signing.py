"""Request signing and SDK authentication, as both official SDKs do it (protocol §5)."""

from __future__ import annotations

import hashlib
import hmac
import re

_PREFIX = re.compile(r"^signkey-\w+-")


def _bare(key: str) -> str:
    return _PREFIX.sub("", key)


def body_mac(body: bytes, key: str, timestamp: str) -> str:
    """HMAC-SHA256 over body + timestamp, with the key's bare part: what a signature's `s` is,
    on requests and on the SDKs' answers alike."""
    return hmac.new(_bare(key).encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def sign(body: bytes, key: str, now_s: int) -> str:
    """The `X-Inngest-Signature` value for `body`."""
    return f"t={now_s}&s={body_mac(body, key, str(now_s))}"


def hashed_signing_key(key: str) -> str:
    """What the SDKs send as `Authorization: Bearer ...`: sha256 of the hex-decoded bare key."""
    return hashlib.sha256(bytes.fromhex(_bare(key))).hexdigest()


def bearer_matches(authorization: str | None, key: str) -> bool:
    """Accept the bare hash (Python), the prefixed hash (JS) and the raw key."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return False
    token = authorization[7:].strip()
    prefix = _PREFIX.match(key)
    candidates = {hashed_signing_key(key), key}
    if prefix:
        candidates.add(prefix.group(0) + hashed_signing_key(key))
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError), and a
    # stranger's header may hold any latin-1 text.
    return any(hmac.compare_digest(token.encode(), c.encode()) for c in candidates)
