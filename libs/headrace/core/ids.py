"""Identifiers: ULIDs for runs and events, and the SDKs' step hashes."""

from __future__ import annotations

import base64
import functools
import hashlib
import os

from ulid import ULID

# Crockford's base32, two characters (10 bits) at a time: a ULID's text in 13 lookups.
# python-ulid's str() took 7-12 us an id, a fair part of the intake's cost per event.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)
_RANDOM_MAX = 2**80 - 1


@functools.lru_cache(maxsize=1024)
def _time_text(ms: int) -> str:
    """The first 10 characters (48 bits, two zero bits first); ids of one moment share them."""
    return "".join([_PAIRS[(ms >> shift) & 1023] for shift in (40, 30, 20, 10, 0)])


def _ulid_text(ms: int, randomness: int) -> str:
    """The 26 characters of the ULID of `ms` (48 bits) and `randomness` (80 bits)."""
    return _time_text(ms) + "".join(
        [_PAIRS[(randomness >> shift) & 1023] for shift in (70, 60, 50, 40, 30, 20, 10, 0)]
    )


class _Monotonic:
    """ULIDs that increase within a millisecond too (the randomness counts up), as python-ulid's
    generator makes them, so ids made in one millisecond sort in the order they were made."""

    def __init__(self) -> None:
        self._ms = -1
        self._randomness = 0

    def next(self, ms: int) -> str:
        if ms == self._ms and self._randomness < _RANDOM_MAX:
            self._randomness += 1
        else:
            self._ms = ms
            self._randomness = int.from_bytes(os.urandom(10), "big")
        return _ulid_text(ms, self._randomness)


_monotonic = _Monotonic()


def new_ulid(now_ms: int) -> str:
    """A fresh ULID at the given time."""
    return _monotonic.next(now_ms)


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
        return [new_ulid(now_ms) for _ in range(count)]
    ms, entropy = parsed
    ids = []
    for index in range(1, count + 1):
        counter = (int.from_bytes(entropy[6:10], "big") + index) & 0xFFFFFFFF
        ids.append(_ulid_text(ms, (int.from_bytes(entropy[:6], "big") << 32) | counter))
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
    return _ulid_text(ms, int.from_bytes(entropy, "big"))
