"""`headrace dev` and every service command take the engine's flags by the same names and
`HEADRACE_*` variables, and read them into the same settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import pytest

from headrace.runtime.settings import Settings
from headrace.testing.command_settings import SERVICE_COMMANDS, settings_of

COMMANDS = ("dev", *SERVICE_COMMANDS)

# flag, its variable, a value other than either mode's default, and what the settings hold.
SHARED: list[tuple[str, str, str, Callable[[Settings], Any], Any]] = [
    ("--host", "HEADRACE_HOST", "0.0.0.0", lambda s: s.host, "0.0.0.0"),
    ("--port", "HEADRACE_PORT", "9123", lambda s: s.port, 9123),
    ("--call-timeout", "HEADRACE_CALL_TIMEOUT", "7", lambda s: s.call_timeout_s, 7.0),
    ("--endpoint-timeout", "HEADRACE_ENDPOINT_TIMEOUT", "60", lambda s: s.endpoint_timeout_s, 60.0),
    ("--retry-interval", "HEADRACE_RETRY_INTERVAL", "0.5", lambda s: s.retry_interval_s, 0.5),
    ("--max-steps", "HEADRACE_MAX_STEPS", "50", lambda s: s.max_steps, 50),
    (
        "--executor-concurrency",
        "HEADRACE_EXECUTOR_CONCURRENCY",
        "9",
        lambda s: s.executor_concurrency,
        9,
    ),
    ("--app-concurrency", "HEADRACE_APP_CONCURRENCY", "4", lambda s: s.app_concurrency, 4),
    (
        "--intake-topics",
        "HEADRACE_INTAKE_TOPICS",
        "orders, payments",
        lambda s: s.intake_topics,
        ("orders", "payments"),
    ),
    ("--retention", "HEADRACE_RETENTION", "3600", lambda s: s.retention_s, 3600),
    (
        "--dead-letter-retention",
        "HEADRACE_DEAD_LETTER_RETENTION",
        "120",
        lambda s: s.dead_letter_retention_s,
        120,
    ),
    ("--rate-limit", "HEADRACE_RATE_LIMIT", "5", lambda s: s.rate_limit.per_second, 5.0),
    ("--rate-burst", "HEADRACE_RATE_BURST", "7", lambda s: s.rate_limit.burst, 7),
    ("--dashboard-token", "HEADRACE_DASHBOARD_TOKEN", "t0k", lambda s: s.dashboard_token, "t0k"),
    ("--signing-key", "HEADRACE_SIGNING_KEY", "signkey-a", lambda s: s.signing_key, "signkey-a"),
    (
        "--signing-keys",
        "HEADRACE_SIGNING_KEYS",
        "acme=signkey-b",
        lambda s: s.signing_keys,
        (("acme", "signkey-b"),),
    ),
    (
        "--event-keys",
        "HEADRACE_EVENT_KEYS",
        "k1=acme, k2",
        lambda s: s.event_keys,
        (("k1", "acme"), ("k2", "default")),
    ),
    ("--log-level", "HEADRACE_LOG_LEVEL", "debug", lambda s: s.log_level, "debug"),
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(("flag", "variable", "value", "field", "expected"), SHARED)
def test_a_shared_flag_and_its_variable_set_the_same_field_in_every_command(
    command: str,
    flag: str,
    variable: str,
    value: str,
    field: Callable[[Settings], Any],
    expected: Any,
) -> None:
    by_flag = settings_of(command, [flag, value])
    by_variable = settings_of(command, env={variable: value})

    assert field(by_flag) == field(by_variable) == expected


@pytest.mark.parametrize("command", COMMANDS)
def test_signed_answers_are_required_by_flag_or_variable_and_need_a_key(command: str) -> None:
    key = ["--signing-key", "signkey-a"]

    assert settings_of(command, ["--require-signed-answers", *key]).require_signed_answers
    assert settings_of(
        command, key, env={"HEADRACE_REQUIRE_SIGNED_ANSWERS": "true"}
    ).require_signed_answers
    with pytest.raises(click.UsageError, match="needs a signing key"):
        settings_of(command, ["--require-signed-answers"])


@pytest.mark.parametrize("command", COMMANDS)
def test_event_keys_come_from_repeated_flags_and_the_list_together(command: str) -> None:
    settings = settings_of(
        command,
        ["--event-key", "k1", "--event-key", "k2=acme"],
        env={"HEADRACE_EVENT_KEYS": "k3=globex"},
    )

    assert settings.event_keys == (("k1", "default"), ("k2", "acme"), ("k3", "globex"))
    accounts = settings.accounts()
    assert [accounts.for_event_key(k) for k in ("k1", "k2", "k3", "k4")] == [
        "default",
        "acme",
        "globex",
        None,
    ]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("bad", ["=acme", "k=", "k1,=acme"])
def test_an_event_key_without_a_key_or_with_an_empty_account_is_refused(
    command: str, bad: str
) -> None:
    with pytest.raises(click.BadParameter, match="expected KEY or KEY=ACCOUNT"):
        settings_of(command, env={"HEADRACE_EVENT_KEYS": bad})


@pytest.mark.parametrize("command", COMMANDS)
def test_the_sdks_signing_key_variable_is_read_when_headraces_is_not_set(command: str) -> None:
    inngest = {"INNGEST_SIGNING_KEY": "signkey-sdk"}

    assert settings_of(command, env=inngest).signing_key == "signkey-sdk"
    both = {**inngest, "HEADRACE_SIGNING_KEY": "signkey-own"}
    assert settings_of(command, env=both).signing_key == "signkey-own"


def test_the_embedded_storage_is_read_from_dev_flags_or_variables() -> None:
    urls = ["-u", "http://a/api", "-u", "http://b/api"]
    by_flags = settings_of("dev", [*urls, "--state-dir", "/tmp/s", "--poll-interval", "2"])
    by_variables = settings_of(
        "dev",
        env={
            "HEADRACE_SDK_URLS": "http://a/api http://b/api",
            "HEADRACE_STATE_DIR": "/tmp/s",
            "HEADRACE_POLL_INTERVAL": "2",
        },
    )

    assert by_flags.embedded == by_variables.embedded
    assert by_flags.embedded.sdk_urls == ("http://a/api", "http://b/api")
    assert str(by_flags.embedded.state_dir) == "/tmp/s"
    assert by_flags.embedded.poll_interval_s == 2.0
    assert settings_of("dev", ["--in-memory"]).embedded.state_dir is None
    assert settings_of("dev", env={"HEADRACE_IN_MEMORY": "1"}).embedded.state_dir is None
