// A test app written with the official TypeScript SDK, for headrace's e2e tests.
// It serves the functions named in HEADRACE_TS_FUNCTIONS (see functions.mjs) with the SDK of the
// major in HEADRACE_TS_MAJOR (3 or 4, installed side by side as npm aliases `inngest3` and
// `inngest4`), on 127.0.0.1:PORT. Side effects are counted in memory and served on GET /counts,
// so a test can tell how many times each step body really ran; GET /calls lists the headers of
// the engine's calls.
// libs/headrace/testing/ts_app.py starts it; it prints one "listening" line once it can serve.
import http from "node:http";

import { FUNCTIONS } from "./functions.mjs";

const major = process.env.HEADRACE_TS_MAJOR;
const port = Number(process.env.PORT);
const appId = process.env.HEADRACE_TS_APP_ID;
const names = (process.env.HEADRACE_TS_FUNCTIONS || "").split(",").filter(Boolean);
if (!["3", "4"].includes(major) || !port || !appId) {
  console.error("app.mjs: set HEADRACE_TS_MAJOR (3|4), PORT and HEADRACE_TS_APP_ID");
  process.exit(2);
}

const sdk = await import(`inngest${major}`);
const { serve } = await import(`inngest${major}/node`);
const origin = `http://127.0.0.1:${port}`;
// baseUrl comes from INNGEST_BASE_URL, set by the test helper; dev mode means no signing, unless
// INNGEST_SIGNING_KEY is set: then the app runs in production mode (checks and signs).
// HEADRACE_TS_CHECKPOINTING=off turns off 4.x's checkpointing (on by default), =on turns it on
// (3.x has it off by default).
const checkpointing = { on: { checkpointing: true }, off: { checkpointing: false } }[
  process.env.HEADRACE_TS_CHECKPOINTING
] ?? {};
// HEADRACE_TS_REALTIME_MIDDLEWARE=1 gives a 3.x client the separate @inngest/realtime package's
// middleware (its `publish` in a function's context), as 3.x apps publish in Inngest's docs.
const middleware =
  process.env.HEADRACE_TS_REALTIME_MIDDLEWARE === "1"
    ? { middleware: [(await import("@inngest/realtime/middleware")).realtimeMiddleware()] }
    : {};
const isDev = !process.env.INNGEST_SIGNING_KEY;
const client = new sdk.Inngest({ id: appId, isDev, ...checkpointing, ...middleware });

// The two majors take a function's trigger differently: 3.x as a second argument, 4.x inside
// the options (`triggers`). The test functions are written once against this shim.
const define = (options, trigger, handler) =>
  major === "3"
    ? client.createFunction(options, trigger, handler)
    : client.createFunction({ ...options, triggers: [trigger] }, handler);

// Event names carry the app id (`<app id>/memo`), so apps of other tests and of the other major,
// still registered on an engine a session shares, never take this app's events.
const ev = (name) => `${appId}/${name}`;

const counts = {};
const count = (key) => {
  counts[key] = (counts[key] || 0) + 1;
  return counts[key];
};

// `await gate(name)` holds a step body until the test opens the gate (POST /open/<name>).
const opened = new Set();
const waiting = {};
const gate = (name) =>
  opened.has(name) ? Promise.resolve() : new Promise((resolve) => (waiting[name] ??= []).push(resolve));
const open = (name) => {
  opened.add(name);
  (waiting[name] ?? []).forEach((resolve) => resolve());
  delete waiting[name];
};

const functions = names.map((name) => {
  const make = FUNCTIONS[name];
  if (!make) {
    console.error(`app.mjs: unknown function ${name}`);
    process.exit(2);
  }
  return make({ define, ev, count, gate, sdk, major, port, client });
}).flat();

// serveHost is 3.x's name for the URL the app syncs with, serveOrigin 4.x's.
const handler = serve({ client, functions, serveHost: origin, serveOrigin: origin });

// Durable Endpoints (4.x), on a client of their own, as `inngest.endpoint` needs its adapter.
const endpoints = {};
const endpointNames = (process.env.HEADRACE_TS_ENDPOINTS || "").split(",").filter(Boolean);
if (endpointNames.length) {
  const { endpointAdapter, serveEndpoint } = await import(`inngest${major}/node`);
  const { ENDPOINTS } = await import("./endpoints.mjs");
  const { stream } = await import(`inngest${major}/experimental/durable-endpoints`);
  const endpointClient = new sdk.Inngest({ id: `${appId}-endpoints`, isDev: true, endpointAdapter });
  for (const name of endpointNames) {
    endpoints[`/endpoint/${name}`] = serveEndpoint(
      endpointClient.endpoint(ENDPOINTS[name]({ step: sdk.step, count, stream })),
    );
  }
}
// The headers of each call the engine made, in order, for tests of what headrace sends, and
// whether the SDK has finished handling it (`ended`, even when the engine has gone away).
const calls = [];
const json = (res, value) => {
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify(value));
};
const server = http.createServer((req, res) => {
  if (req.url === "/counts") return json(res, counts);
  if (req.url === "/calls") return json(res, calls);
  if (req.url.startsWith("/open/")) {
    open(req.url.slice("/open/".length));
    return json(res, {});
  }
  const endpoint = endpoints[req.url.split("?")[0]];
  if (endpoint) {
    calls.push({ endpoint: req.url, run_id: req.headers["x-run-id"] ?? null });
    return endpoint(req, res);
  }
  if (req.method === "POST") {
    const call = {
      req_version: req.headers["x-inngest-req-version"] ?? null,
      step_id: req.headers["x-inngest-step-id"] ?? null,
      ended: false,
    };
    calls.push(call);
    return Promise.resolve(handler(req, res)).finally(() => (call.ended = true));
  }
  return handler(req, res);
});
server.listen(port, "127.0.0.1", () => {
  console.log(`listening on ${origin} with inngest ${sdk.version ?? major}`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
