// A realtime subscriber written with the SDK's own subscribe(), for headrace's e2e tests: npm
// `inngest` 4.x's (`inngest/realtime`), or with HEADRACE_RT_SDK=3 the 3.x line's separate
// @inngest/realtime package with a 3.x client (npm `inngest` 3.x). It reads HEADRACE_RT_CHANNEL
// and HEADRACE_RT_TOPICS (comma separated) on the engine at INNGEST_BASE_URL; with
// INNGEST_SIGNING_KEY it acts for that key's account. It asks the engine for a token (POST
// /v1/realtime/token), or uses HEADRACE_RT_TOKEN as given, and connects (WebSocket
// /v1/realtime/connect). It prints "listening" once connected, then "message <json>" for each
// message; "refused <reason>" and exit code 3 when connecting fails.
const env = process.env;
const three = env.HEADRACE_RT_SDK === "3";
const { Inngest } = await import(three ? "inngest" : "inngest4");
const { getSubscriptionToken, subscribe } = await import(
  three ? "@inngest/realtime" : "inngest4/realtime"
);

const channel = env.HEADRACE_RT_CHANNEL;
const topics = (env.HEADRACE_RT_TOPICS || "").split(",").filter(Boolean);
if (!channel || !topics.length) {
  console.error("subscribe.mjs: set HEADRACE_RT_CHANNEL and HEADRACE_RT_TOPICS");
  process.exit(2);
}
const signingKey = env.INNGEST_SIGNING_KEY;
const app = new Inngest({ id: "headrace-rt-subscriber", isDev: !signingKey, signingKey });

const refused = (err) => {
  const reason = err?.message ?? (err?.type ? `WebSocket ${err.type}` : String(err));
  console.log(`refused ${reason}`);
  process.exit(3);
};

let token;
try {
  token = env.HEADRACE_RT_TOKEN
    ? { channel, topics, key: env.HEADRACE_RT_TOKEN, apiBaseUrl: app.apiBaseUrl }
    : await getSubscriptionToken(app, { channel, topics });
} catch (err) {
  refused(err);
}
try {
  await subscribe(token, (message) => {
    const { kind, channel, topic, data, runId, streamId } = message;
    console.log(`message ${JSON.stringify({ kind, channel, topic, data, runId, streamId })}`);
  });
} catch (err) {
  refused(err);
}
console.log("listening");
process.on("SIGTERM", () => process.exit(0));
