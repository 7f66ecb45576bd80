"""The example app of the README runs to the end on `headrace dev`."""

from __future__ import annotations

from examples.demo.app import create_functions
from examples.demo.tour import tour

from headrace.testing.dev import DevHandle
from headrace.testing.sdk_app import ServedApp, make_client


async def test_the_example_app_tour(dev: DevHandle) -> None:
    client = make_client(dev.url, "headrace-demo")
    with ServedApp(client, create_functions(client)) as served:
        await dev.sync(served.url, "headrace-demo")
        # `/dev/intake` is the dev server's: a cluster's producers publish to Kafka.
        results = await tour(dev.url, timeout=30, echo=False, intake=dev.mode == "dev")

    assert results["media/uploaded#0"] == (
        "COMPLETED",
        {
            "video": "launch-keynote.mp4",
            "summary": "transcript of launch-keynote.mp4: hello from...",
        },
    )
    assert results["payments/requested#1"] == (
        "COMPLETED",
        {"status": "charged pay-42 (ops approved)"},
    )
    status, output = results["imports/csv.uploaded#2"]
    assert status == "COMPLETED"
    assert output["rows"] == 5 and output["status"] == "imported"
    assert results["imports/csv.uploaded#3"] == (
        "COMPLETED",
        {"status": "rejected: malformed rows [1]"},
    )
    if dev.mode == "dev":
        # The intake record's two events ran like the Event API's; the bad record was set aside.
        assert results["intake media/uploaded"] == (
            "COMPLETED",
            {
                "video": "intake-teaser.mp4",
                "summary": "transcript of intake-teaser.mp4: hello from...",
            },
        )
        status, output = results["intake imports/csv.uploaded"]
        assert (status, output["rows"], output["status"]) == ("COMPLETED", 2, "imported")
        status, reason = results["intake bad record"]
        assert status == "DEAD_LETTER"
        assert reason.startswith("Rejected: the body is not valid JSON"), reason
