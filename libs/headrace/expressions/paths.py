"""Reading JSON values along the paths an expression refers to.

`prune` keeps only what an expression can read: cel-rust converts every variable to CEL values
on each evaluation, at a cost that grows with the event (events may be megabytes), while the
expression usually reads a few fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from headrace.expressions.syntax import Segment

# A variable path as (root, segment, ...): ("async", "data", "userId").
Chain = tuple[Segment, ...]
# What to keep below a value: the selected keys, each with what to keep below it; None keeps
# the whole value.
Selection = dict[Segment, "Selection | None"]


def lookup(value: object, path: Iterable[Segment]) -> tuple[bool, object]:
    """(True, the value at `path`) or (False, None) if some key or index along it is missing."""
    for segment in path:
        if isinstance(segment, str) and isinstance(value, Mapping) and segment in value:
            value = value[segment]
        elif isinstance(segment, int) and isinstance(value, list) and 0 <= segment < len(value):
            value = value[segment]
        else:
            return False, None
    return True, value


def selection(chains: Iterable[Chain]) -> Selection:
    """The union of `chains`, each kept whole from its last segment down."""
    root: Selection = {}
    for chain in chains:
        node = root
        for position, segment in enumerate(chain):
            if position == len(chain) - 1:
                node[segment] = None
                break
            child = node.setdefault(segment, {})
            if child is None:  # a shorter chain already keeps all of it
                break
            node = child
    return root


def prune(variables: Mapping[str, object], keep: Selection) -> dict[str, object]:
    """The variables reduced to what `keep` selects; values it does not mention are dropped."""
    return {
        name: _prune(variables[name], below)
        for name, below in keep.items()
        if isinstance(name, str) and name in variables
    }


def _prune(value: object, keep: Selection | None) -> object:
    # Lists are kept whole: index chains are rare and a list has no keys to drop.
    if keep is None or not isinstance(value, dict):
        return value
    return {key: _prune(value[key], below) for key, below in keep.items() if key in value}
