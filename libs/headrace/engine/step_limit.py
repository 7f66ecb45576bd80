"""The per-run step limit: a run whose settled steps reach it fails instead of calling its app
again, as in Inngest (executor/validate.go `checkStepLimit`, before every call of a run)."""

from __future__ import annotations

from typing import Any

# Inngest's default (consts.DefaultMaxStepLimit) and the most it lets one set
# (consts.AbsoluteMaxStepLimit).
DEFAULT_MAX_STEPS = 1_000
MAX_STEPS_CEILING = 10_000

# Inngest's Go error, which its finished and failed events carry as `error`
# (state.ErrFunctionOverflowed).
FAILURE = "function has too many steps"


def overflow_error(limit: int) -> dict[str, Any]:
    """The run's error, named and worded as Inngest's (state.InngestErrFunctionOverflowed)."""
    return {
        "name": "InngestErrFunctionOverflowed",
        "message": f"The function run exceeded the step limit of {limit} steps.",
    }
