/**
 * break-15: attacks on the call data plane (issue 15): a ping or a sync batch call
 * takes no machine transition on either end, the request in flight lives in the
 * client's `slot`. Each case looks for a call lost, answered twice or with another
 * call's result, a hang past its deadline, a client left unusable, or a handler
 * wrongly idle or busy. Real ZeroMQ on 127.0.0.1.
 */
import { createActor } from "xstate";
import { describe, expect, it, onTestFinished } from "vitest";
import { swarmClientMachine, type SwarmClientEmitted } from "../runtime/actors.js";
import { crashHandlerForTest } from "../runtime/internal.js";
import { ErrorCode, SessionEndedError, type Client, type Gateway } from "../runtime/index.js";
import { controllerFor, startGateway, until, within } from "./helpers.js";
import { linkEvents, relayedGateway } from "./link-helpers.js";

const settle = <T>(p: Promise<T>): Promise<T | Error> =>
  p.then(
    (v) => v,
    (e: unknown) => e as Error,
  );

const codeOf = (r: unknown): unknown => (r instanceof Error ? (r as Error & { code?: string }).code : r);

/** Resolves once every handler of `gw` is idle with no request (bounded). */
function handlersIdle(gw: Gateway, ms = 5_000): Promise<void> {
  return until(
    () => gw.snapshot().handlers.every((h) => h.state === "idle" && h.request === undefined),
    (wake) => {
      const timer = setInterval(wake, 5);
      return () => clearInterval(timer);
    },
    ms,
    "every handler idle",
  );
}

async function oneClient(gw: Gateway, timeoutMs = 5_000): Promise<Client> {
  const controller = controllerFor(gw, { timeoutMs });
  return controller.getClient();
}

