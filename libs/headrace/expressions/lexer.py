"""A CEL tokenizer: enough of the lexical grammar to find references and literals in source text.

cel-rust exposes no syntax tree to Python, so the source rewrites (substitute_event, null checks)
and the pause index work on tokens. Every token keeps its span so a rewrite can splice the text.
"""

from __future__ import annotations

import re
import sys
from enum import Enum
from typing import NamedTuple

from headrace.expressions.errors import ExpressionError


class Kind(Enum):
    IDENT = "ident"
    STRING = "string"
    BYTES = "bytes"
    NUMBER = "number"
    # true, false and null: CEL reserves them, so they are never identifiers.
    CONSTANT = "constant"
    OPERATOR = "operator"


class Token(NamedTuple):
    kind: Kind
    text: str
    start: int
    end: int
    # The decoded value of a STRING, NUMBER or CONSTANT token; None for the other kinds.
    value: object = None


# One pattern for the whole grammar, the common tokens first: a regex alternation is much faster
# than a Python loop per character class. A word is not a string prefix (b'', r'', br''). Raw
# strings take backslashes literally, so they have their own bodies; a single-quoted string cannot
# span lines, a triple-quoted one can. "." before a digit starts a number (.5).
_TOKEN = re.compile(
    r"""
    (?P<word>(?![bB]?[rR]?['"]|[rR][bB]['"])[_a-zA-Z][_a-zA-Z0-9]*)
    | (?P<space>(?:\s+|//[^\n]*)+)
    | (?P<operator>&&|\|\||==|!=|<=|>=|[<>!+\-*/%?:,()\[\]{}]|\.(?!\d))
    | (?P<string>[bB]?(?:'''(?:\\.|[^\\])*?'''|\"\"\"(?:\\.|[^\\])*?\"\"\"
        |'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
    | (?P<raw>(?:[bB]?[rR]|[rR][bB])(?:'''.*?'''|\"\"\".*?\"\"\"|'[^'\n]*'|"[^"\n]*"))
    | (?P<float>\d*\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
    | (?P<hex>0x[0-9a-fA-F]+)[uU]?
    | (?P<int>\d+)[uU]?
    """,
    re.VERBOSE | re.DOTALL,
)
_CONSTANTS: dict[str, object] = {"true": True, "false": False, "null": None}
_SIMPLE_ESCAPES = dict(zip("abfnrtv\\'\"`?", "\a\b\f\n\r\t\v\\'\"`?", strict=True))
_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-3][0-7]{2}|.)", re.S)


def tokenize(source: str) -> list[Token]:
    """Split `source` into tokens; raises ExpressionError on text CEL could not lex either."""
    tokens: list[Token] = []
    pos = 0
    for match in _TOKEN.finditer(source):
        start, end = match.span()
        if start != pos:  # finditer skipped a character that no token starts with
            break
        pos = end
        kind = match.lastgroup
        if kind == "space":
            continue
        text = match.group()
        if kind == "word":
            tokens.append(_word_token(text, start, end))
        elif kind == "operator":
            tokens.append(Token(Kind.OPERATOR, text, start, end))
        elif kind == "raw" or kind == "string":
            tokens.append(_string_token(text, start, end, raw=kind == "raw"))
        elif kind == "float":
            tokens.append(Token(Kind.NUMBER, text, start, end, float(text)))
        else:  # hex or int, with an optional u suffix
            value = int(text.rstrip("uU"), 16 if kind == "hex" else 10)
            tokens.append(Token(Kind.NUMBER, text, start, end, value))
    if pos != len(source):
        raise ExpressionError(source, f"unexpected character {source[pos]!r} at offset {pos}")
    return tokens


def _string_token(text: str, start: int, end: int, raw: bool) -> Token:
    prefix = len(text) - len(text.lstrip("bBrR"))
    quote = 3 if text[prefix : prefix + 3] in ("'''", '"""') else 1
    if "b" in text[:prefix].lower():
        return Token(Kind.BYTES, text, start, end)
    body = text[prefix + quote : len(text) - quote]
    return Token(Kind.STRING, text, start, end, body if raw else _unescape(body))


def _unescape(body: str) -> str:
    def replace(match: re.Match[str]) -> str:
        escape = match.group()[1:]
        if escape[0] in "xuU":
            return chr(int(escape[1:], 16))
        if escape[0].isdigit():
            return chr(int(escape, 8))
        return _SIMPLE_ESCAPES.get(escape, escape)

    return _ESCAPE.sub(replace, body) if "\\" in body else body


def _word_token(word: str, start: int, end: int) -> Token:
    if word in _CONSTANTS:
        return Token(Kind.CONSTANT, word, start, end, _CONSTANTS[word])
    if word == "in":
        return Token(Kind.OPERATOR, word, start, end)
    # Interned: the names in the paths that compiled programs keep repeat across expressions.
    return Token(Kind.IDENT, sys.intern(word), start, end)
