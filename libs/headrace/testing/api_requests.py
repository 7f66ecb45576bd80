"""Hypothesis strategies for requests to the HTTP API, drawn from its OpenAPI document
(api/openapi.json): each operation's path, query and header parameters and bodies, as the
document describes them and also as a stranger sends them (values out of range, fields missing,
any JSON, bytes that are not JSON at all). None carries a valid key: on a server with keys
configured, every request to an operation with `security` comes from a stranger."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import strategies as st

Json = Any


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def protected(self) -> bool:
        """Whether the document says it asks for a key (when the server has keys)."""
        return bool(self.spec.get("security"))

    @property
    def websocket(self) -> bool:
        return bool(self.spec.get("x-websocket"))


@dataclass(frozen=True)
class ApiRequest:
    method: str
    # The path with its query string, percent-encoded.
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def operations(doc: dict[str, Any]) -> list[Operation]:
    return [
        Operation(method, path, spec)
        for path, item in doc["paths"].items()
        for method, spec in item.items()
    ]


# Inputs that broke routes before (issue 16) or tend to: the decoder's limits, numbers JSON or
# 64 bits cannot hold, dates past year 9999, bytes that are not UTF-8.
GARBAGE_BODIES = [
    b"",
    b"{",
    b"null",
    b"[]",
    b"[" * 10_000 + b"]" * 10_000,
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    b"123456789012345678901234567890",
    b'{"name": "x", "data": {"n": 1e400}}',
    b'{"name": "x", "ts": 1e300}',
    b'{"name": "x", "data": {"n": -123456789012345678901234567890}}',
    b"\xff\xfe\x00garbage",
    b'{"name": "\\ud800"}',
    b"NaN",
]
ODD_STRINGS = [
    "",
    " ",
    "\x00",
    "0",
    "-1",
    "1e400",
    "9999-12-31T23:59:59.999999999Z",
    "10000-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "http://127.0.0.1:99999/x",
    "http://127.0.0.1:1/\x00",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "a" * 5000,
    "{}",
    "[" * 1000,
    "true && false",
    "event.data.x ==",
]
# URLs a sync may store: only loopback ports nothing listens on, so no request the fuzz makes
# has the server call another address.
URLS = [
    "http://127.0.0.1:1/api/inngest",
    "http://localhost:1/x?fnId=f&step=s",
    "ftp://127.0.0.1/",
    "http://xn--zz:1/",
    "http://127.0.0.1:99999/",
]
CRON = [
    "0 * * * *",
    "TZ=Europe/Paris 0 9 * * *",
    "TZ=America * * * * *",
    "TZ=" + "a" * 300 + " * * * * *",
    "*/0 * * * *",
    "0 0 30 2 *",
]
GRAPHQL = [
    "{ __typename }",
    "query { __schema { types { name } } }",
    'mutation { invokeFunction(functionSlug: "app-fn", data: {a: 1}) }',
    'mutation { invokeFunction(functionSlug: "app-fn", data: {a: 1e400}) }',
    "{ runs(first: 5) { edges { node { id } } } }",
    "{",
]
DURATIONS = ["1s", "1h30m", "500ms", "-5s", "1e400s", "999999999999d", "9" * 400 + "d"]
CEL = [
    "event.data.x == 1",
    "true",
    "event.data.x ==",
    "size(event.data) > 0",
    # A chain deep enough to overflow cel-rust's stack (refused before it compiles).
    "event.data" + ".a" * 30_000,
]
CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "text/stream",
    "text/event-stream",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "multipart/form-data; boundary=x",
]
# A header value httpx can send: printable latin-1, no line breaks.
_HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
_HEADERS = [
    "authorization",
    "cookie",
    "x-inngest-server-kind",
    "x-inngest-event-id-seed",
    "hx-request",
]


def any_json(max_leaves: int = 12) -> st.SearchStrategy[Json]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20)
        | st.sampled_from(ODD_STRINGS)
    )
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


class _Schemas:
    """JSON Schema (the subset the document uses) to strategies of values that mostly fit it."""

    def __init__(self, doc: dict[str, Any], known: list[str]) -> None:
        self._doc = doc
        self._known = known

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self._doc
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def values(self, schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Json]:
        schema = self._resolve(schema)
        if depth > 4:
            return any_json(4)
        if "oneOf" in schema:
            return st.one_of([self.values(s, depth + 1) for s in schema["oneOf"]])
        if "enum" in schema:
            return st.sampled_from(schema["enum"]) | st.text(max_size=10)
        kind = schema.get("type")
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            items = self.values(schema.get("items", {}), depth + 1)
            low = schema.get("minItems", 0)
            return st.lists(
                items, min_size=low, max_size=max(low, min(schema.get("maxItems", 3), 3))
            )
        if kind == "string":
            return self._string(schema)
        if kind == "integer":
            fitting = st.integers(schema.get("minimum"), schema.get("maximum"))
            return fitting | st.integers() | st.sampled_from([2**63, -(2**63) - 1, 10**30])
        if kind == "boolean":
            return st.booleans()
        return any_json()

    def _object(self, schema: dict[str, Any], depth: int) -> st.SearchStrategy[Json]:
        props: dict[str, Any] = schema.get("properties", {})
        if not props and "additionalProperties" not in schema:
            return st.dictionaries(st.text(max_size=10), any_json(6), max_size=4)
        required = set(schema.get("required", []))
        fitting = st.fixed_dictionaries(
            {k: self.values(v, depth + 1) for k, v in props.items() if k in required},
            optional={k: self.values(v, depth + 1) for k, v in props.items() if k not in required},
        )
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            more = st.dictionaries(st.text(max_size=10), self.values(extra, depth + 1), max_size=2)
            fitting = st.builds(lambda a, b: {**b, **a}, fitting, more)
        # A field of another type, or one missing: what a stranger's client gets wrong. Less
        # often inside a value, so that whole bodies still fit as often as not.
        broken = st.builds(
            break_field, fitting, st.sampled_from(sorted(props) or [""]), any_json(4)
        )
        return st.one_of(fitting, broken) if depth == 0 else st.one_of(fitting, fitting, broken)

    def _string(self, schema: dict[str, Any]) -> st.SearchStrategy[Json]:
        fmt = schema.get("format")
        text = st.text(max_size=schema.get("maxLength", 40) + 2) | st.sampled_from(
            [*ODD_STRINGS, *self._known]
        )
        if fmt == "uri":
            return st.sampled_from(URLS) | text
        if fmt == "date-time":
            times = st.datetimes().map(lambda t: t.isoformat() + "Z")
            return times | text
        if fmt == "graphql":
            return st.sampled_from(GRAPHQL) | text
        if fmt == "ulid":
            return st.from_regex(r"\A[0-7][0-9A-HJKMNP-TV-Z]{25}\Z") | text
        if fmt == "duration":
            return st.sampled_from(DURATIONS) | text
        if fmt == "cron":
            return st.sampled_from(CRON) | text
        if fmt == "cel":
            return st.sampled_from(CEL) | text
        if schema.get("contentMediaType") == "application/json":
            return any_json().map(_dumps) | text
        return text


def break_field(value: Json, key: str, other: Json) -> Json:
    """`value` with `key` set to `other`, or removed (when `other` is a boolean)."""
    if not isinstance(value, dict) or not key:
        return other
    broken = dict(value)
    if key in broken and isinstance(other, bool):
        del broken[key]
    else:
        broken[key] = other
    return broken


def _dumps(value: Json) -> str:
    # Infinities come out as `Infinity`, which is no JSON: one more thing to refuse.
    return json.dumps(value)


def _param_text(schema: dict[str, Any], schemas: _Schemas) -> st.SearchStrategy[str]:
    return schemas.values(schema).map(lambda v: v if isinstance(v, str) else _dumps(v))


def requests(
    doc: dict[str, Any], op: Operation, known: list[str] | None = None
) -> st.SearchStrategy[ApiRequest]:
    """`known`: ids of what the server holds, drawn beside any text."""
    schemas = _Schemas(doc, known or [])
    params: list[dict[str, Any]] = op.spec.get("parameters", [])
    # Path segments: any text but what the URL itself would change (a slash, dot segments).
    segment = (
        st.text(min_size=1, max_size=40) | st.sampled_from([*ODD_STRINGS, *(known or [])])
    ).filter(lambda s: s not in ("", ".", "..") and "/" not in s)
    path_values = st.fixed_dictionaries({p["name"]: segment for p in params if p["in"] == "path"})
    declared = {
        p["name"]: (_param_text(p["schema"], schemas), bool(p.get("required")))
        for p in params
        if p["in"] == "query"
    }
    # Mostly with the required parameters (to reach past their checks), sometimes without.
    query = st.fixed_dictionaries(
        {name: value for name, (value, required) in declared.items() if required},
        optional={name: value for name, (value, required) in declared.items() if not required},
    ) | st.fixed_dictionaries({}, optional={name: value for name, (value, _) in declared.items()})
    extra_query = st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=2)
    declared_headers = {
        p["name"]: _param_text(p["schema"], schemas) for p in params if p["in"] == "header"
    }
    # A bearer scheme with any text after it reaches the key comparison itself.
    auth = _HEADER_TEXT | _HEADER_TEXT.map(lambda t: "Bearer " + t)
    headers = st.fixed_dictionaries(
        {},
        optional={
            **{h: _HEADER_TEXT for h in _HEADERS},
            "authorization": auth,
            **declared_headers,
        },
    )
    headers = headers.map(lambda h: {k: _latin1(v) for k, v in h.items()})
    return st.builds(
        _request,
        st.just(op),
        path_values,
        query,
        extra_query,
        headers,
        _bodies(op, schemas),
        st.sampled_from([*CONTENT_TYPES, None]),
    )


def _latin1(text: str) -> str:
    return "".join(c for c in text if 0x20 <= ord(c) <= 0xFF)


def _bodies(op: Operation, schemas: _Schemas) -> st.SearchStrategy[tuple[str | None, bytes]]:
    """A body with the content type it is meant as (None: leave the drawn one)."""
    garbage = st.sampled_from(GARBAGE_BODIES) | st.binary(max_size=200)
    anything = any_json().map(lambda v: _dumps(v).encode())
    options: list[st.SearchStrategy[tuple[str | None, bytes]]] = [
        st.tuples(st.none(), garbage | anything)
    ]
    content: dict[str, Any] = op.spec.get("requestBody", {}).get("content", {})
    for media, spec in content.items():
        values = schemas.values(spec.get("schema", {}))
        if media == "application/x-www-form-urlencoded":
            encoded = values.map(
                lambda v: urlencode(v).encode() if isinstance(v, dict) else _dumps(v).encode()
            )
        elif media == "application/json":
            encoded = values.map(lambda v: _dumps(v).encode())
        else:
            encoded = st.text(max_size=200).map(str.encode) | st.binary(max_size=200)
        options.append(st.tuples(st.just(media), encoded))
    return st.one_of(options)


def _request(
    op: Operation,
    path_values: dict[str, str],
    query: dict[str, str],
    extra_query: dict[str, str],
    headers: dict[str, str],
    body: tuple[str | None, bytes],
    content_type: str | None,
) -> ApiRequest:
    path = op.path
    for name, value in path_values.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    pairs = {**extra_query, **query}
    target = path + ("?" + urlencode(pairs) if pairs else "")
    media, payload = body
    if media is not None:
        headers = {**headers, "content-type": media}
    elif content_type is not None:
        headers = {**headers, "content-type": content_type}
    if op.method == "get":
        payload = b""
    return ApiRequest(op.method.upper(), target, tuple(headers.items()), payload)
