"""The two ways an expression fails: it does not compile, or it fails while evaluating."""

from __future__ import annotations


class ExpressionError(ValueError):
    """An expression that does not compile; str() says what is wrong and where."""

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(f"invalid expression {expression!r}: {message}")
        self.expression = expression
        self.message = message


class EvaluationError(Exception):
    """A compiled expression that failed on the given variables (missing field, type mismatch)."""

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(f"expression {expression!r} failed: {message}")
        self.expression = expression
        self.message = message
