import { createServer, type AddressInfo, type Socket } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import { parseClientMessage, parseGatewayMessage } from "../protocol/index.js";
import { AdminConnection, inspectGateway, type GatewayInspection } from "../runtime/index.js";
import { controllerFor, startGateway } from "./helpers.js";

describe("admin requests", () => {
  it("protocol - admin.snapshot takes no fields and no raw frame; its result must carry a snapshot map", () => {
    expect(parseClientMessage({ type: "admin.snapshot", id: 3 }, false)).toEqual({ type: "admin.snapshot", id: 3 });
    expect(() => parseClientMessage({ type: "admin.snapshot", id: 3 }, true)).toThrow(
      expect.objectContaining({ code: "SWARMNET_PROTOCOL" }),
    );
    expect(parseGatewayMessage({ type: "admin.snapshot.result", id: 3, snapshot: { state: "running" } }, false)).toMatchObject({
      snapshot: { state: "running" },
    });
    expect(() => parseGatewayMessage({ type: "admin.snapshot.result", id: 3, snapshot: [1] }, false)).toThrow(
      expect.objectContaining({ code: "SWARMNET_PROTOCOL" }),
    );
  });

  it("admin off (the default) - admin.snapshot is refused with SWARMNET_ADMIN_DISABLED, the gateway keeps serving", async () => {
    const gw = await startGateway();
    gw.addSubroutine("one", () => 1);
    await expect(inspectGateway(gw.endpoint, { timeoutMs: 3_000 })).rejects.toMatchObject({ code: "SWARMNET_ADMIN_DISABLED", status: 403 });
    const client = await controllerFor(gw).getClient();
    await expect(client.inspectGateway()).rejects.toMatchObject({ code: "SWARMNET_ADMIN_DISABLED" });
    expect(await client.getSubroutineBatch("one")).toBe(1);
  });

  it("admin on - a full pool is still inspectable: the admin request takes no slot and sees both handlers", async () => {
    const gw = await startGateway({ admin: true, maxPoolSize: 2 });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    gw.addSubroutine("wait", async () => {
      await gate;
      return "released";
    });
    const controller = controllerFor(gw);
    const [a, b] = [await controller.getClient(), await controller.getClient()];
    const call = a.getSubroutineBatch("wait");
    await expect(controller.getClient()).rejects.toMatchObject({ code: "SWARMNET_POOL_FULL" });

    using admin = new AdminConnection(gw.endpoint, { timeoutMs: 3_000 });
    let snapshot: GatewayInspection = await admin.snapshot();
    for (let i = 0; i < 50 && !snapshot.handlers.some((h) => h.state === "busy.batchGet"); i++) snapshot = await admin.snapshot();
    expect(snapshot.supervisor).toMatchObject({ poolSize: 2, maxPoolSize: 2 });
    expect(snapshot.handlers.map((h) => h.handlerId)).toEqual([a.handlerId, b.handlerId]);
    expect(snapshot.handlers.find((h) => h.handlerId === a.handlerId)).toMatchObject({
      state: "busy.batchGet",
      request: { kind: "batchGet", name: "wait" },
      restarts: 0,
    });
    expect(snapshot.handlers.find((h) => h.handlerId === b.handlerId)?.state).toBe("idle");
    // Over a session, too: b asks while a is busy.
    expect((await b.inspectGateway()).supervisor.poolSize).toBe(2);
    release();
    expect(await call).toBe("released");
  });

  it("nothing listening - ConnectionRefusedError at the deadline; a peer that never answers - TimeoutError", async () => {
    await expect(inspectGateway("127.0.0.1:9", { timeoutMs: 300 })).rejects.toMatchObject({
      code: "SWARMNET_CONNECTION_REFUSED",
      message: expect.stringContaining("connection refused at tcp://127.0.0.1:9: nothing listens there"),
    });
    // Something accepts the TCP connection and then says nothing: not refused, just no answer.
    const sockets = new Set<Socket>();
    const mute = createServer((socket) => void sockets.add(socket));
    await new Promise<void>((resolve) => mute.listen(0, "127.0.0.1", resolve));
    onTestFinished(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => mute.close(() => resolve()));
    });
    const port = (mute.address() as AddressInfo).port;
    await expect(inspectGateway(`127.0.0.1:${port}`, { timeoutMs: 300 })).rejects.toMatchObject({ code: "SWARMNET_TIMEOUT" });
    expect(sockets.size).toBeGreaterThan(0);
  });
});
