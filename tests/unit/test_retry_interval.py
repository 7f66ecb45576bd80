"""`--retry-interval`, as Inngest's: every retry (of a failed call, a step that raised, a request
the engine made for a step) waits that long instead of the exponential schedule; an app's
Retry-After still wins; unset, the schedule is Inngest's. And the flag's values."""

from __future__ import annotations

import itertools
import random

import click
import pytest
from click.testing import CliRunner

from headrace.core.backoff import backoff_ms, interval_ms
from headrace.dev.cli import dev
from headrace.engine.machine import RunMachine
from headrace.messages.records import Call
from headrace.messages.state import RunState
from headrace.protocol import gateway
from headrace.protocol.ops import Gateway, Outcome, decode_op
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import service_command

NOW = 1_700_000_000_000
ERROR = {"name": "E", "message": "no"}


def test_unset_the_schedule_is_inngest_s_exponential_one_with_jitter() -> None:
    rng = random.Random(7)
    for failed_attempt, base in [(0, 15_000), (1, 30_000), (2, 60_000), (20, 7_200_000)]:
        assert base <= backoff_ms(failed_attempt, rng) <= base + 30_000


def test_with_an_interval_every_retry_waits_it_without_jitter() -> None:
    rng = random.Random(7)
    assert [backoff_ms(n, rng, interval_ms=100) for n in range(12)] == [100] * 12


def test_the_interval_in_seconds_becomes_milliseconds_at_least_one() -> None:
    assert interval_ms(None) is None
    assert interval_ms(0.1) == 100
    assert interval_ms(2) == 2_000
    assert interval_ms(0.0001) == 1


def _machine(run: RunState, retry_interval_ms: int | None) -> RunMachine:
    ids = itertools.count()
    return RunMachine(
        run,
        set(),
        max_attempts=5,
        now_ms=NOW,
        new_id=lambda: f"id{next(ids)}",
        rng=random.Random(1),
        retry_interval_ms=retry_interval_ms,
    )


def _started() -> RunState:
    run = RunState(run_id="run", account_id="acct", fn_id="app-fn", app_id="app", events=[])
    _machine(run, None).start()
    return run


def _retries_at(machine: RunMachine) -> list[int]:
    return [e.at_ms - NOW for e in machine.out.schedule if isinstance(e.item, Call)]


@pytest.mark.parametrize("interval", [None, 100])
def test_a_failed_call_is_retried_after_the_interval_or_inngest_s_backoff(
    interval: int | None,
) -> None:
    run = _started()
    for attempt, base in enumerate((15_000, 30_000, 60_000)):
        machine = _machine(run, interval)
        call = Call(account_id="acct", run_id="run", attempt=attempt)
        machine.apply_call(call, Outcome(error=ERROR, retryable=True), 0)
        [delay] = _retries_at(machine)
        assert delay == 100 if interval else base <= delay <= base + 30_000, (attempt, delay)


@pytest.mark.parametrize("interval", [None, 100])
def test_a_step_that_raised_is_retried_after_the_interval_or_inngest_s_backoff(
    interval: int | None,
) -> None:
    machine = _machine(_started(), interval)
    step_error = decode_op({"op": "StepError", "id": "s", "error": ERROR})
    machine.apply_call(Call(account_id="acct", run_id="run"), Outcome(ops=[step_error]), 0)
    [delay] = _retries_at(machine)
    assert delay == 100 if interval else 15_000 <= delay <= 45_000


@pytest.mark.parametrize("interval", [None, 100])
def test_a_failed_request_is_made_again_after_the_interval_or_inngest_s_backoff(
    interval: int | None,
) -> None:
    machine = _machine(_started(), interval)
    failed = gateway.failed_op(Gateway(id="h3", userland={"id": "f"}), "timeout")
    machine.apply_call(Call(account_id="acct", run_id="run"), Outcome(ops=[failed]), 0)
    [delay] = _retries_at(machine)
    assert delay == 100 if interval else 15_000 <= delay <= 45_000


def test_an_app_s_retry_after_wins_over_the_interval() -> None:
    """As in Inngest's queue: an error's retry-at replaces what the backoff function gave."""
    failed = _machine(_started(), 100)
    failed.apply_call(
        Call(account_id="acct", run_id="run"), Outcome(error=ERROR, retry_after_ms=2_000), 0
    )
    assert _retries_at(failed) == [2_000]

    stepped = _machine(_started(), 100)
    step_error = decode_op({"op": "StepError", "id": "s", "error": ERROR})
    stepped.apply_call(
        Call(account_id="acct", run_id="run"),
        Outcome(ops=[step_error], retry_after_ms=2_000),
        0,
    )
    assert _retries_at(stepped) == [2_000]


@click.command()
@service_command(default_port=0)
def service(settings: Settings) -> None:
    click.echo(repr(settings.retry_interval_s))


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        ([], {}, "None"),
        (["--retry-interval", "0.1"], {}, "0.1"),
        (["--retry-interval", "1"], {}, "1.0"),
        ([], {"HEADRACE_RETRY_INTERVAL": "2.5"}, "2.5"),
    ],
)
def test_the_services_read_the_interval_from_a_flag_or_the_environment(
    args: list[str], env: dict[str, str], shown: str
) -> None:
    result = CliRunner().invoke(service, args, env=env)

    assert result.exit_code == 0, result.output
    assert result.output.strip() == shown


@pytest.mark.parametrize("command", [service, dev])
@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf"])
def test_an_interval_that_is_not_a_positive_number_is_refused_at_start(
    command: click.Command, value: str
) -> None:
    result = CliRunner().invoke(command, ["--retry-interval", value])

    assert result.exit_code == 2, result.output
    assert "Invalid value for '--retry-interval'" in result.output
