/**
 * break-11: trying to break the link-drop promise (issue 11) as a user on flaky
 * Wi-Fi would. Real sockets on 127.0.0.1, through test/fault-relay.ts.
 */
import { describe, expect, it, onTestFinished } from "vitest";
import { Controller, ErrorCode, SessionEndedError } from "../runtime/index.js";
import type { FaultRelay } from "./fault-relay.js";
import { controllerVia, linkEvents, parkedClient, relayTo, relayedGateway } from "./link-helpers.js";
import { startGateway, until, within } from "./helpers.js";
import { freePort, kill, startProcess } from "./processes.js";

const settle = <T>(p: Promise<T>): Promise<T | Error> =>
  p.then(
    (v) => v,
    (e: unknown) => e as Error,
  );

/** Resolves right after the relay forwarded a heartbeat exchange (an idle client's only traffic). */
function afterExchange(relay: FaultRelay): Promise<void> {
  return within(
    new Promise<void>((resolve) => {
      relay.onForward = () => {
        relay.onForward = undefined;
        setTimeout(resolve, 20); // the answer follows the heartbeat within a ms or two
      };
    }),
    10_000,
    "a heartbeat exchange",
  );
}

describe("break-11: drops shorter than the lease", () => {
  it(
    "a parked client's link stalls for 95% of the lease, five times, each starting just before a heartbeat: every call made meanwhile is answered",
    { timeout: 60_000 },
    async () => {
      const L = 2_000;
      const P = Math.floor(L / 3);
      const { gw, relay, controller, link } = await relayedGateway({ livenessMs: L }, { timeoutMs: 60_000 });
      gw.addSubroutine("echo", (x: unknown) => x);
      const outcomes: unknown[] = [];
      for (let round = 0; round < 5; round++) {
        const client = await parkedClient(controller, link);
        await afterExchange(relay);
        await new Promise((r) => setTimeout(r, P - 40));
        relay.stall(Math.floor(0.95 * L));
        const result = await within(settle(client.getSubroutineBatch("echo", [round])), 20_000, "the call made during the stall");
        outcomes.push(result instanceof Error ? `${(result as SessionEndedError).code} ${(result as SessionEndedError).reason}` : result);
        await client.closeHandler();
      }
      expect({ outcomes, expired: gw.snapshot().supervisor.stats.expired }).toEqual({ outcomes: [0, 1, 2, 3, 4], expired: 0 });
    },
  );

  it(
    "a client that parked before (unmonitored socket) streams through a stall and three resets: every item once, in order",
    { timeout: 60_000 },
    async () => {
      const L = 3_000;
      const { gw, relay, controller, link } = await relayedGateway({ livenessMs: L }, { timeoutMs: 60_000 });
      gw.addSubroutine("count", function* (n: number) {
        for (let i = 0; i < n; i++) yield [i, i];
      });
      const client = await parkedClient(controller, link);
      let next = 0;
      await within(
        (async () => {
          for await (const [ident] of client.stream("count", [20_000], {}, { window: 64 })) {
            if (ident !== next) throw new Error(`item ${ident} where ${next} was due`);
            next++;
            if (next === 2_000) relay.stall(700);
            if (next === 2_010 || next === 6_000 || next === 12_000) relay.reset();
          }
        })(),
        30_000,
        "the stream",
      );
      expect(next).toBe(20_000);
    },
  );

  it(
    "a busy (monitored) client streams through a stall of 4 s, longer than ZMTP's 3 s heartbeat timeout but shorter than the 8 s lease",
    { timeout: 60_000 },
    async () => {
      const L = 8_000;
      const { gw, relay, controller } = await relayedGateway({ livenessMs: L }, { timeoutMs: 60_000 });
      gw.addSubroutine("count", function* (n: number) {
        for (let i = 0; i < n; i++) yield [i, i];
      });
      const client = await controller.getClient();
      let next = 0;
      await within(
        (async () => {
          for await (const [ident] of client.stream("count", [5_000], {}, { window: 64 })) {
            if (ident !== next) throw new Error(`item ${ident} where ${next} was due`);
            next++;
            if (next === 1_000) relay.stall(4_000);
          }
        })(),
        30_000,
        "the stream",
      );
      expect(next).toBe(5_000);
      expect(gw.snapshot().supervisor.stats.expired).toBe(0);
    },
  );

  it(
    "a parked client on a slow but working link (400 ms each way, no fault at all; lease 3 s) keeps its session: a call after two leases is answered",
    { timeout: 60_000 },
    async () => {
      const L = 3_000;
      const { gw, relay, controller, link } = await relayedGateway({ livenessMs: L }, { timeoutMs: 60_000 });
      gw.addSubroutine("echo", (x: unknown) => x);
      const client = await parkedClient(controller, link);
      relay.delay(400); // RTT 0.8 s, under the 1 s heartbeat period; nothing is lost or stalled
      await new Promise((r) => setTimeout(r, 2 * L));
      const result = await within(settle(client.getSubroutineBatch("echo", ["slow link"])), 20_000, "the call");
      const seen = link.events.map((e) => e.event + (e.event === "probed" ? `:${e.up}` : ""));
      // A quiet-looking slow link may be probed; the probe must find it up, and the link is never taken down.
      expect(result).toBe("slow link");
      expect(seen).not.toContain("down");
      expect(seen).not.toContain("probed:false");
    },
  );

  it("a parked client: stall, then two resets in quick succession, with a call in flight: answered once", async () => {
    const L = 3_000;
    const { gw, relay, controller, link } = await relayedGateway({ livenessMs: L }, { timeoutMs: 60_000 });
    let executions = 0;
    gw.addSubroutine("echo", (x: unknown) => (executions++, x));
    const client = await parkedClient(controller, link);
    relay.stall(800);
    const call = settle(client.getSubroutineBatch("echo", ["x"]));
    await new Promise((r) => setTimeout(r, 300));
    relay.reset();
    await new Promise((r) => setTimeout(r, 150));
    relay.reset();
    const result = await within(call, 15_000, "the call through stall+resets");
    expect(result).toBe("x");
    expect(executions).toBe(1);
    await expect(within(client.ping("after"), 15_000, "ping after")).resolves.toBe("after");
  });

  it("50 parked clients through a stall of 60% of the lease: every call made during it is answered", { timeout: 60_000 }, async () => {
    const L = 3_000;
    const { gw, relay, controller, link } = await relayedGateway({ livenessMs: L, maxPoolSize: 64 }, { timeoutMs: 60_000 });
    gw.addSubroutine("echo", (x: unknown) => x);
    const clients = await Promise.all(Array.from({ length: 50 }, () => controller.getClient()));
    await Promise.all(clients.map((c) => c.ping("hi")));
    await until(
      () => link.events.filter((e) => e.event === "parked").length >= 50,
      (w) => {
        const t = setInterval(w, 50);
        return () => clearInterval(t);
      },
      10_000,
      "50 parked",
    );
    relay.stall(Math.floor(0.6 * L));
    const calls = clients.map((c, i) => settle(c.getSubroutineBatch("echo", [i])));
    const results = await within(Promise.all(calls), 20_000, "50 calls");
    const wrong = results.map((r, i) => [i, r]).filter(([i, r]) => r !== i);
    expect(wrong).toEqual([]);
  });

  it("a stream consumer that pauses for 3 leases while the link is fine is not killed", async () => {
    const L = 1_500;
    const { gw, controller, link } = await relayedGateway({ livenessMs: L }, { timeoutMs: 60_000 });
    gw.addSubroutine("count", function* (n: number) {
      for (let i = 0; i < n; i++) yield [i, i];
    });
    const client = await parkedClient(controller, link);
    let next = 0;
    await within(
      (async () => {
        for await (const [ident] of client.stream("count", [100], {}, { window: 8 })) {
          if (ident !== next) throw new Error(`item ${ident} where ${next} was due`);
          next++;
          if (next === 10) await new Promise((r) => setTimeout(r, 3 * L));
        }
      })(),
      30_000,
      "the stream",
    );
    expect(next).toBe(100);
    expect(link.events.some((e) => e.event === "down")).toBe(false);
  });

  it("a call made at the exact moment a probe starts (the 'quiet' event) is answered", async () => {
    const L = 2_000;
    const { gw, relay, controller, link } = await relayedGateway({ livenessMs: L }, { timeoutMs: 60_000 });
    gw.addSubroutine("echo", (x: unknown) => x);
    const client = await parkedClient(controller, link);
    let call: Promise<unknown> | undefined;
    link.on((e) => {
      if (e.event === "quiet" && call === undefined) call = settle(client.getSubroutineBatch("echo", ["at-probe"]));
    });
    await afterExchange(relay);
    relay.stall(Math.floor(0.8 * L));
    await link.next((e) => e.event === "quiet", "the quiet event");
    expect(call).toBeDefined();
    await expect(within(call!, 20_000, "the call made at the probe")).resolves.toBe("at-probe");
  });
});

