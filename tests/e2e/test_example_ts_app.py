"""The TypeScript example app of the README (examples/ts, npm `inngest` 4.x) runs to the end,
driven by the same tour as `scripts/demo-ts`."""

from __future__ import annotations

from examples.ts.tour import APP_ID, tour

from headrace.testing.dev import EngineHandle
from headrace.testing.ts_app import EXAMPLE, NodeApp


async def test_the_typescript_example_app_tour(dev: EngineHandle) -> None:
    with NodeApp(EXAMPLE, "app.mjs", env={"INNGEST_BASE_URL": dev.url}) as app:
        await dev.sync(app.url, APP_ID)
        try:
            results = await tour(dev.url, timeout=30, echo=False)
        except Exception:
            print(app.log())
            raise

    assert results["video"] == (
        "COMPLETED",
        {"video": "keynote.mp4", "renditions": 3, "summary": "transcript of keynote.mp4:"},
    )
    assert results["invoice"] == (
        "COMPLETED",
        {"invoice": "inv-7", "receipt": "charged inv-7: 4200 cents"},
    )
    assert results["contacts (valid)"] == ("COMPLETED", {"status": "imported", "contacts": 2})
    assert results["contacts (invalid)"] == ("COMPLETED", {"status": "rejected", "badRows": [2, 3]})
    # 120 SKUs in batches of 50: three steps.
    assert results["pricing sync"] == ("COMPLETED", {"batches": 3, "synced": 120})
    assert results["approval"] == (
        "COMPLETED",
        {"requestId": "req-3", "outcome": "approved", "by": "ops"},
    )
    assert results["order (shipped)"] == ("COMPLETED", {"orderId": "o-1", "shipped": True})
    assert results["order (cancelled)"][0] == "CANCELLED"
    assert results["daily report"][1]["net"] == 1120
    assert results["daily report"][0] == "COMPLETED"
