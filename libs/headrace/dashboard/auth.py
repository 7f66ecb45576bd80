"""Who may see the dashboard.

In dev mode it is open. In distributed mode the operator sets a token; a request shows it as
`Authorization: Bearer <token>` or with the session cookie the login form sets. The cookie holds
an HMAC of the token, not the token, and is HttpOnly and SameSite=Strict, so another site can
neither read it nor post a form with it (the dashboard's actions are POST forms).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from starlette.requests import Request

COOKIE = "headrace_dashboard"


@dataclass(frozen=True)
class DashboardAuth:
    # None with `required` means the dashboard is not served at all.
    token: str | None = None
    required: bool = False

    @classmethod
    def open(cls) -> DashboardAuth:
        return cls()

    @classmethod
    def with_token(cls, token: str | None) -> DashboardAuth:
        return cls(token=token or None, required=True)

    @property
    def served(self) -> bool:
        return not self.required or self.token is not None

    def session(self) -> str:
        assert self.token is not None
        return hmac.new(
            self.token.encode(), b"headrace dashboard session", hashlib.sha256
        ).hexdigest()

    def token_matches(self, candidate: str) -> bool:
        return self.token is not None and hmac.compare_digest(
            candidate.encode(), self.token.encode()
        )

    def allows(self, request: Request) -> bool:
        if not self.required:
            return True
        if self.token is None:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(given.strip()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(cookie.encode(), self.session().encode())
