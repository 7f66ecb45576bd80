// A Durable Endpoint's client, with the SDK's own `fetchWithStream` (npm `inngest` 4.x,
// `inngest/experimental/durable-endpoints/client`): it asks the endpoint at HEADRACE_URL for
// server-sent events and follows the SDK's redirect to the engine once the run goes async.
// It prints one "event <json>" line per event it is told of, then "response <status> <body>";
// "failed <reason>" and exit code 1 when the request fails.
import { fetchWithStream } from "inngest4/experimental/durable-endpoints/client";

const print = (kind, value) => console.log(`event ${JSON.stringify({ kind, ...value })}`);
try {
  const response = await fetchWithStream(process.env.HEADRACE_URL, {
    onMetadata: (value) => print("metadata", value),
    onData: ({ data }) => print("data", { data }),
  });
  console.log(`response ${response.status} ${await response.text()}`);
  // The client leaves the engine's event stream open once it has the response.
  process.exit(0);
} catch (err) {
  console.log(`failed ${err?.message ?? err}`);
  process.exit(1);
}
