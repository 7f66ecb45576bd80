"""Writing JSON values as CEL literals, for the source rewrites."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_INT64 = 2**63
_UINT64 = 2**64
# Characters a CEL string literal cannot hold as they are. A lone surrogate (possible after
# json.loads of "\ud800") has no UTF-8 form, so it becomes U+FFFD.
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\\x7f\ud800-\udfff]')
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def render(value: object) -> str:
    """`value` (a JSON-decoded value) as CEL source text that evaluates to the same value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _render_int(value)
    if isinstance(value, float):
        return _render_float(value)
    if isinstance(value, str):
        return render_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(render(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} as a CEL literal")


def render_string(value: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape, value) + '"'


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    if "\ud800" <= char <= "\udfff":
        return "\\ufffd"
    return f"\\u{ord(char):04x}"


def _render_int(value: int) -> str:
    if -_INT64 <= value < _INT64:
        # Parenthesised so that a method call or a preceding minus still applies to the number.
        return str(value) if value >= 0 else f"({value})"
    if 0 <= value < _UINT64:
        return f"{value}u"
    # Beyond uint64 only a double can hold it: approximately, or as an infinity.
    try:
        return _render_float(float(value))
    except OverflowError:
        return _render_float(math.inf if value > 0 else -math.inf)


def _render_float(value: float) -> str:
    if math.isnan(value) or math.isinf(value):
        return f'double("{value}")'
    text = repr(value)
    return text if not text.startswith("-") else f"({text})"
