// Durable Endpoints (4.x `inngest.endpoint`), served by app.mjs at /endpoint/<name> when named
// in HEADRACE_TS_ENDPOINTS. Each entry takes { step, count, stream } and returns the handler,
// which gets the request as a Web API Request; a plain return value is the JSON response.
export const ENDPOINTS = {
  // `?n=` steps in a row (3 by default), each counted; returns their sum.
  steps: ({ step, count }) => async (req) => {
    const n = Number(new URL(req.url).searchParams.get("n") ?? 3);
    let total = 0;
    for (let i = 1; i <= n; i++) {
      total += await step.run(`step-${i}`, () => count(`step-${i}`) && i);
    }
    return { total };
  },

  // "two" throws the first time: the request hands the run to the engine, which calls the
  // endpoint to retry "two" and to go on; "one" must not run again.
  flaky: ({ step, count }) => async () => {
    const one = await step.run("one", () => count("one") && 1);
    const two = await step.run("two", () => {
      if (count("two") === 1) throw new Error("two fails once");
      return 2;
    });
    const three = await step.run("three", () => count("three") && 3);
    return { sum: one + two + three };
  },

  // Streams to a client that asked for server-sent events (`stream.push`), before and after a
  // sleep: what it pushes once the engine has the run reaches the client through the engine
  // (POST /v1/realtime/publish/tee, GET /v1/realtime/sse).
  streamed: ({ step, count, stream }) => async () => {
    stream.push("before the nap");
    const one = await step.run("one", () => count("one") && 1);
    await step.sleep("nap", "1s");
    stream.push("after the nap");
    const two = await step.run("two", () => count("two") && 2);
    stream.push("ünïcode ✓");
    return { sum: one + two };
  },

  // A sleep hands the run to the engine, which calls the endpoint again once it has passed.
  nap: ({ step, count }) => async () => {
    const one = await step.run("one", () => count("one") && 1);
    await step.sleep("nap", "1s");
    const two = await step.run("two", () => count("two") && 2);
    return { sum: one + two };
  },

  // A wait for the signal named by `?signal=` hands the run to the engine; the signal resumes it.
  signal: ({ step, count }) => async (req) => {
    const signal = new URL(req.url).searchParams.get("signal");
    const one = await step.run("one", () => count("one") && 1);
    const got = await step.waitForSignal("approval", { signal, timeout: "1m" });
    return { one, got };
  },
};