/**
 * A gateway in its own process (lease `L`), to be frozen with SIGSTOP (and thawed with SIGCONT before it is
 * killed when the test ends), a controller for it and the link events.
 */
async function frozenGateway(
  L: number,
): Promise<{ gateway: Awaited<ReturnType<typeof startProcess>>; controller: Controller; link: ReturnType<typeof linkEvents> }> {
  const gateway = await startProcess("test/fixtures/gateway-process.ts", [0, L]);
  onTestFinished(() => {
    gateway.child.kill("SIGCONT");
    return kill(gateway.child);
  });
  return { gateway, controller: controllerVia([`tcp://127.0.0.1:${gateway.port}`], { timeoutMs: 60_000 }), link: linkEvents() };
}

describe("break-11: a frozen gateway (SIGSTOP)", () => {
  it("a gateway frozen for half the lease, then SIGCONT: the parked client's call is answered", { timeout: 60_000 }, async () => {
    const L = 4_000;
    const { gateway, controller, link } = await frozenGateway(L);
    const client = await parkedClient(controller, link);
    gateway.child.kill("SIGSTOP");
    const call = settle(client.getSubroutineBatch("echo", ["frozen"]));
    await new Promise((r) => setTimeout(r, L / 2));
    gateway.child.kill("SIGCONT");
    await expect(within(call, 20_000, "the call")).resolves.toBe("frozen");
  });

  it(
    "a gateway frozen for 85% of the lease, three times: the parked client's call is answered each time",
    { timeout: 60_000 },
    async () => {
      const L = 2_000;
      const { gateway, controller, link } = await frozenGateway(L);
      const outcomes: unknown[] = [];
      for (let round = 0; round < 3; round++) {
        const client = await parkedClient(controller, link);
        await new Promise((r) => setTimeout(r, 300 + round * 200));
        gateway.child.kill("SIGSTOP");
        const call = settle(client.getSubroutineBatch("echo", [round]));
        await new Promise((r) => setTimeout(r, 0.85 * L));
        gateway.child.kill("SIGCONT");
        const result = await within(call, 20_000, "the call");
        outcomes.push(result instanceof Error ? `${(result as SessionEndedError).code} ${(result as SessionEndedError).reason}` : result);
        await client.closeHandler();
      }
      expect(outcomes).toEqual([0, 1, 2]);
    },
  );

  it(
    "a gateway frozen for 3 leases: the parked client's call fails within 2.5 leases (lease + a heartbeat period + detection) with SessionEndedError (lease); after SIGCONT a new client works",
    { timeout: 60_000 },
    async () => {
      const L = 2_000;
      const { gateway, controller, link } = await frozenGateway(L);
      const client = await parkedClient(controller, link);
      gateway.child.kill("SIGSTOP");
      const t0 = Date.now();
      const failed = await within(settle(client.getSubroutineBatch("echo", ["frozen"])), 3 * L, "the call to fail");
      const took = Date.now() - t0;
      expect(failed).toBeInstanceOf(SessionEndedError);
      expect(failed).toMatchObject({ code: ErrorCode.SESSION_ENDED, reason: "lease" });
      // Lease + a heartbeat period (a drop shorter than the lease must survive), plus detection granularity.
      expect(took).toBeLessThan(2.5 * L);
      gateway.child.kill("SIGCONT");
      const fresh = await within(controller.getClient(), 10_000, "a new client");
      await expect(within(fresh.ping("back"), 10_000, "ping")).resolves.toBe("back");
    },
  );

  it(
    "a busy (never parked) client whose gateway freezes for 3 leases: the call fails within 2.5 leases (lease + a heartbeat period + detection), not at its deadline",
    { timeout: 60_000 },
    async () => {
      const L = 2_000;
      const gateway = await startProcess("test/fixtures/gateway-process.ts", [0, L]);
      onTestFinished(() => {
        gateway.child.kill("SIGCONT");
        return kill(gateway.child);
      });
      const controller = controllerVia([`tcp://127.0.0.1:${gateway.port}`], { timeoutMs: 60_000 });
      const client = await controller.getClient();
      const slow = settle(client.getSubroutineBatch("slow", [50_000]));
      await new Promise((r) => setTimeout(r, 100));
      gateway.child.kill("SIGSTOP");
      const t0 = Date.now();
      const failed = await within(slow, 6 * L, "the call to fail");
      const took = Date.now() - t0;
      expect(failed).toBeInstanceOf(SessionEndedError);
      // Lease + a heartbeat period (a drop shorter than the lease must survive), plus detection granularity.
      expect(took).toBeLessThan(2.5 * L);
    },
  );
});

