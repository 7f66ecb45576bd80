"""Finding the pending pauses an incoming event satisfies, without evaluating all of them.

A pause expression (after substitute_event) usually pins a field of the incoming event to a
literal: `async.data.userId == "u1" && async.data.amount > 100`. Such a pause is filed under
that path and value; an event is looked up by its own values at the filed paths, so the
candidates cost O(paths + candidates), not O(pending pauses). Each candidate is then confirmed
by evaluating its whole expression. Pauses without such an equality (a top-level `||`, only
inequalities) go to a per-name fallback list that is evaluated in full for every event.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cel

from headrace.expressions.errors import EvaluationError
from headrace.expressions.paths import lookup, prune, selection
from headrace.expressions.program import Program, compile_expression, context
from headrace.expressions.syntax import Segment

Path = tuple[Segment, ...]
# Event values worth looking up: equalities are filed under scalar literals (and lists or maps
# are unhashable). bool and int hash alike (True == 1); that only adds a candidate that
# evaluation then rejects.
_SCALARS = (str, int, float, type(None))


@dataclass(slots=True)
class _Pause:
    pause_id: str
    event_name: str
    expression: str | None
    program: Program | None
    order: int
    # Where it is filed: (path, value), or None for the fallback list.
    filed_under: tuple[Path, object] | None


@dataclass(slots=True)
class _Pauses:
    """The pauses waiting for one event name."""

    by_value: dict[Path, dict[object, dict[str, _Pause]]] = field(default_factory=dict)
    fallback: dict[str, _Pause] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.by_value or self.fallback)


class PauseIndex:
    """Pending pauses by event name, indexed by the literal values their expressions require."""

    def __init__(self) -> None:
        self._pauses: dict[str, _Pause] = {}
        self._by_name: dict[str, _Pauses] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._pauses)

    def add(self, pause_id: str, event_name: str, expression: str | None) -> None:
        """File a pause; re-adding the same pause is a no-op, a changed one replaces it.

        Raises ExpressionError if `expression` does not compile (nothing is changed then).
        """
        existing = self._pauses.get(pause_id)
        if existing and (existing.event_name, existing.expression) == (event_name, expression):
            return
        program = None if expression is None else compile_expression(expression)
        if existing:
            self.remove(pause_id)
        filed_under = None if program is None else _filing(program)
        pause = _Pause(pause_id, event_name, expression, program, next(self._order), filed_under)
        self._pauses[pause_id] = pause
        pauses = self._by_name.setdefault(event_name, _Pauses())
        if filed_under is None:
            pauses.fallback[pause_id] = pause
        else:
            path, value = filed_under
            pauses.by_value.setdefault(path, {}).setdefault(value, {})[pause_id] = pause

    def remove(self, pause_id: str) -> None:
        """Forget a pause; unknown ids are ignored."""
        pause = self._pauses.pop(pause_id, None)
        if pause is None:
            return
        pauses = self._by_name[pause.event_name]
        if pause.filed_under is None:
            del pauses.fallback[pause_id]
        else:
            path, value = pause.filed_under
            by_value = pauses.by_value[path]
            del by_value[value][pause_id]
            # Drop emptied levels so that the lookups in match() stay proportional to live pauses.
            if not by_value[value]:
                del by_value[value]
            if not by_value:
                del pauses.by_value[path]
        if not pauses:
            del self._by_name[pause.event_name]

    def match(self, event: Mapping[str, object]) -> list[str]:
        """The ids of the pauses `event` satisfies, in the order they were added."""
        name = event.get("name")
        pauses = self._by_name.get(name) if isinstance(name, str) else None
        if pauses is None:
            return []
        candidates = list(pauses.fallback.values())
        for path, by_value in pauses.by_value.items():
            found, value = lookup(event, path)
            # A missing field satisfies `== null` (see nulls.py), so look it up as null.
            value = value if found else None
            if isinstance(value, _SCALARS) and value in by_value:
                candidates.extend(by_value[value].values())
        candidates.sort(key=lambda pause: pause.order)
        return _confirmed(candidates, event)


def _confirmed(candidates: Sequence[_Pause], event: Mapping[str, object]) -> list[str]:
    programs = [pause.program for pause in candidates if pause.program is not None]
    if not programs:
        return [pause.pause_id for pause in candidates]
    # One context for all candidates: converting the event to CEL costs more than evaluating.
    keep = selection(chain for program in programs for chain in program.chains)
    shared = context(prune({"async": event}, keep))
    return [
        pause.pause_id
        for pause in candidates
        if pause.program is None or _is_true(pause.program, shared)
    ]


def _is_true(program: Program, shared: cel.Context) -> bool:
    try:
        return program.run(shared) is True
    except EvaluationError:
        return False


def _filing(program: Program) -> tuple[Path, object] | None:
    """The first `async.<path> == <scalar>` the expression requires, if any."""
    for chain, value in program.equalities:
        if chain[0] == "async":
            return chain[1:], value
    return None
