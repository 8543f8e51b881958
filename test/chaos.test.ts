/**
 * Chaos: a swarm of 8 moves files and a ninth client streams, while random
 * handlers crash (the test-only fault injection) and one client's connection
 * is dropped. Whatever completes is byte-identical, nothing is left
 * half-written under its final name, a second pass completes the rest, and
 * the pool returns to its baseline.
 */
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Controller } from "../runtime/index.js";
import { crashHandlerForTest } from "../runtime/internal.js";
import { hashTree, writeTree } from "./file-helpers.js";
import { startGateway, tempDir, within } from "./helpers.js";

/** Deterministic PRNG so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(dir, e.name), `${prefix}${e.name}/`);
      else out.push(`${prefix}${e.name}`);
    }
  };
  await walk(root, "");
  return out;
}

describe("chaos", () => {
  it("crashing handlers and a dropped connection during transfers and a stream: no wrong file, the rest completes on retry, the pool returns to baseline", async () => {
    const src = await tempDir("swarmnet-chaos-src-");
    const dst = await tempDir("swarmnet-chaos-dst-");
    const tree: Record<string, number> = {};
    for (let i = 0; i < 40; i++) tree[`small/f${i}.bin`] = 1 + ((i * 7919) % 40_000);
    for (let i = 0; i < 4; i++) tree[`big/b${i}.bin`] = 2 * 1024 * 1024 + i * 333;
    tree["huge.bin"] = 6 * 1024 * 1024 + 5;
    const expected = await writeTree(src, tree);

    const gw = await startGateway({ fileRoots: [src], maxPoolSize: 12, livenessMs: 600, testHooks: {}, maxRestarts: 100 });
    let finallyRan = 0;
    gw.addSubroutine("ticks", async function* () {
      try {
        for (let i = 0; ; i++) {
          await new Promise((r) => setImmediate(r));
          yield [i, new Uint8Array(256)];
        }
      } finally {
        finallyRan++;
      }
    });
    const controller = new Controller({ port: gw.port, downloadDir: dst, timeoutMs: 3_000 });
    const swarm = await controller.getSwarm(8);
    const streamer = await controller.getClient();
    const baseline = 0;

    const rand = prng(20261126);
    let crashes = 0;
    const outcomes: string[] = [];
    const stream = streamer.getSubroutineStream("ticks", () => true).catch((e: { code: string }) => e.code);
    // Small chunks and a shallow window make many round trips, so faults land mid-transfer.
    const tuning = { folder: ".", chunkBytes: 16 * 1024, windowBytes: 64 * 1024, windowFiles: 4, splitBytes: 1024 * 1024 };
    /** Waits until some handler of the swarm is moving bytes, bounded. */
    const busyHandler = (): Promise<number> =>
      within(
        new Promise<number>((resolve) => {
          const check = (): void => {
            const busy = gw.snapshot().handlers.filter((h) => h.state.startsWith("busy.") && h.state !== "busy.streaming");
            if (busy.length > 0) resolve(busy[Math.floor(rand() * busy.length)]!.handlerId);
            else setImmediate(check);
          };
          check();
        }),
        10_000,
        "a busy handler",
      );
    const checkNoWrongFile = async (): Promise<void> => {
      for (const [path, hash] of await hashTree(dst)) {
        if (path.endsWith(".part")) continue;
        expect(expected.get(path), `unexpected file ${path}`).toBeDefined();
        expect(hash, `content of ${path}`).toBe(expected.get(path));
      }
    };
    // Rounds 1-3: a handler crashes mid-transfer (and once the streaming handler too). Round 4: a client's connection drops.
    for (let round = 1; round <= 4; round++) {
      const transfer = swarm.getFilesFromGateway(tuning).then(
        () => "done",
        (e: { code?: string }) => e.code ?? "error",
      );
      if (round <= 3) {
        if (crashHandlerForTest(gw, await busyHandler(), `chaos round ${round}`)) crashes++;
        if (round === 2 && crashHandlerForTest(gw, streamer.handlerId!, "chaos on the stream")) crashes++;
      } else {
        await busyHandler();
        swarm.clients[7]!.actor.getSnapshot().context.transport.close(); // gone without a goodbye
      }
      outcomes.push(await within(transfer, 30_000, `round ${round}`));
      await checkNoWrongFile();
    }
    if (process.env["CHAOS_LOG"]) console.log({ crashes, outcomes });
    const streamOutcome = await within(stream, 10_000, "stream outcome");
    expect(crashes).toBeGreaterThanOrEqual(4);
    expect(streamOutcome).toBe("SWARMNET_HANDLER_CRASHED");
    expect(finallyRan).toBe(1); // the crashed stream's generator was cleaned up
    for (const o of outcomes) {
      expect([
        "done",
        "SWARMNET_HANDLER_CRASHED",
        "SWARMNET_SESSION_ENDED",
        "SWARMNET_TIMEOUT",
        "SWARMNET_CONNECTION",
        "SWARMNET_CLOSED",
      ]).toContain(o);
    }
    await swarm.close();
    await streamer.closeHandler();

    // A second pass (a fresh swarm, no chaos) completes everything, resuming from the .part files.
    const again = await controller.getSwarm(8);
    await within(again.getFilesFromGateway({ folder: "." }), 30_000, "second pass");
    const final = await hashTree(dst);
    for (const [path, hash] of expected) expect(final.get(path), path).toBe(hash);
    expect((await filesUnder(dst)).filter((p) => p.endsWith(".part"))).toEqual([]);
    await again.close();
    await controller.close();

    // The pool returns to its baseline (the dropped client's slot by its lease).
    await within(
      new Promise<void>((resolve) => {
        const check = (): void => (gw.snapshot().supervisor.poolSize === baseline ? resolve() : void setTimeout(check, 20));
        check();
      }),
      10_000,
      "pool back to baseline",
    );
    expect((await stat(src)).isDirectory()).toBe(true);
    // And the gateway still serves.
    const probe = new Controller({ port: gw.port });
    await expect((await probe.getClient()).ping("after chaos")).resolves.toBe("after chaos");
    await probe.close();
  });
});