describe("break-11: close during a stall", () => {
  it("controller.close() during a long stall, with a parked client's call and a stream pending, resolves promptly", async () => {
    const L = 3_000;
    const gw = await startGateway({ livenessMs: L });
    gw.addSubroutine("echo", (x: unknown) => x);
    gw.addSubroutine("forever", function* () {
      for (let i = 0; ; i++) yield [i, i];
    });
    const relay = await relayTo(gw.port);
    const controller = new Controller({ gateways: [relay.endpoint], timeoutMs: 60_000, connectTimeoutMs: 5_000 });
    const link = linkEvents();
    const a = await parkedClient(controller, link);
    const b = await controller.getClient();
    let items = 0;
    let started!: () => void;
    const streaming = new Promise<void>((r) => (started = r));
    const stream = settle(
      (async () => {
        for await (const _ of b.stream("forever", [], {}, { window: 16 })) if (++items === 5) started();
      })(),
    );
    await within(streaming, 10_000, "stream started");
    relay.stall(600_000);
    const call = settle(a.getSubroutineBatch("echo", [1]));
    await new Promise((r) => setTimeout(r, 200));
    await within(controller.close(), 8_000, "controller.close() during the stall");
    await within(Promise.all([call, stream]), 2_000, "pending work to settle after close");
    relay.unstall();
  });
});

