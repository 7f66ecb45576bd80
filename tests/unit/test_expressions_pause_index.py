"""PauseIndex: matching incoming events to pending waitForEvent / cancelOn / invoke pauses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from headrace.expressions import ExpressionError, PauseIndex, Program, substitute_event


def order(user: str, amount: float = 10, **extra: object) -> dict[str, object]:
    return {"name": "shop/paid", "data": {"userId": user, "amount": amount, **extra}}


@pytest.fixture
def evaluations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The sources of the programs that PauseIndex.match evaluates, in order."""
    seen: list[str] = []
    run = Program.run

    def counting(self: Program, prepared: Any) -> object:
        seen.append(self.source)
        return run(self, prepared)

    monkeypatch.setattr(Program, "run", counting)
    yield seen


def test_equality_pauses_are_matched_through_the_index(evaluations: list[str]) -> None:
    index = PauseIndex()
    for n in range(1000):
        index.add(f"p{n}", "shop/paid", f'async.data.userId == "u{n}"')
    assert index.match(order("u7")) == ["p7"]
    assert evaluations == ['async.data.userId == "u7"']
    assert index.match(order("nobody")) == []
    assert len(evaluations) == 1


@pytest.mark.parametrize(
    "expression",
    [
        'async.data.userId == "u1"',
        '"u1" == async.data.userId',
        'async.data.userId == "u1" && async.data.amount > 5',
        'async.data.amount > 5 && ("u1" == async.data.userId)',
        '(async.data.amount > 5 && (async.data.userId == "u1" && true))',
        "async.data['userId'] == 'u1' && async.data.amount < 100",
    ],
)
def test_indexable_shapes(expression: str, evaluations: list[str]) -> None:
    index = PauseIndex()
    index.add("wanted", "shop/paid", expression)
    for n in range(50):
        index.add(f"other{n}", "shop/paid", f'async.data.userId == "x{n}"')
    assert index.match(order("u1")) == ["wanted"]
    assert evaluations == [expression]  # only the candidate was evaluated
    assert index.match(order("u2")) == []


def test_candidates_are_confirmed_by_the_whole_expression() -> None:
    index = PauseIndex()
    index.add("big", "shop/paid", 'async.data.userId == "u1" && async.data.amount > 50')
    assert index.match(order("u1", amount=10)) == []
    assert index.match(order("u1", amount=60)) == ["big"]


@pytest.mark.parametrize(
    "expression",
    [
        "async.data.amount > 50",
        'async.data.userId == "u1" || async.data.amount > 50',
        'async.data.userId != "u2"',
        "async.data.userId.startsWith('u')",
        "async.data.amount > 50 ? true : false",
    ],
)
def test_pauses_without_an_equality_fall_back_to_full_evaluation(
    expression: str, evaluations: list[str]
) -> None:
    index = PauseIndex()
    index.add("fallback", "shop/paid", expression)
    for n in range(50):
        index.add(f"other{n}", "shop/paid", f'async.data.userId == "x{n}"')
    assert index.match(order("u1", amount=60)) == ["fallback"]
    assert evaluations == [expression]


def test_a_pause_without_expression_matches_every_event_of_its_name() -> None:
    index = PauseIndex()
    index.add("any", "shop/paid", None)
    assert index.match(order("u1")) == ["any"]
    assert index.match({"name": "shop/paid"}) == ["any"]
    assert index.match({"name": "shop/refunded", "data": {}}) == []


def test_event_name_must_match() -> None:
    index = PauseIndex()
    index.add("p", "shop/paid", 'async.data.userId == "u1"')
    assert index.match({"name": "shop/refunded", "data": {"userId": "u1"}}) == []
    assert index.match({"data": {"userId": "u1"}}) == []
    assert index.match({"name": 5, "data": {"userId": "u1"}}) == []


def test_results_come_in_insertion_order_across_index_and_fallback() -> None:
    index = PauseIndex()
    index.add("a", "shop/paid", "async.data.amount > 1")
    index.add("b", "shop/paid", 'async.data.userId == "u1"')
    index.add("c", "shop/paid", None)
    index.add("d", "shop/paid", "async.data.amount == 10")
    index.add("e", "shop/paid", 'async.data.userId == "u1" && async.data.amount == 10')
    index.add("f", "shop/paid", 'async.data.userId == "u2"')
    assert index.match(order("u1")) == ["a", "b", "c", "d", "e"]


def test_remove_is_idempotent_and_forgets_the_pause() -> None:
    index = PauseIndex()
    index.add("p1", "shop/paid", 'async.data.userId == "u1"')
    index.add("p2", "shop/paid", 'async.data.userId == "u1"')
    index.add("p3", "shop/paid", "async.data.amount > 1")
    assert len(index) == 3
    index.remove("p1")
    index.remove("p1")
    index.remove("never-added")
    assert len(index) == 2
    assert index.match(order("u1")) == ["p2", "p3"]
    index.remove("p2")
    index.remove("p3")
    assert len(index) == 0
    assert index.match(order("u1")) == []


