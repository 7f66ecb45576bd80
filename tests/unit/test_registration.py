"""Sync refuses configuration that cannot work, naming the function and the field."""

from __future__ import annotations

from typing import Any

import pytest

from headrace.core.errors import InputError
from headrace.protocol.registration import check_function


def _fn(**extra: Any) -> dict[str, Any]:
    return {
        "id": "app-fn",
        "triggers": [{"event": "e"}],
        "steps": {"step": {"runtime": {"url": "http://a/api/inngest?fnId=app-fn"}}},
        **extra,
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"triggers": []}, "triggers: at least one trigger is required"),
        ({"triggers": [{"event": "e", "expression": "event.x =="}]}, "triggers[0].expression"),
        ({"batchEvents": {"maxSize": 101}}, "batchEvents.maxSize: must be 1 to 100, got 101"),
        (
            {"batchEvents": {"maxSize": 5, "timeout": "2m"}},
            "batchEvents.timeout: must be 1s to 60s",
        ),
        ({"cancel": [{"event": "x", "timeout": "soon"}]}, "cancel[0].timeout"),
        (
            {
                "steps": {
                    "step": {
                        "runtime": {"url": "http://a/api/inngest"},
                        "retries": {"attempts": 21},
                    }
                }
            },
            "retries.attempts: must be 0 to 20",
        ),
        ({"debounce": {"period": "500ms"}}, "debounce.period: must be 1s to 604800s"),
        ({"debounce": {"period": "8d"}}, "debounce.period: must be 1s to 604800s"),
        ({"debounce": {"key": "event.data.id"}}, "debounce.period: required"),
        ({"debounce": {"period": "5s", "key": "event.data."}}, "debounce.key: does not compile"),
        ({"debounce": {"period": "5s", "timeout": "later"}}, "debounce.timeout: invalid duration"),
        ({"idempotency": "event.data.id =="}, "idempotency: does not compile"),
        ({"singleton": {"mode": "queue"}}, "singleton.mode: must be 'skip' or 'cancel'"),
        ({"singleton": {"mode": "skip", "key": "(("}}, "singleton.key: does not compile"),
        (
            {"batchEvents": {"maxSize": 5}, "debounce": {"period": "5s"}},
            "debounce: cannot be combined with batchEvents",
        ),
        ({"triggers": [{"cron": "61 * * * *"}]}, "triggers[0].cron: '61 * * * *' is not a valid"),
        ({"triggers": [{"cron": "* * *"}]}, "triggers[0].cron: '* * *' needs 5 fields"),
        (
            {"triggers": [{"cron": "TZ=Mars/Olympus 0 9 * * *"}]},
            "triggers[0].cron: unknown time zone 'Mars/Olympus'",
        ),
        # Found beside the API fuzz: the host's IDNA decoding raised past the check (a 500).
        (
            {"steps": {"step": {"runtime": {"url": "http://xn--zz/api/inngest"}}}},
            "steps.step.runtime.url: is not a valid URL",
        ),
        (
            {"triggers": [{"cron": "0 * * * *"}, {"cron": "0 * * * *"}]},
            "triggers[1].cron: duplicate cron expression",
        ),
        ({"triggers": [{"cron": "0 * * * *", "jitter": "10m"}]}, "triggers[0].jitter: must be 1s"),
    ],
)
def test_bad_configuration_is_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as refused:
        check_function(_fn(**extra))
    assert "function 'app-fn'" in str(refused.value)
    assert message in str(refused.value)


def test_good_configuration_passes() -> None:
    check_function(_fn(batchEvents={"maxSize": 10, "timeout": "5s", "key": "event.data.id"}))


def test_good_flow_control_passes() -> None:
    check_function(
        _fn(
            debounce={"period": "7d", "key": "event.data.id", "timeout": "30d"},
            idempotency="event.data.order",
            singleton={"mode": "cancel", "key": "event.data.user"},
            triggers=[
                {"cron": "TZ=Europe/Paris 0 9 * * *", "jitter": "30s"},
                {"cron": "*/5 * * * * *"},
                {"cron": "@hourly"},
            ],
        )
    )
