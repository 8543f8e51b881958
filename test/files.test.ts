import { mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ErrorCode, type FileProgress } from "../runtime/index.js";
import { ProgressBar } from "../runtime/progress-bar.js";
import { MIXED_TREE, hashTree, writeTree } from "./file-helpers.js";
import { controllerFor, startGateway, tempDir, within } from "./helpers.js";

async function setup(options: { gatewayDownloads?: string; regexTimeoutMs?: number } = {}) {
  const root = await tempDir("swarmnet-root-");
  const local = await tempDir("swarmnet-local-");
  const served = join(root, "logs");
  const hashes = await writeTree(served);
  const gw = await startGateway({
    fileRoots: [root],
    downloadDir: options.gatewayDownloads ?? join(root, "uploads"),
    maxPoolSize: 10,
    ...(options.regexTimeoutMs ? { regexTimeoutMs: options.regexTimeoutMs } : {}),
  });
  const controller = controllerFor(gw, { downloadDir: local });
  return { root, local, served, hashes, gw, controller };
}

describe("file transfer", () => {
  it("one client downloads a folder tree byte-identical, resolves with the local paths, and leaves no .part", async () => {
    const { local, hashes, controller } = await setup();
    const client = await controller.getClient();
    const paths = await within(client.getFilesFromGateway({ folder: "logs" }), 20_000, "download");
    expect(paths).toHaveLength(Object.keys(MIXED_TREE).length);
    expect(paths.every((p) => p.startsWith(local))).toBe(true);
    expect(await hashTree(local)).toEqual(hashes);
    // The handler is idle again and serves the next request.
    await expect(client.ping("after")).resolves.toBe("after");
  });

  it("regex sees the path relative to the folder; no match is an empty result; files: [...] land under their base names", async () => {
    const { local, hashes, controller } = await setup();
    const client = await controller.getClient();
    const logs = await client.getFilesFromGateway({ folder: "logs", regex: "\\.log$" });
    expect(logs.map((p) => p.slice(local.length + 1)).sort()).toEqual(["odd.log", join("sub", "app.log")]);
    // Anchored at the relative path: "sub/..." matches, a bare name anchor on a nested file does not.
    const anchored = await client.getFilesFromGateway({ folder: "logs", regex: /^sub\/deeper\// });
    expect(anchored).toHaveLength(2);
    await expect(client.getFilesFromGateway({ folder: "logs", regex: "^nothing-matches$" })).resolves.toEqual([]);
    const picked = await client.getFilesFromGateway({ files: ["logs/one.txt", "logs/sub/deeper/data.bin"] });
    expect(picked).toEqual([join(local, "one.txt"), join(local, "data.bin")]);
    const got = await hashTree(local);
    expect(got.get("data.bin")).toBe(hashes.get("sub/deeper/data.bin"));
  });

  it("missing folder, missing file and a folder given as a file are typed errors, and the handler keeps serving", async () => {
    const { controller } = await setup();
    const client = await controller.getClient();
    await expect(client.getFilesFromGateway({ folder: "no-such-folder" })).rejects.toMatchObject({ code: ErrorCode.FILE_NOT_FOUND });
    await expect(client.getFilesFromGateway({ files: ["logs/missing.bin"] })).rejects.toMatchObject({ code: ErrorCode.FILE_NOT_FOUND });
    // A folder given as a file is not delivered, with its reason; the call says so with a typed error.
    await expect(client.getFilesFromGateway({ files: ["logs/sub"] })).rejects.toMatchObject({
      code: ErrorCode.FILES_NOT_DELIVERED,
      report: { delivered: [], notDelivered: [{ path: "logs/sub", code: ErrorCode.FILE_ACCESS }] },
    });
    await expect(client.getFilesFromGateway({ folder: "logs", regex: "([" })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    await expect(client.ping("still here")).resolves.toBe("still here");
  });

  it("a pathological regex is refused within its deadline and never stalls the gateway for other clients", async () => {
    const { served, controller, gw } = await setup({ regexTimeoutMs: 2_000 });
    await writeFile(join(served, `${"a".repeat(40)}!`), "x");
    const [evil, other] = await Promise.all([controller.getClient(), controller.getClient()]);
    const started = performance.now();
    const refused = evil.getFilesFromGateway({ folder: "logs", regex: "^(a|aa)+$" });
    let settled = false;
    refused.then(
      () => (settled = true),
      () => (settled = true),
    );
    // While the regex spins (2 s, its deadline), another client's round trips stay fast:
    // a stalled gateway would hold one ping for the whole 2 s.
    let worst = 0;
    let pings = 0;
    while (!settled && pings < 100_000) {
      const t0 = performance.now();
      await other.ping(pings++);
      worst = Math.max(worst, performance.now() - t0);
    }
    await expect(within(refused, 10_000, "regex refusal")).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_900);
    expect(performance.now() - started).toBeLessThan(8_000);
    expect(pings).toBeGreaterThan(20);
    expect(worst).toBeLessThan(1_000);
    expect(gw.snapshot().state).toBe("running");
    await expect(evil.ping("ok")).resolves.toBe("ok");
  });

  it("one client uploads into downloadDir/dirname on the gateway and resolves with the count", async () => {
    const { root, served, hashes, controller } = await setup();
    const client = await controller.getClient();
    const files = [...hashes.keys()].filter((p) => !p.includes("/")).map((p) => join(served, p));
    const count = await within(client.sendFilesToGateway({ dirname: "backup/today", files }), 20_000, "upload");
    expect(count).toBe(files.length);
    const landed = await hashTree(join(root, "uploads", "backup", "today"));
    for (const [path, hash] of hashes) if (!path.includes("/")) expect(landed.get(path)).toBe(hash);
    expect([...landed.keys()].some((k) => k.endsWith(".part"))).toBe(false);
    await expect(client.sendFilesToGateway({ dirname: "x", files: [join(served, "nope.bin")] })).rejects.toMatchObject({
      code: ErrorCode.FILE_NOT_FOUND,
    });
  });

  it("verify: true checks SHA-256 both ways", async () => {
    const { root, local, served, hashes, controller } = await setup();
    const client = await controller.getClient();
    await client.getFilesFromGateway({ folder: "logs", verify: true });
    expect(await hashTree(local)).toEqual(hashes);
    const n = await client.sendFilesToGateway({ dirname: "v", files: [join(served, "odd.log"), join(served, "empty.bin")], verify: true });
    expect(n).toBe(2);
    expect((await hashTree(join(root, "uploads", "v"))).get("odd.log")).toBe(hashes.get("odd.log"));
  });

  it("a swarm spreads a tree over its clients, splits a large file into ranges, and the result is byte-identical", async () => {
    const { local, hashes, controller, gw, served, root } = await setup();
    const swarm = await controller.getSwarm(4);
    const handlersUsed = new Set<number>();
    const events: FileProgress[] = [];
    const paths = await within(
      swarm.getFilesFromGateway({
        folder: "logs",
        splitBytes: 512 * 1024, // the 3 MiB file and the 1 MiB zeros are split over several clients
        chunkBytes: 64 * 1024,
        onProgress: (p) => {
          events.push(p);
          for (const h of gw.snapshot().handlers) if (h.state === "busy.downloading") handlersUsed.add(h.handlerId);
        },
      }),
      20_000,
      "swarm download",
    );
    expect(paths).toHaveLength(hashes.size);
    expect(await hashTree(local)).toEqual(hashes);
    expect(handlersUsed.size).toBeGreaterThan(1);
    const last = events.at(-1)!;
    expect(last).toMatchObject({ filesDone: hashes.size, filesTotal: hashes.size });
    expect(last.totalBytes).toBe(last.totalSize);
    // And back up, spread over the same swarm.
    const files = (await readdir(served)).filter((n) => n.includes(".")).map((n) => join(served, n));
    await expect(swarm.sendFilesToGateway({ dirname: "up", files })).resolves.toBe(files.length);
    const up = await hashTree(join(root, "uploads", "up"));
    for (const f of files) expect(up.get(f.slice(served.length + 1))).toBe(hashes.get(f.slice(served.length + 1)));
  });

  it("progress reports per-file and total bytes; the snapshot shows busy.downloading with the file and bytes done", async () => {
    const { controller, gw } = await setup();
    const client = await controller.getClient();
    const events: FileProgress[] = [];
    let snap: ReturnType<typeof gw.snapshot> | undefined;
    await client.getFilesFromGateway({
      files: ["logs/sub/deeper/data.bin"],
      chunkBytes: 64 * 1024,
      windowBytes: 256 * 1024,
      onProgress: (p) => {
        events.push(p);
        if (snap === undefined && p.fileBytes > 1024 * 1024) snap = gw.snapshot();
      },
    });
    expect(events.length).toBeGreaterThan(10);
    expect(events.at(-1)).toMatchObject({
      fileDone: true,
      fileBytes: 3 * 1024 * 1024 + 17,
      totalBytes: 3 * 1024 * 1024 + 17,
      filesDone: 1,
    });
    for (let i = 1; i < events.length; i++) expect(events[i]!.totalBytes).toBeGreaterThanOrEqual(events[i - 1]!.totalBytes);
    expect(snap?.handlers[0]).toMatchObject({
      state: "busy.downloading",
      request: { kind: "download" },
      progress: { kind: "files", direction: "send", file: "logs/sub/deeper/data.bin", fileSize: 3 * 1024 * 1024 + 17 },
    });
    expect((snap?.handlers[0]?.progress as unknown as { bytesDone: number }).bytesDone).toBeGreaterThan(1024 * 1024);
  });

  it("the snapshot shows busy.uploading during an upload", async () => {
    const { controller, gw, served } = await setup();
    const client = await controller.getClient();
    let snap: ReturnType<typeof gw.snapshot> | undefined;
    await client.sendFilesToGateway({
      dirname: "snap",
      files: [join(served, "sub", "deeper", "data.bin")],
      chunkBytes: 64 * 1024,
      onProgress: (p) => {
        if (snap === undefined && p.fileBytes > 2 * 1024 * 1024) snap = gw.snapshot();
      },
    });
    expect(snap?.handlers[0]).toMatchObject({ state: "busy.uploading", request: { kind: "upload", name: "snap" } });
  });

  it("verbose progress bar - drawn on a TTY (throttled, one line), nothing when stderr is not a TTY", async () => {
    const written: string[] = [];
    const tty = { isTTY: true, columns: 100, write: (chunk: string) => void written.push(chunk) } as unknown as NodeJS.WriteStream;
    const bar = new ProgressBar("download", tty);
    const p = (totalBytes: number): FileProgress => ({
      file: "/tmp/x/app.log",
      fileBytes: totalBytes,
      fileSize: 2048,
      fileDone: false,
      totalBytes,
      totalSize: 2048,
      transferred: totalBytes,
      filesDone: 0,
      filesTotal: 1,
    });
    bar.update(p(1024));
    bar.update(p(1536)); // within the redraw interval: not drawn
    bar.finish();
    expect(written[0]).toMatch(/^\rdownload \[#{12}-{12}\] {2}50% 0\/1 files/);
    expect(written).toHaveLength(3); // first draw, final draw, newline
    expect(written[1]).toContain(" 75% ");
    expect(written.every((line) => line.length <= 100 + 8)).toBe(true);
    expect(ProgressBar.forTransfer("download", false)).toBeUndefined();
    if (!process.stderr.isTTY) expect(ProgressBar.forTransfer("download", true)).toBeUndefined();
  });

  it("a bare NAME.part without a journal (an older version, another source) is never spliced: the download starts over", async () => {
    const { local, served, controller } = await setup();
    const source = await readFile(join(served, "sub", "deeper", "data.bin"));
    // A prefix of some other file left under the .part name.
    await mkdir(local, { recursive: true });
    await writeFile(join(local, "data.bin.part"), Buffer.alloc(1_000_000, 7));
    const client = await controller.getClient();
    let transferred = 0;
    await client.getFilesFromGateway({ files: ["logs/sub/deeper/data.bin"], onProgress: (p) => void (transferred = p.transferred) });
    expect(transferred).toBe(source.length);
    expect(Buffer.compare(await readFile(join(local, "data.bin")), source)).toBe(0);
    await expect(stat(join(local, "data.bin.part"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
