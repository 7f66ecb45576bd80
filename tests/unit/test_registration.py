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
            {"steps": {"step": {"runtime": {"url": "u"}, "retries": {"attempts": 21}}}},
            "retries.attempts: must be 0 to 20",
        ),
    ],
)
def test_bad_configuration_is_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError) as refused:
        check_function(_fn(**extra))
    assert "function 'app-fn'" in str(refused.value)
    assert message in str(refused.value)


def test_good_configuration_passes() -> None:
    check_function(_fn(batchEvents={"maxSize": 10, "timeout": "5s", "key": "event.data.id"}))
