import { describe, expect, it } from "vitest";
import { Controller, ErrorCode } from "../runtime/index.js";
import { controllerFor, startGateway, within } from "./helpers.js";
import { freePort, kill, startProcess } from "./processes.js";

const GATEWAY = "test/fixtures/gateway-process.ts";

describe("waiting for a pool slot", () => {
  it("getClient({ waitMs }) waits in a fair queue; the pool-full case is a state; without waitMs it fails at once", async () => {
    const gw = await startGateway({ maxPoolSize: 1 });
    gw.addSubroutine("who", (name: string) => name);
    const controller = controllerFor(gw);
    const holder = await controller.getClient();
    expect(gw.snapshot().supervisor.state).toBe("running.full");
    await expect(controller.getClient()).rejects.toMatchObject({ code: ErrorCode.POOL_FULL });

    const admitted: string[] = [];
    const second = controller.getClient({ waitMs: 10_000 }).then((c) => (admitted.push("second"), c));
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => (gw.snapshot().supervisor.waiting === 1 ? resolve() : void setImmediate(check));
        check();
      }),
      5_000,
      "second waiting",
    );
    const third = controller.getClient({ waitMs: 10_000 }).then((c) => (admitted.push("third"), c));
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => (gw.snapshot().supervisor.waiting === 2 ? resolve() : void setImmediate(check));
        check();
      }),
      5_000,
      "third waiting",
    );
    await holder.closeHandler();
    const b = await within(second, 5_000, "second admitted");
    expect(admitted).toEqual(["second"]); // first come, first served
    await expect(b.getSubroutineBatch("who", ["b"])).resolves.toBe("b");
    await b.closeHandler();
    const c = await within(third, 5_000, "third admitted");
    expect(admitted).toEqual(["second", "third"]);
    await expect(c.ping()).resolves.toBe("ping");
    expect(gw.snapshot().supervisor.stats.waited).toBe(2);
  });

  it("a wait that runs out fails with PoolFullError and leaves the queue", async () => {
    const gw = await startGateway({ maxPoolSize: 1 });
    const controller = controllerFor(gw);
    await controller.getClient();
    const t0 = Date.now();
    await expect(controller.getClient({ waitMs: 200 })).rejects.toMatchObject({ code: ErrorCode.POOL_FULL });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(gw.snapshot().supervisor.waiting).toBe(0);
  });
});

describe("liveness", () => {
  it("a subroutine that blocks the gateway's event loop past the lease does not get healthy idle clients evicted", async () => {
    // A lease of 1 s blocked for 3 s: long enough that a loaded machine's timer jitter is not taken for silence.
    const gw = await startGateway({ livenessMs: 1_000 });
    gw.addSubroutine("hog", (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end); // blocks the whole gateway process
      return "done";
    });
    const controller = controllerFor(gw);
    const idle = await controller.getClient();
    const hogger = await controller.getClient();
    await expect(hogger.getSubroutineBatch("hog", [3_000])).resolves.toBe("done");
    // Let a few sweeps run after the stall (one each 250 ms): the idle client's heartbeats are read again.
    await within(new Promise((r) => setTimeout(r, 1_000)), 3_000, "sweeps after the stall");
    await expect(idle.ping("still here")).resolves.toBe("still here");
    expect(gw.snapshot().supervisor.stats.expired).toBe(0);
    expect(gw.snapshot().supervisor.poolSize).toBe(2);
  });

  it("a client that goes silent is evicted after livenessMs and its slot freed", async () => {
    const gw = await startGateway({ livenessMs: 200, maxPoolSize: 1 });
    const controller = controllerFor(gw, { timeoutMs: 1_000 });
    const silent = await controller.getClient();
    silent.actor.getSnapshot().context.transport.close(); // gone without a word
    const next = await within(controller.getClient({ waitMs: 5_000 }), 8_000, "slot after eviction");
    await expect(next.ping()).resolves.toBe("ping");
    expect(gw.snapshot().supervisor.stats.expired).toBe(1);
  });

  it("a client whose gateway is gone fails its pending call with SessionEndedError (reason lease) within the lease, not its own deadline", async () => {
    const { child, port } = await startProcess(GATEWAY, [0, 500]);
    const controller = new Controller({ port, timeoutMs: 30_000 });
    try {
      const client = await controller.getClient();
      const pending = client.getSubroutineBatch("slow", [60_000]);
      const t0 = Date.now();
      await kill(child);
      await expect(within(pending, 10_000, "pending call")).rejects.toMatchObject({ code: ErrorCode.SESSION_ENDED, reason: "lease" });
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await controller.close();
    }
  });
});

