"""Log lines: JSON or console, bound to the run's context, and free of secrets and payloads."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
import structlog

from headrace.dev.server import DevServer
from headrace.obs.logging import configure_logging, register_secrets
from headrace.runtime.settings import DEV_SETTINGS, EmbeddedStorage

EVENT_KEY = "ek-7f3a9c1e55d2"
SIGNING_KEY = "signkey-prod-0b1c2d3e4f"


@pytest.fixture
def stderr() -> Iterator[io.StringIO]:
    """Where the lines go, instead of the process's stderr."""
    out = io.StringIO()
    yield out
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_event_keys_and_payloads_are_not_printed_by_default(
    stderr: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HEADRACE_LOG_PAYLOADS", raising=False)
    configure_logging("json", "info", file=stderr)
    register_secrets([EVENT_KEY, SIGNING_KEY])
    log = structlog.get_logger("test")
    log.info(
        "event received",
        event_key=EVENT_KEY,
        payload={"name": "shop/paid", "data": {"card": "4111 1111 1111 1111"}},
        output={"data": "the step's secret result"},
        url=f"http://app.example/e/{EVENT_KEY}",
    )
    try:
        raise RuntimeError(f"bad signature for {SIGNING_KEY}")
    except RuntimeError:
        log.exception("call failed")

    text = stderr.getvalue()
    for leaked in (EVENT_KEY, SIGNING_KEY, "4111", "the step's secret result"):
        assert leaked not in text
    first, second = _lines(stderr)
    assert first["event"] == "event received"
    assert first["event_key"] == first["payload"] == first["output"] == "[redacted]"
    assert first["url"] == "http://app.example/e/[redacted]"
    assert "RuntimeError: bad signature for [redacted]" in str(second["exception"])


def test_payloads_are_printed_when_asked_for_but_secrets_never(
    stderr: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADRACE_LOG_PAYLOADS", "1")
    configure_logging("json", "info", file=stderr)
    structlog.get_logger("test").info("debugging", payload={"card": "4111"}, signing_key="abc")
    [line] = _lines(stderr)
    assert line["payload"] == {"card": "4111"}
    assert line["signing_key"] == "[redacted]"


def test_every_line_carries_the_context_bound_by_the_handler(stderr: io.StringIO) -> None:
    configure_logging("json", "info", file=stderr)
    log = structlog.get_logger("test")
    with structlog.contextvars.bound_contextvars(account_id="acct", run_id="01RUN", step="s1"):
        log.info("inside")
    log.info("outside")
    inside, outside = _lines(stderr)
    assert (inside["account_id"], inside["run_id"], inside["step"]) == ("acct", "01RUN", "s1")
    assert "run_id" not in outside


def test_the_format_comes_from_the_environment_and_is_checked(
    stderr: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADRACE_LOG_FORMAT", "console")
    configure_logging(file=stderr)
    structlog.get_logger("test").info("readable", run_id="01RUN")
    line = stderr.getvalue()
    assert "readable" in line and "run_id=01RUN" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)

    monkeypatch.setenv("HEADRACE_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log format 'xml' is not one of console, json"):
        configure_logging()


async def test_a_dev_server_masks_its_keys_and_the_dashboard_token_it_made_up(
    stderr: io.StringIO,
) -> None:
    # Keys required and no token given: the server makes one up, which no log line may hold.
    settings = replace(
        DEV_SETTINGS,
        embedded=EmbeddedStorage(state_dir=None),
        event_keys=(("ek-" + "5e" * 16, "default"),),
    )
    server = DevServer(settings)
    token = server.ingest.dashboard_auth.token
    assert token is not None
    configure_logging("json", "info", file=stderr)
    structlog.get_logger("test").info("oops", note=f"token {token}, key ek-{'5e' * 16}")
    server.embedded.db.close()

    [line] = _lines(stderr)
    assert line["note"] == "token [redacted], key [redacted]"