describe("break-15: the call data plane", () => {
  it("deadline racing the answer: timeoutMs 1..5 on a sync and on an async echo, 100 calls; each settles once with its own value or TIMEOUT, then the client and handler serve on", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: number) => x);
    gw.addSubroutine("later", (x: number, kw: { ms?: number }) => new Promise((r) => setTimeout(() => r(x), kw.ms ?? 0)));
    const client = await oneClient(gw);
    const wrong: unknown[] = [];
    let answered = 0;
    let timedOut = 0;
    for (let i = 0; i < 100; i++) {
      const timeoutMs = 1 + (i % 5);
      let settledTimes = 0;
      const p =
        i % 2 === 0
          ? client.getSubroutineBatch<number>("echo", [i], {}, { timeoutMs })
          : client.getSubroutineBatch<number>("later", [i], { ms: i % 4 }, { timeoutMs });
      const r = await within(
        p.then(
          (v) => (settledTimes++, v),
          (e: unknown) => (settledTimes++, e as Error),
        ),
        2_000,
        `call ${i}`,
      );
      if (r instanceof Error) {
        if (codeOf(r) === ErrorCode.TIMEOUT) timedOut++;
        else wrong.push([i, codeOf(r), r.message]);
      } else if (r !== i) wrong.push([i, r]);
      else answered++;
      expect(settledTimes).toBe(1);
    }
    expect(wrong).toEqual([]);
    expect(answered + timedOut).toBe(100);
    expect(await client.getSubroutineBatch("echo", ["after"])).toBe("after");
    await handlersIdle(gw);
  });

  it("a sync subroutine that throws, returns a Proxy that throws on every read, or a thenable whose then throws: each call gets an error of its own, the handler stays usable and idle", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("throws", () => {
      throw new Error("boom");
    });
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error("no reading me");
        },
        has() {
          throw new Error("no asking me");
        },
        ownKeys() {
          throw new Error("no listing me");
        },
        getPrototypeOf() {
          throw new Error("no prototype");
        },
      },
    );
    gw.addSubroutine("proxy", () => hostile);
    gw.addSubroutine("badThen", () => ({
      then() {
        throw new Error("then throws");
      },
    }));
    gw.addSubroutine("thenOnce", () => ({
      then(resolve: (v: unknown) => void) {
        resolve("first");
        resolve("second");
      },
    }));
    const client = await oneClient(gw, 3_000);
    const out: unknown[] = [];
    for (const name of ["throws", "proxy", "badThen", "thenOnce"]) {
      out.push(codeOf(await within(settle(client.getSubroutineBatch(name)), 5_000, name)));
      out.push(await within(client.getSubroutineBatch("echo", [name]), 5_000, `echo after ${name}`));
    }
    expect(out).toEqual([ErrorCode.REMOTE, "throws", expect.any(String), "proxy", ErrorCode.REMOTE, "badThen", "first", "thenOnce"]);
    expect(out[2]).not.toBe(ErrorCode.TIMEOUT);
    await handlersIdle(gw);
  });

  it("closeHandler() and controller.close() with a call in flight that never answers: it fails CLOSED within the close grace, the pool slot is freed, and a new client is served", async () => {
    const gw = await startGateway();
    gw.addSubroutine("never", () => new Promise(() => undefined));
    gw.addSubroutine("echo", (x: unknown) => x);
    const controller = controllerFor(gw, { timeoutMs: 500 }); // the close grace: min(timeoutMs, 5 s)
    const client = await controller.getClient();
    const inFlight = settle(client.getSubroutineBatch("never", [], {}, { timeoutMs: 60_000 }));
    const queued = settle(client.getSubroutineBatch("echo", [1]));
    await until(
      () => gw.snapshot().handlers.some((h) => h.state !== "idle"),
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "handler busy",
    );
    const closing = client.closeHandler();
    expect(codeOf(await within(queued, 1_000, "the queued call"))).toBe(ErrorCode.CLOSED);
    await within(closing, 8_000, "closeHandler");
    expect(codeOf(await within(inFlight, 1_000, "the call in flight"))).toBe(ErrorCode.CLOSED);
    await until(
      () => gw.snapshot().supervisor.poolSize === 0,
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "pool empty",
    );
    const second = await controller.getClient();
    const inFlight2 = settle(second.getSubroutineBatch("never", [], {}, { timeoutMs: 60_000 }));
    const ping = settle(second.ping("x"));
    await within(controller.close(), 8_000, "controller close");
    expect([codeOf(await within(inFlight2, 1_000, "call 2")), codeOf(await within(ping, 1_000, "ping"))]).toEqual([
      ErrorCode.CLOSED,
      ErrorCode.CLOSED,
    ]);
    await until(
      () => gw.snapshot().supervisor.poolSize === 0,
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "pool empty again",
    );
    const third = await controllerFor(gw).getClient();
    expect(await third.getSubroutineBatch("echo", ["again"])).toBe("again");
  });

  it("a call right after a stream ends, and right after a stream is aborted (break, and a callback returning false): answered with its own value", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("count", function* (n: number) {
      for (let i = 0; i < n; i++) yield [i, i];
    });
    const client = await oneClient(gw);
    const out: unknown[] = [];
    for (let round = 0; round < 5; round++) {
      let seen = 0;
      for await (const _ of client.stream("count", [3])) seen++;
      out.push(seen, await within(client.getSubroutineBatch("echo", [`end ${round}`]), 5_000, "call after end"));
      for await (const [ident] of client.stream("count", [1_000])) if (ident === 2) break;
      out.push(await within(client.getSubroutineBatch("echo", [`break ${round}`]), 5_000, "call after break"));
      await client.getSubroutineStream("count", () => false, undefined, [1_000]);
      out.push(await within(client.ping(`ping ${round}`), 5_000, "ping after abort"));
    }
    expect(out).toEqual([0, 1, 2, 3, 4].flatMap((r) => [3, `end ${r}`, `break ${r}`, `ping ${r}`]));
    await handlersIdle(gw);
  });

  it("an async call times out (rpc.cancel) and sync calls follow at once, fifty times: no BUSY, no stale answer, the handler idle at the end", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: unknown) => x);
    let slowDone = 0;
    gw.addSubroutine(
      "slow",
      (ms: number) =>
        new Promise((r) =>
          setTimeout(() => {
            slowDone++;
            r("slow");
          }, ms),
        ),
    );
    const client = await oneClient(gw);
    const out: unknown[] = [];
    for (let i = 0; i < 50; i++) {
      out.push(codeOf(await settle(client.getSubroutineBatch("slow", [30], {}, { timeoutMs: 3 }))));
      out.push(await settle(client.getSubroutineBatch("echo", [i])));
    }
    expect(out).toEqual(Array.from({ length: 50 }, (_, i) => [ErrorCode.TIMEOUT, i]).flat());
    await until(
      () => slowDone === 50,
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "every slow call done",
    );
    expect(await client.getSubroutineBatch("echo", ["end"])).toBe("end");
    await handlersIdle(gw);
  });

  it("300 concurrent calls on one client, mixed timeouts (1, 2, 5 ms and 5 s), sync and async subroutines: each settles once with its own value or TIMEOUT, nothing hangs", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("later", (x: unknown) => new Promise((r) => setImmediate(() => r(x))));
    const client = await oneClient(gw);
    const timeouts = [1, 2, 5, 5_000];
    const calls = Array.from({ length: 300 }, (_, i) =>
      settle<unknown>(
        i % 3 === 0
          ? client.ping<number>(i)
          : client.getSubroutineBatch<number>(i % 3 === 1 ? "echo" : "later", [i], {}, { timeoutMs: timeouts[i % 4]! }),
      ),
    );
    const results = await within(Promise.all(calls), 20_000, "all 300 calls");
    const wrong = results.flatMap((r, i) => (r === i || codeOf(r) === ErrorCode.TIMEOUT ? [] : [[i, codeOf(r)]]));
    expect(wrong).toEqual([]);
    // Every call with a 5 s deadline is answered.
    expect(results.filter((r, i) => i % 4 === 3 && r !== i)).toEqual([]);
    expect(await client.getSubroutineBatch("echo", ["end"])).toBe("end");
    await handlersIdle(gw);
  });

  it("a call failed by an error the gateway could not give an id (id 0) leaves the client idle: it parks, so a script that forgot close() can exit", async () => {
    const gw = await startGateway();
    let answer: ((v: string) => void) | undefined;
    gw.addSubroutine("held", () => new Promise<string>((r) => (answer = r)));
    gw.addSubroutine("echo", (x: unknown) => x);
    const link = linkEvents();
    const client = await oneClient(gw);
    const held = settle(client.getSubroutineBatch("held"));
    await until(
      () => answer !== undefined,
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "the held call running",
    );
    // Bytes the gateway cannot decode: it answers PROTOCOL with id 0, which fails whatever is in flight.
    client.actor.getSnapshot().context.transport.send([new Uint8Array([0xff, 0xff])]);
    expect(codeOf(await within(held, 5_000, "the held call"))).toBe(ErrorCode.PROTOCOL);
    answer!("late");
    await handlersIdle(gw);
    // Nothing in flight any more, so the idle transport parks its socket (PARK_AFTER_MS of quiet).
    await link.next((e) => e.event === "parked", "the client to park", 3_000);
    expect(await client.getSubroutineBatch("echo", ["usable"])).toBe("usable");
  });

  it("swarmClientMachine without the Client class: 60 calls and pings with timeouts 1..5 ms and a stream between them; every request answered exactly once, values to their own requestId", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("later", (x: unknown) => new Promise((r) => setImmediate(() => r(x))));
    gw.addSubroutine("count", function* (n: number) {
      for (let i = 0; i < n; i++) yield [i, i];
    });
    const actor = createActor(swarmClientMachine, { id: "solo15", input: { endpoint: gw.endpoint } });
    onTestFinished(() => void actor.stop());
    const seen: SwarmClientEmitted[] = [];
    actor.on("*", (e) => void seen.push(e));
    actor.start();
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const requestId = `r${i}`;
      ids.push(requestId);
      const timeoutMs = i % 6 === 5 ? 5_000 : 1 + (i % 5);
      if (i % 3 === 0) actor.send({ type: "ping", requestId, data: requestId, timeoutMs });
      else actor.send({ type: "call", requestId, name: i % 3 === 1 ? "echo" : "later", args: [requestId], timeoutMs });
      if (i === 30) {
        ids.push("s");
        actor.send({ type: "stream", requestId: "s", name: "count", args: [5] });
      }
    }
    ids.push("last");
    actor.send({ type: "call", requestId: "last", name: "echo", args: ["last"] });
    const answers = (): SwarmClientEmitted[] =>
      seen.filter((e) => e.type === "swarmnet.result" || e.type === "swarmnet.error" || e.type === "swarmnet.end");
    await until(
      () => answers().length >= ids.length,
      (wake) => {
        const sub = actor.on("*", wake);
        return () => sub.unsubscribe();
      },
      10_000,
      "every request answered",
    );
    const byId = new Map<unknown, unknown[]>();
    for (const e of answers()) {
      const id = (e as { requestId: unknown }).requestId;
      byId.set(id, [
        ...(byId.get(id) ?? []),
        e.type === "swarmnet.result"
          ? e.value
          : e.type === "swarmnet.error"
            ? e.code
            : e.type === "swarmnet.end"
              ? `end ${e.count}`
              : e.type,
      ]);
    }
    const wrong = ids.flatMap((id) => {
      const got = byId.get(id) ?? [];
      if (got.length !== 1) return [[id, got]];
      if (id === "s") return got[0] === "end 5" ? [] : [[id, got]];
      return got[0] === id || got[0] === ErrorCode.TIMEOUT ? [] : [[id, got]];
    });
    expect(wrong).toEqual([]);
    expect(byId.get("last")).toEqual(["last"]);
    await handlersIdle(gw);
  });

  it("a handler crash (testHooks) during an async call fails it HANDLER_CRASHED; sync calls right after are answered by the restarted handler", async () => {
    const gw = await startGateway({ testHooks: {}, maxRestarts: 10 });
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("never", () => new Promise(() => undefined));
    const client = await oneClient(gw);
    const out: unknown[] = [];
    for (let round = 0; round < 3; round++) {
      const inFlight = settle(client.getSubroutineBatch("never"));
      await until(
        () => gw.snapshot().handlers.some((h) => h.state !== "idle"),
        (wake) => {
          const t = setInterval(wake, 5);
          return () => clearInterval(t);
        },
        5_000,
        "handler busy",
      );
      expect(crashHandlerForTest(gw, client.handlerId!, `round ${round}`)).toBe(true);
      out.push(codeOf(await within(inFlight, 5_000, "the crashed call")));
      out.push(await within(settle(client.getSubroutineBatch("echo", [round])), 5_000, "echo after crash"));
      out.push(await within(settle(client.ping(`p${round}`)), 5_000, "ping after crash"));
    }
    expect(out).toEqual([0, 1, 2].flatMap((r) => [ErrorCode.HANDLER_CRASHED, r, `p${r}`]));
    await handlersIdle(gw);
  });

  it("a sync subroutine that calls back into the gateway (snapshot, and stop() not awaited): the call settles (value or session ended), never hangs", async () => {
    const gw = await startGateway();
    let seenFromInside: unknown;
    gw.addSubroutine("look", () => {
      seenFromInside = gw.snapshot().handlers.map((h) => h.state);
      return "looked";
    });
    gw.addSubroutine("stopGateway", () => {
      void gw.stop();
      return "stopping";
    });
    const client = await oneClient(gw, 10_000);
    expect(await client.getSubroutineBatch("look")).toBe("looked");
    expect(seenFromInside).toEqual(["idle"]); // a sync call on the data plane never shows busy, even to itself
    const r = await within(settle(client.getSubroutineBatch<unknown>("stopGateway")), 5_000, "the call that stops the gateway");
    expect(r === "stopping" || codeOf(r) === ErrorCode.SESSION_ENDED).toBe(true);
    // Live sessions are served while the gateway drains; once it stopped, the client is told the session ended.
    await within(gw.closed, 5_000, "the gateway to stop");
    expect(codeOf(await within(settle(client.ping("after")), 5_000, "a ping after the stop"))).toBe(ErrorCode.SESSION_ENDED);
  });

  it("a link reset with a call in flight: answered once by replay; a stall past the lease fails the call SESSION_ENDED long before its deadline", async () => {
    const { gw, relay, controller } = await relayedGateway({ livenessMs: 1_500 }, { timeoutMs: 60_000 });
    let release: (() => void) | undefined;
    gw.addSubroutine("held", (x: unknown) => new Promise((r) => (release = () => r(x))));
    gw.addSubroutine("echo", (x: unknown) => x);
    const client = await controller.getClient();
    const held = settle(client.getSubroutineBatch("held", ["once"]));
    await until(
      () => release !== undefined,
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "the held call running",
    );
    relay.reset();
    release!();
    expect(await within(held, 10_000, "the held call after a reset")).toBe("once");
    expect(await within(client.getSubroutineBatch("echo", ["next"]), 10_000, "the next call")).toBe("next");
    release = undefined;
    const stalled = settle(client.getSubroutineBatch("held", ["never"]));
    await until(
      () => release !== undefined,
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "the second held call running",
    );
    relay.stall(600_000);
    const started = performance.now();
    expect(codeOf(await within(stalled, 15_000, "the stalled call"))).toBe(ErrorCode.SESSION_ENDED);
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(codeOf(await within(settle(client.ping("after")), 1_000, "a ping on the lost client"))).toBe(ErrorCode.SESSION_ENDED);
    relay.unstall();
  });

  it("no deadline timer outlives its call: after 200 calls with one-hour deadlines (answered, thrown, queued) and 40 that timed out, no more timers hold the event loop than before", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("throws", () => {
      throw new Error("no");
    });
    gw.addSubroutine("slow", () => new Promise((r) => setTimeout(() => r("slow"), 20).unref()));
    const client = await oneClient(gw);
    await client.ping("warm");
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const before = timers();
    const hour = { timeoutMs: 3_600_000 };
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++)
      calls.push(
        settle(
          i % 4 === 0
            ? client.getSubroutineBatch("throws", [], {}, hour)
            : i % 4 === 1
              ? client.ping(i, hour)
              : client.getSubroutineBatch("echo", [i], {}, hour),
        ),
      );
    for (let i = 0; i < 40; i++) calls.push(settle(client.getSubroutineBatch("slow", [], {}, { timeoutMs: 1 + (i % 5) })));
    await within(Promise.all(calls), 10_000, "all calls");
    expect(timers()).toBeLessThanOrEqual(before);
  });

  it("closeHandler() right behind a sync call, thirty times: the call gets its value or CLOSED, close resolves, the pool slot is freed each time", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: unknown) => x);
    const controller = controllerFor(gw, { timeoutMs: 1_000 });
    const out: unknown[] = [];
    for (let i = 0; i < 30; i++) {
      const client = await controller.getClient();
      const call = settle(client.getSubroutineBatch<number>("echo", [i]));
      await within(client.closeHandler(), 3_000, `close ${i}`);
      const r = await within(call, 1_000, `call ${i}`);
      if (r !== i && codeOf(r) !== ErrorCode.CLOSED) out.push([i, codeOf(r)]);
    }
    expect(out).toEqual([]);
    await until(
      () => gw.snapshot().supervisor.poolSize === 0,
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "pool empty",
    );
  });

  it("a subroutine that throws (or rejects with) a Proxy that throws on every read, null or a string: the call gets an error, the handler does not crash and stays idle", async () => {
    const gw = await startGateway();
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error("no reading me");
        },
        getPrototypeOf() {
          throw new Error("no prototype");
        },
        has() {
          throw new Error("no asking me");
        },
      },
    );
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("throwProxy", () => {
      throw hostile;
    });
    gw.addSubroutine("rejectProxy", () => Promise.reject(hostile));
    gw.addSubroutine("throwNull", () => {
      throw null;
    });
    gw.addSubroutine("rejectString", () => Promise.reject("just a string"));
    const client = await oneClient(gw, 3_000);
    const out: unknown[] = [];
    for (const name of ["throwProxy", "rejectProxy", "throwNull", "rejectString"]) {
      const r = await within(settle(client.getSubroutineBatch(name)), 5_000, name);
      out.push(
        r instanceof Error && codeOf(r) !== ErrorCode.TIMEOUT && codeOf(r) !== ErrorCode.HANDLER_CRASHED ? "error" : [name, codeOf(r)],
      );
      out.push(await within(settle(client.getSubroutineBatch("echo", [name])), 5_000, `echo after ${name}`));
    }
    expect(out).toEqual(["error", "throwProxy", "error", "rejectProxy", "error", "throwNull", "error", "rejectString"]);
    expect(gw.snapshot().handlers.map((h) => h.restarts)).toEqual([0]);
    await handlersIdle(gw);
  });

  it("four clients, 100 concurrent calls each with mixed deadlines: no answer crosses to another client or call", async () => {
    const gw = await startGateway();
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("later", (x: unknown) => new Promise((r) => setImmediate(() => r(x))));
    const controller = controllerFor(gw);
    const clients = await Promise.all([0, 1, 2, 3].map(() => controller.getClient()));
    const results = await within(
      Promise.all(
        clients.flatMap((client, c) =>
          Array.from({ length: 100 }, (_, i) =>
            settle<unknown>(
              client.getSubroutineBatch(i % 2 ? "echo" : "later", [`${c}:${i}`], {}, { timeoutMs: i % 5 === 0 ? 2 : 5_000 }),
            ).then((r) => [`${c}:${i}`, r] as const),
          ),
        ),
      ),
      20_000,
      "400 calls",
    );
    expect(results.filter(([want, r]) => r !== want && codeOf(r) !== ErrorCode.TIMEOUT)).toEqual([]);
    expect(results.filter(([want, r], k) => k % 5 !== 0 && r !== want)).toEqual([]);
    await handlersIdle(gw);
  });

  it("with testHooks (calls through the handler machine), a sync subroutine that crashes its own handler: its answer arrives once, the restarted handler serves the next call", async () => {
    const gw = await startGateway({ testHooks: {}, maxRestarts: 10 });
    let handlerId = 0;
    gw.addSubroutine("selfCrash", () => {
      crashHandlerForTest(gw, handlerId, "from inside");
      return "answered";
    });
    gw.addSubroutine("echo", (x: unknown) => x);
    const client = await oneClient(gw);
    handlerId = client.handlerId!;
    const r = await within(settle(client.getSubroutineBatch<unknown>("selfCrash")), 5_000, "the self-crashing call");
    // The crash event waits for the action that runs the subroutine: the answer is out first, once.
    expect(r).toBe("answered");
    expect(gw.snapshot().handlers.map((h) => h.restarts)).toEqual([1]);
    expect(await within(client.getSubroutineBatch("echo", ["next"]), 5_000, "the next call")).toBe("next");
    await handlersIdle(gw);
  });

  it("gateway.snapshot() while an async call runs on the data plane: the handler is busy with that request; idle once answered, and after a timed-out call is cancelled", async () => {
    const gw = await startGateway();
    let finish: ((v: string) => void) | undefined;
    gw.addSubroutine("held", () => new Promise<string>((r) => (finish = r)));
    const client = await oneClient(gw);
    const held = client.getSubroutineBatch("held", [], {}, { timeoutMs: 5_000 });
    await until(
      () => finish !== undefined,
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "the held call running",
    );
    expect(gw.snapshot().handlers.map((h) => [h.state, h.request?.name])).toEqual([[expect.stringMatching(/^busy/), "held"]]);
    finish!("done");
    expect(await held).toBe("done");
    await handlersIdle(gw);
    finish = undefined;
    const timedOut = settle(client.getSubroutineBatch("held", [], {}, { timeoutMs: 50 }));
    await until(
      () => finish !== undefined,
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "the second held call running",
    );
    expect(gw.snapshot().handlers.map((h) => h.state)).toEqual([expect.stringMatching(/^busy/)]);
    expect(codeOf(await within(timedOut, 5_000, "the timed-out call"))).toBe(ErrorCode.TIMEOUT);
    await handlersIdle(gw);
  });

  it("session.lost sent to the client machine with a call in flight and calls queued: all fail with that error at once, the late answer is dropped, close() still resolves", async () => {
    const gw = await startGateway();
    let finish: ((v: string) => void) | undefined;
    gw.addSubroutine("held", () => new Promise<string>((r) => (finish = r)));
    const client = await oneClient(gw, 60_000);
    const inFlight = settle(client.getSubroutineBatch("held"));
    const queued = [settle(client.ping("q1")), settle(client.getSubroutineBatch("held"))];
    await until(
      () => finish !== undefined,
      (wake) => {
        const t = setInterval(wake, 5);
        return () => clearInterval(t);
      },
      5_000,
      "the held call running",
    );
    client.actor.send({ type: "session.lost", error: new SessionEndedError("link layer gave up", { reason: "lease" }) });
    const outcomes = await within(Promise.all([inFlight, ...queued]), 1_000, "every call to fail");
    expect(outcomes.map((r) => [codeOf(r), (r as Error).message])).toEqual(
      Array.from({ length: 3 }, () => [ErrorCode.SESSION_ENDED, "link layer gave up"]),
    );
    finish!("late");
    await within(client.closeHandler(), 3_000, "closeHandler after the loss");
  });
});
