/**
 * Cases the issues did not list, tried as rsync/aria2 users would: user files
 * named like a transfer's own (a journal, a lock, another file's `.part`),
 * a `.part` replaced behind a transfer's back, ...
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, openSync, writeSync } from "node:fs";
import { mkdir, readFile, readdir, realpath, rename, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PartFile } from "../actors/part-file.js";
import { swarmGetFiles, swarmSendFiles, uploadTasks, type TransferChannel } from "../runtime/files.js";
import { MAX_FILES_PER_REQUEST } from "../protocol/limits.js";
import { ErrorCode, type TransferReport } from "../runtime/index.js";
import { BIN, type CliResult } from "./cli-helpers.js";
import { hashTree, sha256 } from "./file-helpers.js";
import { controllerFor, startGateway, tempDir, within } from "./helpers.js";

const MiB = 1024 * 1024;

async function setup() {
  const root = await tempDir("swarmnet-break-root-");
  const local = await tempDir("swarmnet-break-local-");
  const gw = await startGateway({ fileRoots: [root], downloadDir: join(root, "uploads"), regexTimeoutMs: 10_000 });
  const controller = controllerFor(gw, { downloadDir: local });
  return { root, local, gw, controller };
}

/** The report of a transfer, whether it resolved or rejected with FilesNotDeliveredError. */
async function reportOf(run: (onReport: (r: TransferReport) => void) => Promise<unknown>): Promise<TransferReport> {
  let report: TransferReport | undefined;
  await run((r) => void (report = r)).catch((e: { code?: string }) => {
    expect(e.code).toBe(ErrorCode.FILES_NOT_DELIVERED);
  });
  return report!;
}

/** `channel`, each request going out `ms` later (a busy or slow client of a swarm), and each listing answered `listMs` later (a gateway hashing big files). */
function late(channel: TransferChannel, ms: number, listMs = 0): TransferChannel {
  return {
    endpoint: channel.endpoint,
    downloadDir: channel.downloadDir,
    verbose: channel.verbose,
    timeoutMs: channel.timeoutMs,
    list: async (message, timeoutMs) => {
      await new Promise((resolve) => setTimeout(resolve, listMs));
      return channel.list(message, timeoutMs);
    },
    run: async (message, sink, timeoutMs) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return channel.run(message, sink, timeoutMs);
    },
  };
}

/** `swarmnet ARGS` in `cwd`, to its exit (bounded). */
function swarmnet(args: readonly string[], cwd?: string): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, SWARMNET_QUIET: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => void (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => void (stderr += d.toString()));
  return within(
    new Promise<CliResult>((resolve) => child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr }))),
    20_000,
    `swarmnet ${args.join(" ")}`,
  );
}

