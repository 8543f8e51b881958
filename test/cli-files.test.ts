/**
 * `swarmnet get` / `swarmnet put` as users run them: interrupted by Ctrl-C or
 * SIGKILL with ranges in flight and run again, partial results, --if-exists.
 * Permission cases need a process that is not root: when the tests run as
 * root, those children run as `nobody`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { watch } from "node:fs";
import { chmod, mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, onTestFinished } from "vitest";
import { BIN, type CliResult } from "./cli-helpers.js";
import { sha256 } from "./file-helpers.js";
import { FaultRelay } from "./fault-relay.js";
import { startGateway, tempDir, within } from "./helpers.js";

const MiB = 1024 * 1024;
const NOBODY = 65534;
const asNobody = process.getuid?.() === 0;

/** `swarmnet ARGS` as a child (as `nobody` with `unprivileged` when this runs as root), killed when the test ends. */
function swarmnet(args: readonly string[], options: { unprivileged?: boolean } = {}): { child: ChildProcess; exited: Promise<CliResult> } {
  const ids = options.unprivileged && asNobody ? { uid: NOBODY, gid: NOBODY } : {};
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, SWARMNET_QUIET: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    ...ids,
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => void (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => void (stderr += d.toString()));
  const exited = new Promise<CliResult>((resolve) => child.once("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, exited };
}

/** Resolves when `name` appears in `dir` (inotify, no polling), bounded. */
function appears(dir: string, name: string, ms: number): Promise<void> {
  let watcher: ReturnType<typeof watch> | undefined;
  return within(
    new Promise<void>((resolve) => {
      watcher = watch(dir, (_event, file) => {
        if (file === name) resolve();
      });
    }),
    ms,
    `${name} in ${dir}`,
  ).finally(() => watcher?.close());
}

/** A folder the unprivileged child can enter. */
async function openDir(prefix: string): Promise<string> {
  const dir = await tempDir(prefix);
  await chmod(dir, 0o755);
  return dir;
}

describe("swarmnet get/put - interruptions, reports and --if-exists", () => {
  it("get --swarm 4 of a 128 MiB file killed (SIGKILL, then Ctrl-C) with ranges in flight: the journal lists only bytes really written, the same command resumes the rest, byte-identical", async () => {
    const root = await tempDir("swarmnet-cli-kill-root-");
    const source = randomBytes(128 * MiB);
    await writeFile(join(root, "big.bin"), source);
    const gw = await startGateway({ fileRoots: [root], maxPoolSize: 8 });
    for (const signal of ["SIGKILL", "SIGINT"] as const) {
      const out = await tempDir("swarmnet-cli-kill-out-");
      const args = ["get", "--files", "big.bin", "--swarm", "4", "--out", out, "-g", gw.endpoint, "-q"];
      const first = swarmnet(args);
      // The journal is first written once 32 MiB are on disk: ranges are in flight then (the file is 128 MiB).
      await appears(out, "big.bin.part.json", 20_000);
      first.child.kill(signal);
      const ended = await within(first.exited, 10_000, `get to end on ${signal}`);
      if (signal === "SIGINT") {
        expect(ended.code, ended.stderr).toBe(130);
        expect(ended.stderr).toMatch(/interrupted: .*partial files are kept/);
      } else {
        expect(ended.signal).toBe("SIGKILL");
      }
      await expect(stat(join(out, "big.bin"))).rejects.toMatchObject({ code: "ENOENT" });
      const part = await readFile(join(out, "big.bin.part"));
      const journal = JSON.parse(await readFile(join(out, "big.bin.part.json"), "utf8")) as {
        size: number;
        ranges: Array<[number, number]>;
      };
      expect(journal.size).toBe(source.length);
      let held = 0;
      for (const [s, e] of journal.ranges) {
        // Never zeros counted as written: every byte the journal lists is the source's.
        expect(sha256(part.subarray(s, e)), `${signal} range ${s}-${e}`).toBe(sha256(source.subarray(s, e)));
        held += e - s;
      }
      expect(held).toBeGreaterThan(0);
      expect(held).toBeLessThan(source.length);

      const again = await within(swarmnet(args).exited, 30_000, "the same command again");
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/downloaded 1 file \(128\.0 MiB; [\d.]+ MiB sent, [\d.]+ MiB resumed\)/);
      const [sent, resumed] = /([\d.]+) MiB sent, ([\d.]+) MiB resumed/.exec(again.stdout)!.slice(1).map(Number);
      expect(resumed).toBeGreaterThanOrEqual(Math.floor((held / MiB) * 10) / 10);
      expect(sent! + resumed!).toBeCloseTo(128, 0);
      expect(sha256(await readFile(join(out, "big.bin")))).toBe(sha256(source));
      expect(await readdir(out)).toEqual(["big.bin"]);
    }
  }, 120_000);

  it("get --swarm 4 of a 128 MiB file through a relay that resets every connection three times, then SIGKILL with ranges in flight; the same command through more resets resumes it byte-identical", async () => {
    const root = await tempDir("swarmnet-cli-drop-root-");
    const source = randomBytes(128 * MiB);
    await writeFile(join(root, "big.bin"), source);
    const gw = await startGateway({ fileRoots: [root], maxPoolSize: 8 });
    const relay = new FaultRelay({ targetPort: gw.port });
    await relay.start();
    onTestFinished(() => relay.close());
    /** Resets every relayed connection each time another `every` bytes have crossed, `count` times from now. */
    const resetsEvery = (every: number, count: number): void => {
      const from = relay.stats.bytes;
      let done = 0;
      relay.onForward = (bytes) => {
        if (done < count && bytes - from >= (done + 1) * every) {
          done++;
          relay.reset();
        }
      };
    };
    const out = await tempDir("swarmnet-cli-drop-out-");
    const args = ["get", "--files", "big.bin", "--swarm", "4", "--out", out, "-g", `127.0.0.1:${relay.port}`, "-q"];
    resetsEvery(6 * MiB, 3);
    const first = swarmnet(args);
    await appears(out, "big.bin.part.json", 30_000);
    first.child.kill("SIGKILL");
    await within(first.exited, 10_000, "get to end on SIGKILL");
    expect(relay.stats.resets).toBe(3);
    await expect(stat(join(out, "big.bin"))).rejects.toMatchObject({ code: "ENOENT" });

    resetsEvery(16 * MiB, 2);
    const again = await within(swarmnet(args).exited, 60_000, "the same command again");
    expect(again.code, again.stderr).toBe(0);
    expect(relay.stats.resets).toBe(5);
    expect(again.stdout).toMatch(/downloaded 1 file \(128\.0 MiB; [\d.]+ MiB sent, [\d.]+ MiB resumed\)/);
    const resumed = Number(/([\d.]+) MiB resumed/.exec(again.stdout)![1]);
    expect(resumed).toBeGreaterThan(0);
    expect(sha256(await readFile(join(out, "big.bin")))).toBe(sha256(source));
    expect(await readdir(out)).toEqual(["big.bin"]);
  }, 120_000);

  it("get --folder/--files and put --dirname with '..' (or an absolute --dirname) are bad usage, exit 2, before any connection", async () => {
    const local = await tempDir("swarmnet-cli-usage-");
    await writeFile(join(local, "a.txt"), "a");
    // Port 1 has no gateway: reaching for one would exit 3, not 2.
    const gateway = ["-g", "127.0.0.1:1", "-q"];
    const cases: Array<[string[], RegExp]> = [
      [["get", "--folder", "../etc", ...gateway], /--folder "\.\.\/etc" contains '\.\.'/],
      [["get", "--files", "ok.txt", "a/../../b.txt", ...gateway], /--files "a\/\.\.\/\.\.\/b\.txt" contains '\.\.'/],
      [["put", "--dirname", "../x", join(local, "a.txt"), ...gateway], /--dirname "\.\.\/x" contains '\.\.'/],
      [["put", "--dirname", "/srv/x", join(local, "a.txt"), ...gateway], /--dirname "\/srv\/x" is absolute/],
    ];
    for (const [args, message] of cases) {
      const r = await within(swarmnet(args).exited, 30_000, args.join(" "));
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });

  it("get - an unreadable file and an unreadable folder (gateway not root) are printed with their reason, the readable file is delivered, exit 23; a folder it cannot write names the folder", async () => {
    const root = await openDir("swarmnet-cli-perm-root-");
    await mkdir(join(root, "box", "locked"), { recursive: true });
    await writeFile(join(root, "box", "a.txt"), "readable");
    await writeFile(join(root, "box", "secret.txt"), "no");
    await writeFile(join(root, "box", "locked", "inner.txt"), "no");
    await chmod(join(root, "box"), 0o755);
    await chmod(join(root, "box", "secret.txt"), 0o000);
    await chmod(join(root, "box", "locked"), 0o000);
    const ids = asNobody ? { uid: NOBODY, gid: NOBODY } : {};
    const gateway = spawn(process.execPath, ["--import", "tsx", "test/fixtures/file-gateway.ts", root], {
      stdio: ["ignore", "pipe", "inherit"],
      ...ids,
    });
    onTestFinished(() => void gateway.kill("SIGKILL"));
    const port = await within(
      new Promise<number>((resolve) => {
        let text = "";
        gateway.stdout!.on("data", (d: Buffer) => {
          text += d.toString();
          const m = /PORT (\d+)/.exec(text);
          if (m) resolve(Number(m[1]));
        });
      }),
      30_000,
      "gateway as an unprivileged user",
    );
    const out = await openDir("swarmnet-cli-perm-out-");
    const r = await within(swarmnet(["get", "--folder", "box", "--out", out, "-g", `127.0.0.1:${port}`, "-q"]).exited, 20_000, "get");
    expect(r.code, r.stderr).toBe(23);
    expect(r.stdout).toMatch(/downloaded 1 file/);
    expect(r.stderr).toMatch(/not downloaded: "secret\.txt": .*permission denied.*\(SWARMNET_FILE_ACCESS\)/);
    expect(r.stderr).toMatch(/not downloaded: "locked": .*permission denied.*\(SWARMNET_FILE_ACCESS\)/);
    expect(r.stderr).toContain("some files could not be transferred (2 of 3)");
    expect(await readdir(out)).toEqual(["a.txt"]);

    // A download folder the (unprivileged) command cannot write: the typed error names it and the cause.
    const readOnly = await openDir("swarmnet-cli-ro-");
    await chmod(readOnly, 0o555);
    const ro = await within(
      swarmnet(["get", "--files", "box/a.txt", "--out", join(readOnly, "in"), "-g", `127.0.0.1:${port}`, "-q"], { unprivileged: true })
        .exited,
      20_000,
      "get into a read-only folder",
    );
    expect(ro.code).not.toBe(0);
    expect(ro.stderr).toContain("SWARMNET_FILE_ACCESS");
    expect(ro.stderr).toContain(join(readOnly, "in"));
    expect(ro.stderr).toMatch(/permission denied|read-only/);
  }, 90_000);

  it("get/put --if-exists: error reports the path and exits 23, skip says so and exits 0, a bad mode is a usage error", async () => {
    const root = await tempDir("swarmnet-cli-exists-root-");
    await writeFile(join(root, "q3.txt"), "remote");
    const gw = await startGateway({ fileRoots: [root], downloadDir: join(root, "uploads") });
    const out = await tempDir("swarmnet-cli-exists-out-");
    await writeFile(join(out, "q3.txt"), "local");
    const get = (mode: string) =>
      within(
        swarmnet(["get", "--files", "q3.txt", "--out", out, "-g", gw.endpoint, "-q", "--if-exists", mode]).exited,
        20_000,
        `get --if-exists ${mode}`,
      );
    const error = await get("error");
    expect(error.code).toBe(23);
    expect(error.stderr).toMatch(/not downloaded: "q3\.txt": .*exists.*\(SWARMNET_FILE_EXISTS\)/);
    const skip = await get("skip");
    expect(skip.code, skip.stderr).toBe(0);
    expect(skip.stdout).toContain("skipped 1 existing file");
    expect(await readFile(join(out, "q3.txt"), "utf8")).toBe("local");
    const bad = await get("sometimes");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--if-exists");
    await mkdir(join(root, "uploads"));
    await writeFile(join(root, "uploads", "q3.txt"), "already there");
    const putAgain = await within(
      swarmnet(["put", "--dirname", ".", join(out, "q3.txt"), "-g", gw.endpoint, "-q", "--if-exists", "error"]).exited,
      20_000,
      "put --if-exists error",
    );
    expect(putAgain.code).toBe(23);
    expect(putAgain.stderr).toMatch(/not uploaded: ".*q3\.txt": .*\(SWARMNET_FILE_EXISTS\)/);
    expect(await readFile(join(root, "uploads", "q3.txt"), "utf8")).toBe("already there");
  }, 90_000);
});
