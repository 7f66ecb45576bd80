// The test functions, written once for both majors of the SDK. Each entry takes
// { define, count, sdk } (see app.mjs) and returns the function(s) it adds to the app.
// `count(key)` records a side effect: a step body that really ran.

export const FUNCTIONS = {
  // The first step must run once even though the second throws twice and is retried.
  memo: ({ define, count }) =>
    define({ id: "memo" }, { event: "ts/memo" }, async ({ step }) => {
      const first = await step.run("first", () => {
        count("first");
        return 1;
      });
      const flaky = await step.run("flaky", () => {
        const attempt = count("flaky");
        if (attempt < 3) throw new Error(`flaky attempt ${attempt}`);
        return 41;
      });
      // A memo wrapped once too often reads as an object here, and the sum as a string.
      return { first, flaky, total: first + flaky };
    }),

  parallel: ({ define, count }) =>
    define({ id: "parallel" }, { event: "ts/parallel" }, async ({ step }) => {
      const parts = await Promise.all(
        [1, 2, 3].map((i) =>
          step.run(`part-${i}`, () => {
            count(`part-${i}`);
            return i * 10;
          }),
        ),
      );
      const sum = await step.run("sum", () => {
        count("sum");
        return parts.reduce((a, b) => a + b, 0);
      });
      return { parts, sum };
    }),

  sleep: ({ define, count }) =>
    define({ id: "sleep" }, { event: "ts/sleep" }, async ({ event, step }) => {
      const before = await step.run("before", () => Date.now());
      await step.sleep("nap", "1s");
      // The event carries the wake-up time, so every replay asks for the same instant.
      await step.sleepUntil("until", new Date(event.data.until));
      const after = await step.run("after", () => {
        count("after");
        return Date.now();
      });
      return { slept_ms: after - before };
    }),

  wait: ({ define }) =>
    define({ id: "wait" }, { event: "ts/wait" }, async ({ step }) => {
      const approval = await step.waitForEvent("approval", {
        event: "ts/approved",
        timeout: "30s",
        match: "data.order",
      });
      return approval ? { by: approval.data.by, order: approval.data.order } : null;
    }),

  invoke: ({ define }) => {
    const child = define({ id: "child" }, { event: "ts/child" }, async ({ event, step }) => {
      const doubled = await step.run("double", () => event.data.n * 2);
      return { doubled };
    });
    const parent = define({ id: "parent" }, { event: "ts/invoke" }, async ({ event, step }) => {
      const result = await step.invoke("call-child", {
        function: child,
        data: { n: event.data.n },
      });
      return { child: result, plus_one: result.doubled + 1 };
    });
    return [child, parent];
  },

  fatal: ({ define, count, sdk }) =>
    define({ id: "fatal" }, { event: "ts/fatal" }, async ({ step }) => {
      await step.run("boom", () => {
        count("boom");
        throw new sdk.NonRetriableError("no point in retrying");
      });
      return "unreachable";
    }),

  // `retries: 1` is one retry: two attempts in all.
  "retry-once": ({ define, count }) =>
    define({ id: "retry-once", retries: 1 }, { event: "ts/retry-once" }, async ({ step }) => {
      await step.run("always-fails", () => {
        const attempt = count("always-fails");
        throw new Error(`broken, attempt ${attempt}`);
      });
      return "unreachable";
    }),

  // The same outside any step: the function's own body throws.
  "retry-once-body": ({ define, count }) =>
    define({ id: "retry-once-body", retries: 1 }, { event: "ts/retry-once-body" }, async () => {
      const attempt = count("body");
      throw new Error(`body broken, attempt ${attempt}`);
    }),
};
