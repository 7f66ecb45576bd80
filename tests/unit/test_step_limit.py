"""The per-run step limit in the run machine: a run whose settled steps reach it fails instead
of calling its app again (Inngest: executor/validate.go `checkStepLimit`)."""

from __future__ import annotations

import itertools

import click
import pytest
from click.testing import CliRunner

from headrace.dev.cli import dev
from headrace.engine.machine import RunMachine
from headrace.engine.step_limit import DEFAULT_MAX_STEPS
from headrace.messages.records import Call, EventAccepted, Resume
from headrace.messages.state import RunState
from headrace.protocol.ops import Op, Outcome, decode_op
from headrace.runtime.settings import Settings
from headrace.runtime.settings_commands import service_command

OVERFLOWED = {
    "name": "InngestErrFunctionOverflowed",
    "message": "The function run exceeded the step limit of 1000 steps.",
}


def _machine(run: RunState, **limit: int) -> RunMachine:
    ids = itertools.count()
    return RunMachine(
        run,
        set(run.stack),
        max_attempts=3,
        now_ms=1_700_000_000_000,
        new_id=lambda: f"id{next(ids):04d}",
        **limit,
    )


def _run_with(settled: int) -> RunState:
    """A run that has settled `settled` steps and waits for its discovery call 0."""
    run = RunState(
        run_id="run", account_id="acct", fn_id="app-fn", app_id="app", events=[{"name": "e"}]
    )
    _machine(run).start()
    run.stack = [f"s{n}" for n in range(settled)]
    return run


def _calls(machine: RunMachine) -> list[Call]:
    return [e.item for e in machine.out.schedule if isinstance(e.item, Call)]


def _step_done(machine: RunMachine, *more: Op) -> None:
    ops = [decode_op({"op": "StepRun", "id": "last", "data": 1}), *more]
    machine.apply_call(Call(account_id="acct", run_id="run"), Outcome(ops=ops), 0)


def test_the_step_that_reaches_the_limit_fails_the_run_instead_of_another_call() -> None:
    run = _run_with(DEFAULT_MAX_STEPS - 1)
    machine = _machine(run)
    _step_done(machine)

    assert run.status == "failed"
    assert run.output == OVERFLOWED
    assert _calls(machine) == []
    # The step's output is kept: it was saved before the limit was met, as in Inngest.
    assert run.stack[-1] == "last" and "last" in machine.out.memos
    assert machine.out.history[-1].kind == "run.failed"
    assert machine.out.history[-1].error == OVERFLOWED
    [finished, failed] = [r.event for r in machine.out.events if isinstance(r, EventAccepted)]
    assert failed.name == "inngest/function.failed"
    error = finished.payload["data"]["error"]
    assert error == {"error": "function has too many steps", **OVERFLOWED}


def test_below_the_limit_the_run_goes_on() -> None:
    run = _run_with(DEFAULT_MAX_STEPS - 2)
    machine = _machine(run)
    _step_done(machine)

    assert run.status == "running"
    assert [(c.target, c.seq) for c in _calls(machine)] == [(None, 1)]


def test_a_run_that_returns_with_its_last_step_completes_at_the_limit() -> None:
    run = _run_with(DEFAULT_MAX_STEPS - 1)
    machine = _machine(run)
    _step_done(machine, decode_op({"op": "RunComplete", "id": "done", "data": {"ok": True}}))

    assert run.status == "completed"
    assert run.output == {"ok": True}


def test_steps_planned_at_the_limit_are_never_called() -> None:
    run = _run_with(5)
    machine = _machine(run, max_steps=5)
    planned = [decode_op({"op": "StepPlanned", "id": i}) for i in ("a", "b")]
    machine.apply_call(Call(account_id="acct", run_id="run"), Outcome(ops=planned), 5)

    assert run.status == "failed"
    assert run.output["message"] == "The function run exceeded the step limit of 5 steps."
    assert _calls(machine) == []


def test_a_sleep_that_settles_at_the_limit_fails_the_run_as_it_wakes() -> None:
    run = _run_with(2)
    machine = _machine(run, max_steps=3)
    nap = decode_op({"op": "Sleep", "id": "nap", "opts": {"duration": "1h"}})
    machine.apply_call(Call(account_id="acct", run_id="run"), Outcome(ops=[nap]), 2)
    assert run.status == "running"

    woken = _machine(run, max_steps=3)
    woken.apply_resume(Resume(account_id="acct", run_id="run", step_hash="nap"))

    assert run.status == "failed"
    assert run.output["name"] == "InngestErrFunctionOverflowed"
    assert _calls(woken) == []


@click.command()
@service_command(default_port=0)
def service(settings: Settings) -> None:
    click.echo(settings.max_steps)


@pytest.mark.parametrize(
    ("args", "env", "shown"),
    [
        ([], {}, "1000"),
        (["--max-steps", "50"], {}, "50"),
        ([], {"HEADRACE_MAX_STEPS": "10000"}, "10000"),
    ],
)
def test_the_services_read_the_limit_from_flags_or_environment(
    args: list[str], env: dict[str, str], shown: str
) -> None:
    result = CliRunner().invoke(service, args, env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == shown


@pytest.mark.parametrize("command", [service, dev])
@pytest.mark.parametrize("value", ["0", "-1", "10001", "many"])
def test_a_limit_inngest_would_refuse_is_a_usage_error_at_start(
    command: click.Command, value: str
) -> None:
    result = CliRunner().invoke(command, ["--max-steps", value])
    assert result.exit_code == 2
    assert "--max-steps" in result.output
