"""What a replay keeps of the run it replays: the memos settled before the step it starts from.

The stack is the order in which the original's steps settled; the replay keeps its prefix up to
(not including) the step it starts from, so that step and every step after it run again while
the SDK skips the ones before it.
"""

from __future__ import annotations

from dataclasses import dataclass

from headrace.messages.state import HistoryEntry, RunState


@dataclass(frozen=True)
class Seed:
    stack: list[str]
    memos: dict[str, bytes]
    step_names: dict[str, str]


def failed_step(history: list[HistoryEntry]) -> str | None:
    """The memo key of the first step that failed for good, if one did."""
    for entry in history:
        if entry.kind == "step.failed" and entry.step_hash:
            return entry.step_hash
    return None


def resolve_step(run: RunState, ref: str) -> str | None:
    """The memo key of the settled step `ref` names (its hash or its name), if there is one."""
    return next((h for h in run.stack if ref in (h, run.step_names.get(h))), None)


def replay_seed(
    original: RunState, memos: dict[str, bytes], history: list[HistoryEntry], from_step: str = ""
) -> Seed:
    """The memos a replay of `original` starts with.

    `from_step` is a step hash or a step name; "" means the step that failed. A run that failed
    outside any step (the function raised between steps) keeps every memo: replaying it calls
    the function again past all its steps.
    """
    start = resolve_step(original, from_step) if from_step else failed_step(history)
    stack: list[str] = []
    for step_hash in original.stack:
        if step_hash == start:
            break
        if step_hash in memos:
            stack.append(step_hash)
    return Seed(
        stack=stack,
        memos={h: memos[h] for h in stack},
        step_names={h: original.step_names[h] for h in stack if h in original.step_names},
    )
