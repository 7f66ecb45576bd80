"""Identifiers: ULIDs for runs and events, and the SDKs' step hashes."""

from __future__ import annotations

import base64
import hashlib
import os

from ulid import ULID


def new_ulid(now_ms: int) -> str:
    """A fresh ULID at the given time."""
    return str(ULID.from_timestamp(now_ms / 1000))


def ulid_time_ms(ulid: str) -> int:
    """The millisecond timestamp a ULID carries."""
    return int(ULID.from_str(ulid).milliseconds)


def seeded_event_ids(seed: str | None, count: int, now_ms: int) -> list[str]:
    """Event ids for one Event API request.

    With the SDKs' `x-inngest-event-id-seed: "<ms>,<base64 of 10 bytes>"` the ids are
    deterministic, so an SDK that retries a send gets the same ids back and the events are
    deduplicated. Bytes 6..10 of the entropy, read as a big-endian uint32, are increased by the
    event's 1-based index, as Inngest does.
    """
    parsed = _parse_seed(seed)
    if parsed is None:
        return [str(ULID.from_timestamp(now_ms / 1000)) for _ in range(count)]
    ms, entropy = parsed
    ids = []
    for index in range(1, count + 1):
        counter = (int.from_bytes(entropy[6:10], "big") + index) & 0xFFFFFFFF
        raw = ms.to_bytes(6, "big") + entropy[:6] + counter.to_bytes(4, "big")
        ids.append(str(ULID.from_bytes(raw)))
    return ids


def _parse_seed(seed: str | None) -> tuple[int, bytes] | None:
    if not seed:
        return None
    try:
        ms_text, b64 = seed.split(",", 1)
        ms = int(ms_text)
        entropy = base64.b64decode(b64, validate=True)
    except ValueError:
        return None
    if len(entropy) != 10 or not 0 <= ms < 2**48:
        return None
    return ms, entropy


def step_hash(step_id: str, index: int = 0) -> str:
    """The memo key of the n-th use of a step id: sha1 of "id", then "id:1", "id:2"..."""
    text = step_id if index == 0 else f"{step_id}:{index}"
    return hashlib.sha1(text.encode()).hexdigest()


def random_token(nbytes: int = 16) -> str:
    return os.urandom(nbytes).hex()


def derived_ulid(ms: int, seed: str) -> str:
    """A ULID fixed by its time and a seed: the same inputs always give the same id."""
    entropy = hashlib.sha1(seed.encode()).digest()[:10]
    return str(ULID.from_bytes(ms.to_bytes(6, "big") + entropy))
