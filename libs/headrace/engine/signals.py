"""step.waitForSignal: the facts the executor (which claims the signal a WaitForSignal op asks
for: protocol/ops.py) and the signal API (which resumes the run holding it) share.

A signal is held by one wait at a time per account, as in Inngest (the signal -> pause hash of
pkg/execution/state/redis_state/lua/savePause.lua): the key `signal_key` names the pause holding
it. A second wait for a held signal fails its run (`conflict: "fail"`, the default) or takes the
signal over (`"replace"`), the first wait then waiting on until its timeout.

Inngest writes the pause and the key together (that Lua script); headrace claims the key before
the run and its pause are written, so a key may name a pause not written yet: whether it still
holds the signal is then the holding run's to say (`wait_holds`).
"""

from __future__ import annotations

from typing import Any

from headrace.messages.model import Pause
from headrace.messages.state import ENDED, RunState

# A run whose wait finds its signal held (executor.go handleGeneratorWaitForSignal).
CONFLICT_ERROR = {
    "name": "Error",
    "message": "Signal conflict; signal wait already exists for another run",
}


def signal_key(account_id: str, signal: str) -> str:
    """The key (KeyStore) whose value is the id of the pause holding the signal."""
    return f"signal:{account_id}:{signal}"


def pause_id(run_id: str, step_hash: str) -> str:
    """The id of a wait's pause: the value of the key it holds (run ids have no colon)."""
    return f"{run_id}:{step_hash}"


def wait_holds(holder: str, pause: Pause | None, run: RunState | None, now_ms: int) -> bool:
    """Whether the wait whose pause id (`holder`) a signal's key holds still holds the signal,
    given its pause and its run as read now. A pause written decides: it holds until it
    expires. Without one, the wait is either gone (its run ended, or its step settled: resumed
    or timed out) or not written yet: its executor claimed the key and is about to write the
    run and the pause, and it holds. The signal API frees the key as it takes the pause
    (api/controls.py `signal`), so a pause taken is not read as one not written yet."""
    if pause is not None:
        return pause.expires_ms > now_ms
    if run is None or run.status in ENDED:
        return False
    step_hash = holder.partition(":")[2]
    return step_hash not in run.stack


def signal_memo(signal: str, data: Any) -> dict[str, Any]:
    """What a resumed wait stores: the SDK returns `{signal, data}` (Inngest's
    `state.SignalStepReturn`, wrapped as step data)."""
    return {"data": {"signal": signal, "data": data}}
