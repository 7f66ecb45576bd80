"""ULIDs: headrace writes their text itself (for speed); python-ulid, the library, is the oracle."""

from __future__ import annotations

import hashlib
import os

from ulid import ULID

from headrace.core.ids import derived_ulid, new_ulid, ulid_time_ms


def test_ulid_text_is_what_python_ulid_writes_for_the_same_bits() -> None:
    for _ in range(2000):
        raw = os.urandom(16)
        ms = int.from_bytes(raw[:6], "big")
        seed = raw.hex()
        # A derived ULID's randomness is the first 10 bytes of the seed's sha1.
        randomness = hashlib.sha1(seed.encode()).digest()[:10]
        assert derived_ulid(ms, seed) == str(ULID.from_bytes(ms.to_bytes(6, "big") + randomness))


def test_new_ulids_carry_their_time_and_sort_in_the_order_made_within_a_millisecond() -> None:
    made = [new_ulid(1_700_000_000_123) for _ in range(1000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert {ulid_time_ms(u) for u in made} == {1_700_000_000_123}
    assert str(ULID.from_str(made[0])) == made[0]


def test_derived_ulids_are_fixed_by_their_inputs() -> None:
    assert derived_ulid(5, "intake:0:7:0") == derived_ulid(5, "intake:0:7:0")
    assert derived_ulid(5, "intake:0:7:0") != derived_ulid(5, "intake:0:7:1")
