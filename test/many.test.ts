import { describe, expect, it } from "vitest";
import { DataType, fromBytes, toBytes, type Kwargs } from "../runtime/index.js";
import { controllerFor, startGateway, within } from "./helpers.js";

describe("many-to-many", () => {
  it("3 controllers x 3 clients x 200 mixed calls at once - every result is correct", async () => {
    const gw = await startGateway({ maxPoolSize: 9 });
    gw.addSubroutine("square", (n: number) => toBytes(DataType.int, n * n));
    gw.addSubroutine("describe", async (tag: string, n: number, kwargs: Kwargs) => {
      await new Promise((r) => setImmediate(r));
      return { tag, n, k: kwargs["k"] };
    });
    gw.addSubroutine("store", (n: number, kwargs: Kwargs & { buffer: Uint8Array }) => kwargs.buffer.reduce((a, b) => a + b, 0) + n);

    // 200 calls issued at once per client: a call's deadline counts its time in the queue, so it covers the batch.
    const controllers = [0, 1, 2].map(() => controllerFor(gw, { timeoutMs: 60_000 }));
    const clients = (await Promise.all(controllers.map((c) => Promise.all([c.getClient(), c.getClient(), c.getClient()])))).flat();
    expect(new Set(clients.map((c) => c.handlerId)).size).toBe(9);

    let checked = 0;
    await within(
      Promise.all(
        clients.map(async (client, ci) => {
          // Issued all at once: each client's p-queue serialises them, in order.
          const calls = Array.from({ length: 200 }, (_, i) => {
            const n = ci * 1000 + i;
            switch (i % 4) {
              case 0:
                return client.ping(`p${n}`).then((v) => expect(v).toBe(`p${n}`));
              case 1:
                return client.getSubroutineBatch("square", [n]).then((b) => expect(fromBytes(DataType.int, b)).toBe(n * n));
              case 2:
                return client
                  .getSubroutineBatch("describe", [`c${ci}`, n], { k: i })
                  .then((v) => expect(v).toEqual({ tag: `c${ci}`, n, k: i }));
              default:
                return client
                  .sendSubroutineBatch("store", Uint8Array.of(1, 2, 3, i % 200), [n])
                  .then((v) => expect(v).toBe(6 + (i % 200) + n));
            }
          });
          await Promise.all(calls.map((p) => p.then(() => checked++)));
        }),
      ),
      60_000,
      "1,800 calls",
    );
    expect(checked).toBe(1800);
    expect(gw.snapshot().handlers.reduce((sum, h) => sum + h.served, 0)).toBe(1800);
  });

  it("one controller holds clients on two gateways at once; a swarm spreads over both", async () => {
    const east = await startGateway();
    const west = await startGateway();
    east.addSubroutine("where", () => "east");
    west.addSubroutine("where", () => "west");
    const controller = controllerFor([east, west]);
    const a = await controller.getClient({ endpoint: east.endpoint });
    const b = await controller.getClient({ endpoint: west.endpoint });
    await expect(a.getSubroutineBatch("where")).resolves.toBe("east");
    await expect(b.getSubroutineBatch("where")).resolves.toBe("west");

    const swarm = await controller.getSwarm(4);
    expect(swarm.size).toBe(4);
    const places = await Promise.all(swarm.clients.map((c) => c.getSubroutineBatch<string>("where")));
    expect(places.filter((p) => p === "east")).toHaveLength(2);
    expect(places.filter((p) => p === "west")).toHaveLength(2);
    await swarm.close();
    expect(east.snapshot().supervisor.poolSize + west.snapshot().supervisor.poolSize).toBe(2);
  });

  it("failover - a full gateway is skipped for the next one", async () => {
    const full = await startGateway({ maxPoolSize: 1 });
    const spare = await startGateway();
    full.addSubroutine("where", () => "full");
    spare.addSubroutine("where", () => "spare");
    const controller = controllerFor([full, spare]);
    const first = await controller.getClient({ endpoint: full.endpoint });
    await expect(first.getSubroutineBatch("where")).resolves.toBe("full");
    const clients = await Promise.all([controller.getClient(), controller.getClient()]);
    for (const c of clients) await expect(c.getSubroutineBatch("where")).resolves.toBe("spare");
  });

  it("400 clients from one controller at once - past ZeroMQ's default limit of 1,023 sockets per process", async () => {
    const gw = await startGateway({ maxPoolSize: 400 });
    const controller = controllerFor(gw, { connectTimeoutMs: 20_000 });
    const clients = await within(Promise.all(Array.from({ length: 400 }, () => controller.getClient())), 60_000, "400 clients");
    const echoes = await Promise.all(clients.map((c, i) => c.ping(i)));
    expect(echoes).toEqual(clients.map((_, i) => i));
    expect(gw.snapshot().supervisor.poolSize).toBe(400);
  });
});
