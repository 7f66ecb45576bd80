"""Which app URLs the engine can call: refused at sync, so no run is started against one it
could never reach."""

from __future__ import annotations

import re

import httpx

# Far above any real app URL, far below httpx's 64 KiB: what sync accepts, leaving room for
# the query parameters the executor adds to a step's URL.
MAX_URL_CHARS = 4096
CALLABLE_URL_CHARS = 65536
_SPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def url_problem(url: str, *, max_chars: int = MAX_URL_CHARS) -> str | None:
    """Why `url` cannot be called (None when it can): not http(s), no host, a control
    character or a space, a port out of range, or longer than `max_chars`."""
    parsed = callable_url(url, max_chars=max_chars)
    return parsed if isinstance(parsed, str) else None


def callable_url(url: str, *, max_chars: int = MAX_URL_CHARS) -> httpx.URL | str:
    """`url` parsed, or why it cannot be called (see `url_problem`)."""
    if len(url) > max_chars:
        return f"is {len(url)} characters long, over the limit of {max_chars}"
    if _SPACE_OR_CONTROL.search(url):
        return "holds a space or a control character"
    try:
        parsed = httpx.URL(url)
        port = parsed.port
        # Decoding an IDNA host can fail too (idna.IDNAError, a ValueError): `xn--zz`.
        host = parsed.host
    except (httpx.InvalidURL, ValueError) as err:
        return f"is not a valid URL: {err}"
    if parsed.scheme not in ("http", "https") or not host:
        return "must be an http:// or https:// URL with a host"
    if port is not None and not 1 <= port <= 65535:
        return f"has the port {port}, out of the range 1 to 65535"
    return parsed
