"""The CEL tokenizer and the structure helpers the rewrites and the pause index rely on."""

from __future__ import annotations

import pytest

from headrace.expressions import ExpressionError, compile_expression
from headrace.expressions.lexer import Kind, tokenize
from headrace.expressions.nulls import rewrite_null_checks
from headrace.expressions.paths import lookup, prune, selection
from headrace.expressions.syntax import conjuncts, references, required_equalities


def kinds_and_values(source: str) -> list[tuple[str, object]]:
    return [(token.kind.name, token.value) for token in tokenize(source)]


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("'single'", "single"),
        ('"double"', "double"),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'''tri\nple'''", "tri\nple"),
        ('"""a "quoted" word"""', 'a "quoted" word'),
        ("r'\\d+'", "\\d+"),
        ('R"\\n"', "\\n"),
        ("'\\x41\\101\\u00e9\\U0001F600'", "AAé😀"),
        ("'\\a\\b\\f\\n\\r\\t\\v\\\\\\?\\`'", "\a\b\f\n\r\t\v\\?`"),
        ("''", ""),
    ],
)
def test_string_literals_are_decoded(source: str, value: str) -> None:
    assert kinds_and_values(source) == [("STRING", value)]
    assert compile_expression(source).evaluate({}) == value


@pytest.mark.parametrize(
    ("source", "value"),
    [("42", 42), ("0x1F", 31), ("7u", 7), ("0x10U", 16), ("1.5", 1.5), (".5", 0.5), ("1e3", 1e3)],
)
def test_numbers(source: str, value: object) -> None:
    assert kinds_and_values(source) == [("NUMBER", value)]
    assert compile_expression(source).evaluate({}) == value


def test_words_constants_bytes_operators_and_comments() -> None:
    tokens = tokenize("b'x' in bar.rb // note\n&& true != null || !false")
    assert [(token.kind, token.text) for token in tokens] == [
        (Kind.BYTES, "b'x'"),
        (Kind.OPERATOR, "in"),
        (Kind.IDENT, "bar"),
        (Kind.OPERATOR, "."),
        (Kind.IDENT, "rb"),
        (Kind.OPERATOR, "&&"),
        (Kind.CONSTANT, "true"),
        (Kind.OPERATOR, "!="),
        (Kind.CONSTANT, "null"),
        (Kind.OPERATOR, "||"),
        (Kind.OPERATOR, "!"),
        (Kind.CONSTANT, "false"),
    ]
    assert tokens[2].start == 8 and tokens[2].end == 11


@pytest.mark.parametrize("source", ["'open", "a # b", "a ; b", "'line\nbreak'"])
def test_text_cel_cannot_lex_is_refused(source: str) -> None:
    with pytest.raises(ExpressionError):
        tokenize(source)


def test_references_stop_at_calls_and_computed_indexes() -> None:
    tokens = tokenize(
        "async.data['k'].items[0].sku == event.data.x.size() && size(vars.a) > 0"
        " && event.data.m[async.i] == 1 && x.exists(y, y.z)"
    )
    found = [(ref.root, ref.path) for ref in references(tokens)]
    assert found == [
        ("async", ("data", "k", "items", 0, "sku")),
        ("event", ("data", "x")),
        ("vars", ("a",)),
        ("event", ("data", "m")),
        ("async", ("i",)),
        ("x", ()),
        ("y", ()),
        ("y", ("z",)),
    ]


def test_conjuncts_split_top_level_and_only() -> None:
    tokens = tokenize("(a == 1 && (b == 2 && c(d && e))) && [f && g] == [true]")
    texts = [
        " ".join(t.text for t in tokens[start:end])
        for start, end in conjuncts(tokens, 0, len(tokens))
    ]
    assert texts == ["a == 1", "b == 2", "c ( d && e )", "[ f && g ] == [ true ]"]
    for source in ("a && b || c", "a && b ? c : d"):
        tokens = tokenize(source)
        assert conjuncts(tokens, 0, len(tokens)) == [(0, len(tokens))]


def test_required_equalities() -> None:
    tokens = tokenize(
        "async.a == 'x' && 2 == async.b && async.c == -1.5 && async.d != 1"
        " && async.e == async.f && (async.g == null) && async.h == b'x' && async.i == 1 + 1"
    )
    found = [
        (ref.root, ref.path, value)
        for ref, value in required_equalities(tokens, references(tokens))
    ]
    assert found == [
        ("async", ("a",), "x"),
        ("async", ("b",), 2),
        ("async", ("c",), -1.5),
        ("async", ("g",), None),
    ]


def test_null_checks_are_rewritten_only_where_the_comparison_stands_alone() -> None:
    def rewrite(source: str) -> str:
        tokens = tokenize(source)
        return rewrite_null_checks(source, tokens, references(tokens))

    assert rewrite("a.b == null") == '(!("b" in a) || a["b"] == null)'
    assert (
        rewrite("null != a['x-y'].z") == '("x-y" in a && "z" in a["x-y"] && a["x-y"]["z"] != null)'
    )
    assert rewrite("f(a.b == null, 1)") == 'f((!("b" in a) || a["b"] == null), 1)'
    for untouched in (
        "a == null",
        "a.b[0] == null",
        "!a.b == null",
        "x < a.b == null",
        "a.b == null == true",
        "a.b == 'null'",
    ):
        assert rewrite(untouched) == untouched


def test_lookup_prune_and_selection() -> None:
    data = {"a": {"b": [10, {"c": 1}], "d": 2}, "e": 3}
    assert lookup(data, ("a", "b", 1, "c")) == (True, 1)
    assert lookup(data, ("a", "x")) == (False, None)
    assert lookup(data, ("a", "b", 5)) == (False, None)
    assert lookup(data, ("e", "f")) == (False, None)
    keep = selection([("v", "a", "d"), ("v", "a", "b", 0), ("w",)])
    assert keep == {"v": {"a": {"d": None, "b": {0: None}}}, "w": None}
    pruned = prune({"v": data, "w": [1], "unused": 1}, keep)
    assert pruned == {"v": {"a": {"b": [10, {"c": 1}], "d": 2}}, "w": [1]}
    # A shorter chain keeps the whole value whichever order the chains come in.
    assert selection([("v", "a", "d"), ("v", "a")]) == {"v": {"a": None}}
    assert selection([("v", "a"), ("v", "a", "d")]) == {"v": {"a": None}}
