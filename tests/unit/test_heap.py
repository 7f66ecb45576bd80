"""The collector's pauses are visible to an SRE as a metric."""

from __future__ import annotations

import gc

from prometheus_client import REGISTRY

from headrace.runtime.heap import time_collections


def _full_collections() -> float:
    counted = REGISTRY.get_sample_value("headrace_gc_pause_seconds_count", {"generation": "2"})
    return counted or 0.0


def test_each_full_collection_is_one_observation_however_often_timing_is_asked_for() -> None:
    time_collections()
    time_collections()
    before = _full_collections()
    gc.collect()
    assert _full_collections() == before + 1
