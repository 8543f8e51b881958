/**
 * The machines over the in-memory transport: no sockets, no ports, fast.
 * The same Gateway/Controller classes, only the wire differs.
 */
import { describe, expect, it } from "vitest";
import { Controller, ErrorCode, Gateway } from "../runtime/index.js";
import { MemoryHub } from "../runtime/internal.js";
import { within } from "./helpers.js";

async function memorySystem(maxPoolSize = 2): Promise<{ gw: Gateway; controller: Controller; hub: MemoryHub }> {
  const hub = new MemoryHub();
  const gw = new Gateway({ transport: hub, host: "unit", port: 1, maxPoolSize, stopGraceMs: 0 });
  gw.addSubroutine("add", (a: number, b: number) => a + b);
  gw.addSubroutine("wait", (ms: number) => new Promise((r) => setTimeout(() => r(ms), ms)));
  await gw.start();
  const controller = new Controller({ transport: hub, gateways: ["unit:1"], timeoutMs: 1_000, connectTimeoutMs: 500 });
  return { gw, controller, hub };
}

describe("machines over the in-memory transport", () => {
  it("plain calls take no machine transition on either end; an async call shows busy with its request on both", async () => {
    const hub = new MemoryHub();
    const events = { gateway: 0, controller: 0 };
    const gw = new Gateway({
      transport: hub,
      host: "unit",
      port: 1,
      stopGraceMs: 0,
      inspect: (e) => {
        if (e.type === "@xstate.event") events.gateway++;
      },
    });
    gw.addSubroutine("add", (a: number, b: number) => a + b);
    gw.addSubroutine("wait", (ms: number) => new Promise((r) => setTimeout(() => r(ms), ms)));
    await gw.start();
    const controller = new Controller({
      transport: hub,
      gateways: ["unit:1"],
      timeoutMs: 1_000,
      connectTimeoutMs: 500,
      inspect: (e) => {
        if (e.type === "@xstate.event") events.controller++;
      },
    });
    const client = await controller.getClient();
    expect(client.state).toBe("ready");
    const clientStates: string[] = [];
    client.actor.subscribe((s) => clientStates.push(String(s.value)));
    const before = { ...events };
    for (let i = 0; i < 50; i++) {
      await expect(client.getSubroutineBatch("add", [i, 1])).resolves.toBe(i + 1);
      await expect(client.ping(i)).resolves.toBe(i);
    }
    // 100 requests answered: not one event reached a machine on either side, no client snapshot.
    expect(events).toEqual(before);
    expect(clientStates).toEqual([]);
    expect(gw.snapshot().handlers[0]?.served).toBe(100);

    // An async subroutine moves the handler to busy with the request; the client shows it in flight.
    const call = client.getSubroutineBatch("wait", [20]);
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (gw.snapshot().handlers[0]?.state === "busy.batchGet") resolve();
          else setImmediate(check);
        };
        check();
      }),
      2_000,
      "handler busy",
    );
    expect(gw.snapshot().handlers[0]?.request).toMatchObject({ kind: "batchGet", name: "wait" });
    expect(client.actor.getSnapshot().context.slot.call).toMatchObject({ kind: "batchGet" });
    await expect(call).resolves.toBe(20);
    expect(client.actor.getSnapshot().context.slot.call).toBeUndefined();
    expect(clientStates).toEqual([]);
    expect(gw.snapshot().handlers[0]?.state).toBe("idle");
    expect(events.gateway).toBeGreaterThan(before.gateway);
    await controller.close();
    await gw.stop();
  });

  it("the supervisor refuses past the pool and frees on close", async () => {
    const { gw, controller } = await memorySystem(1);
    const a = await controller.getClient();
    await expect(controller.getClient()).rejects.toMatchObject({ code: ErrorCode.POOL_FULL });
    await a.closeHandler();
    const b = await controller.getClient();
    await expect(b.getSubroutineBatch("add", [2, 3])).resolves.toBe(5);
    await controller.close();
    await gw.stop();
  });

  it("stop refuses new clients and ends live sessions with a typed error", async () => {
    const { gw, controller } = await memorySystem();
    const a = await controller.getClient();
    await gw.stop();
    await expect(a.ping()).rejects.toMatchObject({ code: expect.stringMatching(/SESSION_ENDED|CLOSED/) });
    await expect(controller.getClient()).rejects.toMatchObject({ code: expect.stringMatching(/TIMEOUT|GATEWAY_STOPPING|SESSION_ENDED/) });
    await controller.close();
  });
});