def test_add_is_idempotent_and_a_changed_pause_replaces_the_old_one() -> None:
    index = PauseIndex()
    index.add("p1", "shop/paid", 'async.data.userId == "u1"')
    index.add("p2", "shop/paid", 'async.data.userId == "u1"')
    index.add("p1", "shop/paid", 'async.data.userId == "u1"')
    assert len(index) == 2
    assert index.match(order("u1")) == ["p1", "p2"]  # the repeat kept p1's place
    index.add("p1", "shop/paid", 'async.data.userId == "u9"')
    assert len(index) == 2
    assert index.match(order("u1")) == ["p2"]
    assert index.match(order("u9")) == ["p1"]
    index.add("p1", "shop/other", None)
    assert index.match(order("u9")) == []
    assert index.match({"name": "shop/other"}) == ["p1"]


def test_an_expression_that_does_not_compile_is_refused_and_nothing_changes() -> None:
    index = PauseIndex()
    index.add("p1", "shop/paid", 'async.data.userId == "u1"')
    with pytest.raises(ExpressionError) as caught:
        index.add("p1", "shop/paid", "async.data.userId ==")
    assert caught.value.expression == "async.data.userId =="
    with pytest.raises(ExpressionError):
        index.add("p2", "shop/paid", "async.data.userId = 'u1'")
    assert len(index) == 1
    assert index.match(order("u1")) == ["p1"]


def test_numbers_match_across_int_and_double() -> None:
    index = PauseIndex()
    index.add("int", "shop/paid", "async.data.amount == 10")
    index.add("double", "shop/paid", "async.data.amount == 10.0")
    index.add("half", "shop/paid", "async.data.amount == 10.5")
    assert index.match(order("u1", amount=10.0)) == ["int", "double"]
    assert index.match(order("u1", amount=10)) == ["int", "double"]
    assert index.match(order("u1", amount=10.5)) == ["half"]


def test_a_bool_does_not_match_an_int_that_hashes_alike() -> None:
    index = PauseIndex()
    index.add("flag", "shop/paid", "async.data.flag == true")
    index.add("one", "shop/paid", "async.data.flag == 1")
    assert index.match(order("u1", flag=True)) == ["flag"]
    assert index.match(order("u1", flag=1)) == ["one"]


def test_null_equalities_match_missing_and_null_fields() -> None:
    index = PauseIndex()
    index.add("unset", "shop/paid", "async.data.coupon == null")
    assert index.match(order("u1")) == ["unset"]
    assert index.match(order("u1", coupon=None)) == ["unset"]
    assert index.match(order("u1", coupon="SAVE")) == []


def test_unusual_event_values_at_an_indexed_path() -> None:
    index = PauseIndex()
    index.add("p", "shop/paid", 'async.data.userId == "u1"')
    assert index.match({"name": "shop/paid", "data": {"userId": ["u1"]}}) == []
    assert index.match({"name": "shop/paid", "data": {"userId": {"id": "u1"}}}) == []
    assert index.match({"name": "shop/paid", "data": "u1"}) == []
    assert index.match({"name": "shop/paid"}) == []


def test_indexed_paths_with_list_indexes() -> None:
    index = PauseIndex()
    index.add("first", "shop/paid", "async.data.items[0].sku == 'x'")
    assert index.match(order("u1", items=[{"sku": "x"}])) == ["first"]
    assert index.match(order("u1", items=[{"sku": "y"}, {"sku": "x"}])) == []
    assert index.match(order("u1", items=[])) == []


def test_expressions_still_referring_to_event_never_match() -> None:
    index = PauseIndex()
    index.add("p", "shop/paid", "event.data.userId == async.data.userId")
    assert index.match(order("u1")) == []


def test_wait_for_event_flow_with_substitution() -> None:
    trigger = {"name": "shop/checkout", "data": {"userId": "u1", "cart": "c9"}}
    index = PauseIndex()
    wait = "event.data.userId == async.data.userId && async.data.cart == event.data.cart"
    index.add("run1:wait", "shop/paid", substitute_event(wait, trigger))
    index.add("run2:wait", "shop/paid", substitute_event(wait, {"data": {"userId": "u2"}}))
    assert index.match(order("u1", cart="c9")) == ["run1:wait"]
    assert index.match(order("u1", cart="c8")) == []
    # run2's trigger had no cart: it waits for an event without one.
    assert index.match(order("u2")) == ["run2:wait"]
    assert index.match(order("u2", cart="c1")) == []


def test_invoke_correlation_pause() -> None:
    index = PauseIndex()
    for n in range(100):
        index.add(
            f"run{n}:invoke",
            "inngest/function.finished",
            f'async.data.correlation_id == "run{n}.step"',
        )
    finished = {"name": "inngest/function.finished", "data": {"correlation_id": "run42.step"}}
    assert index.match(finished) == ["run42:invoke"]


def test_many_pauses(evaluations: list[str]) -> None:
    index = PauseIndex()
    count = 20_000
    for n in range(count):
        index.add(
            f"p{n}", "shop/paid", f'async.data.userId == "u{n % 5000}" && async.data.n == {n}'
        )
    index.add("scan", "shop/paid", "async.data.amount >= 10")
    assert len(index) == count + 1
    assert index.match(order("u17", n=10017)) == ["p10017", "scan"]
    # The four pauses filed under u17 and the one fallback pause; not all 20,001.
    assert len(evaluations) == 5
    for n in range(0, count, 2):
        index.remove(f"p{n}")
    assert len(index) == count // 2 + 1
    assert index.match(order("u17", n=10017)) == ["p10017", "scan"]
    assert index.match(order("u16", n=10016)) == ["scan"]
