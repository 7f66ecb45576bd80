"""Who may see `headrace dev`'s dashboard and /metrics: anyone, like Inngest's dev server; a
server that requires keys asks for a token, as the distributed ingest does."""

from __future__ import annotations

import secrets

from headrace.dashboard import DashboardAuth
from headrace.runtime.settings import Settings

TOKEN_FILE = "dashboard-token"


def dashboard_auth(settings: Settings, keys_required: bool) -> tuple[DashboardAuth, str]:
    """The dashboard's access, and where an operator finds its token (never the token itself,
    which no log line holds)."""
    if not keys_required:
        return DashboardAuth.open(), ""
    if settings.dashboard_token:
        return DashboardAuth.with_token(settings.dashboard_token), "--dashboard-token"
    token = secrets.token_urlsafe(24)
    state_dir = settings.embedded.state_dir
    if state_dir is None:
        return DashboardAuth.with_token(token), "none: in memory, set --dashboard-token"
    path = state_dir / TOKEN_FILE
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    return DashboardAuth.with_token(token), f"in {path}"
