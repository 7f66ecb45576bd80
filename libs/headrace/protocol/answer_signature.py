"""Checking the signature an official SDK puts on its answer, when the engine signed the call.

Both SDKs sign an answer only in production mode, after verifying the call's signature, with
the key that verified it: `X-Inngest-Signature: t=<unix seconds>&s=<hex HMAC-SHA256 of body +
t>` over the body as sent (inngest-py `net.sign_response`, called from `comm_lib/utils.py`;
inngest-js `InngestCommHandler.getResponseSignature` with `helpers/net.ts` `signDataWithKey`).
A streamed answer (201) is signed inside its envelope, over the envelope's body (JS); the
Python SDK's 201 has one in its first headers over `null`, which covers nothing that follows
and is not read. Inngest itself reads none of these; the policy is in docs/answer-signatures.md.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs

from headrace.protocol.signing import body_mac

# How far a signature's time may be from the engine's clock: the SDKs allow a call's as much.
MAX_SKEW_S = 300
ERROR_NAME = "InvalidAnswerSignature"


@dataclass(frozen=True)
class AnswerCheck:
    """What an answer to a call signed with `key` must show; `required`: an unsigned answer is
    refused too (else it is read as it came, as from an app in dev mode)."""

    key: str
    required: bool = False

    def problem(self, status: int, headers: dict[str, str], body: bytes, now_s: int) -> str | None:
        """Why the answer, read at `now_s`, cannot be trusted, or None. `headers` have
        lower-case names."""
        header = headers.get("x-inngest-signature")
        if not header:
            if not self.required:
                return None
            return (
                f"the app answered {status} without an X-Inngest-Signature, and this server "
                "requires signed answers (an SDK signs only in production mode, with a "
                "signing key)"
            )
        fields = parse_qs(header)
        timestamp = fields.get("t", [""])[0]
        mac = fields.get("s", [""])[0]
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not mac:
            return f"the app answered {status} with a malformed X-Inngest-Signature"
        if abs(now_s - int(timestamp)) > MAX_SKEW_S:
            return (
                f"the app answered {status} with a signature made at {timestamp}, more than "
                f"{MAX_SKEW_S} s from this server's clock ({now_s})"
            )
        if not hmac.compare_digest(mac.encode(), body_mac(body, self.key, timestamp).encode()):
            return (
                f"the app answered {status} with an X-Inngest-Signature that does not match "
                "its body under the account's signing key: the answer was changed on the way, "
                "or did not come from the app"
            )
        return None
