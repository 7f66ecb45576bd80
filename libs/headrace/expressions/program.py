"""Compiling expressions once, and evaluating them with Inngest's functions and semantics.

Numbers need no conversion: cel-rust compares int, uint and double across types (`1 == 1.0`,
`100.5 > 100`, `2.0 in [1, 2]`), which is what Inngest's loosely typed comparisons give. Mixed
arithmetic (`1 + 1.5`) stays an error, as it is in cel-go.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

import cel

from headrace.expressions.errors import EvaluationError, ExpressionError
from headrace.expressions.functions import FUNCTIONS
from headrace.expressions.lexer import Kind, Token, tokenize
from headrace.expressions.nulls import rewrite_null_checks
from headrace.expressions.paths import Chain, Selection, prune, selection
from headrace.expressions.syntax import references, required_equalities

# Distinct sources kept compiled. Pause expressions are unique per run once the trigger event is
# substituted, so the bound matters; the pause index holds its own references to its programs.
CACHE_SIZE = 10_000
# cel-rust's parser and evaluator recurse once per operator of a chain (`a.a.a...`, `1+1+...`)
# on the caller's stack, and a chain of about 20,000 overflows it: the process dies. Bounds well
# below that, and far above any real expression; the CEL reference parsers' own limits are
# 100,000 code points and a depth of 250 (cel-cpp parser/options.h).
MAX_EXPRESSION_CHARS = 100_000
MAX_OPERATORS = 2_000
# Separators: a list of many items is wide, not deep.
_SEPARATORS = {",", ":"}

_POSITION = re.compile(r"ERROR: <input>:(\d+):(\d+): ")


class Program:
    """A compiled expression. Evaluate it with the variables it uses: {"event": ..., ...}."""

    __slots__ = ("_compiled", "_keep", "chains", "equalities", "source")

    def __init__(
        self,
        source: str,
        compiled: cel.Program,
        chains: tuple[Chain, ...],
        equalities: tuple[tuple[Chain, object], ...],
    ) -> None:
        self.source = source
        # Every variable path the expression reads (each kept whole below its end).
        self.chains = chains
        # (path, literal) pairs that must be equal for the expression to be true.
        self.equalities = equalities
        self._compiled = compiled
        # Built on first evaluate(): pause programs are run on a shared context instead, and
        # thousands of them are held at once.
        self._keep: Selection | None = None

    def evaluate(self, variables: Mapping[str, object]) -> object:
        """The expression's value; raises EvaluationError (a missing field, a type mismatch)."""
        if self._keep is None:
            self._keep = selection(self.chains)
        try:
            prepared = context(prune(variables, self._keep))
        except ValueError as err:  # a value CEL cannot hold: a set, a tuple as a key
            raise EvaluationError(self.source, str(err)) from None
        return self.run(prepared)

    def run(self, prepared: cel.Context) -> object:
        """Evaluate against a context from `context()`, shared by several programs."""
        try:
            return self._compiled.execute(prepared)
        except Exception as err:  # cel-rust raises KeyError, TypeError, RuntimeError, ...
            raise EvaluationError(self.source, f"{type(err).__name__}: {err}") from None

    def __repr__(self) -> str:
        return f"Program({self.source!r})"


def context(variables: Mapping[str, object]) -> cel.Context:
    """An evaluation context: the variables converted to CEL values, plus Inngest's functions."""
    return cel.Context(dict(variables), FUNCTIONS)


@functools.lru_cache(maxsize=CACHE_SIZE)
def compile_expression(source: str) -> Program:
    """The compiled program for `source`, from the cache when it was compiled before."""
    tokens = tokenize(source)
    _check_size(source, tokens)
    compiled = _compile(source, source)
    refs = references(tokens)
    rewritten = rewrite_null_checks(source, tokens, refs)
    if rewritten != source:
        compiled = _compile(rewritten, source)
    chains = tuple(dict.fromkeys((ref.root, *ref.path) for ref in refs))
    equalities = tuple(
        ((ref.root, *ref.path), value) for ref, value in required_equalities(tokens, refs)
    )
    return Program(source, compiled, chains, equalities)


def _check_size(source: str, tokens: list[Token]) -> None:
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(source, f"longer than {MAX_EXPRESSION_CHARS} characters")
    operators = sum(1 for t in tokens if t.kind is Kind.OPERATOR and t.text not in _SEPARATORS)
    if operators > MAX_OPERATORS:
        raise ExpressionError(source, f"more than {MAX_OPERATORS} operators")


def _compile(text: str, source: str) -> cel.Program:
    try:
        return cel.compile(text)
    except Exception as err:  # cel raises ValueError for syntax errors
        message = str(err).removeprefix(f"Failed to parse expression '{text}': ")
        raise ExpressionError(source, _POSITION.sub(r"line \1, column \2: ", message)) from None


def evaluate_bool(source: str, variables: Mapping[str, object]) -> bool:
    """Whether `source` is true for `variables`; an evaluation error or a non-bool is False.

    Raises ExpressionError only when `source` does not compile.
    """
    program = compile_expression(source)
    try:
        return program.evaluate(variables) is True
    except EvaluationError:
        return False


def validate(source: str) -> str | None:
    """None if `source` compiles, else what is wrong with it (for refusing a sync)."""
    try:
        compile_expression(source)
    except ExpressionError as err:
        return str(err)
    return None
