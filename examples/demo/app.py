"""An example app written with the official `inngest` SDK, as users write them.

Three functions:
- media/pipeline: transcode, transcribe, summarize: three memoized steps.
- payments/flow: sleeps until a date from the event, then waits for an approval event (with a
  timeout) and charges or voids.
- imports/csv: validates a CSV, branches on the result, and processes its rows in batches, one
  step per batch.

Serve it with `python -m examples.demo.app --port 8000` (or `uvicorn examples.demo.app:app`),
next to `headrace dev -u http://127.0.0.1:8000/api/inngest`.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import logging
import os
from typing import Any

import fastapi
import inngest
import inngest.fast_api
import uvicorn

DEV_URL = os.environ.get("HEADRACE_URL", "http://127.0.0.1:8288")

client = inngest.Inngest(
    app_id="headrace-demo",
    is_production=False,
    api_base_url=DEV_URL,
    event_api_base_url=DEV_URL,
    logger=logging.getLogger("demo"),
)


def create_functions(client: inngest.Inngest) -> list[inngest.Function[Any]]:
    """The app's functions, bound to `client` (tests bind them to a client of their own)."""

    @client.create_function(
        fn_id="media-pipeline",
        name="Media pipeline",
        trigger=inngest.TriggerEvent(event="media/uploaded"),
    )
    async def media_pipeline(ctx: inngest.Context) -> dict[str, object]:
        video = str(ctx.event.data.get("video", "clip.mp4"))

        async def transcode() -> dict[str, str]:
            return {"video": video, "renditions": "1080p,720p,480p"}

        async def transcribe() -> str:
            return f"transcript of {video}: hello from headrace"

        transcoded = await ctx.step.run("transcode", transcode)
        transcript = await ctx.step.run("transcribe", transcribe)

        async def summarize() -> str:
            words = transcript.split()
            return " ".join(words[:5]) + ("..." if len(words) > 5 else "")

        summary = await ctx.step.run("summarize", summarize)
        return {"video": transcoded["video"], "summary": summary}

    @client.create_function(
        fn_id="payment-flow",
        name="Payment flow",
        trigger=inngest.TriggerEvent(event="payments/requested"),
    )
    async def payment_flow(ctx: inngest.Context) -> dict[str, object]:
        payment_id = str(ctx.event.data["payment_id"])
        charge_at = datetime.datetime.fromisoformat(str(ctx.event.data["charge_at"]))
        await ctx.step.sleep_until("wait-for-charge-date", charge_at)
        approval = await ctx.step.wait_for_event(
            "wait-for-approval",
            event="payments/approved",
            if_exp=f"async.data.payment_id == '{payment_id}'",
            timeout=datetime.timedelta(minutes=10),
        )
        if approval is None:

            async def void() -> str:
                return f"voided {payment_id}: no approval in time"

            return {"status": await ctx.step.run("void", void)}

        async def charge() -> str:
            return f"charged {payment_id} ({approval.data.get('approver', 'someone')} approved)"

        return {"status": await ctx.step.run("charge", charge)}

    @client.create_function(
        fn_id="csv-import",
        name="CSV import",
        trigger=inngest.TriggerEvent(event="imports/csv.uploaded"),
    )
    async def csv_import(ctx: inngest.Context) -> dict[str, object]:
        rows = [str(r) for r in ctx.event.data.get("rows", [])]
        batch_size = int(ctx.event.data.get("batch_size", 2))

        async def validate() -> dict[str, object]:
            bad = [i for i, row in enumerate(rows) if row.count(",") != 2]
            return {"ok": not bad, "bad_rows": bad}

        validation = await ctx.step.run("validate", validate)
        if not validation["ok"]:

            async def report() -> str:
                return f"rejected: malformed rows {validation['bad_rows']}"

            return {"status": await ctx.step.run("report-invalid", report)}

        imported = 0
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]

            async def import_batch(batch: list[str] = batch) -> int:
                return len(batch)

            imported += await ctx.step.run(f"import-batch-{start // batch_size}", import_batch)

        async def checksum() -> str:
            return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:12]

        return {
            "status": "imported",
            "rows": imported,
            "checksum": await ctx.step.run("checksum", checksum),
        }

    return [media_pipeline, payment_flow, csv_import]


functions = create_functions(client)
app = fastapi.FastAPI()
inngest.fast_api.serve(app, client, functions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
