"""The harness's Cassandra connection retries what the services retry, and nothing else."""

from __future__ import annotations

from typing import cast

import pytest

from headrace.adapters.cassandra.session import CassandraUnavailable
from headrace.ports.stores import Stores
from headrace.testing import patient_stores
from headrace.testing.patient_stores import patient


class _Flaky:
    """Answers a read after `failures` timeouts; `partitions` is a plain attribute."""

    partitions = 4

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.calls = 0
        self._error = error or CassandraUnavailable("ReadTimeout: replica too slow")

    async def get_run(self, run_id: str) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self._error
        return f"run {run_id}"


async def test_a_read_that_timed_out_is_tried_again() -> None:
    flaky = _Flaky(failures=2)
    stores = patient(cast(Stores, flaky))
    assert await stores.get_run("r1") == "run r1"
    assert flaky.calls == 3
    assert cast(_Flaky, stores).partitions == 4


async def test_cassandra_down_for_longer_than_the_patience_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(patient_stores, "PATIENCE_S", 0.0)
    stores = patient(cast(Stores, _Flaky(failures=10)))
    with pytest.raises(CassandraUnavailable):
        await stores.get_run("r1")


async def test_other_errors_are_not_retried() -> None:
    flaky = _Flaky(failures=1, error=ValueError("an invalid query"))
    with pytest.raises(ValueError):
        await patient(cast(Stores, flaky)).get_run("r1")
    assert flaky.calls == 1
