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
  it("client and handler walk their states: connecting -> ready -> awaiting -> ready; idle -> busy -> idle", async () => {
    const { gw, controller } = await memorySystem();
    const client = await controller.getClient();
    expect(client.state).toBe("ready");
    const clientStates: string[] = [];
    client.actor.subscribe((s) => clientStates.push(String(s.value)));
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
    await expect(call).resolves.toBe(20);
    expect(clientStates).toContain("awaiting");
    expect(clientStates.at(-1)).toBe("ready");
    expect(gw.snapshot().handlers[0]?.state).toBe("idle");
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
