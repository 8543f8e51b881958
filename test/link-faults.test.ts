/**
 * Sessions that ride out link drops: every case runs over real ZeroMQ sockets
 * through a fault-injecting TCP relay (test/fault-relay.ts) on loopback.
 */
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { Dealer } from "zeromq";
import { LinkKind, afterHeader, headerKind, isHeader, makeHeader } from "../actors/delivery.js";
import { decode, encode } from "../protocol/index.js";
import { ErrorCode, SessionEndedError, type SwarmnetError } from "../runtime/index.js";
import type { ClientTransport, TransportFactory } from "../transports/transport.js";
import { ZmqClientTransport, zmqTransport } from "../transports/zmq.js";
import type { FaultRelay } from "./fault-relay.js";
import { controllerVia, linkEvents, relayTo } from "./link-helpers.js";
import { hashTree, writeTree } from "./file-helpers.js";
import { startGateway, tempDir, within } from "./helpers.js";
import { freePort, kill, startProcess } from "./processes.js";

describe("streams through link drops", () => {
  it("a 200,000-item stream through five connection resets: every item once, in order", async () => {
    const gw = await startGateway();
    gw.addSubroutine("count", function* (n: number) {
      for (let i = 0; i < n; i++) yield [i, Buffer.from(`item ${i}`)];
    });
    const relay = await relayTo(gw.port);
    const client = await controllerVia([relay.endpoint]).getClient();
    let next = 0;
    let resets = 0;
    await within(
      (async () => {
        for await (const [ident, buffer] of client.stream<Uint8Array>("count", [200_000])) {
          if (ident !== next || Buffer.from(buffer).toString() !== `item ${next}`) throw new Error(`item ${ident} where ${next} was due`);
          next++;
          if (next % 33_000 === 0 && resets < 5) {
            relay.reset();
            resets++;
          }
        }
      })(),
      60_000,
      "the stream",
    );
    expect(next).toBe(200_000);
    expect(resets).toBe(5);
    expect(relay.stats.connections).toBeGreaterThanOrEqual(6); // ZeroMQ reconnected after every reset
    expect(client.delivery!.reconnects).toBe(5);
    await expect(client.ping("after")).resolves.toBe("after");
  });

  it("a large window (262,144) with one item per event-loop turn and a reset: 300,000 items, no gap", async () => {
    const gw = await startGateway();
    gw.addSubroutine("trickle", async function* (n: number) {
      for (let i = 0; i < n; i++) {
        await new Promise((resolve) => setImmediate(resolve));
        yield [i, i];
      }
    });
    const relay = await relayTo(gw.port);
    const client = await controllerVia([relay.endpoint]).getClient();
    let next = 0;
    await within(
      (async () => {
        for await (const [ident] of client.stream<number>("trickle", [300_000], {}, { window: 262_144 })) {
          if (ident !== next) throw new Error(`item ${ident} where ${next} was due`);
          next++;
          if (next === 150_000) relay.reset();
        }
      })(),
      90_000,
      "the stream",
    );
    expect(next).toBe(300_000);
    expect(client.delivery!.gaps).toBe(0); // nothing was lost in a queue: the only replay was the reset's
  });
});

describe("calls through link drops", () => {
  it("2,000 calls on 4 clients with resets: each answered once, and executed exactly 2,000 times", async () => {
    const gw = await startGateway();
    let executions = 0;
    gw.addSubroutine("echo", (k: number) => {
      executions++;
      return k;
    });
    gw.addSubroutine("later", async (k: number) => {
      executions++;
      await new Promise((resolve) => setImmediate(resolve));
      return k;
    });
    const relay = await relayTo(gw.port);
    const swarm = await controllerVia([relay.endpoint]).getSwarm(4);
    let answered = 0;
    let resets = 0;
    await within(
      Promise.all(
        swarm.clients.map(async (client, c) => {
          for (let i = 0; i < 500; i++) {
            const k = c * 1_000 + i;
            const value = await client.getSubroutineBatch<number>(i % 2 === 0 ? "echo" : "later", [k]);
            if (value !== k) throw new Error(`call ${k} answered ${value}`);
            if (++answered % 300 === 0 && resets < 6) {
              resets++;
              relay.reset();
            }
          }
        }),
      ),
      60_000,
      "2,000 calls",
    );
    expect(answered).toBe(2_000);
    expect(resets).toBe(6);
    expect(executions).toBe(2_000);
  });
});

