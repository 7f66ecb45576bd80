"""Reading a server's `/metrics` (Prometheus text) in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of `name`: its labels and value."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def intake_rejected(text: str, topic: str) -> dict[str, float]:
    """`headrace_intake_rejected_total` of one intake topic, by reason."""
    return {
        labels["reason"]: value
        for labels, value in samples(text, "headrace_intake_rejected_total")
        if labels["topic"] == topic
    }
