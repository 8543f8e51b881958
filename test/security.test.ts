import { createConnection, createServer, type Server, type Socket } from "node:net";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { Controller, ErrorCode, Gateway, generateKeyPair, strToBytes } from "../runtime/index.js";
import { startGateway } from "./helpers.js";

/** A loopback TCP proxy that records every byte it forwards, both ways: our packet capture. */
async function capturingProxy(targetPort: number): Promise<{ port: number; captured: () => Buffer }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = createConnection({ host: "127.0.0.1", port: targetPort });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => s.destroy());
      s.on("close", () => sockets.delete(s));
    }
    inbound.on("data", (d: Buffer) => {
      chunks.push(Buffer.from(d));
      outbound.write(d);
    });
    outbound.on("data", (d: Buffer) => {
      chunks.push(Buffer.from(d));
      inbound.write(d);
    });
    inbound.on("close", () => outbound.destroy());
    outbound.on("close", () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as { port: number }).port, captured: () => Buffer.concat(chunks) };
}

const MARKER = "SWARMNET-PAYLOAD-MARKER-7f3a";

describe("CURVE", () => {
  it("generateKeyPair makes Z85 key pairs", () => {
    const { publicKey, secretKey } = generateKeyPair();
    expect(publicKey).toMatch(/^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/);
    expect(secretKey).toHaveLength(40);
    expect(generateKeyPair().publicKey).not.toBe(publicKey);
  });

  it("an authorized client works; an unauthorized key and a plain client are refused and counted", async () => {
    const server = generateKeyPair();
    const alice = generateKeyPair();
    const mallory = generateKeyPair();
    const gw = await startGateway({ curve: { ...server, authorizedKeys: [alice.publicKey] } });
    gw.addSubroutine("secret", () => "for alice");

    const good = new Controller({ port: gw.port, curve: { ...alice, serverPublicKey: server.publicKey }, connectTimeoutMs: 2_000 });
    const bad = new Controller({ port: gw.port, curve: { ...mallory, serverPublicKey: server.publicKey }, connectTimeoutMs: 500 });
    const plain = new Controller({ port: gw.port, connectTimeoutMs: 500 });
    onTestFinished(async () => {
      await Promise.all([good.close(), bad.close(), plain.close()]);
    });

    const client = await good.getClient();
    await expect(client.getSubroutineBatch("secret")).resolves.toBe("for alice");
    await expect(bad.getClient()).rejects.toMatchObject({ code: ErrorCode.HANDSHAKE_FAILED });
    await expect(plain.getClient()).rejects.toMatchObject({ code: ErrorCode.HANDSHAKE_FAILED });
    const security = gw.snapshot().security;
    expect(security.authFailures).toBeGreaterThanOrEqual(1);
    expect(security.protocolFailures).toBeGreaterThanOrEqual(1);
    expect(gw.snapshot().supervisor.poolSize).toBe(1); // neither got a handler
  });

  it("traffic is encrypted: a payload marker never appears on the wire with CURVE, and does without (the check can fail)", async () => {
    const run = async (withCurve: boolean): Promise<Buffer> => {
      const server = generateKeyPair();
      const client = generateKeyPair();
      const gw = await startGateway(withCurve ? { curve: { ...server, authorizedKeys: [client.publicKey] } } : {});
      gw.addSubroutine("store", (kwargs: { buffer: Uint8Array }) => kwargs.buffer.length);
      gw.addSubroutine("leak", () => `${MARKER} in a reply`);
      const proxy = await capturingProxy(gw.port);
      const controller = new Controller({
        port: proxy.port,
        ...(withCurve ? { curve: { ...client, serverPublicKey: server.publicKey } } : {}),
      });
      try {
        const c = await controller.getClient();
        await expect(c.sendSubroutineBatch("store", strToBytes(`${MARKER} in a request`))).resolves.toBeGreaterThan(0);
        await expect(c.getSubroutineBatch("leak")).resolves.toContain(MARKER);
        await expect(c.ping(MARKER)).resolves.toBe(MARKER);
      } finally {
        await controller.close();
      }
      return proxy.captured();
    };
    const encrypted = await run(true);
    expect(encrypted.length).toBeGreaterThan(200);
    expect(encrypted.includes(MARKER)).toBe(false);
    const clear = await run(false);
    expect(clear.includes(MARKER)).toBe(true);
  });

  it("bad CURVE options are refused with an error that names the option", () => {
    expect(() => new Gateway({ curve: { publicKey: "x", secretKey: "y", authorizedKeys: [] } })).toThrow(/curve/);
    const k = generateKeyPair();
    expect(() => new Gateway({ curve: { ...k, authorizedKeys: ["short"] } })).toThrow(/authorizedKeys/);
    expect(() => new Controller({ curve: { ...k, serverPublicKey: "nope" } })).toThrow(/curve/);
  });
});

describe("exposure", () => {
  it("a gateway bound beyond loopback without CURVE warns; with CURVE it does not", async () => {
    const writes: string[] = [];
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    try {
      const open = new Gateway({ host: "0.0.0.0", port: 0 });
      await open.stop();
      expect(writes.join("")).toMatch(/binds 0\.0\.0\.0 without CURVE/);
      writes.length = 0;
      const k = generateKeyPair();
      const closed = new Gateway({ host: "0.0.0.0", port: 0, curve: { ...k, authorizedKeys: [] } });
      await closed.stop();
      expect(writes.join("")).not.toMatch(/without CURVE/);
    } finally {
      spy.mockRestore();
    }
  });

  it("the default host is 127.0.0.1", async () => {
    const gw = await startGateway({ host: undefined as unknown as string });
    expect(gw.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
  });
});
