"""headrace.expressions: compiling, evaluating and validating CEL as Inngest does."""

from __future__ import annotations

import subprocess
import sys

import pytest

from headrace.expressions import (
    EvaluationError,
    ExpressionError,
    Program,
    compile_expression,
    evaluate_bool,
    validate,
)

EVENT = {
    "name": "shop/order.created",
    "id": "01HZX",
    "ts": 1_700_000_000_000,
    "data": {
        "userId": "u1",
        "name": "Ann",
        "amount": 100.5,
        "count": 3,
        "whole": 2.0,
        "paid": True,
        "note": None,
        "quote": "it's",
        "tags": ["a", "b"],
        "items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 2}],
        "address": {"city": "Oslo", "zip": "0150"},
        "a-b": "dashed",
    },
}
VARS = {"event": EVENT}


@pytest.mark.parametrize(
    "source",
    [
        'event.data.userId == "u1"',
        "event.name == 'shop/order.created'",
        "event.data.paid",
        "event.data.count == 3 && event.data.address.city == 'Oslo'",
        "event.data['a-b'] == 'dashed'",
        "event.data.items[1].sku == 'y'",
        "'b' in event.data.tags",
        "size(event.data.items) == 2",
        "event.data.name.startsWith('A') && event.data.name.endsWith('n')",
        "event.data.name.matches('^A.n$')",
        "event.data.userId == 'u2' || event.data.count > 2",
        "event.data.count > 5 ? false : true",
        "event.ts > 1600000000000",
    ],
)
def test_trigger_expressions_match(source: str) -> None:
    assert evaluate_bool(source, VARS) is True


@pytest.mark.parametrize(
    "source",
    [
        'event.data.userId == "u2"',
        "event.data.count > 3",
        "!event.data.paid",
        "event.data.address.city == 'Bergen' && event.data.count == 3",
        "'c' in event.data.tags",
    ],
)
def test_trigger_expressions_that_do_not_match(source: str) -> None:
    assert evaluate_bool(source, VARS) is False


@pytest.mark.parametrize(
    "source",
    [
        "event.data.tags.exists(t, t == 'b')",
        "event.data.items.all(i, i.qty > 0)",
        "event.data.items.exists_one(i, i.sku == 'x')",
        "event.data.items.map(i, i.qty) == [1, 2]",
        "event.data.items.filter(i, i.qty > 1).size() == 1",
        "has(event.data.address.city)",
        "!has(event.data.address.street)",
        "event.data.address.exists(k, k == 'zip')",
    ],
)
def test_macros(source: str) -> None:
    assert evaluate_bool(source, VARS) is True


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("event.data.amount > 100", True),  # a double against an int literal
        ("event.data.amount < 101", True),
        ("event.data.count == 3.0", True),  # an int against a double literal
        ("event.data.whole == 2", True),  # a JSON 2.0 against an int literal
        ("event.data.count >= 3.0 && event.data.count <= 3", True),
        ("event.data.amount == 100", False),
        ("3.0 in [1, 2, 3]", True),
        ("[1, 2] == [1.0, 2.0]", True),
        ("event.data.count == 3u", True),
    ],
)
def test_ints_and_doubles_compare_loosely(source: str, expected: bool) -> None:
    assert evaluate_bool(source, VARS) is expected


@pytest.mark.parametrize(
    "source",
    [
        "event.data.name == 'Ann'",
        "event.data.quote == 'it\\'s'",
        'event.data.quote == "it\'s"',
        "'Ann' == event.data.name",
        "event.data['name'] == 'Ann'",
        "'''Ann''' == event.data.name",
    ],
)
def test_single_quoted_strings(source: str) -> None:
    assert evaluate_bool(source, VARS) is True


@pytest.mark.parametrize(
    "source",
    [
        "event.data.missing == 'x'",
        "event.data.missing != 'x'",
        "event.data.missing > 1",
        "event.data.address.street == 'Main'",
        "event.data.nothing.deeper == 1",
        "event.data.missing.startsWith('a')",
        "event.data.items[5].sku == 'z'",
        "event.data.missing && true",
        "async.data.userId == 'u1'",  # a variable that is not given
        "event.data.name + 1 == 'Ann1'",  # a type error
        "event.data.count + 0.5 > 1",  # mixed int and double arithmetic, as in cel-go
        "event.data.paid && 1",  # && needs booleans
        "nosuchfn(event.data.name) == 'Ann'",  # found only when evaluating
    ],
)
def test_a_missing_field_or_a_runtime_error_is_no_match(source: str) -> None:
    assert evaluate_bool(source, VARS) is False


def test_an_error_in_one_branch_of_or_does_not_hide_a_true_branch() -> None:
    assert evaluate_bool("event.data.missing == 'x' || event.data.paid", VARS) is True
    assert evaluate_bool("event.data.paid || event.data.missing == 'x'", VARS) is True
    assert evaluate_bool("event.data.missing == 'x' && false", VARS) is False


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("event.data.missing == null", True),
        ("null == event.data.missing", True),
        ("event.data.missing != null", False),
        ("null != event.data.missing", False),
        ("event.data.note == null", True),  # present and null
        ("event.data.note != null", False),
        ("event.data.userId != null", True),  # present and set
        ("event.data.userId == null", False),
        ("event.data.address.street.name == null", True),  # missing along the way
        ("event.data['no-such'] == null", True),
        ("event.data.userId == 'u1' && event.data.missing == null", True),
        ("!(event.data.missing == null)", False),
        ("(event.data.missing == null) == true", True),
        ("event.data.items.all(i, i.discount == null)", True),
        ("[event.data.missing == null, event.data.userId == null] == [true, false]", True),
        ("event.data.missing == null ? 'unset' == 'unset' : false", True),
    ],
)
def test_a_missing_field_equals_null(source: str, expected: bool) -> None:
    assert evaluate_bool(source, VARS) is expected


