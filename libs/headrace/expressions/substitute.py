"""Replacing `event.*` in a waitForEvent / cancelOn expression with the trigger event's values.

Inngest does this when it stores a pause ([GO] executor.go handleGeneratorWaitForEvent), so
that the stored expression refers only to `async` and literals, and the literals can index it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from headrace.expressions.lexer import Kind, Token, tokenize
from headrace.expressions.literals import render
from headrace.expressions.paths import lookup
from headrace.expressions.program import compile_expression
from headrace.expressions.syntax import Reference, is_op, references


def substitute_event(source: str, event: Mapping[str, object]) -> str:
    """`source` with each `event.<path>` replaced by its value in `event` (null if missing).

    `has(event.<path>)` becomes true or false. Raises ExpressionError if `source` does not
    compile.
    """
    if "event" not in source:
        return source
    compile_expression(source)  # refuse bad input before rewriting it (cached per source)
    tokens = tokenize(source)
    edits: list[tuple[int, int, str]] = []
    for ref in references(tokens):
        if ref.root != "event":
            continue
        found, value = lookup(event, ref.path)
        if _inside_has(tokens, ref):
            start, end, text = ref.first - 2, ref.last + 1, "true" if found else "false"
        else:
            start, end, text = ref.first, ref.last, render(value)
        edits.append((tokens[start].start, tokens[end].end, text))
    for start_offset, end_offset, text in reversed(edits):
        source = source[:start_offset] + text + source[end_offset:]
    return source


def _inside_has(tokens: Sequence[Token], ref: Reference) -> bool:
    """Whether `ref` is the whole argument of the has() macro."""
    has = ref.first - 2
    return (
        has >= 0
        and tokens[has].kind is Kind.IDENT
        and tokens[has].text == "has"
        and not is_op(tokens, has - 1, ".")
        and is_op(tokens, ref.first - 1, "(")
        and is_op(tokens, ref.last + 1, ")")
    )
