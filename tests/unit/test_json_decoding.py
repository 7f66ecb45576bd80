"""The one decoder for JSON from outside (core/jsonutil.py): it refuses what headrace could not
store and read back (integers out of 64 bits, nesting past the decoder's depth), and takes
every other value as it is, long runs of digits in strings and in-range integers included."""

from __future__ import annotations

import msgspec
import pytest

from headrace.core.jsonutil import JsonRefused, loads


@pytest.mark.parametrize(
    "body",
    [
        b'{"x": 18446744073709551616}',  # 2**64
        b'{"x": -9223372036854775809}',  # -2**63 - 1
        b'[1, [2, {"deep": 123456789012345678901234567890}]]',
    ],
)
def test_an_integer_out_of_64_bits_is_refused(body: bytes) -> None:
    with pytest.raises(msgspec.DecodeError, match="64"):
        loads(body)


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b'{"x": 18446744073709551615}', {"x": 2**64 - 1}),
        (b'{"x": -9223372036854775808}', {"x": -(2**63)}),
        (b'{"id": "12345678901234567890123456789"}', {"id": "12345678901234567890123456789"}),
        (b'{"x": 1.2345678901234567890123}', {"x": 1.2345678901234567}),
    ],
)
def test_long_runs_of_digits_that_can_be_stored_are_taken(body: bytes, value: object) -> None:
    assert loads(body) == value


def test_json_nested_too_deeply_is_refused_as_bad_json() -> None:
    with pytest.raises(JsonRefused, match="nested too deeply"):
        loads(b"[" * 10_000 + b"]" * 10_000)