def test_a_list_index_compared_with_null_stays_strict() -> None:
    # Only key paths get the missing-is-null treatment; an index past the end is an error.
    assert evaluate_bool("event.data.tags[5] == null", VARS) is False


def test_a_non_bool_result_is_no_match() -> None:
    assert evaluate_bool("event.data.name", VARS) is False
    assert evaluate_bool("1", VARS) is False
    assert evaluate_bool("event.data.note", VARS) is False


def test_evaluate_returns_the_value() -> None:
    assert compile_expression("event.data.name").evaluate(VARS) == "Ann"
    assert compile_expression("event.data.count * 2").evaluate(VARS) == 6
    assert compile_expression("event.data.address").evaluate(VARS) == {
        "city": "Oslo",
        "zip": "0150",
    }
    assert compile_expression("event.data.items.map(i, i.sku)").evaluate(VARS) == ["x", "y"]
    assert compile_expression("event.data.missing == null").evaluate(VARS) is True
    assert compile_expression("'k-' + event.data.userId").evaluate(VARS) == "k-u1"


def test_evaluate_raises_evaluation_error_with_the_source() -> None:
    program = compile_expression("event.data.missing + 1")
    with pytest.raises(EvaluationError) as caught:
        program.evaluate(VARS)
    assert caught.value.expression == "event.data.missing + 1"
    assert "missing" in str(caught.value)


def test_evaluate_refuses_values_cel_cannot_hold() -> None:
    with pytest.raises(EvaluationError):
        compile_expression("event.data.x == 1").evaluate({"event": {"data": {"x": {1, 2}}}})


def test_only_the_fields_read_are_converted_but_results_are_unchanged() -> None:
    big = {"data": {"keep": "yes", "blob": ["x" * 100] * 1000, "nested": {"a": 1, "b": 2}}}
    variables = {"event": big, "unused": {"huge": list(range(1000))}}
    assert evaluate_bool("event.data.keep == 'yes'", variables) is True
    assert evaluate_bool("size(event.data.nested) == 2", variables) is True
    assert evaluate_bool("event.data.nested.size() == 2 && has(event.data.nested.b)", variables)
    assert evaluate_bool("size(event.data) == 3", variables) is True
    assert evaluate_bool("event.data.blob.all(b, size(b) == 100)", variables) is True
    assert evaluate_bool("event.data['nested']['a'] == 1", variables) is True
    assert evaluate_bool("event.data[event.data.keep == 'yes' ? 'keep' : 'x'] == 'yes'", variables)
    assert evaluate_bool("{'e': event}.e.data.keep == 'yes'", variables) is True
    assert evaluate_bool("size(unused.huge) == 1000", variables) is True


def test_compile_is_cached_by_source() -> None:
    first = compile_expression("event.data.cache_probe == 1")
    assert isinstance(first, Program)
    assert compile_expression("event.data.cache_probe == 1") is first
    assert first.source == "event.data.cache_probe == 1"
    assert compile_expression("event.data.cache_probe == 2") is not first


def test_compile_error_says_what_and_where() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("event.data.userId == ")
    error = caught.value
    assert error.expression == "event.data.userId == "
    message = str(error)
    assert "event.data.userId == " in message
    assert "line 1, column 22" in message
    assert "Syntax error" in message


@pytest.mark.parametrize(
    "source",
    [
        "",
        "event.data.x ===  1",
        "event.data.x = 1",
        "event.data.x == 'unterminated",
        "has(event.data['x'])",
        "(event.data.x == 1",
        "event.data.x == 1 # comment",
        "event.data.true == 1",
    ],
)
def test_invalid_expressions_do_not_compile(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(source)
    message = validate(source)
    assert message is not None and "invalid expression" in message
    with pytest.raises(ExpressionError):
        evaluate_bool(source, VARS)


def test_validate_accepts_valid_expressions() -> None:
    assert validate("event.data.userId == 'u1' && async.data.n > 1") is None
    assert validate("lowercase(event.data.name) == 'ann' // a comment") is None
    # cel-rust has no type checker: unknown names compile and fail when evaluated.
    assert validate("nosuchfn(evnt.data.x)") is None


def test_comments_and_whitespace() -> None:
    source = "event . data\n  . userId == 'u1' // who\n && event.data.count == 3"
    assert evaluate_bool(source, VARS) is True


# Found by probing beside the API fuzz: each crashed the process (a stack overflow in cel-rust,
# SIGSEGV) before it was refused. Run in a child process, so a regression fails this test
# instead of killing the session.
@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("'a.' * 49_999 + 'b'", "more than 2000 operators"),
        ("'1' + '+1' * 49_999", "more than 2000 operators"),
        ("'x' + '[0]' * 20_000", "more than 2000 operators"),
        ("'(' * 100_000 + '1' + ')' * 100_000", "longer than 100000 characters"),
    ],
)
def test_an_expression_deep_enough_to_overflow_the_stack_is_refused(
    source: str, reason: str
) -> None:
    code = (
        "from headrace.expressions import ExpressionError, compile_expression\n"
        "try:\n"
        f"    compile_expression({source})\n"
        "except ExpressionError as err:\n"
        "    print(err.message)\n"
    )
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (child.returncode, child.stdout.strip()) == (0, reason), child.stderr[-500:]


def test_a_long_but_wide_expression_still_compiles() -> None:
    ids = ", ".join(f"'{n:032x}'" for n in range(2_500))
    assert evaluate_bool(f"event.data.id in [{ids}]", {"event": {"data": {"id": f"{7:032x}"}}})
