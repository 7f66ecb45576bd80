// The example app's functions, written with the official TypeScript SDK (npm `inngest` 4.x)
// exactly as they would be for Inngest: nothing here knows about headrace.
import { Inngest } from "inngest";

// Dev mode (no signing key); the SDK finds headrace at INNGEST_BASE_URL (scripts/demo-ts sets
// it to http://127.0.0.1:8288, Inngest's dev server port, which `headrace dev` takes too).
export const inngest = new Inngest({ id: "headrace-ts-demo", isDev: true });

// Video processing: three steps, each memoized, so a retry of one does not redo the others.
export const processVideo = inngest.createFunction(
  { id: "process-video", name: "Process video", triggers: [{ event: "media/video.uploaded" }] },
  async ({ event, step }) => {
    const video = event.data.video;
    const transcoded = await step.run("transcode", () => ({
      video,
      renditions: ["1080p", "720p", "480p"],
    }));
    const transcript = await step.run("transcribe", () => `transcript of ${video}: hello world`);
    const summary = await step.run("summarize", () => transcript.split(" ").slice(0, 3).join(" "));
    return { video, renditions: transcoded.renditions.length, summary };
  },
);

// Invoice payment: sleep until the due date the event carries, then charge.
export const payInvoice = inngest.createFunction(
  { id: "pay-invoice", name: "Pay invoice", triggers: [{ event: "billing/invoice.created" }] },
  async ({ event, step }) => {
    const invoice = await step.run("prepare", () => ({
      id: event.data.invoiceId,
      cents: event.data.amountCents,
    }));
    await step.sleepUntil("wait-for-due-date", new Date(event.data.dueAt));
    const receipt = await step.run("charge", () => `charged ${invoice.id}: ${invoice.cents} cents`);
    return { invoice: invoice.id, receipt };
  },
);

// Contact CSV import: validate first, then import or reject.
export const importContacts = inngest.createFunction(
  { id: "import-contacts", name: "Import contacts", triggers: [{ event: "contacts/csv.uploaded" }] },
  async ({ event, step }) => {
    const validation = await step.run("validate", () => {
      const rows = event.data.csv.trim().split("\n").slice(1);
      const bad = rows
        .map((row, i) => [i + 1, row.split(",")])
        .filter(([, cells]) => cells.length !== 2 || !cells[1].includes("@"))
        .map(([line]) => line);
      return { rows: rows.length, bad };
    });
    if (validation.bad.length > 0) {
      await step.run("notify-uploader", () => `rows ${validation.bad.join(", ")} are invalid`);
      return { status: "rejected", badRows: validation.bad };
    }
    const imported = await step.run("import", () => validation.rows);
    return { status: "imported", contacts: imported };
  },
);

// Pricing sync: one step per batch of 50 SKUs, so a failed batch is retried alone.
export const syncPricing = inngest.createFunction(
  { id: "sync-pricing", name: "Sync pricing", triggers: [{ event: "pricing/sync.requested" }] },
  async ({ event, step }) => {
    const skus = await step.run("load-skus", () =>
      Array.from({ length: event.data.skuCount }, (_, i) => `sku-${i + 1}`),
    );
    let synced = 0;
    let batches = 0;
    for (let start = 0; start < skus.length; start += 50) {
      const batch = skus.slice(start, start + 50);
      synced += await step.run(`sync-batch-${batches + 1}`, () => batch.length);
      batches += 1;
    }
    return { batches, synced };
  },
);

// Approval flow: wait for the decision about this request (matched on data.requestId).
export const approval = inngest.createFunction(
  { id: "approval-flow", name: "Approval flow", triggers: [{ event: "approvals/requested" }] },
  async ({ event, step }) => {
    const decision = await step.waitForEvent("wait-for-decision", {
      event: "approvals/decided",
      match: "data.requestId",
      timeout: "1h",
    });
    if (decision === null) return { requestId: event.data.requestId, outcome: "expired" };
    return await step.run("apply-decision", () => ({
      requestId: event.data.requestId,
      outcome: decision.data.approved ? "approved" : "refused",
      by: decision.data.by,
    }));
  },
);

// An order that ships after a hold, unless an order/cancelled event for it arrives first.
export const fulfilOrder = inngest.createFunction(
  {
    id: "fulfil-order",
    name: "Fulfil order",
    triggers: [{ event: "shop/order.placed" }],
    cancelOn: [{ event: "shop/order.cancelled", match: "data.orderId" }],
  },
  async ({ event, step }) => {
    await step.run("reserve-stock", () => `reserved for ${event.data.orderId}`);
    await step.sleep("hold-before-shipping", event.data.hold);
    return await step.run("ship", () => ({ orderId: event.data.orderId, shipped: true }));
  },
);

// Parallel steps: three fetches at once with Promise.all, then one step that uses them all.
export const dailyReport = inngest.createFunction(
  { id: "daily-report", name: "Daily report", triggers: [{ event: "reports/daily.requested" }] },
  async ({ event, step }) => {
    const [sales, refunds, visits] = await Promise.all([
      step.run("fetch-sales", () => 1200),
      step.run("fetch-refunds", () => 80),
      step.run("fetch-visits", () => 5400),
    ]);
    const net = await step.run("compile", () => sales - refunds);
    return { day: event.data.day, sales, refunds, visits, net };
  },
);

export const functions = [
  processVideo,
  payInvoice,
  importContacts,
  syncPricing,
  approval,
  fulfilOrder,
  dailyReport,
];
