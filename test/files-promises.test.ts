/**
 * What the File transfer section of the README promises, one case per way a
 * name, a path, a file type, a changing source or an interrupted transfer can
 * go wrong: each ends in a byte-identical file or a reported path with a reason.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFile, mkdir, readFile, readdir, rm, stat, truncate, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { ErrorCode, type Gateway, type TransferReport } from "../runtime/index.js";
import { decode, encode } from "../runtime/internal.js";
import { sha256 } from "./file-helpers.js";
import { controllerFor, startGateway, tempDir, within } from "./helpers.js";
import { RawSession } from "./raw-session.js";

const MiB = 1024 * 1024;

async function setup() {
  const root = await tempDir("swarmnet-promise-root-");
  const local = await tempDir("swarmnet-promise-local-");
  // The regex deadline includes a worker thread's start, which a loaded machine can stretch past the default 1 s.
  const gw = await startGateway({ fileRoots: [root], downloadDir: join(root, "uploads"), maxPoolSize: 10, regexTimeoutMs: 10_000 });
  const controller = controllerFor(gw, { downloadDir: local });
  return { root, local, gw, controller };
}

/** A raw peer speaking the wire protocol (with the delivery layer's header): for cases that need a step between listing and reading. */
async function rawSession(endpoint: string) {
  const peer = new RawSession(endpoint);
  onTestFinished(() => peer.close());
  let nextId = 1;
  /** Sends `message`; collects replies to it until `until` says done (bounded). */
  const request = async (
    message: Record<string, unknown>,
    until: (m: Record<string, unknown>) => boolean = () => true,
  ): Promise<Array<Record<string, unknown>>> => {
    const id = nextId++;
    await peer.send([encode({ ...message, id })]);
    const replies: Array<Record<string, unknown>> = [];
    for (let i = 0; i < 1000; i++) {
      const [envelope] = await within(peer.receive(), 5_000, `answer to ${String(message["type"])}`);
      const reply = decode(envelope!) as Record<string, unknown>;
      if (reply["id"] !== id) continue;
      replies.push(reply);
      if (until(reply)) return replies;
    }
    throw new Error("too many replies");
  };
  await request({ type: "hello", v: 1 });
  return request;
}

function reportOf(promise: Promise<unknown>): Promise<TransferReport> {
  return promise.then(
    () => {
      throw new Error("expected the transfer to report paths not delivered");
    },
    (error: { code?: string; report?: TransferReport }) => {
      expect(error.code).toBe(ErrorCode.FILES_NOT_DELIVERED);
      return error.report!;
    },
  );
}

