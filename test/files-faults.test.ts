import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { open, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { Controller, ErrorCode } from "../runtime/index.js";
import { controllerFor, startGateway, tempDir, within } from "./helpers.js";

/** Starts test/fixtures/file-gateway.ts serving `root` in a child process; killed when the test ends. */
async function childGateway(root: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", "test/fixtures/file-gateway.ts", root], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  onTestFinished(() => void child.kill("SIGKILL"));
  const [line] = (await within(once(child.stdout!, "data"), 20_000, "child gateway")) as [Buffer];
  return { child, port: Number(/PORT (\d+)/.exec(line.toString())?.[1]) };
}

const MiB = 1024 * 1024;

describe("file transfer faults", () => {
  it("a gateway killed mid-download leaves no file under its final name, and the next download resumes from the .part", async () => {
    const root = await tempDir("swarmnet-kill-root-");
    const local = await tempDir("swarmnet-kill-local-");
    const source = randomBytes(48 * MiB);
    await writeFile(join(root, "big.bin"), source);

    const first = await childGateway(root);
    const c1 = new Controller({ port: first.port, timeoutMs: 1_000, downloadDir: local });
    onTestFinished(() => c1.close());
    const client = await c1.getClient();
    let killedAt = 0;
    const broken = client.getFilesFromGateway({
      files: ["big.bin"],
      chunkBytes: 64 * 1024,
      windowBytes: 1 * MiB,
      onProgress: (p) => {
        if (killedAt === 0 && p.fileBytes >= 8 * MiB) {
          killedAt = p.fileBytes;
          first.child.kill("SIGKILL");
        }
      },
    });
    await expect(within(broken, 10_000, "broken download")).rejects.toMatchObject({ code: expect.stringMatching(/TIMEOUT|CONNECTION/) });
    expect(killedAt).toBeGreaterThanOrEqual(8 * MiB);
    await expect(stat(join(local, "big.bin"))).rejects.toMatchObject({ code: "ENOENT" });
    const part = await stat(join(local, "big.bin.part"));
    expect(part.size).toBeGreaterThanOrEqual(8 * MiB);
    expect(part.size).toBeLessThan(source.length);

    const second = await childGateway(root);
    const c2 = new Controller({ port: second.port, timeoutMs: 5_000, downloadDir: local });
    onTestFinished(() => c2.close());
    const again = await c2.getClient();
    let firstEvent: { fileBytes: number; transferred: number } | undefined;
    let transferred = 0;
    await within(
      again.getFilesFromGateway({
        files: ["big.bin"],
        onProgress: (p) => {
          firstEvent ??= { fileBytes: p.fileBytes, transferred: p.transferred };
          transferred = p.transferred;
        },
      }),
      20_000,
      "resumed download",
    );
    // It started where the .part ended, not at zero.
    expect(firstEvent!.fileBytes - firstEvent!.transferred).toBeGreaterThanOrEqual(part.size);
    expect(transferred).toBeLessThanOrEqual(source.length - part.size);
    expect(Buffer.compare(await readFile(join(local, "big.bin")), source)).toBe(0);
    await expect(stat(join(local, "big.bin.part"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("a swarm download split into ranges, broken by a killed gateway, keeps a .part whose journal lists only bytes really written; the rerun fetches exactly the rest", async () => {
    const root = await tempDir("swarmnet-swarmkill-root-");
    const local = await tempDir("swarmnet-swarmkill-local-");
    const source = randomBytes(32 * MiB);
    await writeFile(join(root, "big.bin"), source);
    const options = { files: ["big.bin"], splitBytes: 4 * MiB, chunkBytes: 128 * 1024, windowBytes: 512 * 1024 };

    const first = await childGateway(root);
    const c1 = new Controller({ port: first.port, timeoutMs: 1_000, downloadDir: local });
    onTestFinished(() => c1.close());
    const swarm = await c1.getSwarm(4);
    let killed = false;
    const broken = swarm.getFilesFromGateway({
      ...options,
      onProgress: (p) => {
        if (!killed && p.totalBytes >= 8 * MiB) {
          killed = true;
          first.child.kill("SIGKILL");
        }
      },
    });
    await expect(within(broken, 15_000, "broken swarm download")).rejects.toMatchObject({
      code: expect.stringMatching(/TIMEOUT|CONNECTION/),
    });
    await expect(stat(join(local, "big.bin"))).rejects.toMatchObject({ code: "ENOENT" });
    // Four ranges were written at once: the journal lists what is on disk, and every byte it lists is right.
    const part = await readFile(join(local, "big.bin.part"));
    const journal = JSON.parse(await readFile(join(local, "big.bin.part.json"), "utf8")) as {
      size: number;
      ranges: Array<[number, number]>;
    };
    expect(journal.size).toBe(source.length);
    expect(journal.ranges.length).toBeGreaterThan(1);
    let held = 0;
    for (const [s, e] of journal.ranges) {
      expect(Buffer.compare(part.subarray(s, e), source.subarray(s, e))).toBe(0);
      held += e - s;
    }
    expect(held).toBeGreaterThanOrEqual(8 * MiB - 4 * 512 * 1024);
    expect(held).toBeLessThan(source.length);

    const second = await childGateway(root);
    const c2 = new Controller({ port: second.port, timeoutMs: 5_000, downloadDir: local });
    onTestFinished(() => c2.close());
    let transferred = 0;
    await within(
      (await c2.getSwarm(4)).getFilesFromGateway({ ...options, onProgress: (p) => void (transferred = p.transferred) }),
      20_000,
      "resumed swarm download",
    );
    expect(transferred).toBe(source.length - held);
    expect(Buffer.compare(await readFile(join(local, "big.bin")), source)).toBe(0);
    await expect(stat(join(local, "big.bin.part.json"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("a 1 GiB sparse file downloads with memory far below its size (credit window, no buffering)", async () => {
    const root = await tempDir("swarmnet-sparse-root-");
    const local = await tempDir("swarmnet-sparse-local-");
    const size = 1024 * MiB;
    const path = join(root, "sparse.img");
    const fh = await open(path, "w");
    await fh.truncate(size);
    // Markers at the start, the middle and the end, so position-by-position writes are checked.
    await fh.write(Buffer.from("HEAD"), 0, 4, 0);
    await fh.write(Buffer.from("MIDDLE"), 0, 6, size / 2 + 3);
    await fh.write(Buffer.from("TAIL"), 0, 4, size - 4);
    await fh.close();

    const gw = await startGateway({ fileRoots: [root] });
    const client = await controllerFor(gw, { downloadDir: local, timeoutMs: 10_000 }).getClient();
    global.gc?.();
    const baseline = process.memoryUsage();
    let peakRss = baseline.rss;
    let peakHeap = baseline.heapUsed;
    let peakBuffers = baseline.arrayBuffers;
    const sample = (): void => {
      const m = process.memoryUsage();
      peakRss = Math.max(peakRss, m.rss);
      peakHeap = Math.max(peakHeap, m.heapUsed);
      peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
    };
    const timer = setInterval(sample, 10);
    try {
      let events = 0;
      await within(
        client.getFilesFromGateway({ files: ["sparse.img"], onProgress: () => void (++events % 64 === 0 && sample()) }),
        60_000,
        "1 GiB download",
      );
    } finally {
      clearInterval(timer);
    }
    const out = join(local, "sparse.img");
    expect((await stat(out)).size).toBe(size);
    const check = await open(out, "r");
    const read = async (pos: number, n: number): Promise<string> => {
      const b = Buffer.alloc(n);
      await check.read(b, 0, n, pos);
      return b.toString();
    };
    expect(await read(0, 4)).toBe("HEAD");
    expect(await read(size / 2 + 3, 6)).toBe("MIDDLE");
    expect(await read(size - 4, 4)).toBe("TAIL");
    expect(await read(size / 4, 4)).toBe("\0\0\0\0");
    await check.close();
    // Gateway and client share this process: both sides together stay far below the 1 GiB moved.
    expect(peakRss - baseline.rss).toBeLessThan(256 * MiB);
    expect(peakBuffers - baseline.arrayBuffers).toBeLessThan(128 * MiB);
    expect(peakHeap - baseline.heapUsed).toBeLessThan(128 * MiB);
  }, 60_000);

  it("an upload interrupted by the client going away leaves only a .part, and the next upload resumes it", async () => {
    const root = await tempDir("swarmnet-up-root-");
    const src = await tempDir("swarmnet-up-src-");
    const source = randomBytes(24 * MiB);
    const file = join(src, "payload.bin");
    await writeFile(file, source);
    const gw = await startGateway({ fileRoots: [root], downloadDir: join(root, "in"), livenessMs: 300 });
    const controller = controllerFor(gw);
    const client = await controller.getClient();
    const aborter = new AbortController();
    const broken = client.sendFilesToGateway({
      dirname: "x",
      files: [file],
      chunkBytes: 64 * 1024,
      signal: aborter.signal,
      onProgress: (p) => {
        if (p.fileBytes >= 6 * MiB) aborter.abort();
      },
    });
    await expect(within(broken, 10_000, "aborted upload")).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    const target = join(root, "in", "x", "payload.bin");
    await expect(stat(target)).rejects.toMatchObject({ code: "ENOENT" });
    // The gateway dropped the job (rpc.cancel): the handler is idle, the .part holds a prefix.
    await expect(client.ping("idle")).resolves.toBe("idle");
    const part = await stat(`${target}.part`);
    expect(part.size).toBeGreaterThan(0);
    let transferred = 0;
    await client.sendFilesToGateway({ dirname: "x", files: [file], onProgress: (p) => void (transferred = p.transferred) });
    expect(transferred).toBeLessThanOrEqual(source.length - part.size);
    expect(Buffer.compare(await readFile(target), source)).toBe(0);
  });
});