describe("a link down past the lease", () => {
  it("fails the call, the queued call, the stream and the transfer in flight with SessionEndedError (reason lease); a new client works after", async () => {
    const dir = await tempDir();
    await writeTree(join(dir, "served"), { "big.bin": 32 * MiB });
    const gw = await startGateway({ livenessMs: 1_000, fileRoots: [join(dir, "served")] });
    gw.addSubroutine("slow", async () => {
      await new Promise((resolve) => setTimeout(resolve, 60_000).unref());
      return "late";
    });
    gw.addSubroutine("forever", function* () {
      for (let i = 0; ; i++) yield [i, i];
    });
    const relay = await relayTo(gw.port);
    relay.throttle(4 * MiB); // the download is still running when the link stalls
    const controller = controllerVia([relay.endpoint], { timeoutMs: 60_000, downloadDir: join(dir, "down") });
    const [a, b, c] = await Promise.all([controller.getClient(), controller.getClient(), controller.getClient()]);
    const failures: Array<Promise<unknown>> = [];
    failures.push(a.getSubroutineBatch("slow"), a.ping("queued behind slow"));
    let items = 0;
    let streaming!: () => void;
    const streamStarted = new Promise<void>((resolve) => (streaming = resolve));
    failures.push(
      (async () => {
        for await (const _ of b.stream("forever", [], {}, { window: 64 })) {
          if (++items === 10) streaming();
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })(),
    );
    let downloading!: () => void;
    const downloadStarted = new Promise<void>((resolve) => (downloading = resolve));
    failures.push(c.getFilesFromGateway({ files: ["big.bin"], onProgress: () => downloading() }));
    await within(Promise.all([streamStarted, downloadStarted]), 20_000, "stream and download under way");
    relay.stall(600_000);
    const outcomes = await within(Promise.allSettled(failures), 30_000, "everything in flight to fail");
    for (const outcome of outcomes) {
      expect(outcome.status).toBe("rejected");
      const error = (outcome as PromiseRejectedResult).reason as SwarmnetError;
      expect(error).toBeInstanceOf(SessionEndedError);
      expect(error.code).toBe(ErrorCode.SESSION_ENDED);
      expect((error as SessionEndedError).reason).toBe("lease");
    }
    relay.unstall();
    relay.throttle(0);
    const fresh = await controller.getClient();
    await expect(fresh.ping("back")).resolves.toBe("back");
  });
});

describe("a quiet gateway behind a parked client (no socket monitor)", () => {
  it("a link that goes silent fails the call fast with SessionEndedError (lease), not at its deadline", async () => {
    // A lease of 2 s: heartbeats every 667 ms, so an idle client hears nothing for PARK_AFTER_MS and parks.
    const gw = await startGateway({ livenessMs: 2_000 });
    gw.addSubroutine("echo", (x: unknown) => x);
    const relay = await relayTo(gw.port);
    const controller = controllerVia([relay.endpoint], { timeoutMs: 120_000 });
    const link = linkEvents();
    const client = await controller.getClient();
    const parked = link.next((e) => e.event === "parked", "the idle client to park");
    await expect(client.ping("hi")).resolves.toBe("hi");
    await parked;
    relay.stall(600_000);
    const failed = await within(
      client.getSubroutineBatch("echo", [1]).then(
        () => undefined,
        (e: unknown) => e,
      ),
      30_000,
      "the call to fail",
    );
    expect(failed).toBeInstanceOf(SessionEndedError);
    expect(failed).toMatchObject({ code: ErrorCode.SESSION_ENDED, reason: "lease" });
    // It was the probe that found the link dead (a parked socket has no monitor to say so).
    expect(link.events.map((e) => e.event)).toEqual(expect.arrayContaining(["parked", "quiet", "probed", "down"]));
    expect(link.events.find((e) => e.event === "probed")).toMatchObject({ up: false });
    relay.unstall();
    const fresh = await controller.getClient();
    await expect(fresh.ping("back")).resolves.toBe("back");
  });

  it("an idle client whose link went down stays watched until it is back (it does not park blind), then resumes: the next call works", async () => {
    const gw = await startGateway({ livenessMs: 6_000 });
    gw.addSubroutine("echo", (x: unknown) => x);
    const relay = await relayTo(gw.port);
    const controller = controllerVia([relay.endpoint], { timeoutMs: 30_000 });
    const link = linkEvents();
    const client = await controller.getClient();
    await expect(client.ping("hi")).resolves.toBe("hi");
    const down = link.next((e) => e.event === "down", "the link to go down");
    // Resets every connection and refuses new ones: the client, idle, sees its link down for 2 s,
    // four times as long as it takes an idle client to park.
    relay.block(2_000);
    await down;
    const up = link.next((e) => e.event === "up", "the link to come back");
    await up;
    await expect(within(client.getSubroutineBatch("echo", ["after"]), 20_000, "the call after the outage")).resolves.toBe("after");
    expect(client.delivery!.resumes).toBeGreaterThanOrEqual(1);
    // While the link was down nothing parked the socket (an unmonitored socket could not have said "up").
    const downAt = link.events.findIndex((e) => e.event === "down");
    const upAt = link.events.findIndex((e, i) => i > downAt && e.event === "up");
    expect(link.events.slice(downAt, upAt).some((e) => e.event === "parked")).toBe(false);
  });

  it(
    "a gateway whose event loop is blocked for 4 leases by a subroutine is probed, found alive, and answers: no false alarm",
    { timeout: 90_000 },
    async () => {
      const gateway = await startProcess("test/fixtures/gateway-process.ts", [0, 2_000]);
      onTestFinished(() => kill(gateway.child));
      const controller = controllerVia([`tcp://127.0.0.1:${gateway.port}`], { timeoutMs: 120_000 });
      const link = linkEvents();
      const client = await controller.getClient();
      const parked = link.next((e) => e.event === "parked", "the idle client to park");
      await expect(client.ping("hi")).resolves.toBe("hi");
      await parked;
      const probedAlive = link.next((e) => e.event === "probed" && e.up === true, "a probe that finds the gateway alive");
      await expect(within(client.getSubroutineBatch("block", [8_000]), 60_000, "the blocking call")).resolves.toBe("done");
      await probedAlive;
      expect(link.events.some((e) => e.event === "down")).toBe(false);
      await expect(client.ping("after")).resolves.toBe("after");
    },
  );
});

describe("a session is resumed only by its owner", () => {
  it("a stranger with the owner's routing id is refused (hello, resume, requests) and the session goes on", async () => {
    const gw = await startGateway();
    let executions = 0;
    gw.addSubroutine("count", () => ++executions);
    const relay = await relayTo(gw.port);
    const made: ClientTransport[] = [];
    const recording: TransportFactory = {
      server: (o) => zmqTransport.server(o),
      client: (endpoint, o) => {
        const t = zmqTransport.client(endpoint, o);
        made.push(t);
        return t;
      },
    };
    const owner = await controllerVia([relay.endpoint], { transport: recording }).getClient();
    await expect(owner.getSubroutineBatch("count")).resolves.toBe(1);
    const routingId = (made[0] as ZmqClientTransport).routingId;
    const handlerId = owner.handlerId;
    relay.block(600_000); // the owner's link is down; its session waits for it

    const stranger = new Dealer({ routingId, linger: 0 });
    onTestFinished(() => stranger.close());
    stranger.connect(gw.endpoint);
    const answer = async (): Promise<{ header?: number; body: Record<string, unknown> }> => {
      const frames = await within(stranger.receive(), 5_000, "an answer to the stranger");
      return isHeader(frames[0])
        ? { header: headerKind(frames[0]), body: decode(afterHeader(frames[0], false)) as Record<string, unknown> }
        : { body: decode(frames[0]!) as Record<string, unknown> };
    };
    await stranger.send([encode({ type: "hello", id: 0, v: 1 })]);
    expect(await answer()).toEqual({ body: expect.objectContaining({ type: "refused", status: 409, code: ErrorCode.RESUME_REFUSED }) });
    const wrong = Buffer.alloc(8, 7);
    await stranger.send([makeHeader(LinkKind.RESUME, 0, 0, wrong)]);
    expect(await answer()).toEqual({
      header: LinkKind.REFUSED,
      body: expect.objectContaining({ code: ErrorCode.RESUME_REFUSED, reason: "refused" }),
    });
    await stranger.send([
      makeHeader(LinkKind.DATA, 2, 1, wrong, encode({ type: "rpc.call", id: 2, name: "count", mode: "get", args: [], kwargs: {} })),
    ]);
    expect(await answer()).toEqual({ header: LinkKind.REFUSED, body: expect.objectContaining({ code: ErrorCode.RESUME_REFUSED }) });
    stranger.close();
    expect(executions).toBe(1);
    expect(gw.counters.strangers).toBeGreaterThanOrEqual(2);

    relay.unblock();
    await expect(within(owner.getSubroutineBatch("count"), 20_000, "the owner's call after it is back")).resolves.toBe(2);
    expect(owner.handlerId).toBe(handlerId);
    expect(owner.delivery!.resumes).toBeGreaterThanOrEqual(1);
  });
});

const MiB = 1024 * 1024;
const BIG = 64 * MiB;
const RESETS = 5;

/** Calls `reset` each time `done` crosses another sixth of `total`, five times in all. */
function resetter(relay: FaultRelay, total: number): { onBytes(done: number): void; readonly count: number } {
  let count = 0;
  return {
    onBytes(done: number) {
      if (count < RESETS && done >= ((count + 1) * total) / (RESETS + 1)) {
        count++;
        relay.reset();
      }
    },
    get count() {
      return count;
    },
  };
}

describe("files through link drops", () => {
  for (const clients of [1, 4]) {
    it(`a 64 MiB download and a 64 MiB upload through five resets each, ${clients === 1 ? "one client" : "a swarm of 4"}: byte-identical, no .part left`, async () => {
      const dir = await tempDir();
      // A swarm uploads whole files, one per client: four quarters of 64 MiB.
      const upTree: Record<string, number> =
        clients === 1 ? { "up.bin": BIG } : { "up0.bin": BIG / 4, "up1.bin": BIG / 4, "up2.bin": BIG / 4, "up3.bin": BIG / 4 };
      const served = await writeTree(join(dir, "served"), { "big.bin": BIG });
      const local = await writeTree(join(dir, "local"), upTree);
      const gw = await startGateway({ fileRoots: [join(dir, "served")], downloadDir: join(dir, "uploads") });
      const relay = await relayTo(gw.port);
      const controller = controllerVia([relay.endpoint], { downloadDir: join(dir, "down") });
      const target = clients === 1 ? await controller.getClient() : await controller.getSwarm(clients);
      const members = "clients" in target ? target.clients : [target];

      const down = resetter(relay, BIG);
      await within(
        target.getFilesFromGateway({ files: ["big.bin"], splitBytes: BIG / clients, onProgress: (p) => down.onBytes(p.totalBytes) }),
        60_000,
        "download",
      );
      expect(down.count).toBe(RESETS);
      expect(await hashTree(join(dir, "down"))).toEqual(new Map([["big.bin", served.get("big.bin")!]]));
      const resentDown = gw.deliveryStats().resentBytes;

      const up = resetter(relay, BIG);
      const before = members.reduce((n, c) => n + c.delivery!.resentBytes, 0);
      await within(
        target.sendFilesToGateway({
          dirname: "in",
          files: Object.keys(upTree).map((f) => join(dir, "local", f)),
          onProgress: (p) => up.onBytes(p.totalBytes),
        }),
        60_000,
        "upload",
      );
      expect(up.count).toBe(RESETS);
      expect(await hashTree(join(dir, "uploads"))).toEqual(new Map([...local].map(([k, v]) => [`in/${k}`, v])));
      const resentUp = members.reduce((n, c) => n + c.delivery!.resentBytes, 0) - before;
      // Reported, and bounded: a drop resends at most about one window per connection: the credit
      // window (16 MiB), plus what arrived but was not acknowledged yet (acks go every 4 MiB), plus a chunk.
      console.log(
        `${clients} client(s): download resent ${(resentDown / MiB).toFixed(1)} MiB, upload resent ${(resentUp / MiB).toFixed(1)} MiB over ${RESETS} resets each`,
      );
      expect(resentDown).toBeLessThanOrEqual(RESETS * clients * 22 * MiB);
      expect(resentUp).toBeLessThanOrEqual(RESETS * clients * 22 * MiB);
      expect(relay.stats.resets).toBe(2 * RESETS);
    });
  }
});

describe("a controller knows which gateways are down", () => {
  it("a gateway that stops answering costs one connect timeout, then new clients spread evenly over the live ones", async () => {
    const [one, two, silent] = await Promise.all([startGateway(), startGateway(), startGateway()]);
    one.addSubroutine("where", () => "one");
    two.addSubroutine("where", () => "two");
    const stalled = await relayTo(silent.port);
    stalled.stall(600_000); // TCP connects, nothing ever answers: a gateway behind a dead link
    const controller = controllerVia([stalled.endpoint, one.endpoint, two.endpoint], { connectTimeoutMs: 1_000 });
    // The first client's turn starts at the silent gateway: it waits out one connect timeout there.
    const first = await controller.getClient();
    expect(await first.getSubroutineBatch("where")).not.toBe(undefined);
    const attempts = stalled.stats.connections;
    const swarm = await within(controller.getSwarm(6), 20_000, "a swarm of 6");
    const where = await Promise.all(swarm.clients.map((c) => c.getSubroutineBatch<string>("where")));
    expect(where.filter((w) => w === "one")).toHaveLength(3);
    expect(where.filter((w) => w === "two")).toHaveLength(3);
    expect(stalled.stats.connections).toBe(attempts); // nobody tried the silent one again during its back-off
  });
});

describe("a gateway restarted within the lease", () => {
  it("the client's resume is refused by the new process: pending work fails with SessionEndedError (reason restarted), new clients work", async () => {
    const port = await freePort();
    const first = await startProcess("test/fixtures/gateway-process.ts", [port, 20_000]);
    const controller = controllerVia([`tcp://127.0.0.1:${port}`], { timeoutMs: 60_000 });
    const client = await controller.getClient();
    const pid1 = await client.getSubroutineBatch<number>("pid");
    const pending = client.getSubroutineBatch("slow", [60_000]);
    const queued = client.ping("queued");
    // Handled at once: they may fail while the second process is still starting (checked below).
    pending.catch(() => undefined);
    queued.catch(() => undefined);
    await kill(first.child);
    const second = await startProcess("test/fixtures/gateway-process.ts", [port, 20_000]);
    onTestFinished(() => kill(second.child));
    for (const outcome of await within(Promise.allSettled([pending, queued]), 20_000, "pending work to fail")) {
      expect(outcome.status).toBe("rejected");
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.SESSION_ENDED, reason: "restarted" });
    }
    const fresh = await controller.getClient();
    expect(await fresh.getSubroutineBatch<number>("pid")).not.toBe(pid1);
  });
});