describe("file transfer promises", () => {
  it("names are bytes: ':', '?', a newline, a trailing dot, aux.c and a 251-byte name arrive byte-exact both ways; a name that is not UTF-8 is reported, not dropped", async () => {
    const { root, local, gw, controller } = await setup();
    const names = ["normal.txt", "a:b.txt", "x?.txt", "new\nline.txt", "trailing.", "aux.c", `${"c".repeat(247)}.txt`];
    const dir = join(root, "names");
    await mkdir(dir);
    const content = new Map<string, Buffer>();
    for (const name of names) {
      const bytes = randomBytes(1000 + name.length);
      content.set(name, bytes);
      await writeFile(join(dir, name), bytes);
    }
    // "b\xff.txt": a valid Linux name that is not UTF-8.
    await writeFile(Buffer.concat([Buffer.from(join(dir, "b")), Buffer.from([0xff]), Buffer.from(".txt")]), "x");
    const client = await controller.getClient();
    let seen: TransferReport | undefined;
    const report = await reportOf(client.getFilesFromGateway({ folder: "names", onReport: (r) => void (seen = r) }));
    expect(seen).toEqual(report);
    expect(report.delivered.map((p) => p.slice(local.length + 1)).sort()).toEqual([...names].sort());
    expect(report.notDelivered).toEqual([
      { path: expect.stringMatching(/^b.*\.txt$/), code: ErrorCode.PATH_NOT_ALLOWED, reason: expect.stringMatching(/not valid UTF-8/) },
    ]);
    expect((await readdir(local)).sort()).toEqual([...names].sort());
    for (const name of names) expect(sha256(await readFile(join(local, name))), JSON.stringify(name)).toBe(sha256(content.get(name)!));

    // And back up: the gateway's file system holds them all.
    const sent = await client.sendFilesToGateway({ dirname: "back", files: names.map((n) => join(local, n)) });
    expect(sent).toBe(names.length);
    expect((await readdir(join(root, "uploads", "back"))).sort()).toEqual([...names].sort());
    for (const name of names) expect(sha256(await readFile(join(root, "uploads", "back", name)))).toBe(sha256(content.get(name)!));
    expect(gw.port).toBeGreaterThan(0);
  });

  it("65 nested folders: the file at the bottom arrives; empty folders are recreated and reported", async () => {
    const { root, local, controller } = await setup();
    const segments = Array.from({ length: 65 }, (_, i) => `d${i}`);
    await mkdir(join(root, "deep", ...segments), { recursive: true });
    await writeFile(join(root, "deep", ...segments, "bottom.txt"), "at the bottom");
    await mkdir(join(root, "deep", "empty", "inner"), { recursive: true });
    const client = await controller.getClient();
    let report: TransferReport | undefined;
    const paths = await client.getFilesFromGateway({ folder: "deep", onReport: (r) => void (report = r) });
    expect(paths).toEqual([join(local, ...segments, "bottom.txt")]);
    expect(await readFile(join(local, ...segments, "bottom.txt"), "utf8")).toBe("at the bottom");
    expect((await stat(join(local, "empty", "inner"))).isDirectory()).toBe(true);
    expect(report!.folders).toEqual([join(local, "empty", "inner")]);
  });

  it("pynetwork's Tutorial 1: an absolute folder inside a root is served; logs/ and ./logs mean logs; a refusal names the roots", async () => {
    const { root, controller } = await setup();
    await mkdir(join(root, "logs"));
    for (const n of ["a.log", "b.log", "c.txt"]) await writeFile(join(root, "logs", n), n);
    const client = await controller.getClient();
    const base = (paths: string[]): string[] => paths.map((p) => p.split("/").pop()!).sort();
    expect(base(await client.getFilesFromGateway({ folder: join(root, "logs"), regex: "\\.log$", downloadDir: await tempDir() }))).toEqual([
      "a.log",
      "b.log",
    ]);
    expect(base(await client.getFilesFromGateway({ folder: "logs/", downloadDir: await tempDir() }))).toEqual(["a.log", "b.log", "c.txt"]);
    expect(base(await client.getFilesFromGateway({ folder: "./logs", downloadDir: await tempDir() }))).toEqual(["a.log", "b.log", "c.txt"]);
    expect(base(await client.getFilesFromGateway({ files: [join(root, "logs", "c.txt")], downloadDir: await tempDir() }))).toEqual([
      "c.txt",
    ]);
    const refused = client.getFilesFromGateway({ folder: "/etc" });
    await expect(refused).rejects.toMatchObject({ code: ErrorCode.PATH_NOT_ALLOWED });
    await expect(refused).rejects.toThrow(root);
  });

  it("ifExists: overwrite (the default) replaces, skip leaves and reports, rename lands NAME (1).ext, error reports SWARMNET_FILE_EXISTS; uploads the same", async () => {
    const { root, local, controller } = await setup();
    await mkdir(join(root, "docs"));
    await writeFile(join(root, "docs", "q3.txt"), "remote");
    const client = await controller.getClient();
    const target = join(local, "q3.txt");
    const get = (ifExists?: "overwrite" | "skip" | "rename" | "error") =>
      client.getFilesFromGateway({ files: ["docs/q3.txt"], ...(ifExists ? { ifExists } : {}) });
    await writeFile(target, "local edit");
    await expect(get()).resolves.toEqual([target]);
    expect(await readFile(target, "utf8")).toBe("remote");
    await writeFile(target, "local edit");
    let skipped: TransferReport | undefined;
    await expect(
      client.getFilesFromGateway({ files: ["docs/q3.txt"], ifExists: "skip", onReport: (r) => void (skipped = r) }),
    ).resolves.toEqual([]);
    expect(skipped!.skipped).toEqual([target]);
    expect(await readFile(target, "utf8")).toBe("local edit");
    await expect(get("rename")).resolves.toEqual([join(local, "q3 (1).txt")]);
    expect(await readFile(join(local, "q3 (1).txt"), "utf8")).toBe("remote");
    const refused = await reportOf(get("error"));
    expect(refused.notDelivered).toEqual([{ path: "docs/q3.txt", code: ErrorCode.FILE_EXISTS, reason: expect.any(String) }]);
    expect(await readFile(target, "utf8")).toBe("local edit");
    await expect(client.getFilesFromGateway({ files: ["docs/q3.txt"], ifExists: "sometimes" as "skip" })).rejects.toMatchObject({
      code: ErrorCode.INVALID_ARGUMENT,
    });

    // Uploads: the gateway applies the same rule.
    await client.sendFilesToGateway({ dirname: "in", files: [target] });
    await writeFile(target, "second version");
    const upRefused = await reportOf(client.sendFilesToGateway({ dirname: "in", files: [target], ifExists: "error" }));
    expect(upRefused.notDelivered).toEqual([{ path: target, code: ErrorCode.FILE_EXISTS, reason: expect.any(String) }]);
    await expect(client.sendFilesToGateway({ dirname: "in", files: [target], ifExists: "skip" })).resolves.toBe(0);
    expect(await readFile(join(root, "uploads", "in", "q3.txt"), "utf8")).toBe("local edit");
    await expect(client.sendFilesToGateway({ dirname: "in", files: [target] })).resolves.toBe(1);
    expect(await readFile(join(root, "uploads", "in", "q3.txt"), "utf8")).toBe("second version");
  });

  it("a .part of another version of the source is never spliced (small bare .part, or a journal naming another size and mtime); the same source resumes only what is missing", async () => {
    const { root, local, controller } = await setup();
    await mkdir(join(root, "docs"));
    // Small: a 2 MiB .part from an older q3.xlsx, the gateway now serving a 5 MiB one.
    const q3 = randomBytes(5 * MiB);
    await writeFile(join(root, "docs", "q3.xlsx"), q3);
    await writeFile(join(local, "q3.xlsx.part"), randomBytes(2 * MiB));
    const client = await controller.getClient();
    let report: TransferReport | undefined;
    await client.getFilesFromGateway({ files: ["docs/q3.xlsx"], onReport: (r) => void (report = r) });
    expect(sha256(await readFile(join(local, "q3.xlsx")))).toBe(sha256(q3));
    expect(report).toMatchObject({ bytesSent: q3.length, bytesResumed: 0 });

    // Large: interrupted once, so a journal exists; then the source changes (same size, new bytes, new mtime).
    const big = join(root, "docs", "big.bin");
    await writeFile(big, randomBytes(24 * MiB));
    const interrupt = async (): Promise<number> => {
      const aborter = new AbortController();
      let held = 0;
      const broken = client.getFilesFromGateway({
        files: ["docs/big.bin"],
        chunkBytes: 256 * 1024,
        windowBytes: MiB,
        signal: aborter.signal,
        onProgress: (p) => {
          if (p.fileBytes >= 6 * MiB && !aborter.signal.aborted) aborter.abort();
        },
        onReport: (r) => void (held = r.bytesSent + r.bytesResumed),
      });
      await expect(within(broken, 20_000, "interrupted download")).rejects.toMatchObject({ code: ErrorCode.ABORTED });
      await expect(stat(join(local, "big.bin"))).rejects.toMatchObject({ code: "ENOENT" });
      const journal = JSON.parse(await readFile(join(local, "big.bin.part.json"), "utf8")) as { ranges: Array<[number, number]> };
      expect(journal.ranges.length).toBeGreaterThan(0);
      return held;
    };
    await interrupt();
    const changed = randomBytes(24 * MiB);
    await writeFile(big, changed);
    await utimes(big, new Date(), new Date(Date.now() + 60_000));
    await client.getFilesFromGateway({ files: ["docs/big.bin"], onReport: (r) => void (report = r) });
    expect(sha256(await readFile(join(local, "big.bin")))).toBe(sha256(changed));
    expect(report).toMatchObject({ bytesSent: changed.length, bytesResumed: 0 });

    // The same source, interrupted and run again: only the missing bytes cross the wire.
    await rm(join(local, "big.bin"));
    await interrupt();
    await client.getFilesFromGateway({ files: ["docs/big.bin"], onReport: (r) => void (report = r) });
    expect(sha256(await readFile(join(local, "big.bin")))).toBe(sha256(changed));
    expect(report!.bytesResumed).toBeGreaterThanOrEqual(6 * MiB);
    expect(report!.bytesSent + report!.bytesResumed).toBe(changed.length);
    expect((await readdir(local)).filter((n) => n.includes(".part"))).toEqual([]);
  });

  it("uploads: an interrupted upload resumes only its missing ranges, and a changed source starts over on the gateway", async () => {
    const { root, controller } = await setup();
    const src = await tempDir("swarmnet-promise-src-");
    const file = join(src, "payload.bin");
    await writeFile(file, randomBytes(20 * MiB));
    const client = await controller.getClient();
    const interrupted = async (): Promise<void> => {
      const aborter = new AbortController();
      const broken = client.sendFilesToGateway({
        dirname: "x",
        files: [file],
        chunkBytes: 256 * 1024,
        signal: aborter.signal,
        onProgress: (p) => {
          if (p.fileBytes >= 6 * MiB && !aborter.signal.aborted) aborter.abort();
        },
      });
      await expect(within(broken, 20_000, "interrupted upload")).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    };
    await interrupted();
    let report: TransferReport | undefined;
    await client.sendFilesToGateway({ dirname: "x", files: [file], onReport: (r) => void (report = r) });
    expect(sha256(await readFile(join(root, "uploads", "x", "payload.bin")))).toBe(sha256(await readFile(file)));
    expect(report!.bytesResumed).toBeGreaterThan(0);
    expect(report!.bytesSent + report!.bytesResumed).toBe(20 * MiB);

    await rm(join(root, "uploads", "x", "payload.bin"));
    await interrupted();
    const changed = randomBytes(20 * MiB);
    await writeFile(file, changed);
    await utimes(file, new Date(), new Date(Date.now() + 60_000));
    await client.sendFilesToGateway({ dirname: "x", files: [file], onReport: (r) => void (report = r) });
    expect(sha256(await readFile(join(root, "uploads", "x", "payload.bin")))).toBe(sha256(changed));
    expect(report).toMatchObject({ bytesResumed: 0, bytesSent: changed.length });
  });

  it("a FIFO in the folder is reported and the rest delivered; a file replaced by a FIFO after the listing is refused at once, again and again, and the gateway still lists and stops", async () => {
    const { root, local, gw, controller } = await setup();
    await mkdir(join(root, "box"));
    await writeFile(join(root, "box", "a.txt"), "a");
    execFileSync("mkfifo", [join(root, "box", "pipe")]);
    const client = await controller.getClient();
    const report = await reportOf(within(client.getFilesFromGateway({ folder: "box" }), 10_000, "download next to a FIFO"));
    expect(report.delivered).toEqual([join(local, "a.txt")]);
    expect(report.notDelivered).toEqual([{ path: "pipe", code: ErrorCode.FILE_ACCESS, reason: expect.stringMatching(/FIFO/) }]);

    const request = await rawSession(gw.endpoint);
    for (let round = 0; round < 5; round++) {
      const name = `swap-${round}.txt`;
      await writeFile(join(root, "box", name), "soon a FIFO");
      const [listing] = await request({ type: "file.list", folder: "box" });
      expect(listing).toMatchObject({ type: "file.listing" });
      await rm(join(root, "box", name));
      execFileSync("mkfifo", [join(root, "box", name)]);
      const replies = await request(
        { type: "file.get", folder: "box", files: [[name, 0, 11]], chunkBytes: 1024, windowBytes: 4096, windowFiles: 4 },
        (m) => m["type"] === "file.done" || m["type"] === "error",
      );
      expect(replies.map((r) => r["type"])).toEqual(["file.error", "file.done"]);
      expect(replies[0]).toMatchObject({ code: ErrorCode.FILE_ACCESS, message: expect.stringMatching(/FIFO/) });
    }
    await expect(
      within(client.getFilesFromGateway({ files: ["box/a.txt"], downloadDir: await tempDir() }), 5_000, "listing after FIFOs"),
    ).resolves.toHaveLength(1);
    await within(gw.stop(), 10_000, "gateway stop after FIFOs");
  });

  it("a log appended to while it downloads with verify arrives as exactly the bytes listed; a source cut while being read is reported as changed (size X -> Y)", async () => {
    const { root, local, gw, controller } = await setup();
    const log = join(root, "app.log");
    await writeFile(log, randomBytes(4 * MiB));
    const client = await controller.getClient();
    let appends = 0;
    let writing = true;
    const writer = (async () => {
      while (writing && appends < 10_000) {
        await appendFile(log, `line ${appends++}\n`);
      }
    })();
    const paths = await within(
      client.getFilesFromGateway({ files: ["app.log"], verify: true, chunkBytes: 64 * 1024 }),
      20_000,
      "verified download of a growing log",
    );
    writing = false;
    await writer;
    const got = await readFile(paths[0]!);
    const now = await readFile(log);
    expect(got.length).toBeGreaterThanOrEqual(4 * MiB);
    expect(Buffer.compare(got, now.subarray(0, got.length))).toBe(0);
    expect(paths[0]).toBe(join(local, "app.log"));

    // Cut short between the listing and the read: the file is reported, nothing is renamed.
    const request = await rawSession(gw.endpoint);
    await writeFile(join(root, "cut.bin"), randomBytes(2 * MiB));
    const [listing] = await request({ type: "file.list", files: ["cut.bin"] });
    expect(listing).toMatchObject({ files: [["cut.bin", 2 * MiB]] });
    await truncate(join(root, "cut.bin"), MiB);
    const replies = await request(
      { type: "file.get", files: [["cut.bin", 0, 2 * MiB]], chunkBytes: 65536, windowBytes: 8 * MiB, windowFiles: 4 },
      (m) => m["type"] === "file.done" || m["type"] === "error",
    );
    expect(replies.at(-2)).toMatchObject({
      type: "file.error",
      code: ErrorCode.FILE_CHANGED,
      message: expect.stringContaining(`size ${2 * MiB} -> ${MiB}`),
    });
  });

  it("a download folder that cannot be made is a FileAccessError naming the folder and the cause", async () => {
    const { root, controller } = await setup();
    await mkdir(join(root, "docs"));
    await writeFile(join(root, "docs", "a.txt"), "a");
    const blocker = join(await tempDir(), "a-file");
    await writeFile(blocker, "not a folder");
    const client = await controller.getClient();
    const failed = client.getFilesFromGateway({ folder: "docs", downloadDir: join(blocker, "downloads") });
    await expect(failed).rejects.toMatchObject({ code: ErrorCode.FILE_ACCESS });
    await expect(failed).rejects.toThrow(join(blocker, "downloads"));
    await expect(failed).rejects.toThrow(/ENOTDIR/);
  });

  it("a swarm spread over two gateways fetches only from the gateway that listed the files (split ranges included), byte-identical with verify", async () => {
    const [rootA, rootB] = [await tempDir("swarmnet-gwa-"), await tempDir("swarmnet-gwb-")];
    const local = await tempDir("swarmnet-two-local-");
    const expected = new Map<string, string>();
    for (const [r, keep] of [
      [rootA, true],
      [rootB, false],
    ] as const) {
      await mkdir(join(r, "logs"));
      for (let i = 0; i < 8; i++) {
        const bytes = randomBytes(i === 0 ? 3 * MiB : 64 * 1024);
        await writeFile(join(r, "logs", `f${i}.bin`), bytes);
        if (keep) expected.set(`f${i}.bin`, sha256(bytes));
      }
    }
    const gwA = await startGateway({ fileRoots: [rootA], maxPoolSize: 4 });
    const gwB = await startGateway({ fileRoots: [rootB], maxPoolSize: 4 });
    const controller = controllerFor([gwA, gwB], { downloadDir: local });
    const swarm = await controller.getSwarm(4);
    expect(new Set(swarm.clients.map((c) => c.endpoint)).size).toBe(2);
    expect(swarm.clients[0]!.endpoint).toBe(gwA.endpoint);
    await within(
      swarm.getFilesFromGateway({ folder: "logs", verify: true, splitBytes: MiB, chunkBytes: 256 * 1024 }),
      20_000,
      "swarm over two gateways",
    );
    for (const [name, hash] of expected) expect(sha256(await readFile(join(local, name))), name).toBe(hash);
  });

  it("two downloads of same-named folders from two gateways into one folder at once never share a .part: each file is one gateway's whole copy; a per-call download folder keeps them apart", async () => {
    const gateways: Gateway[] = [];
    const versions = new Map<string, Set<string>>();
    for (let g = 0; g < 2; g++) {
      const r = await tempDir(`swarmnet-same-${g}-`);
      await mkdir(join(r, "logs"));
      for (let i = 0; i < 12; i++) {
        const bytes = randomBytes(i === 0 ? 12 * MiB : 128 * 1024);
        await writeFile(join(r, "logs", `f${i}.bin`), bytes);
        versions.set(`f${i}.bin`, (versions.get(`f${i}.bin`) ?? new Set()).add(sha256(bytes)));
      }
      gateways.push(await startGateway({ fileRoots: [r] }));
    }
    const local = await tempDir("swarmnet-same-local-");
    const controller = controllerFor(gateways, { downloadDir: local });
    const [c0, c1] = [
      await controller.getClient({ endpoint: gateways[0]!.endpoint }),
      await controller.getClient({ endpoint: gateways[1]!.endpoint }),
    ];
    const results = await within(
      Promise.allSettled([
        c0.getFilesFromGateway({ folder: "logs", verify: true }),
        c1.getFilesFromGateway({ folder: "logs", verify: true }),
      ]),
      30_000,
      "two downloads at once",
    );
    for (const r of results) {
      if (r.status === "rejected") {
        const e = r.reason as { code: string; report: TransferReport };
        expect(e.code).toBe(ErrorCode.FILES_NOT_DELIVERED);
        for (const n of e.report.notDelivered) expect(n.code).toBe(ErrorCode.FILE_BUSY);
      }
    }
    const names = (await readdir(local)).sort();
    expect(names).toEqual([...versions.keys()].sort());
    for (const name of names) expect(versions.get(name)!.has(sha256(await readFile(join(local, name)))), name).toBe(true);

    const [d0, d1] = [await tempDir(), await tempDir()];
    await within(
      Promise.all([
        c0.getFilesFromGateway({ folder: "logs", downloadDir: d0 }),
        c1.getFilesFromGateway({ folder: "logs", downloadDir: d1 }),
      ]),
      30_000,
      "apart",
    );
    for (const name of names) expect(sha256(await readFile(join(d0, name)))).not.toBe(sha256(await readFile(join(d1, name))));
  });

  it("a swarm upload splits a large file into byte ranges written by several handlers at once into one .part; interrupted, it resumes", async () => {
    const { root, gw, controller } = await setup();
    const src = await tempDir("swarmnet-split-up-");
    const file = join(src, "big.bin");
    const bytes = randomBytes(24 * MiB);
    await writeFile(file, bytes);
    const swarm = await controller.getSwarm(3);
    const aborter = new AbortController();
    let receiving = 0;
    const broken = swarm.sendFilesToGateway({
      dirname: "up",
      files: [file],
      splitBytes: 4 * MiB,
      chunkBytes: 256 * 1024,
      signal: aborter.signal,
      onProgress: (p) => {
        if (aborter.signal.aborted || p.transferred < 6 * MiB) return;
        receiving = gw.snapshot().handlers.filter((h) => h.state.includes("uploading")).length;
        aborter.abort();
      },
    });
    await expect(within(broken, 20_000, "interrupted swarm upload")).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    expect(receiving).toBeGreaterThanOrEqual(2);
    let report: TransferReport | undefined;
    await within(
      swarm.sendFilesToGateway({ dirname: "up", files: [file], splitBytes: 4 * MiB, onReport: (r) => void (report = r) }),
      20_000,
      "resumed swarm upload",
    );
    expect(sha256(await readFile(join(root, "uploads", "up", "big.bin")))).toBe(sha256(bytes));
    expect(report!.bytesResumed).toBeGreaterThan(0);
    expect(report!.bytesSent + report!.bytesResumed).toBe(bytes.length);
    expect(await readdir(join(root, "uploads", "up"))).toEqual(["big.bin"]);
  });
});