describe("reconnect and failover", () => {
  it("gateway killed mid-call and restarted on the same port: calls fail typed, the same controller gets new clients", async () => {
    const port = await freePort();
    const first = await startProcess(GATEWAY, [port, 500]);
    const controller = new Controller({ port, timeoutMs: 5_000, connectTimeoutMs: 3_000 });
    try {
      const swarm = await controller.getSwarm(3);
      const pid1 = await swarm.clients[0]!.getSubroutineBatch<number>("pid");
      const inFlight = swarm.clients.map((c) => c.getSubroutineBatch("slow", [60_000]));
      await kill(first.child);
      const outcomes = await within(Promise.allSettled(inFlight), 15_000, "calls in flight");
      for (const o of outcomes) {
        expect(o.status).toBe("rejected");
        expect((o as PromiseRejectedResult).reason).toMatchObject({ code: expect.stringMatching(/CONNECTION|TIMEOUT|SESSION_ENDED/) });
      }
      const second = await startProcess(GATEWAY, [port, 500]);
      const fresh = await controller.getClient();
      const pid2 = await fresh.getSubroutineBatch<number>("pid");
      expect(pid2).not.toBe(pid1);
      await expect(fresh.getSubroutineBatch("echo", ["back"])).resolves.toBe("back");
      const swarm2 = await controller.getSwarm(3);
      await Promise.all(swarm2.clients.map(async (c) => expect(await c.ping("x")).toBe("x")));
      await kill(second.child);
    } finally {
      await controller.close();
    }
  });

  it("failover - a controller with several endpoints skips one that is down; getSwarm spreads over the live ones", async () => {
    const live1 = await startGateway();
    const live2 = await startGateway();
    live1.addSubroutine("where", () => "one");
    live2.addSubroutine("where", () => "two");
    const dead = `tcp://127.0.0.1:${await freePort()}`;
    const controller = new Controller({ gateways: [dead, live1.endpoint, live2.endpoint], connectTimeoutMs: 300, timeoutMs: 2_000 });
    try {
      const client = await controller.getClient();
      await expect(client.getSubroutineBatch("where")).resolves.toMatch(/one|two/);
      const swarm = await controller.getSwarm(4);
      const places = await Promise.all(swarm.clients.map((c) => c.getSubroutineBatch<string>("where")));
      expect(places.sort()).toEqual(expect.arrayContaining(["one", "two"]));
      expect(swarm.clients.every((c) => c.endpoint !== dead)).toBe(true);
    } finally {
      await controller.close();
    }
  });
});

describe("graceful shutdown", () => {
  it("stop() refuses new clients, lets a call in flight finish, runs generators' finally, tells clients, resolves", async () => {
    const gw = await startGateway({ stopGraceMs: 3_000 });
    let finallyRan = 0;
    gw.addSubroutine("slow", (ms: number) => new Promise((r) => setTimeout(() => r("finished"), ms)));
    gw.addSubroutine("endless", async function* () {
      try {
        for (let i = 0; ; i++) yield [i, new Uint8Array(8)];
      } finally {
        finallyRan++;
      }
    });
    const controller = controllerFor(gw);
    const worker = await controller.getClient();
    const streamer = await controller.getClient();
    const idler = await controller.getClient();
    const call = worker.getSubroutineBatch("slow", [300]);
    const it = streamer.stream("endless", [], {}, { window: 16 })[Symbol.asyncIterator]();
    await it.next();
    const stopping = gw.stop();
    await expect(controller.getClient()).rejects.toMatchObject({ code: expect.stringMatching(/SESSION_ENDED|TIMEOUT/) });
    await expect(call).resolves.toBe("finished"); // the call in flight finished within the grace period
    await within(stopping, 10_000, "stop");
    expect(finallyRan).toBe(1);
    await expect(idler.ping()).rejects.toMatchObject({ code: expect.stringMatching(/SESSION_ENDED|CLOSED/) });
    await expect(
      within(
        (async () => {
          for (;;) {
            const r = await it.next();
            if (r.done) return r;
          }
        })(),
        5_000,
        "stream end",
      ),
    ).rejects.toMatchObject({
      code: expect.stringMatching(/SESSION_ENDED|CLOSED/),
    });
  });
});