describe("break-11: a gateway restarted under a parked client", () => {
  it(
    "SIGKILL and restart on the same port within the lease: the parked client's pending call fails with SessionEndedError (restarted), well before its deadline; a new client works",
    { timeout: 60_000 },
    async () => {
      const L = 4_000;
      const port = await freePort();
      const first = await startProcess("test/fixtures/gateway-process.ts", [port, L]);
      const controller = controllerVia([`tcp://127.0.0.1:${port}`], { timeoutMs: 60_000 });
      const link = linkEvents();
      const client = await parkedClient(controller, link);
      await kill(first.child);
      const call = settle(client.getSubroutineBatch("echo", ["x"]));
      const t0 = Date.now();
      const second = await startProcess("test/fixtures/gateway-process.ts", [port, L]);
      onTestFinished(() => kill(second.child));
      const failed = await within(call, 20_000, "the pending call to fail");
      const took = Date.now() - t0;
      expect(failed).toBeInstanceOf(SessionEndedError);
      expect({ reason: (failed as SessionEndedError).reason, fast: took < L + 1_000 }).toEqual({ reason: "restarted", fast: true });
      const fresh = await within(controller.getClient(), 10_000, "a new client");
      await expect(within(fresh.ping("back"), 10_000, "ping")).resolves.toBe("back");
    },
  );
});

describe("break-11: close while a probe runs", () => {
  it(
    "a script that closes its controller the moment a probe starts exits at once (no probe socket or timer outlives close())",
    { timeout: 60_000 },
    async () => {
      const L = 6_000;
      const gw = await startGateway({ livenessMs: L });
      const relay = await relayTo(gw.port);
      const { child } = await startProcess("test/fixtures/break-11-close-at-probe.ts", [relay.endpoint]);
      let out = "";
      const saw = (what: string) =>
        within(
          new Promise<void>((resolve) => {
            const check = () => out.includes(what) && resolve();
            child.stdout!.on("data", (d: Buffer) => ((out += d.toString()), check()));
            check();
          }),
          20_000,
          what,
        );
      await saw("PARKED");
      relay.stall(600_000); // the gateway goes quiet: after two heartbeat periods the client probes, and closes
      await saw("CLOSED");
      const closedAt = Date.now();
      const exited = child.exitCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once("exit", () => r()));
      await within(exited, 10_000, "the script to exit");
      // A probe outliving close() would hold Node for its timeout (a whole lease, 6 s); exiting is process
      // teardown, which a loaded machine stretches past 500 ms: a third of the lease tells the two apart.
      expect(Date.now() - closedAt).toBeLessThan(L / 3);
    },
  );
});
