"""CEL expressions as Inngest evaluates them: triggers, keys, waitForEvent and cancelOn matching.

Built on cel-rust (PyPI common-expression-language) with Inngest's extra functions, its
missing-field-equals-null checks and its substitution of the trigger event into pause
expressions, plus an index that matches events to pending pauses without scanning them all.

Where it differs from Inngest (whose cel-go layer coerces far more):
- a missing field makes any comparison but `== null` / `!= null` fail, i.e. no match; Inngest
  treats it as null there too (`missing != "x"` is true in Inngest, no match here);
- mixed-type `+` (`1 + 1.5`, `"a" + 1`) fails instead of concatenating as strings, and `&&` /
  `||` need booleans (Inngest applies JavaScript truthiness);
- unknown functions and variables are found when evaluating (no match), not when compiling;
- `size()` of a string counts UTF-8 bytes (a cel-rust quirk), not code points.
"""

import sys
from types import ModuleType

# Importing `cel` imports its command-line REPL as well (typer, prompt_toolkit, rich): a third
# of a second of CPU in every process that evaluates expressions, paid by each service at start.
# Only the bindings are used, so the REPL's module is a placeholder; this package's modules are
# the only importers of `cel`, and this runs before any of them.
sys.modules.setdefault("cel.cli", ModuleType("cel.cli"))

from headrace.expressions.errors import EvaluationError, ExpressionError  # noqa: E402
from headrace.expressions.pause_index import PauseIndex  # noqa: E402
from headrace.expressions.program import (  # noqa: E402
    Program,
    compile_expression,
    evaluate_bool,
    validate,
)
from headrace.expressions.substitute import substitute_event  # noqa: E402

__all__ = [
    "EvaluationError",
    "ExpressionError",
    "PauseIndex",
    "Program",
    "compile_expression",
    "evaluate_bool",
    "substitute_event",
    "validate",
]
