"""What the source rewrites and the pause index need to know about an expression's structure.

These work on the tokens of an expression that CEL has already accepted, so they only have to
recognise the shapes they act on and can leave everything else alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from headrace.expressions.lexer import Kind, Token

Segment = str | int


@dataclass(frozen=True, slots=True)
class Reference:
    """A variable and the constant field names or indexes selected from it: `async.data["id"]`."""

    root: str
    path: tuple[Segment, ...]
    # Indexes of the root token and of the chain's last token (inclusive).
    first: int
    last: int


def is_op(tokens: Sequence[Token], index: int, *texts: str) -> bool:
    """Whether tokens[index] exists and is one of the operators `texts`.

    Comparing the text suffices: no other kind of token is spelled like an operator.
    """
    return 0 <= index < len(tokens) and tokens[index].text in texts


def references(tokens: Sequence[Token]) -> list[Reference]:
    """Every variable use with its longest constant selection chain.

    A chain stops before a method call (`x.startsWith(...)`) and before a computed index
    (`x[y]`), so everything an expression can read lies under the end of one of its chains.
    """
    found: list[Reference] = []
    for index, token in enumerate(tokens):
        if token.kind is not Kind.IDENT or is_op(tokens, index - 1, "."):
            continue
        if is_op(tokens, index + 1, "("):  # a function call, not a variable
            continue
        path: list[Segment] = []
        last = index
        while True:
            segment = _segment(tokens, last + 1)
            if segment is None:
                break
            path.append(segment[0])
            last = segment[1]
        found.append(Reference(token.text, tuple(path), index, last))
    return found


def _segment(tokens: Sequence[Token], at: int) -> tuple[Segment, int] | None:
    """The field selected at `at` (`.name` or `["name"]` or `[0]`) and its last token index."""
    if is_op(tokens, at, ".") and at + 1 < len(tokens):
        name = tokens[at + 1]
        if name.kind is Kind.IDENT and not is_op(tokens, at + 2, "("):
            return name.text, at + 1
        return None
    if is_op(tokens, at, "[") and is_op(tokens, at + 2, "]"):
        key = tokens[at + 1]
        if key.kind is Kind.STRING and isinstance(key.value, str):
            return key.value, at + 2
        if key.kind is Kind.NUMBER and isinstance(key.value, int):
            return key.value, at + 2
    return None


def literal(tokens: Sequence[Token], start: int, end: int) -> tuple[object] | None:
    """The value of tokens[start:end] if they are one scalar literal, boxed (null is None)."""
    if end - start == 2 and is_op(tokens, start, "-") and tokens[start + 1].kind is Kind.NUMBER:
        value = tokens[start + 1].value
        return (-value,) if isinstance(value, int | float) else None
    if end - start == 1 and tokens[start].kind in (Kind.STRING, Kind.NUMBER, Kind.CONSTANT):
        return (tokens[start].value,)
    return None


def required_equalities(
    tokens: Sequence[Token], refs: Sequence[Reference]
) -> list[tuple[Reference, object]]:
    """The `<reference> == <scalar literal>` terms of the top-level && chain, either way round.

    Each must hold for the expression to be true: a false or failing term makes `&&` false or
    an error.
    """
    starting_at = {ref.first: ref for ref in refs}
    ending_at = {ref.last: ref for ref in refs}
    found = []
    for start, end in conjuncts(tokens, 0, len(tokens)):
        ref = starting_at.get(start)
        if ref is not None and is_op(tokens, ref.last + 1, "=="):
            value = literal(tokens, ref.last + 2, end)
        else:
            ref = ending_at.get(end - 1)
            if ref is None or ref.first - 1 <= start or not is_op(tokens, ref.first - 1, "=="):
                continue
            value = literal(tokens, start, ref.first - 1)
        if value is not None:
            found.append((ref, value[0]))
    return found


def conjuncts(tokens: Sequence[Token], start: int, end: int) -> list[tuple[int, int]]:
    """The spans of the terms of a top-level `&&` chain in tokens[start:end], unparenthesised.

    For `a && (b && c)` that is [a, b, c]. An expression with a top-level `||` or `?:` is a
    single term: it can be true without any one of its parts being true.
    """
    while is_op(tokens, start, "(") and _closing(tokens, start) == end - 1:
        start, end = start + 1, end - 1
    parts: list[tuple[int, int]] = []
    depth = 0
    part_start = start
    for index in range(start, end):
        token = tokens[index]
        if token.kind is not Kind.OPERATOR:
            continue
        if token.text in ("(", "[", "{"):
            depth += 1
        elif token.text in (")", "]", "}"):
            depth -= 1
        elif depth == 0 and token.text in ("||", "?"):
            return [(start, end)]
        elif depth == 0 and token.text == "&&":
            parts.append((part_start, index))
            part_start = index + 1
    if not parts:
        return [(start, end)]
    parts.append((part_start, end))
    return [term for part in parts for term in conjuncts(tokens, *part)]


def _closing(tokens: Sequence[Token], opening: int) -> int:
    """The index of the bracket that closes the one at `opening`."""
    depth = 0
    for index in range(opening, len(tokens)):
        if is_op(tokens, index, "(", "[", "{"):
            depth += 1
        elif is_op(tokens, index, ")", "]", "}"):
            depth -= 1
            if depth == 0:
                return index
    return -1
