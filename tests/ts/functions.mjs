// The test functions, written once for both majors of the SDK. Each entry takes
// { define, ev, count, gate, sdk, major, port, client } (see app.mjs) and returns the function(s) it
// adds to the app. `ev("memo")` is the event name `<app id>/memo`.
// `count(key)` records a side effect: a step body that really ran; `await gate(name)` waits
// until the test opens the gate.
// What fails to be retried throws `retryable(sdk, message)`: retried a second later, since the
// engine's own backoff (15 s and more) passes in real time in distributed mode.
const retryable = (sdk, message) => new sdk.RetryAfterError(message, "1s");

export const FUNCTIONS = {
  // The first step must run once even though the second throws twice and is retried.
  memo: ({ define, ev, count, sdk }) =>
    define({ id: "memo" }, { event: ev("memo") }, async ({ step }) => {
      const first = await step.run("first", () => {
        count("first");
        return 1;
      });
      const flaky = await step.run("flaky", () => {
        const attempt = count("flaky");
        if (attempt < 3) throw retryable(sdk, `flaky attempt ${attempt}`);
        return 41;
      });
      // A memo wrapped once too often reads as an object here, and the sum as a string.
      return { first, flaky, total: first + flaky };
    }),

  parallel: ({ define, ev, count }) =>
    define({ id: "parallel" }, { event: ev("parallel") }, async ({ step }) => {
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

  sleep: ({ define, ev, count }) =>
    define({ id: "sleep" }, { event: ev("sleep") }, async ({ event, step }) => {
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

  wait: ({ define, ev }) =>
    define({ id: "wait" }, { event: ev("wait") }, async ({ step }) => {
      // Longer than an engine restart takes on a loaded machine (the restart test sends the
      // awaited event after one): a wait that timed out would prove nothing.
      const approval = await step.waitForEvent("approval", {
        event: ev("approved"),
        timeout: "5m",
        match: "data.order",
      });
      return approval ? { by: approval.data.by, order: approval.data.order } : null;
    }),

  invoke: ({ define, ev }) => {
    const child = define({ id: "child" }, { event: ev("child") }, async ({ event, step }) => {
      const doubled = await step.run("double", () => event.data.n * 2);
      return { doubled };
    });
    const parent = define({ id: "parent" }, { event: ev("invoke") }, async ({ event, step }) => {
      const result = await step.invoke("call-child", {
        function: child,
        data: { n: event.data.n },
      });
      return { child: result, plus_one: result.doubled + 1 };
    });
    return [child, parent];
  },

  fatal: ({ define, ev, count, sdk }) =>
    define({ id: "fatal" }, { event: ev("fatal") }, async ({ step }) => {
      await step.run("boom", () => {
        count("boom");
        throw new sdk.NonRetriableError("no point in retrying");
      });
      return "unreachable";
    }),

  // `retries: 1` is one retry: two attempts in all.
  "retry-once": ({ define, ev, count, sdk }) =>
    define({ id: "retry-once", retries: 1 }, { event: ev("retry-once") }, async ({ step }) => {
      await step.run("always-fails", () => {
        const attempt = count("always-fails");
        throw retryable(sdk, `broken, attempt ${attempt}`);
      });
      return "unreachable";
    }),

  // A step that asks to be retried 2 s later: the SDK answers its StepError with Retry-After.
  "retry-after": ({ define, ev, count, sdk }) =>
    define({ id: "retry-after" }, { event: ev("retry-after") }, async ({ step }) => {
      const before = await step.run("before", () => Date.now());
      const after = await step.run("busy", () => {
        if (count("busy") === 1) throw new sdk.RetryAfterError("busy", "2s");
        return Date.now();
      });
      return { waited_ms: after - before };
    }),

  // The same outside any step: the function's own body throws.
  "retry-once-body": ({ define, ev, count, sdk }) =>
    define({ id: "retry-once-body", retries: 1 }, { event: ev("retry-once-body") }, async () => {
      const attempt = count("body");
      throw retryable(sdk, `body broken, attempt ${attempt}`);
    }),

  // Cancelled by a ts/cancel event with the same data.id while it sleeps.
  cancellable: ({ define, ev, count }) =>
    define(
      { id: "cancellable", cancelOn: [{ event: ev("cancel"), match: "data.id" }] },
      { event: ev("cancellable") },
      async ({ step }) => {
        await step.run("before", () => count("before"));
        await step.sleep("nap", "1h");
        await step.run("after", () => count("after"));
        return "not cancelled";
      },
    ),

  // Fails for good; its failure handler records the error it was given.
  "with-handler": ({ define, ev, count, sdk }) =>
    define(
      {
        id: "with-handler",
        retries: 0,
        onFailure: async ({ error, event, step }) => {
          const seen = await step.run("record", () => {
            count("handler");
            return { message: error.message, name: error.name };
          });
          // The handler's event is inngest/function.failed; it carries the failed run's.
          return { ...seen, original: event.data.event.data, handler_event: event.name };
        },
      },
      { event: ev("with-handler") },
      async ({ step }) => {
        await step.run("charge", () => {
          count("charge");
          throw new sdk.NonRetriableError("card declined");
        });
      },
    ),

  // The invoked function fails; the caller sees its invoke step throw.
  "invoke-fails": ({ define, ev, sdk }) => {
    const callee = define({ id: "broken-callee" }, { event: ev("broken-callee") }, async () => {
      throw new sdk.NonRetriableError("callee broke");
    });
    const caller = define({ id: "caller" }, { event: ev("invoke-fails") }, async ({ step }) => {
      try {
        await step.invoke("call-broken", { function: callee, data: {} });
        return "the invoke succeeded";
      } catch (err) {
        return { caught: err.message };
      }
    });
    return [callee, caller];
  },

  // An invoke of a function no app serves: the step throws at once, naming the function.
  "invoke-missing": ({ define, ev, sdk }) =>
    define({ id: "invoke-missing" }, { event: ev("invoke-missing") }, async ({ step }) => {
      try {
        await step.invoke("call-missing", {
          function: sdk.referenceFunction({ functionId: "no-such-fn" }),
          data: {},
        });
        return "the invoke succeeded";
      } catch (err) {
        return { caught: err.message };
      }
    }),

  "wait-times-out": ({ define, ev }) =>
    define({ id: "wait-times-out" }, { event: ev("wait-times-out") }, async ({ step }) => {
      const approval = await step.waitForEvent("approval", {
        event: ev("never-sent"),
        timeout: "1s",
      });
      return { approval };
    }),

  // Sleeps between two steps; each step body names the app process (its port) that ran it,
  // so a test can tell where a run went on after a restart or a move.
  napper: ({ define, ev, count, port }) =>
    define({ id: "napper" }, { event: ev("napper") }, async ({ event, step }) => {
      const first = await step.run("before", () => {
        count(`before@${port}`);
        return `ts@${port}`;
      });
      await step.sleep("nap", event.data.nap || "2s");
      const second = await step.run("after", () => {
        count(`after@${port}`);
        return `ts@${port}`;
      });
      return `${first}->${second}`;
    }),

  // `event.data.steps` steps in a row (10 by default), each counted; returns their sum.
  steps: ({ define, ev, count }) =>
    define({ id: "steps" }, { event: ev("steps") }, async ({ event, step }) => {
      let total = 0;
      for (let i = 1; i <= (event.data.steps ?? 10); i++) {
        total += await step.run(`step-${i}`, () => {
          count(`step-${i}`);
          return i;
        });
      }
      return { total };
    }),

  // `retries: 2`: three attempts after the last checkpoint. The first call runs "a", then
  // throws; the second runs "b" (3.x checkpoints it: 4.x answers it, on a retry), then the code
  // after it throws in that call and the next one, and succeeds in the third.
  budget: ({ define, ev, count, sdk }) =>
    define({ id: "budget", retries: 2 }, { event: ev("budget") }, async ({ step }) => {
      const a = await step.run("a", () => count("a") && 1);
      if (count("before-b") === 1) throw retryable(sdk, "before b");
      const b = await step.run("b", () => count("b") && 2);
      const attempt = count("after-b");
      if (attempt < 3) throw retryable(sdk, `after b, attempt ${attempt}`);
      return { sum: a + b, attempt };
    }),

  // Two steps, then a sleep (a restart of the engine happens there), then a third step.
  "steps-nap": ({ define, ev, count }) =>
    define({ id: "steps-nap" }, { event: ev("steps-nap") }, async ({ event, step }) => {
      const one = await step.run("one", () => count("one") && 1);
      const two = await step.run("two", () => count("two") && 2);
      await step.sleep("nap", event.data.nap || "3s");
      const three = await step.run("three", () => count("three") && 3);
      return { sum: one + two + three };
    }),

  // For benchmarks/ts_checkpointing.py: `event.data.steps` trivial steps, each returning when
  // its body started (ms, sub-ms precision); the run's output is those times.
  "timed-steps": ({ define, ev }) =>
    define({ id: "timed-steps" }, { event: ev("timed-steps") }, async ({ event, step }) => {
      const starts = [];
      for (let i = 1; i <= (event.data.steps ?? 10); i++) {
        starts.push(await step.run(`s${i}`, () => performance.timeOrigin + performance.now()));
      }
      return starts;
    }),

  // Three steps; the first run of "two" and of "three" each wait for the test to open their
  // gate, so a test can restart the engine while a call is inside a step.
  "steps-gated": ({ define, ev, count, gate }) =>
    define({ id: "steps-gated" }, { event: ev("steps-gated") }, async ({ step }) => {
      const one = await step.run("one", () => count("one") && 1);
      const two = await step.run("two", async () => {
        if (count("two") === 1) await gate("two");
        return 2;
      });
      const three = await step.run("three", async () => {
        if (count("three") === 1) await gate("three");
        return 3;
      });
      return { sum: one + two + three };
    }),

  // Waits for the signal the event names; returns what the wait gave (null on timeout).
  "signal-wait": ({ define, ev }) =>
    define({ id: "signal-wait" }, { event: ev("signal-wait") }, async ({ event, step }) => {
      const got = await step.waitForSignal("for-signal", {
        signal: event.data.signal,
        timeout: event.data.timeout || "60s",
        onConflict: event.data.conflict || "fail",
      });
      return { got };
    }),

  // Sends a signal with the SDK's step.sendSignal (POST /v1/signals); returns its answer.
  "signal-send": ({ define, ev }) =>
    define({ id: "signal-send" }, { event: ev("signal-send") }, async ({ event, step }) => {
      const sent = await step.sendSignal("send", {
        signal: event.data.signal,
        data: event.data.data,
      });
      return { run_id: sent.runId ?? null };
    }),

  // Publishes from steps with step.realtime.publish to the channel and topic the event names,
  // then to a topic nobody subscribes to, then with the client's realtime.publish inside a
  // step.run; returns what each publish returned. 3.x takes { channel, topic, data }, 4.x a
  // topic of a channel (`realtime.channel`) and the data.
  realtime: ({ define, ev, sdk, major, client }) =>
    define({ id: "realtime" }, { event: ev("realtime") }, async ({ event, step }) => {
      const { channel, topic, data } = event.data;
      const topicOf = (name) => sdk.realtime.channel({ name: channel, topics: { [name]: {} } })[name];
      const publish = (id, name, payload) =>
        major === "3"
          ? step.realtime.publish(id, { channel, topic: name, data: payload })
          : step.realtime.publish(id, topicOf(name), payload);
      const sent = await publish("publish", topic, data);
      const unheard = await publish("unheard", "nobody-listens", { n: 1 });
      const fromClient = await step.run("client-publish", async () => {
        const payload = { from: "client" };
        if (major === "3") await client.realtime.publish({ channel, topic, data: payload });
        else await client.realtime.publish(topicOf(topic), payload);
        return "published";
      });
      return { sent, unheard, fromClient };
    }),

  // Publishes a ReadableStream of the event's `pieces` with the client's realtime.publish (the
  // SDK sends it as a `text/stream` body), inside a step.run.
  "realtime-stream": ({ define, ev, sdk, major, client }) =>
    define({ id: "realtime-stream" }, { event: ev("realtime-stream") }, async ({ event, step }) => {
      const { channel, topic, pieces } = event.data;
      return step.run("stream", async () => {
        const encoder = new TextEncoder();
        const stream = new ReadableStream({
          start(controller) {
            for (const piece of pieces) controller.enqueue(encoder.encode(piece));
            controller.close();
          },
        });
        if (major === "3") await client.realtime.publish({ channel, topic, data: stream });
        else {
          const topicRef = sdk.realtime.channel({ name: channel, topics: { [topic]: {} } })[topic];
          await client.realtime.publish(topicRef, stream);
        }
        return "streamed";
      });
    }),

  // 3.x with @inngest/realtime's realtimeMiddleware (the app runs with
  // HEADRACE_TS_REALTIME_MIDDLEWARE=1): `publish` of a typed channel's topic, outside a step (the
  // middleware wraps it in one) and inside a step.run; returns what each publish returned.
  "realtime-middleware": ({ define, ev }) =>
    define(
      { id: "realtime-middleware" },
      { event: ev("realtime-middleware") },
      async ({ event, step, publish }) => {
        const { channel: channelOf, topic: topicOf } = await import("@inngest/realtime");
        const { channel, topic, data } = event.data;
        const progress = channelOf((name) => name).addTopic(topicOf(topic));
        const outside = await publish(progress(channel)[topic](data));
        const inside = await step.run("inside", () => publish(progress(channel)[topic]({ n: 2 })));
        return { outside, inside };
      },
    ),

  // step.fetch through the engine; the step after it fails once, so the run is called again
  // and must get the response from its memo, not from a second request.
  fetch: ({ define, ev, count, sdk }) =>
    define({ id: "fetch" }, { event: ev("fetch") }, async ({ event, step }) => {
      const res = await step.fetch(event.data.url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-token": "secret-token" },
        body: JSON.stringify({ n: event.data.n }),
      });
      const text = await res.text();
      await step.run("after", () => {
        const attempt = count("after");
        if (attempt < 2) throw retryable(sdk, `after attempt ${attempt}`);
        return attempt;
      });
      return { status: res.status, body: JSON.parse(text), served_by: res.headers.get("x-served-by") };
    }),

  // step.fetch to an address nothing listens on: the error reaches the function once the
  // engine's attempts (retries: 1, two in all) are spent.
  "fetch-fails": ({ define, ev }) =>
    define({ id: "fetch-fails", retries: 1 }, { event: ev("fetch-fails") }, async ({ step }) => {
      try {
        await step.fetch("http://127.0.0.1:9/nothing");
        return "fetched";
      } catch (err) {
        return { caught: err.message, name: err.name };
      }
    }),

  // step.ai.infer with a model nothing serves: the error reaches the function once the
  // engine's attempts (retries: 1) are spent.
  "ai-fails": ({ define, ev }) =>
    define({ id: "ai-fails", retries: 1 }, { event: ev("ai-fails") }, async ({ step }) => {
      try {
        await step.ai.infer("ask", {
          model: step.ai.models.openai({
            model: "gpt-4o",
            baseUrl: "http://127.0.0.1:9/v1/",
            apiKey: "not-a-key",
          }),
          body: { messages: [{ role: "user", content: "hi" }] },
        });
        return "answered";
      } catch (err) {
        return { caught: err.message };
      }
    }),
};
