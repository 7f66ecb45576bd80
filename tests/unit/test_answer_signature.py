"""The check of an SDK's answer signature (protocol/answer_signature.py), on answers signed by
the Python SDK's own signer, as read by `read_response`; and its setting."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner
from inngest._internal import net

from headrace.dev.cli import dev
from headrace.protocol.answer_signature import AnswerCheck
from headrace.protocol.response import read_response
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import service_command

KEY = "signkey-prod-" + "5e" * 32
OTHER_KEY = "signkey-prod-" + "a7" * 32
NOW_S = 1_700_000_000
BODY = b'[{"op":"StepRun","id":"h1","data":"real"}]'
SDK = {"x-inngest-sdk": "inngest-py:v0.5"}


def _signed(body: bytes, key: str = KEY, at_s: int = NOW_S) -> dict[str, str]:
    signature = net.sign_response(body, key, at_s)
    assert isinstance(signature, str)
    return {**SDK, "x-inngest-signature": signature}


def _read(headers: dict[str, str], body: bytes = BODY, *, required: bool = False) -> object:
    outcome = read_response(206, headers, body, NOW_S * 1000, AnswerCheck(KEY, required))
    return outcome.error or outcome.ops


def test_an_answer_the_sdk_signed_is_read() -> None:
    ops = _read(_signed(BODY))
    assert isinstance(ops, list) and ops[0].data == "real"


@pytest.mark.parametrize(
    ("headers", "body", "why"),
    [
        (_signed(BODY), BODY.replace(b"real", b"fake"), "does not match its body"),
        (_signed(BODY, OTHER_KEY), BODY, "does not match its body"),
        (_signed(BODY, at_s=NOW_S - 301), BODY, "more than 300 s from this server's clock"),
        (_signed(BODY, at_s=NOW_S + 301), BODY, "more than 300 s from this server's clock"),
        ({**SDK, "x-inngest-signature": "garbage"}, BODY, "malformed"),
        ({**SDK, "x-inngest-signature": "t=1&s="}, BODY, "malformed"),
        ({**SDK, "x-inngest-signature": "t=\u00b2&s=ab"}, BODY, "malformed"),
        ({**SDK, "x-inngest-signature": "t=" + "9" * 5000 + "&s=ab"}, BODY, "malformed"),
    ],
)
def test_an_answer_that_fails_the_check_fails_its_call_without_a_retry(
    headers: dict[str, str], body: bytes, why: str
) -> None:
    outcome = read_response(206, headers, body, NOW_S * 1000, AnswerCheck(KEY))
    assert outcome.ops is None
    assert outcome.error is not None and outcome.error["name"] == "InvalidAnswerSignature"
    assert why in outcome.error["message"]
    assert not outcome.retryable


def test_an_unsigned_answer_is_read_unless_signed_answers_are_required() -> None:
    assert isinstance(_read(SDK), list)
    error = _read(SDK, required=True)
    assert isinstance(error, dict) and "without an X-Inngest-Signature" in error["message"]


def test_an_error_answer_is_checked_too() -> None:
    body = b'{"name":"Error","message":"boom"}'
    outcome = read_response(
        500, _signed(body), body.replace(b"boom", b"bang"), NOW_S * 1000, AnswerCheck(KEY)
    )
    assert outcome.error is not None and outcome.error["name"] == "InvalidAnswerSignature"


def _stream(inner_headers: dict[str, str], inner_body: bytes) -> bytes:
    envelope = {"status": 206, "headers": inner_headers, "body": inner_body.decode()}
    return b"   " + json.dumps(envelope).encode()


def test_a_streamed_answer_is_checked_by_its_envelope_s_signature() -> None:
    check = AnswerCheck(KEY, required=True)
    # The JS SDK's way: the envelope's headers sign the envelope's body.
    good = _stream(_signed(BODY), BODY)
    assert read_response(201, {}, good, NOW_S * 1000, check).ops is not None
    changed = _stream(_signed(BODY), BODY.replace(b"real", b"fake"))
    outcome = read_response(201, {}, changed, NOW_S * 1000, check)
    assert outcome.error is not None and "does not match" in outcome.error["message"]
    # The Python SDK signs `null` in the 201's own headers, which covers nothing; its envelope
    # is unsigned, so it is read unless signed answers are required.
    outer = _signed(b"null")
    assert read_response(201, outer, _stream(SDK, BODY), NOW_S * 1000, AnswerCheck(KEY)).ops
    refused = read_response(201, outer, _stream(SDK, BODY), NOW_S * 1000, check)
    assert refused.error is not None


@click.command()
@service_command(default_port=0)
def service(settings: Settings) -> None:
    click.echo(settings.require_signed_answers)


def test_the_requirement_is_read_from_flag_or_environment_and_needs_a_key() -> None:
    runner = CliRunner()
    by_flag = runner.invoke(service, ["--require-signed-answers", "--signing-key", KEY])
    by_env = runner.invoke(
        service, [], env={"HEADRACE_REQUIRE_SIGNED_ANSWERS": "true", "HEADRACE_SIGNING_KEY": KEY}
    )
    assert (by_flag.output.strip(), by_env.output.strip()) == ("True", "True")
    assert runner.invoke(service, []).output.strip() == "False"
    for command in (service, dev):
        keyless = runner.invoke(command, ["--require-signed-answers"], env={})
        assert keyless.exit_code == 2
        assert "--require-signed-answers needs a signing key" in keyless.output