describe("file transfer, broken on purpose", () => {
  it("user files named like a journal or a lock (car.part.json, x.part.lock, y.part.json~) are sent, not skipped in silence", async () => {
    const { root, local, controller } = await setup();
    const dir = join(root, "cfg");
    await mkdir(dir);
    const names = ["car.part.json", "x.part.lock", "y.part.json~", "y.part", "plain.txt"];
    for (const n of names) await writeFile(join(dir, n), `content of ${n}`);
    const client = await controller.getClient();
    const got = await client.getFilesFromGateway({ folder: "cfg" });
    expect(got.map((p) => p.slice(local.length + 1)).sort()).toEqual([...names].sort());
    for (const n of names) expect(await readFile(join(local, n), "utf8")).toBe(`content of ${n}`);
  });

  it("big.bin and a file named big.bin.part in one folder: never the other's bytes under a final name; the clash is reported, and a second run delivers it", async () => {
    const { root, local, controller } = await setup();
    const dir = join(root, "pair");
    await mkdir(dir);
    const big = randomBytes(9 * MiB);
    const small = randomBytes(1000);
    await writeFile(join(dir, "big.bin"), big);
    await writeFile(join(dir, "big.bin.part"), small);
    const expected = new Map([
      ["big.bin", sha256(big)],
      ["big.bin.part", sha256(small)],
    ]);
    const client = await controller.getClient();
    const check = async (report: TransferReport): Promise<void> => {
      for (const p of report.delivered) expect(sha256(await readFile(p)), p).toBe(expected.get(p.slice(local.length + 1)));
      for (const { path, code } of report.notDelivered) {
        expect(path).toBe("big.bin.part");
        expect(code).toBe(ErrorCode.FILE_BUSY);
      }
      expect(report.delivered.length + report.skipped.length + report.notDelivered.length).toBe(2);
    };
    const first = await reportOf((onReport) => client.getFilesFromGateway({ folder: "pair", onReport }));
    await check(first);
    // What is in place is left alone: the rest arrives.
    const second = await reportOf((onReport) => client.getFilesFromGateway({ folder: "pair", ifExists: "skip", onReport }));
    await check(second);
    expect((await readdir(local)).sort()).toEqual(["big.bin", "big.bin.part"]);
    for (const [name, hash] of expected) expect(sha256(await readFile(join(local, name)))).toBe(hash);
  });

  it("a .part replaced by another writer during the transfer is not renamed into place (FILE_BUSY), nor removed", async () => {
    const dir = await tempDir("swarmnet-break-part-");
    const bytes = randomBytes(2 * MiB);
    for (const size of [bytes.length, 9 * MiB]) {
      const target = join(dir, `t${size}.bin`);
      const part = await PartFile.acquire({ target, source: { size, mtimeMs: 1 } });
      const data = size === bytes.length ? bytes : Buffer.alloc(size, 7);
      await part.write(0, data);
      // Another process downloading a file named like this .part renames its own copy over it.
      await writeFile(join(dir, "other"), "someone else's bytes");
      await rename(join(dir, "other"), part.part);
      await expect(part.finish()).rejects.toMatchObject({ code: ErrorCode.FILE_BUSY });
      await part.release();
      expect(await readdir(dir)).not.toContain(`t${size}.bin`);
      expect(await readFile(part.part, "utf8")).toBe("someone else's bytes");
    }
  });

  it("a journal does not resume a .part that was replaced since (same name, another file)", async () => {
    const dir = await tempDir("swarmnet-break-journal-");
    const target = join(dir, "big.bin");
    const source = { size: 9 * MiB, mtimeMs: 5 };
    const first = await PartFile.acquire({ target, source });
    await first.write(0, randomBytes(4 * MiB));
    await first.release();
    // Another writer put a different file of the same length under the .part's name.
    await writeFile(join(dir, "other"), randomBytes(4 * MiB));
    await rename(join(dir, "other"), first.part);
    const again = await PartFile.acquire({ target, source });
    expect(again.resumed).toBe(0);
    await again.release();
  });

  it("a swarm upload split below 8 MiB (splitBytes: 1 MiB) whose second range comes after the first is done: the file is in place, not reported delivered and lost", async () => {
    const { root, local, controller } = await setup();
    const bytes = randomBytes(4 * MiB);
    await writeFile(join(local, "a.bin"), bytes);
    const [c1, c2] = [await controller.getClient(), await controller.getClient()];
    let report: TransferReport | undefined;
    const sent = await swarmSendFiles([c1.transferChannel, late(c2.transferChannel, 400)], {
      dirname: "d",
      files: [join(local, "a.bin")],
      splitBytes: MiB,
      onReport: (r) => void (report = r),
    });
    expect(sent).toBe(1);
    expect(report?.delivered).toEqual(["d/a.bin"]);
    expect(sha256(await readFile(join(root, "uploads", "d", "a.bin")))).toBe(sha256(bytes));
    expect(await readdir(join(root, "uploads", "d"))).toEqual(["a.bin"]);
  });

  it('an upload with ifExists: "rename" reports the name it landed under (d/a (1).txt), not the old file\'s', async () => {
    const { root, local, controller } = await setup();
    await mkdir(join(root, "uploads", "d"), { recursive: true });
    await writeFile(join(root, "uploads", "d", "a.txt"), "old");
    await writeFile(join(local, "a.txt"), "new");
    await writeFile(join(local, "b.txt"), "b");
    const client = await controller.getClient();
    let report: TransferReport | undefined;
    const sent = await client.sendFilesToGateway({
      dirname: "d",
      files: [join(local, "a.txt"), join(local, "b.txt")],
      ifExists: "rename",
      onReport: (r) => void (report = r),
    });
    expect(sent).toBe(2);
    expect([...report!.delivered].sort()).toEqual(["d/a (1).txt", "d/b.txt"]);
    for (const path of report!.delivered) {
      const name = path.slice(2);
      expect(await readFile(join(root, "uploads", path), "utf8")).toBe(name === "b.txt" ? "b" : "new");
    }
    expect(await readFile(join(root, "uploads", "d", "a.txt"), "utf8")).toBe("old");
  });

  it("put of a folder: a FIFO, a broken symlink, a symlink to a folder and a name that is not UTF-8 are printed with their reason (exit 23), not skipped in silence; `put ..` uploads the parent under its own name", async () => {
    const { root, gw } = await setup();
    const src = await tempDir("swarmnet-break-src-");
    const tree = join(src, "tree");
    await mkdir(join(tree, "sub"), { recursive: true });
    await writeFile(join(tree, "a.txt"), "a");
    await writeFile(join(tree, "sub", "b.txt"), "b");
    execFileSync("mkfifo", [join(tree, "fifo")]);
    await symlink(join(src, "nowhere"), join(tree, "broken"));
    await symlink(join(tree, "sub"), join(tree, "loop"));
    await writeFile(Buffer.concat([Buffer.from(join(tree, "bad")), Buffer.from([0xff]), Buffer.from(".txt")]), "x");
    const r = await swarmnet(["put", "--dirname", "d", tree, "-g", gw.endpoint, "-q"]);
    expect(r.code, r.stderr).toBe(23);
    expect(r.stdout).toMatch(/uploaded 2 files/);
    expect(r.stderr).toMatch(/not uploaded: ".*tree\/fifo": .*FIFO.*\(SWARMNET_FILE_ACCESS\)/);
    expect(r.stderr).toMatch(/not uploaded: ".*tree\/broken": .*broken symlink.*\(SWARMNET_FILE_NOT_FOUND\)/);
    expect(r.stderr).toMatch(/not uploaded: ".*tree\/loop": .*symlink to a folder.*\(SWARMNET_FILE_ACCESS\)/);
    expect(r.stderr).toMatch(/not uploaded: ".*tree\/bad.*": .*not valid UTF-8.*\(SWARMNET_PATH_NOT_ALLOWED\)/);
    expect(r.stderr).toContain("some files could not be transferred (4 of 6)");
    expect(Object.fromEntries(await hashTree(join(root, "uploads", "d")))).toEqual({
      "tree/a.txt": sha256(Buffer.from("a")),
      "tree/sub/b.txt": sha256(Buffer.from("b")),
    });

    const parent = await swarmnet(["put", "--dirname", "e", "..", "-g", gw.endpoint, "-q"], join(src, "tree", "sub"));
    expect(parent.code, parent.stderr).toBe(23);
    expect(Object.keys(Object.fromEntries(await hashTree(join(root, "uploads", "e")))).sort()).toEqual(["tree/a.txt", "tree/sub/b.txt"]);
  }, 60_000);

  it("an upload of more files than one request may carry (MAX_FILES_PER_REQUEST) goes in several requests, not one the gateway refuses as a protocol error; a download of too many named files is an InvalidArgumentError up front", async () => {
    const files = Array.from({ length: 2 * MAX_FILES_PER_REQUEST + 1 }, (_, i) => ({ size: i % 3, name: `f${i}` }));
    for (const clients of [1, 4]) {
      const tasks = uploadTasks(files, clients, { splitBytes: 32 * MiB, chunkBytes: MiB });
      expect(Math.max(...tasks.map((t) => t.length))).toBeLessThanOrEqual(MAX_FILES_PER_REQUEST);
      expect(new Set(tasks.flatMap((t) => t.map((e) => e.file.name))).size).toBe(files.length);
    }
    const { controller } = await setup();
    const client = await controller.getClient();
    const many = Array.from({ length: MAX_FILES_PER_REQUEST + 1 }, (_, i) => `f${i}`);
    await expect(client.getFilesFromGateway({ files: many })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
  });

  it('ifExists: "rename" when a renamed copy would take the name of another file of the same transfer (a.txt -> a (1).txt beside a (1).txt): both land, under distinct names, downloads and uploads', async () => {
    const { root, local, controller } = await setup();
    await mkdir(join(root, "r"));
    await writeFile(join(root, "r", "a.txt"), "remote a");
    await writeFile(join(root, "r", "a (1).txt"), "remote a1");
    await writeFile(join(local, "a.txt"), "local a");
    const client = await controller.getClient();
    const got = await client.getFilesFromGateway({ folder: "r", ifExists: "rename" });
    const contents = async (paths: readonly string[]): Promise<string[]> =>
      (await Promise.all(paths.map((p) => readFile(p, "utf8")))).sort();
    expect(got).toHaveLength(2);
    expect(new Set(got).size).toBe(2);
    expect(await contents(got)).toEqual(["remote a", "remote a1"]);
    expect(await readFile(join(local, "a.txt"), "utf8")).toBe("local a");

    const up = join(root, "uploads", "u");
    await mkdir(up, { recursive: true });
    await writeFile(join(up, "a.txt"), "gateway a");
    // The same size and mtime (as `cp -p` or tar leave them): still two sources, never one .part.
    await writeFile(join(root, "r", "a.txt"), "remote a0");
    await utimes(join(root, "r", "a.txt"), 1_700_000_000, 1_700_000_000);
    await utimes(join(root, "r", "a (1).txt"), 1_700_000_000, 1_700_000_000);
    let report: TransferReport | undefined;
    const sent = await client.sendFilesToGateway({
      dirname: "u",
      files: [join(root, "r", "a.txt"), join(root, "r", "a (1).txt")],
      ifExists: "rename",
      onReport: (r) => void (report = r),
    });
    expect(sent).toBe(2);
    expect(new Set(report!.delivered).size).toBe(2);
    expect(await contents(report!.delivered.map((p) => join(root, "uploads", p)))).toEqual(["remote a0", "remote a1"]);
    expect(await readFile(join(up, "a.txt"), "utf8")).toBe("gateway a");
  });

  it("an abort (Ctrl-C) before the requests are on the wire (during the listing, a local --verify hash, or a request still to start) stops the call with AbortedError, not ignored until everything was transferred", async () => {
    const { root, local, controller } = await setup();
    await mkdir(join(root, "f"));
    await writeFile(join(root, "f", "a.bin"), randomBytes(1000));
    await writeFile(join(local, "big.bin"), randomBytes(64 * MiB));
    const client = await controller.getClient();
    const aborted = async (run: (signal: AbortSignal) => Promise<unknown>, afterMs: number): Promise<number> => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), afterMs);
      const t0 = performance.now();
      await expect(run(ac.signal)).rejects.toMatchObject({ code: ErrorCode.ABORTED });
      return performance.now() - t0;
    };
    // A listing that takes 1 s (the gateway hashing for verify): the abort at 50 ms ends the call at once.
    const slowList = late(client.transferChannel, 0, 1_000);
    expect(await aborted((signal) => swarmGetFiles([slowList], { folder: "f", downloadDir: join(local, "dl"), signal }), 50)).toBeLessThan(
      800,
    );
    // A request that goes out after the abort.
    const slowRun = late(client.transferChannel, 300);
    await aborted((signal) => swarmSendFiles([slowRun], { dirname: "d", files: [join(local, "big.bin")], signal }), 50);
    // Hashing 64 MiB locally for verify.
    await aborted((signal) => client.sendFilesToGateway({ dirname: "d", files: [join(local, "big.bin")], verify: true, signal }), 5);
    expect(await readdir(local)).toEqual(["big.bin"]);
    expect(await readdir(join(root, "uploads", "d")).catch(() => [])).not.toContain("big.bin");
  });

  it("a listing of a folder the gateway is receiving an upload into does not offer the upload's temp file (x.bin.<pid>.part) as a file", async () => {
    const { root, local, controller } = await setup();
    const target = join(await realpath(root), "uploads", "d", "x.bin");
    await mkdir(join(root, "uploads", "d"), { recursive: true });
    await writeFile(join(root, "uploads", "d", "done.txt"), "done");
    // An upload under way in the gateway's process: half of a small file written.
    const part = await PartFile.acquire({ target, source: { size: 2000, mtimeMs: 1 } });
    await part.write(0, randomBytes(1000));
    expect(await readdir(join(root, "uploads", "d"))).toContain(`x.bin.${process.pid}.part`);
    const client = await controller.getClient();
    const got = await client.getFilesFromGateway({ folder: "uploads" });
    expect(got.map((p) => p.slice(local.length + 1))).toEqual(["d/done.txt"]);
    await part.release();
  });

  it("a source rewritten in place (same size) while it is being read arrives whole or is reported FILE_CHANGED, never torn (half old, half new) under its name; downloads and uploads", async () => {
    const { root, local, controller } = await setup();
    const client = await controller.getClient();
    const size = 4 * MiB;
    /** Rewrites `path` in place (its first and last MiB), once, when the first chunk has arrived: the reader is past the first and, a window ahead at most, not yet at the last. */
    const rewriteOnce = (path: string): (() => void) => {
      let done = false;
      return () => {
        if (done) return;
        done = true;
        const fd = openSync(path, "r+");
        writeSync(fd, Buffer.alloc(MiB, 0xab), 0, MiB, 0);
        writeSync(fd, Buffer.alloc(MiB, 0xab), 0, MiB, size - MiB);
        closeSync(fd);
      };
    };
    const tune = { chunkBytes: 256 * 1024, windowBytes: MiB };
    const check = async (report: TransferReport, landed: string, before: Buffer, source: string): Promise<void> => {
      const after = await readFile(source);
      if (report.notDelivered.length > 0) {
        expect(report.notDelivered[0]!.code).toBe(ErrorCode.FILE_CHANGED);
        await expect(readFile(landed)).rejects.toMatchObject({ code: "ENOENT" });
      } else {
        expect([sha256(before), sha256(after)]).toContain(sha256(await readFile(landed)));
      }
    };

    const remote = join(root, "db.bin");
    const remoteBytes = randomBytes(size);
    await writeFile(remote, remoteBytes);
    // An mtime in the past: the rewrite moves it even within one tick of the file system's clock.
    await utimes(remote, 1_700_000_000, 1_700_000_000);
    const down = await reportOf((onReport) =>
      client.getFilesFromGateway({ files: ["db.bin"], ...tune, onProgress: rewriteOnce(remote), onReport }),
    );
    await check(down, join(local, "db.bin"), remoteBytes, remote);

    const mine = join(local, "mine.bin");
    const mineBytes = randomBytes(size);
    await writeFile(mine, mineBytes);
    await utimes(mine, 1_700_000_000, 1_700_000_000);
    const up = await reportOf((onReport) =>
      client.sendFilesToGateway({ dirname: "u", files: [mine], ...tune, onProgress: rewriteOnce(mine), onReport }),
    );
    await check(up, join(root, "uploads", "u", "mine.bin"), mineBytes, mine);
  });

  it('get --out that cannot be used locally (a dangling symlink, a path through a file) is bad usage (exit 2) naming the cause, not exit 4 ("the gateway answered with an error")', async () => {
    const { root, gw } = await setup();
    await writeFile(join(root, "a.txt"), "a");
    const out = await tempDir("swarmnet-break-out-");
    await symlink(join(out, "nowhere"), join(out, "dangling"));
    await writeFile(join(out, "file"), "x");
    for (const [dir, why] of [
      [join(out, "dangling"), /symlink to nothing/],
      [join(out, "file", "sub"), /is not a folder/],
    ] as const) {
      const r = await swarmnet(["get", "--files", "a.txt", "--out", dir, "-g", gw.endpoint, "-q"]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(why);
    }
  });
});
