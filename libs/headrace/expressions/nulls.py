"""`x.y == null` for a field that may be missing: true when it is missing, as in Inngest.

cel-rust fails on a missing map key, which would make `event.data.x == null` an error (no match)
for an event without x, although that is how users write "x is not set". Such a comparison is
rewritten to test each key of the path with `in` first:

    event.data.x == null  ->  (!("data" in event) || !("x" in event["data"]) || ... == null)
    event.data.x != null  ->  ("data" in event && "x" in event["data"] && ... != null)

Every other use of a missing field stays an error, which evaluate_bool reports as no match.
"""

from __future__ import annotations

from collections.abc import Sequence

from headrace.expressions.lexer import Kind, Token
from headrace.expressions.literals import render_string
from headrace.expressions.syntax import Reference, Segment, is_op

# Tokens that may stand right before / right after a comparison that is an operand of its own:
# anything binding tighter (`!`, `-`, `+`, `.`, another comparison) would take part of it.
_BEFORE = ("(", ",", "[", "{", ":", "?", "&&", "||")
_AFTER = (")", ",", "]", "}", ":", "?", "&&", "||")


def rewrite_null_checks(source: str, tokens: Sequence[Token], refs: Sequence[Reference]) -> str:
    """`source` with each `<field path> ==/!= null` comparison made safe for missing keys."""
    ending_at = {ref.last: ref for ref in refs}
    starting_at = {ref.first: ref for ref in refs}
    edits: list[tuple[int, int, str]] = []
    for index, token in enumerate(tokens):
        if not is_op(tokens, index, "==", "!="):
            continue
        if _is_null(tokens, index + 1) and index - 1 in ending_at:
            ref = ending_at[index - 1]
            first, last = ref.first, index + 1
        elif _is_null(tokens, index - 1) and index + 1 in starting_at:
            ref = starting_at[index + 1]
            first, last = index - 1, ref.last
        else:
            continue
        if not ref.path or not all(isinstance(segment, str) for segment in ref.path):
            continue  # `x == null` needs no rewrite; list indexes are left strict
        if first > 0 and not is_op(tokens, first - 1, *_BEFORE):
            continue
        if last < len(tokens) - 1 and not is_op(tokens, last + 1, *_AFTER):
            continue
        edits.append((tokens[first].start, tokens[last].end, _null_check(ref, token.text)))
    for start, end, text in reversed(edits):
        source = source[:start] + text + source[end:]
    return source


def _is_null(tokens: Sequence[Token], index: int) -> bool:
    token = tokens[index] if 0 <= index < len(tokens) else None
    return token is not None and token.kind is Kind.CONSTANT and token.value is None


def _null_check(ref: Reference, operator: str) -> str:
    present = [
        f"{render_string(str(key))} in {_select(ref.root, ref.path[:depth])}"
        for depth, key in enumerate(ref.path)
    ]
    compared = f"{_select(ref.root, ref.path)} {operator} null"
    if operator == "==":
        return "(" + " || ".join([f"!({test})" for test in present] + [compared]) + ")"
    return "(" + " && ".join([*present, compared]) + ")"


def _select(root: str, path: Sequence[Segment]) -> str:
    return root + "".join(f"[{render_string(str(key))}]" for key in path)
